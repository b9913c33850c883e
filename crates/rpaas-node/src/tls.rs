//! TLS material and profiles: loading an instance's certificates (one chain and key per key
//! type, ECDSA and RSA side by side; or a self-signed set), and building one OpenSSL acceptor
//! per listener whose SNI callback installs the instance's certificates from the *current*
//! snapshot, so a reload changes certificates without touching the listeners. With both key
//! types installed, OpenSSL picks per handshake what the client supports.
//!
//! The profiles follow Mozilla's server-side TLS recommendations (version 5.7, the one sslyze
//! checks `--mozilla_config` against): `modern`, `intermediate`, and `legacy` = Mozilla `old`
//! (with fewer suites: no 3DES, no DHE-CBC). Every profile offers only the key-exchange groups
//! Mozilla lists: X25519, P-256, P-384.
//!
//! ACME TLS-ALPN-01 validations (`acme-tls/1`) get an acceptor of their own,
//! [`acme_tls_acceptor`]: the accept loop sees the offered ALPN in the ClientHello it already
//! parses and routes such connections there, so the challenge certificate never mixes with an
//! instance's certificates (OpenSSL chooses the certificate before it runs the ALPN callback
//! in TLS 1.2, so one acceptor could not do both).

use std::sync::Arc;

use arc_swap::ArcSwap;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::rsa::Rsa;
use openssl::ssl::{
    AlpnError, NameType, SniError, SslAcceptor, SslAcceptorBuilder, SslAlert, SslMethod,
    SslOptions, SslRef, SslVersion,
};
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509NameBuilder, X509};
use rpaas_config::{Listener, TlsProfile};
use rpaas_tls_session::{Resumption, Scope};

use crate::certs::CertStore;
use crate::snapshot::Snapshot;

/// Why a certificate set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("bad PEM certificate: {0}")]
    BadCertificate(String),
    #[error("no certificate in the file")]
    NoCertificate,
    #[error("bad PEM private key: {0}")]
    BadKey(String),
    #[error("cannot read the certificate's public key: {0}")]
    PublicKey(String),
    #[error("the private key does not match the certificate")]
    KeyMismatch,
    /// One of several pairs (1-based).
    #[error("pair {index}: {error}")]
    Pair { index: usize, error: Box<CertError> },
    #[error("no certificate")]
    Empty,
    #[error("two {0} certificates: give at most one per key type")]
    DuplicateKeyType(String),
}

/// A certificate chain (leaf first) and its key.
#[derive(Clone)]
pub struct CertPair {
    pub chain: Vec<X509>,
    pub key: PKey<Private>,
}

impl CertPair {
    /// Parses a PEM chain and key, checking that the key belongs to the leaf.
    pub fn load(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, CertError> {
        let chain =
            X509::stack_from_pem(cert_pem).map_err(|e| CertError::BadCertificate(e.to_string()))?;
        let leaf = chain.first().ok_or(CertError::NoCertificate)?;
        let key =
            PKey::private_key_from_pem(key_pem).map_err(|e| CertError::BadKey(e.to_string()))?;
        let public = leaf
            .public_key()
            .map_err(|e| CertError::PublicKey(e.to_string()))?;
        if !public.public_eq(&key) {
            return Err(CertError::KeyMismatch);
        }
        Ok(Self { chain, key })
    }

    /// The key type (`EC`, `RSA`, ...); OpenSSL keeps one certificate per type.
    pub fn key_type(&self) -> Id {
        self.key.id()
    }
}

/// An instance's certificates: one chain and key per key type (ECDSA and RSA side by side), the
/// handshake picks what the client supports.
#[derive(Clone)]
pub struct CertKey {
    pub pairs: Vec<CertPair>,
    pub self_signed: bool,
}

impl std::fmt::Debug for CertKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kinds: Vec<String> = self
            .pairs
            .iter()
            .map(|p| format!("{:?}/{}", p.key_type(), p.chain.len()))
            .collect();
        f.debug_struct("CertKey")
            .field("pairs", &kinds)
            .field("self_signed", &self.self_signed)
            .finish_non_exhaustive()
    }
}

