//! One ACME order for one subject and one key type (instant-acme glue): place the challenge
//! responses, let the CA validate, take them down again whatever happened, then finalize with a
//! CSR for a fresh key and read back the chain.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewOrder, Order, OrderStatus,
    RetryPolicy,
};
use openssl::asn1::Asn1Time;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::stack::Stack;
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509Name, X509NameBuilder, X509Ref, X509ReqBuilder, X509};

use crate::challenge::Challenges;
use crate::config::ChallengeKind;
use crate::dns::{record_name, DnsHook, HookAction};
use crate::error::{problem_text, AcmeError};
use crate::store::{AcmeStore, ChallengeRecord, ChallengeSlot, KeyKind, StoredCert};

/// How long a placed challenge response stays answerable at most.
const CHALLENGE_TTL: u64 = 600;

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn ossl(what: &'static str) -> impl Fn(openssl::error::ErrorStack) -> AcmeError {
    move |e| AcmeError::Internal(format!("{what}: {e}"))
}

/// What one order needs from the manager.
pub(crate) struct OrderCtx<'a> {
    pub account: &'a Account,
    pub challenge: ChallengeKind,
    pub challenges: &'a Challenges,
    pub store: &'a dyn AcmeStore,
    pub dns: Option<&'a DnsHook>,
    pub dns_delay: Duration,
    /// How long the CA may take to validate, and to issue.
    pub poll_timeout: Duration,
}

/// A response placed for the CA, to take down afterwards.
enum Placed {
    Local(ChallengeSlot, String),
    Dns(String, String),
}

fn challenge_type(kind: ChallengeKind) -> ChallengeType {
    match kind {
        ChallengeKind::TlsAlpn01 => ChallengeType::TlsAlpn01,
        ChallengeKind::Http01 => ChallengeType::Http01,
        ChallengeKind::Dns01 => ChallengeType::Dns01,
    }
}

