//! Challenge responses, shared between the manager (which adds and removes them) and the
//! listeners (which answer the CA). Lookups from a listener are a read lock and a hash probe;
//! in a fleet, a miss may also ask the store (another node placed the challenge), at most a few
//! times a second so a client cannot turn misses into database load.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rcgen::{CertificateParams, CustomExtension, KeyPair};

use crate::error::AcmeError;
use crate::store::{AcmeStore, ChallengeRecord, ChallengeSlot};

/// The ALPN protocol a TLS-ALPN-01 validator offers (RFC 8737 §6.2).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// The HTTP-01 path prefix (RFC 8555 §8.3).
pub const HTTP01_PREFIX: &str = "/.well-known/acme-challenge/";

/// Store lookups allowed per second for names/tokens this node does not know.
const STORE_MISSES_PER_SEC: u32 = 20;

/// The self-signed certificate a TLS-ALPN-01 validator must see for a name: the name as its
/// only SAN and the SHA-256 of the key authorization in a critical `acmeIdentifier` extension.
pub struct AlpnCert {
    pub cert_der: Vec<u8>,
    /// PKCS#8.
    pub key_der: Vec<u8>,
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for AlpnCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlpnCert").finish_non_exhaustive()
    }
}

impl AlpnCert {
    /// Builds the certificate for `name` and `key_authorization` (ECDSA P-256, with rcgen).
    pub fn new(name: &str, key_authorization: &str) -> Result<Self, AcmeError> {
        let digest = openssl::sha::sha256(key_authorization.as_bytes());
        let mut params = CertificateParams::new(vec![name.to_string()])
            .map_err(|e| AcmeError::Internal(format!("tls-alpn-01 certificate: {e}")))?;
        params
            .custom_extensions
            .push(CustomExtension::new_acme_identifier(&digest));
        let key = KeyPair::generate()
            .map_err(|e| AcmeError::Internal(format!("tls-alpn-01 key: {e}")))?;
        let cert = params
            .self_signed(&key)
            .map_err(|e| AcmeError::Internal(format!("tls-alpn-01 certificate: {e}")))?;
        Ok(Self {
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

struct Entry<T: ?Sized> {
    value: Arc<T>,
    expires: u64,
    /// Copied from the store (placed by another node), with the key authorization it was
    /// made for: such an entry is checked against the store again, since another order for
    /// the same name (the second key type, a retry) replaces it there.
    from_store: Option<String>,
}

struct Limiter {
    window: Instant,
    used: u32,
}

/// The pending challenge responses of this node (and, with a store, of the fleet).
pub struct Challenges {
    alpn: RwLock<HashMap<String, Entry<AlpnCert>>>,
    http: RwLock<HashMap<String, Entry<str>>>,
    store: Option<Arc<dyn AcmeStore>>,
    limiter: Mutex<Limiter>,
}

impl std::fmt::Debug for Challenges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Challenges")
            .field("shared", &self.store.is_some())
            .finish_non_exhaustive()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A DNS name as a validator sends it in SNI: lowercase, no trailing dot.
fn norm_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Tokens are base64url (RFC 8555 §8.3); anything else is not worth a lookup.
fn plausible_token(token: &str) -> bool {
    (16..=256).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Challenges {
    /// Responses of this node only.
    pub fn new() -> Arc<Self> {
        Self::build(None)
    }

    /// Responses of this node, and on a miss those any node put in `store`.
    pub fn shared(store: Arc<dyn AcmeStore>) -> Arc<Self> {
        Self::build(Some(store))
    }

    fn build(store: Option<Arc<dyn AcmeStore>>) -> Arc<Self> {
        Arc::new(Self {
            alpn: RwLock::default(),
            http: RwLock::default(),
            store,
            limiter: Mutex::new(Limiter {
                window: Instant::now(),
                used: 0,
            }),
        })
    }

    /// The TLS-ALPN-01 certificate for `name` (the SNI), if this node holds one. Cheap: for a
    /// handshake callback.
    pub fn tls_alpn01(&self, name: &str) -> Option<Arc<AlpnCert>> {
        let now = now_secs();
        let map = self.alpn.read().unwrap_or_else(|e| e.into_inner());
        map.get(&norm_name(name))
            .filter(|e| e.expires > now)
            .map(|e| e.value.clone())
    }

    /// As [`Self::tls_alpn01`] for a response this node placed; else the store (a challenge
    /// placed by another node), whose answer replaces an older copy.
    pub async fn tls_alpn01_shared(&self, name: &str) -> Option<Arc<AlpnCert>> {
        let name = norm_name(name);
        let now = now_secs();
        let cached = {
            let map = self.alpn.read().unwrap_or_else(|e| e.into_inner());
            match map.get(&name).filter(|e| e.expires > now) {
                Some(e) if e.from_store.is_none() => return Some(e.value.clone()),
                Some(e) => Some((e.value.clone(), e.from_store.clone())),
                None => None,
            }
        };
        let Some(rec) = self.lookup_store(ChallengeSlot::TlsAlpn01, &name).await else {
            // Not in the store (or lookups are rate-limited): what we copied, if anything.
            return cached.map(|(c, _)| c);
        };
        if let Some((c, Some(ka))) = &cached {
            if *ka == rec.key_authorization {
                return Some(c.clone());
            }
        }
        let cert = Arc::new(AlpnCert::new(&name, &rec.key_authorization).ok()?);
        self.alpn.write().unwrap_or_else(|e| e.into_inner()).insert(
            name,
            Entry {
                value: cert.clone(),
                expires: rec.expires,
                from_store: Some(rec.key_authorization),
            },
        );
        Some(cert)
    }

    /// The HTTP-01 key authorization for `token`, if this node holds one.
    pub fn http01(&self, token: &str) -> Option<Arc<str>> {
        let now = now_secs();
        let map = self.http.read().unwrap_or_else(|e| e.into_inner());
        map.get(token)
            .filter(|e| e.expires > now)
            .map(|e| e.value.clone())
    }

    /// As [`Self::http01`], then the store.
    pub async fn http01_shared(&self, token: &str) -> Option<Arc<str>> {
        if let Some(v) = self.http01(token) {
            return Some(v);
        }
        if !plausible_token(token) {
            return None;
        }
        let rec = self.lookup_store(ChallengeSlot::Http01, token).await?;
        let value: Arc<str> = rec.key_authorization.into();
        self.http.write().unwrap_or_else(|e| e.into_inner()).insert(
            token.to_string(),
            Entry {
                value: value.clone(),
                expires: rec.expires,
                from_store: Some(String::new()),
            },
        );
        Some(value)
    }

    /// The token of an HTTP-01 request path, if it is one.
    pub fn http01_token(path: &str) -> Option<&str> {
        let token = path.strip_prefix(HTTP01_PREFIX)?;
        plausible_token(token).then_some(token)
    }

    async fn lookup_store(&self, slot: ChallengeSlot, key: &str) -> Option<ChallengeRecord> {
        let store = self.store.as_ref()?;
        {
            let mut l = self.limiter.lock().unwrap_or_else(|e| e.into_inner());
            if l.window.elapsed() >= Duration::from_secs(1) {
                l.window = Instant::now();
                l.used = 0;
            }
            if l.used >= STORE_MISSES_PER_SEC {
                return None;
            }
            l.used += 1;
        }
        match store.challenge(slot, key).await {
            Ok(r) => r.filter(|r| r.expires > now_secs()),
            Err(e) => {
                tracing::warn!(target: "rpaas::acme", error = %e, "challenge lookup in the store failed");
                None
            }
        }
    }

    pub(crate) fn add_tls_alpn01(
        &self,
        name: &str,
        key_authorization: &str,
        expires: u64,
    ) -> Result<(), AcmeError> {
        let name = norm_name(name);
        let cert = Arc::new(AlpnCert::new(&name, key_authorization)?);
        self.alpn.write().unwrap_or_else(|e| e.into_inner()).insert(
            name,
            Entry {
                value: cert,
                expires,
                from_store: None,
            },
        );
        Ok(())
    }

    pub(crate) fn add_http01(&self, token: &str, key_authorization: &str, expires: u64) {
        self.http.write().unwrap_or_else(|e| e.into_inner()).insert(
            token.to_string(),
            Entry {
                value: key_authorization.into(),
                expires,
                from_store: None,
            },
        );
    }

    pub(crate) fn remove(&self, slot: ChallengeSlot, key: &str) {
        match slot {
            ChallengeSlot::TlsAlpn01 => {
                self.alpn
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&norm_name(key));
            }
            ChallengeSlot::Http01 => {
                self.http
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use openssl::x509::X509;

    use super::*;
    use crate::DirStore;

    const TOKEN: &str = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA";

    #[test]
    fn alpn_certificate_carries_the_digest_and_only_the_name() {
        let c = AlpnCert::new("a.example.net", "tok.thumb").unwrap();
        let x = X509::from_der(&c.cert_der).unwrap();
        let sans: Vec<String> = x
            .subject_alt_names()
            .unwrap()
            .iter()
            .filter_map(|n| n.dnsname().map(str::to_string))
            .collect();
        assert_eq!(sans, ["a.example.net"]);
        let text = String::from_utf8(x.to_text().unwrap()).unwrap();
        // id-pe-acmeIdentifier, critical, an OCTET STRING holding the SHA-256.
        assert!(text.contains("1.3.6.1.5.5.7.1.31: critical"), "{text}");
        let digest = openssl::sha::sha256(b"tok.thumb");
        let der = &c.cert_der;
        assert!(der
            .windows(34)
            .any(|w| w[0] == 0x04 && w[1] == 32 && w[2..] == digest));
        let key = openssl::pkey::PKey::private_key_from_der(&c.key_der).unwrap();
        assert!(x.public_key().unwrap().public_eq(&key));
    }

    #[test]
    fn local_lookups_and_expiry() {
        let ch = Challenges::new();
        let later = now_secs() + 60;
        ch.add_tls_alpn01("A.Example.NET.", "k", later).unwrap();
        assert!(ch.tls_alpn01("a.example.net").is_some());
        assert!(ch.tls_alpn01("b.example.net").is_none());
        ch.add_http01(TOKEN, "k.a", later);
        assert_eq!(ch.http01(TOKEN).as_deref(), Some("k.a"));
        ch.add_http01("stale-token-stale-token", "x", now_secs() - 1);
        assert!(ch.http01("stale-token-stale-token").is_none());
        ch.remove(ChallengeSlot::TlsAlpn01, "a.example.net");
        assert!(ch.tls_alpn01("a.example.net").is_none());
        assert_eq!(
            Challenges::http01_token(&format!("{HTTP01_PREFIX}{TOKEN}")),
            Some(TOKEN)
        );
        assert_eq!(
            Challenges::http01_token("/.well-known/acme-challenge/../x"),
            None
        );
        assert_eq!(Challenges::http01_token("/other"), None);
    }

    #[tokio::test]
    async fn another_nodes_challenge_is_answered_from_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn AcmeStore> = Arc::new(DirStore::open(dir.path()).unwrap());
        let expires = now_secs() + 60;
        for (slot, key) in [
            (ChallengeSlot::Http01, TOKEN),
            (ChallengeSlot::TlsAlpn01, "a.example.net"),
        ] {
            store
                .put_challenge(&ChallengeRecord {
                    slot,
                    key: key.into(),
                    key_authorization: format!("{TOKEN}.thumb"),
                    expires,
                })
                .await
                .unwrap();
        }
        let other_node = Challenges::shared(store.clone());
        assert!(other_node.http01(TOKEN).is_none(), "not local");
        assert_eq!(
            other_node.http01_shared(TOKEN).await.as_deref(),
            Some(format!("{TOKEN}.thumb").as_str())
        );
        assert!(
            other_node.http01(TOKEN).is_some(),
            "cached after the lookup"
        );
        assert!(other_node
            .tls_alpn01_shared("A.example.net")
            .await
            .is_some());
        assert!(other_node
            .tls_alpn01_shared("b.example.net")
            .await
            .is_none());
        // Implausible tokens never reach the store; a burst of misses is capped.
        assert!(other_node.http01_shared("x").await.is_none());
        for _ in 0..100 {
            let _ = other_node.tls_alpn01_shared("c.example.net").await;
        }
        let used = other_node.limiter.lock().unwrap().used;
        assert!(used <= STORE_MISSES_PER_SEC, "{used}");
        // A node without a store answers only its own.
        assert!(Challenges::new().http01_shared(TOKEN).await.is_none());
    }

    #[tokio::test]
    async fn a_newer_challenge_for_the_same_name_replaces_the_copy() {
        // Another node orders the ECDSA certificate, then the RSA one: two challenges for one
        // name, one after the other. The copy of the first must not answer the second.
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn AcmeStore> = Arc::new(DirStore::open(dir.path()).unwrap());
        let put = |ka: &'static str| {
            let store = store.clone();
            async move {
                store
                    .put_challenge(&ChallengeRecord {
                        slot: ChallengeSlot::TlsAlpn01,
                        key: "a.example.net".into(),
                        key_authorization: ka.into(),
                        expires: now_secs() + 60,
                    })
                    .await
                    .unwrap()
            }
        };
        let digest_in = |c: &AlpnCert, ka: &str| {
            let d = openssl::sha::sha256(ka.as_bytes());
            c.cert_der.windows(32).any(|w| w == d)
        };
        let node = Challenges::shared(store.clone());
        put("first.thumb").await;
        let c1 = node.tls_alpn01_shared("a.example.net").await.unwrap();
        assert!(digest_in(&c1, "first.thumb"));
        let again = node.tls_alpn01_shared("a.example.net").await.unwrap();
        assert!(Arc::ptr_eq(&c1, &again), "unchanged: the copy is reused");
        put("second.thumb").await;
        let c2 = node.tls_alpn01_shared("a.example.net").await.unwrap();
        assert!(digest_in(&c2, "second.thumb"));
        assert!(digest_in(
            &node.tls_alpn01("a.example.net").unwrap(),
            "second.thumb"
        ));
        // A response this node placed itself is answered without asking the store.
        node.add_tls_alpn01("b.example.net", "mine.thumb", now_secs() + 60)
            .unwrap();
        let mine = node.tls_alpn01_shared("b.example.net").await.unwrap();
        assert!(digest_in(&mine, "mine.thumb"));
    }
}