fn key_type_name(id: Id) -> String {
    match id {
        Id::EC => "ECDSA".into(),
        Id::RSA => "RSA".into(),
        other => format!("{other:?}"),
    }
}

impl CertKey {
    /// Loads a PEM chain and key, checking that the key belongs to the leaf.
    pub fn load(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, CertError> {
        Self::load_pairs(&[(cert_pem, key_pem)])
    }

    /// Loads several chain/key pairs (e.g. an ECDSA and an RSA certificate for the same names);
    /// at most one per key type. Errors name the pair (1-based) when there are several.
    pub fn load_pairs(pairs: &[(&[u8], &[u8])]) -> Result<Self, CertError> {
        let loaded = pairs
            .iter()
            .enumerate()
            .map(|(i, (c, k))| {
                CertPair::load(c, k).map_err(|e| {
                    if pairs.len() > 1 {
                        CertError::Pair {
                            index: i + 1,
                            error: Box::new(e),
                        }
                    } else {
                        e
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_pairs(loaded, false)
    }

    /// Wraps parsed pairs; refuses none, and two of one key type (OpenSSL would keep only the
    /// last).
    pub fn from_pairs(pairs: Vec<CertPair>, self_signed: bool) -> Result<Self, CertError> {
        if pairs.is_empty() {
            return Err(CertError::Empty);
        }
        for (i, p) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|q| q.key_type() == p.key_type()) {
                return Err(CertError::DuplicateKeyType(key_type_name(p.key_type())));
            }
        }
        Ok(Self { pairs, self_signed })
    }

    /// Makes a self-signed ECDSA P-256 certificate for `hostnames`, valid for a year.
    pub fn self_signed(hostnames: &[String]) -> Result<Self, openssl::error::ErrorStack> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
        let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
        Ok(Self {
            pairs: vec![self_signed_pair(hostnames, key)?],
            self_signed: true,
        })
    }

    /// Makes self-signed ECDSA P-256 and RSA 2048 certificates for `hostnames` (so clients
    /// that cannot do ECDSA still connect while no real certificate is there).
    pub fn self_signed_dual(hostnames: &[String]) -> Result<Self, openssl::error::ErrorStack> {
        let mut me = Self::self_signed(hostnames)?;
        let rsa = PKey::from_rsa(Rsa::generate(2048)?)?;
        me.pairs.push(self_signed_pair(hostnames, rsa)?);
        Ok(me)
    }

    /// The earliest `notAfter` of the leaves.
    pub fn not_after(&self) -> Option<&openssl::asn1::Asn1TimeRef> {
        self.pairs
            .iter()
            .filter_map(|p| p.chain.first().map(|l| l.not_after()))
            .min_by(|a, b| a.compare(b).unwrap_or(std::cmp::Ordering::Equal))
    }

    fn install(&self, ssl: &mut SslRef) -> Result<(), openssl::error::ErrorStack> {
        // Each certificate goes to its key type's slot; a chain certificate is added to the
        // slot of the certificate set just before it.
        for p in &self.pairs {
            let mut it = p.chain.iter();
            if let Some(leaf) = it.next() {
                pingora::tls::ext::ssl_use_certificate(ssl, leaf)?;
            }
            pingora::tls::ext::ssl_use_private_key(ssl, &p.key)?;
            for c in it {
                pingora::tls::ext::ssl_add_chain_cert(ssl, c)?;
            }
        }
        Ok(())
    }
}

fn self_signed_pair(
    hostnames: &[String],
    key: PKey<Private>,
) -> Result<CertPair, openssl::error::ErrorStack> {
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, hostnames.first().map_or("rpaas", |h| h))?;
    let name = name.build();
    let mut b = X509::builder()?;
    b.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(&name)?;
    b.set_pubkey(&key)?;
    b.set_not_before(&*Asn1Time::days_from_now(0)?)?;
    b.set_not_after(&*Asn1Time::days_from_now(365)?)?;
    b.append_extension(BasicConstraints::new().build()?)?;
    let mut san = SubjectAlternativeName::new();
    for h in hostnames {
        san.dns(h);
    }
    let san = san.build(&b.x509v3_context(None, None))?;
    b.append_extension(san)?;
    b.sign(&key, MessageDigest::sha256())?;
    Ok(CertPair {
        chain: vec![b.build()],
        key,
    })
}

/// The key-exchange groups of every Mozilla profile (OpenSSL 3 would also offer X448,
/// secp521r1 and the FFDHE groups).
pub const GROUPS: &str = "X25519:P-256:P-384";

/// The ALPN protocol of ACME TLS-ALPN-01 validations (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// Gives the TLS-ALPN-01 challenge certificate for an SNI name, if a validation for it is
/// pending (the node builds it from `rpaas_acme::Challenges`).
pub type AcmeTlsResponder = Arc<dyn Fn(&str) -> Option<CertKey> + Send + Sync>;

/// Mozilla "intermediate" (5.7) TLS 1.2 suites, all forward-secret AEAD, in Mozilla's order.
pub const INTERMEDIATE_CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:\
ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:\
DHE-RSA-CHACHA20-POLY1305";

/// For agents on old Windows/.NET stacks: the intermediate suites first, then the CBC suites
/// TLS 1.0/1.1 clients need. A subset of Mozilla "old" (5.7): no 3DES (Sweet32), and no RC4,
/// export or anonymous suites, which "old" does not allow either. `@SECLEVEL=0` lets OpenSSL 3
/// negotiate TLS 1.0/1.1 (their SHA-1 signatures are refused at level 1 and up).
pub const LEGACY_CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:\
ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:\
ECDHE-RSA-AES256-SHA:AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA:AES256-SHA:@SECLEVEL=0";

/// The OpenSSL settings of a profile, before any callback.
pub fn profile_builder(
    profile: TlsProfile,
) -> Result<SslAcceptorBuilder, openssl::error::ErrorStack> {
    let mut b: SslAcceptorBuilder = match profile {
        TlsProfile::Modern => {
            let mut b = SslAcceptor::mozilla_modern_v5(SslMethod::tls_server())?;
            b.set_min_proto_version(Some(SslVersion::TLS1_3))?;
            b
        }
        TlsProfile::Intermediate => {
            let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
            b.set_min_proto_version(Some(SslVersion::TLS1_2))?;
            b.set_cipher_list(INTERMEDIATE_CIPHERS)?;
            b
        }
        TlsProfile::Legacy => {
            let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
            // The Mozilla presets set NO_TLSV1/NO_TLSV1_1; a legacy listener must clear them.
            b.clear_options(SslOptions::NO_TLSV1 | SslOptions::NO_TLSV1_1);
            b.set_min_proto_version(Some(SslVersion::TLS1))?;
            b.set_cipher_list(LEGACY_CIPHERS)?;
            b
        }
    };
    b.set_groups_list(GROUPS)?;
    b.set_options(
        SslOptions::CIPHER_SERVER_PREFERENCE
            | SslOptions::NO_RENEGOTIATION
            | SslOptions::NO_COMPRESSION
            | SslOptions::NO_SSLV3,
    );
    // Resumption is off unless [`acceptor`] scopes it to an instance (rpaas-tls-session):
    // OpenSSL creates a connection's session before the SNI callback picks the instance, so an
    // unscoped session would resume on any instance's hostname.
    b.set_options(SslOptions::NO_TICKET);
    b.set_session_cache_mode(openssl::ssl::SslSessionCacheMode::OFF);
    Ok(b)
}

/// The acceptor for TLS-ALPN-01 validations: TLS 1.2+ (RFC 8737), the challenge certificate
/// for the SNI from `responder`, and `acme-tls/1` as the only protocol it agrees to. Nothing
/// else is served on it: the accept loop sends a connection here only when its ClientHello
/// offers `acme-tls/1`, and an unknown name fails with `unrecognized_name`.
pub fn acme_tls_acceptor(
    responder: AcmeTlsResponder,
) -> Result<SslAcceptor, openssl::error::ErrorStack> {
    let mut b = profile_builder(TlsProfile::Intermediate)?;
    b.set_alpn_select_callback(|_, client| {
        openssl::ssl::select_next_proto(b"\x0aacme-tls/1", client).ok_or(AlpnError::ALERT_FATAL)
    });
    b.set_servername_callback(move |ssl, alert| {
        let name = ssl
            .servername(NameType::HOST_NAME)
            .map(|s| s.trim_end_matches('.').to_ascii_lowercase());
        let Some(cert) = name.as_deref().and_then(|n| responder(n)) else {
            *alert = SslAlert::UNRECOGNIZED_NAME;
            return Err(SniError::ALERT_FATAL);
        };
        cert.install(ssl).map_err(|_| {
            *alert = SslAlert::INTERNAL_ERROR;
            SniError::ALERT_FATAL
        })
    });
    Ok(b.build())
}

/// The instance a connection is for: its SNI, or the listener's `default_host` without one.
/// An IP literal is not a valid SNI (RFC 6066), but some clients send one: it counts as none.
fn instance_for_name<'a>(
    snap: &'a Snapshot,
    listener_index: usize,
    sni: Option<&str>,
) -> Option<&'a Arc<crate::snapshot::InstanceRt>> {
    let name = sni
        .map(|s| s.trim_end_matches('.').to_ascii_lowercase())
        .filter(|s| s.parse::<std::net::IpAddr>().is_err());
    match name {
        Some(n) => snap.instance_for_host(&n),
        None => snap
            .config()
            .listeners
            .get(listener_index)
            .and_then(|l| l.default_host.as_deref())
            .and_then(|h| snap.instance_for_host(h)),
    }
}