impl OrderCtx<'_> {
    /// Orders one certificate of `kind` for `names` (sorted, deduplicated).
    pub async fn issue(&self, names: &[String], kind: KeyKind) -> Result<StoredCert, AcmeError> {
        let ids: Vec<Identifier> = names.iter().cloned().map(Identifier::Dns).collect();
        let mut order = self
            .account
            .new_order(&NewOrder::new(&ids))
            .await
            .map_err(AcmeError::from_acme)?;
        if order.state().status != OrderStatus::Ready {
            let mut placed = Vec::new();
            let validated = self.validate(&mut order, &mut placed).await;
            self.take_down(placed).await;
            validated?;
        }
        let key = generate_key(kind).await?;
        let csr = csr_der(names, &key)?;
        order
            .finalize_csr(&csr)
            .await
            .map_err(AcmeError::from_acme)?;
        let chain = order
            .poll_certificate(&self.retry())
            .await
            .map_err(AcmeError::from_acme)?;
        stored_cert(&chain, &key, names)
    }

    fn retry(&self) -> RetryPolicy {
        RetryPolicy::new()
            .initial_delay(Duration::from_millis(250))
            .backoff(1.5)
            .timeout(self.poll_timeout)
    }

    async fn validate(&self, order: &mut Order, placed: &mut Vec<Placed>) -> Result<(), AcmeError> {
        let ctype = challenge_type(self.challenge);
        let expires = now_secs() + CHALLENGE_TTL;
        // First pass: place every response (DNS records all before the propagation wait).
        let mut pending = 0usize;
        let mut authzs = order.authorizations();
        while let Some(a) = authzs.next().await {
            let mut a = a.map_err(AcmeError::from_acme)?;
            let ident = a.identifier().to_string();
            match a.status {
                AuthorizationStatus::Valid => continue,
                AuthorizationStatus::Pending => {}
                other => {
                    return Err(AcmeError::Ca(format!(
                        "authorization for {ident} is {other:?}"
                    )))
                }
            }
            let Identifier::Dns(domain) = a.identifier().identifier.clone() else {
                return Err(AcmeError::Ca(format!("unexpected identifier {ident}")));
            };
            let ch = a
                .challenge(ctype.clone())
                .ok_or_else(|| AcmeError::NoChallenge {
                    kind: self.challenge.as_str(),
                    name: ident.clone(),
                })?;
            let ka = ch.key_authorization();
            match self.challenge {
                ChallengeKind::TlsAlpn01 | ChallengeKind::Http01 => {
                    let (slot, key) = if self.challenge == ChallengeKind::TlsAlpn01 {
                        self.challenges
                            .add_tls_alpn01(&domain, ka.as_str(), expires)?;
                        (ChallengeSlot::TlsAlpn01, domain.to_ascii_lowercase())
                    } else {
                        self.challenges.add_http01(&ch.token, ka.as_str(), expires);
                        (ChallengeSlot::Http01, ch.token.clone())
                    };
                    placed.push(Placed::Local(slot, key.clone()));
                    self.store
                        .put_challenge(&ChallengeRecord {
                            slot,
                            key,
                            key_authorization: ka.as_str().to_string(),
                            expires,
                        })
                        .await?;
                }
                ChallengeKind::Dns01 => {
                    let hook = self
                        .dns
                        .ok_or_else(|| AcmeError::Config("dns-01 without dns_hook".into()))?;
                    let name = record_name(&domain);
                    let value = ka.dns_value();
                    hook.run(HookAction::Add, &name, &value).await?;
                    placed.push(Placed::Dns(name, value));
                }
            }
            pending += 1;
        }
        if pending == 0 {
            return Ok(());
        }
        if self.challenge == ChallengeKind::Dns01 && !self.dns_delay.is_zero() {
            tokio::time::sleep(self.dns_delay).await;
        }
        // Second pass (no network: the states are cached): tell the CA to look.
        let mut authzs = order.authorizations();
        while let Some(a) = authzs.next().await {
            let mut a = a.map_err(AcmeError::from_acme)?;
            if a.status != AuthorizationStatus::Pending {
                continue;
            }
            if let Some(mut ch) = a.challenge(ctype.clone()) {
                ch.set_ready().await.map_err(AcmeError::from_acme)?;
            }
        }
        let outcome = order.poll_ready(&self.retry()).await;
        match outcome {
            Ok(OrderStatus::Ready) => Ok(()),
            Ok(status) => Err(self
                .challenge_failure(order)
                .await
                .unwrap_or_else(|| AcmeError::Ca(format!("order is {status:?}")))),
            Err(e) => Err(self
                .challenge_failure(order)
                .await
                .unwrap_or_else(|| AcmeError::from_acme(e))),
        }
    }

    /// The CA's word on the first failed challenge, re-read from the authorizations.
    async fn challenge_failure(&self, order: &mut Order) -> Option<AcmeError> {
        let ctype = challenge_type(self.challenge);
        let mut authzs = order.authorizations();
        while let Some(a) = authzs.next().await {
            let Ok(mut a) = a else { continue };
            let Ok(state) = a.refresh().await else {
                continue;
            };
            let name = state.identifier().to_string();
            if let Some(problem) = state
                .challenges
                .iter()
                .filter(|c| c.r#type == ctype)
                .find_map(|c| c.error.as_ref())
            {
                let err = AcmeError::from_problem(problem);
                if err.is_rate_limited() {
                    return Some(err);
                }
                return Some(AcmeError::Challenge {
                    kind: self.challenge.as_str(),
                    name,
                    detail: problem_text(problem),
                });
            }
        }
        None
    }

    async fn take_down(&self, placed: Vec<Placed>) {
        for p in placed {
            match p {
                Placed::Local(slot, key) => {
                    self.challenges.remove(slot, &key);
                    if let Err(e) = self.store.delete_challenge(slot, &key).await {
                        tracing::warn!(target: "rpaas::acme", error = %e, "cannot delete a challenge record");
                    }
                }
                Placed::Dns(name, value) => {
                    if let Some(hook) = self.dns {
                        if let Err(e) = hook.run(HookAction::Remove, &name, &value).await {
                            tracing::warn!(target: "rpaas::acme", error = %e, "dns hook remove failed");
                        }
                    }
                }
            }
        }
    }
}

/// A fresh private key of `kind` (RSA generation takes a while: off the runtime threads).
async fn generate_key(kind: KeyKind) -> Result<PKey<Private>, AcmeError> {
    tokio::task::spawn_blocking(move || match kind {
        KeyKind::Ecdsa => {
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(ossl("P-256"))?;
            let ec = EcKey::generate(&group).map_err(ossl("ECDSA key"))?;
            PKey::from_ec_key(ec).map_err(ossl("ECDSA key"))
        }
        KeyKind::Rsa => {
            let rsa = Rsa::generate(2048).map_err(ossl("RSA key"))?;
            PKey::from_rsa(rsa).map_err(ossl("RSA key"))
        }
    })
    .await
    .map_err(|e| AcmeError::Internal(format!("key generation task: {e}")))?
}

