//! TLS material and profiles: loading an instance's certificate chain and key (or making a
//! self-signed pair), and building one OpenSSL acceptor per listener whose SNI callback picks
//! the certificate from the *current* snapshot, so a reload changes certificates without
//! touching the listeners.

use std::sync::Arc;

use arc_swap::ArcSwap;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{
    NameType, SniError, SslAcceptor, SslAcceptorBuilder, SslAlert, SslMethod, SslOptions, SslRef,
    SslVersion,
};
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509NameBuilder, X509};
use rpaas_config::{Listener, TlsProfile};

use crate::snapshot::Snapshot;

/// A certificate chain (leaf first) and its key.
#[derive(Clone)]
pub struct CertKey {
    pub chain: Vec<X509>,
    pub key: PKey<Private>,
    pub self_signed: bool,
}

impl std::fmt::Debug for CertKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertKey")
            .field("chain_len", &self.chain.len())
            .field("self_signed", &self.self_signed)
            .finish_non_exhaustive()
    }
}

impl CertKey {
    /// Loads a PEM chain and key, checking that the key belongs to the leaf.
    pub fn load(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, String> {
        let chain =
            X509::stack_from_pem(cert_pem).map_err(|e| format!("bad PEM certificate: {e}"))?;
        let leaf = chain.first().ok_or("no certificate in the file")?;
        let key =
            PKey::private_key_from_pem(key_pem).map_err(|e| format!("bad PEM private key: {e}"))?;
        let public = leaf
            .public_key()
            .map_err(|e| format!("cannot read the certificate's public key: {e}"))?;
        if !public.public_eq(&key) {
            return Err("the private key does not match the certificate".into());
        }
        Ok(Self {
            chain,
            key,
            self_signed: false,
        })
    }

    /// Makes a self-signed ECDSA P-256 certificate for `hostnames`, valid for a year.
    pub fn self_signed(hostnames: &[String]) -> Result<Self, openssl::error::ErrorStack> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
        let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
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
        Ok(Self {
            chain: vec![b.build()],
            key,
            self_signed: true,
        })
    }

    fn install(&self, ssl: &mut SslRef) -> Result<(), openssl::error::ErrorStack> {
        let mut it = self.chain.iter();
        if let Some(leaf) = it.next() {
            pingora::tls::ext::ssl_use_certificate(ssl, leaf)?;
        }
        pingora::tls::ext::ssl_use_private_key(ssl, &self.key)?;
        for c in it {
            pingora::tls::ext::ssl_add_chain_cert(ssl, c)?;
        }
        Ok(())
    }
}

/// Mozilla "intermediate" TLS 1.2 suites (all forward-secret AEAD).
const INTERMEDIATE_CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:\
ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384";

/// For agents on old Windows/.NET stacks: the intermediate suites first, then the CBC suites
/// TLS 1.0/1.1 clients need. No RC4, 3DES, export or anonymous suites. `@SECLEVEL=0` lets
/// OpenSSL 3 negotiate TLS 1.0/1.1 (their SHA-1 signatures are refused at level 1 and up).
const LEGACY_CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:\
ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:\
ECDHE-RSA-AES256-SHA:AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA:AES256-SHA:@SECLEVEL=0";

/// Builds the acceptor for one listener.
pub fn acceptor(
    listener: &Listener,
    listener_index: usize,
    snapshot: Arc<ArcSwap<Snapshot>>,
) -> Result<SslAcceptor, openssl::error::ErrorStack> {
    let mut b: SslAcceptorBuilder = match listener.tls {
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
    b.set_options(
        SslOptions::CIPHER_SERVER_PREFERENCE
            | SslOptions::NO_RENEGOTIATION
            | SslOptions::NO_COMPRESSION
            | SslOptions::NO_SSLV3,
    );
    // Session tickets would let one instance's client resume on another's certificate check;
    // keep resumption off until tickets are keyed per instance.
    b.set_options(SslOptions::NO_TICKET);
    b.set_session_cache_mode(openssl::ssl::SslSessionCacheMode::OFF);
    let alpn: &'static [u8] = if listener.http2 {
        b"\x02h2\x08http/1.1"
    } else {
        b"\x08http/1.1"
    };
    b.set_alpn_select_callback(move |_, client| {
        openssl::ssl::select_next_proto(alpn, client).ok_or(openssl::ssl::AlpnError::NOACK)
    });
    b.set_servername_callback(move |ssl, alert| {
        let snap = snapshot.load();
        // An IP literal is not a valid SNI (RFC 6066), but some clients send one: treat it
        // as no SNI.
        let name = ssl
            .servername(NameType::HOST_NAME)
            .map(|s| s.trim_end_matches('.').to_ascii_lowercase())
            .filter(|s| s.parse::<std::net::IpAddr>().is_err());
        let host = match name {
            Some(n) => Some(n),
            None => snap
                .config
                .listeners
                .get(listener_index)
                .and_then(|l| l.default_host.clone()),
        };
        let Some(inst) = host.as_deref().and_then(|h| snap.instance_for_host(h)) else {
            *alert = SslAlert::UNRECOGNIZED_NAME;
            return Err(SniError::ALERT_FATAL);
        };
        inst.cert.install(ssl).map_err(|_| {
            *alert = SslAlert::INTERNAL_ERROR;
            SniError::ALERT_FATAL
        })
    });
    Ok(b.build())
}