/// Whose sessions a connection's are: this listener (and its profile) and the instance. A
/// session resumes only where its scope is the same.
fn session_scope(listener_index: usize, profile: TlsProfile, instance: &str) -> Scope {
    Scope::of(&[
        &(listener_index as u64).to_be_bytes(),
        profile.as_str().as_bytes(),
        instance.as_bytes(),
    ])
}

/// Builds the acceptor for one listener. Its SNI callback picks the instance from the current
/// snapshot and its certificates from the certificate store; sessions resume only on the
/// instance they were made for (`resumption`'s keys, rpaas-tls-session).
pub fn acceptor(
    listener: &Listener,
    listener_index: usize,
    snapshot: Arc<ArcSwap<Snapshot>>,
    certs: Arc<CertStore>,
    resumption: Arc<Resumption>,
) -> Result<SslAcceptor, openssl::error::ErrorStack> {
    let profile = listener.tls;
    let mut b = profile_builder(profile)?;
    let alpn: &'static [u8] = if listener.http2 {
        b"\x02h2\x08http/1.1"
    } else {
        b"\x08http/1.1"
    };
    b.set_alpn_select_callback(move |_, client| {
        openssl::ssl::select_next_proto(alpn, client).ok_or(openssl::ssl::AlpnError::NOACK)
    });
    let scopes = snapshot.clone();
    rpaas_tls_session::enable(&mut b, resumption, move |sni| {
        let snap = scopes.load();
        instance_for_name(&snap, listener_index, sni)
            .map(|i| session_scope(listener_index, profile, &i.cfg.id))
    })?;
    b.set_servername_callback(move |ssl, alert| {
        let snap = snapshot.load();
        let sni = ssl.servername(NameType::HOST_NAME);
        let Some(inst) = instance_for_name(&snap, listener_index, sni) else {
            *alert = SslAlert::UNRECOGNIZED_NAME;
            return Err(SniError::ALERT_FATAL);
        };
        // The session was scoped from the ClientHello's own SNI before OpenSSL looked for it;
        // a different instance here would let it cross over, so that handshake fails.
        if rpaas_tls_session::scope(ssl)
            != Some(session_scope(listener_index, profile, &inst.cfg.id))
        {
            *alert = SslAlert::UNRECOGNIZED_NAME;
            return Err(SniError::ALERT_FATAL);
        }
        let Some(cert) = certs.get(&inst.cfg.id) else {
            *alert = SslAlert::UNRECOGNIZED_NAME;
            return Err(SniError::ALERT_FATAL);
        };
        cert.install(ssl).map_err(|_| {
            *alert = SslAlert::INTERNAL_ERROR;
            SniError::ALERT_FATAL
        })
    });
    Ok(b.build())
}

#[cfg(test)]
mod tests;