/// A CSR for `names` (as SANs; the first also as CN when it fits) signed by `key`.
fn csr_der(names: &[String], key: &PKey<Private>) -> Result<Vec<u8>, AcmeError> {
    let mut b = X509ReqBuilder::new().map_err(ossl("CSR"))?;
    let mut subject = X509NameBuilder::new().map_err(ossl("CSR"))?;
    if let Some(cn) = names.first().filter(|n| n.len() <= 64) {
        subject
            .append_entry_by_nid(Nid::COMMONNAME, cn)
            .map_err(ossl("CSR subject"))?;
    }
    let subject: X509Name = subject.build();
    b.set_subject_name(&subject).map_err(ossl("CSR subject"))?;
    b.set_pubkey(key).map_err(ossl("CSR key"))?;
    let mut san = SubjectAlternativeName::new();
    for n in names {
        san.dns(n);
    }
    let ext = san
        .build(&b.x509v3_context(None))
        .map_err(ossl("CSR names"))?;
    let mut exts = Stack::new().map_err(ossl("CSR"))?;
    exts.push(ext).map_err(ossl("CSR"))?;
    b.add_extensions(&exts).map_err(ossl("CSR"))?;
    b.sign(key, MessageDigest::sha256())
        .map_err(ossl("CSR signature"))?;
    b.build().to_der().map_err(ossl("CSR"))
}

/// Seconds since the epoch of an ASN.1 time.
pub(crate) fn unix_time(t: &openssl::asn1::Asn1TimeRef) -> Result<u64, AcmeError> {
    let epoch = Asn1Time::from_unix(0).map_err(ossl("time"))?;
    let d = epoch.diff(t).map_err(ossl("time"))?;
    let secs = i64::from(d.days) * 86_400 + i64::from(d.secs);
    u64::try_from(secs).map_err(|_| AcmeError::Internal("certificate time before 1970".into()))
}

/// The leaf's dates.
pub(crate) fn validity(leaf: &X509Ref) -> Result<(u64, u64), AcmeError> {
    Ok((unix_time(leaf.not_before())?, unix_time(leaf.not_after())?))
}

/// Checks what the CA sent against the key and names, and packs it for the store.
fn stored_cert(
    chain_pem: &str,
    key: &PKey<Private>,
    names: &[String],
) -> Result<StoredCert, AcmeError> {
    let chain = X509::stack_from_pem(chain_pem.as_bytes())
        .map_err(|e| AcmeError::Ca(format!("the certificate is not PEM: {e}")))?;
    let leaf = chain
        .first()
        .ok_or_else(|| AcmeError::Ca("the CA sent no certificate".into()))?;
    let public = leaf
        .public_key()
        .map_err(|e| AcmeError::Ca(format!("the certificate has no usable key: {e}")))?;
    if !public.public_eq(key) {
        return Err(AcmeError::Ca(
            "the certificate is not for the key in our CSR".into(),
        ));
    }
    let (not_before, not_after) = validity(leaf)?;
    let key_pem = key.private_key_to_pem_pkcs8().map_err(ossl("key PEM"))?;
    Ok(StoredCert {
        chain_pem: chain_pem.to_string(),
        key_pem: String::from_utf8(key_pem)
            .map_err(|_| AcmeError::Internal("key PEM is not UTF-8".into()))?,
        not_after,
        not_before,
        names: names.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use openssl::x509::X509Req;

    use super::*;

    #[tokio::test]
    async fn csrs_name_every_host_and_carry_the_right_key_type() {
        let names = vec!["a.example.net".to_string(), "b.example.net".to_string()];
        for (kind, id) in [
            (KeyKind::Ecdsa, openssl::pkey::Id::EC),
            (KeyKind::Rsa, openssl::pkey::Id::RSA),
        ] {
            let key = generate_key(kind).await.unwrap();
            assert_eq!(key.id(), id);
            if kind == KeyKind::Rsa {
                assert_eq!(key.bits(), 2048);
            }
            let der = csr_der(&names, &key).unwrap();
            let req = X509Req::from_der(&der).unwrap();
            assert!(req.verify(&req.public_key().unwrap()).unwrap());
            let text = String::from_utf8(req.to_text().unwrap()).unwrap();
            assert!(
                text.contains("DNS:a.example.net, DNS:b.example.net"),
                "{text}"
            );
        }
    }

    #[test]
    fn asn1_times_convert_to_unix_seconds() {
        let t = Asn1Time::from_unix(1_800_000_123).unwrap();
        assert_eq!(unix_time(&t).unwrap(), 1_800_000_123);
    }
}
