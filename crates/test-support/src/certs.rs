//! A throw-away CA and leaf certificates, written as PEM files.

use std::path::{Path, PathBuf};

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509NameBuilder, X509};

/// A CA that signs leaves.
pub struct Ca {
    pub cert: X509,
    key: PKey<Private>,
}

/// Paths of a written leaf.
#[derive(Debug, Clone)]
pub struct LeafFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn rsa_key() -> PKey<Private> {
    PKey::from_rsa(openssl::rsa::Rsa::generate(2048).expect("rsa keygen")).expect("pkey")
}

fn ec_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("P-256");
    PKey::from_ec_key(EcKey::generate(&group).expect("keygen")).expect("pkey")
}

fn serial() -> openssl::asn1::Asn1Integer {
    let mut bn = BigNum::new().expect("bn");
    bn.rand(120, MsbOption::MAYBE_ZERO, false).expect("rand");
    bn.to_asn1_integer().expect("serial")
}

impl Ca {
    /// An ECDSA P-256 CA (its leaves are signed `ecdsa-with-SHA256`).
    pub fn new(name: &str) -> Self {
        Self::with_key(name, ec_key())
    }

    /// An RSA 2048 CA (its leaves are signed `sha256WithRSAEncryption`).
    pub fn new_rsa(name: &str) -> Self {
        Self::with_key(name, rsa_key())
    }

    fn with_key(name: &str, key: PKey<Private>) -> Self {
        let mut n = X509NameBuilder::new().expect("name");
        n.append_entry_by_nid(Nid::COMMONNAME, name).expect("cn");
        let n = n.build();
        let mut b = X509::builder().expect("builder");
        b.set_version(2).expect("v3");
        b.set_serial_number(&serial()).expect("serial");
        b.set_subject_name(&n).expect("subject");
        b.set_issuer_name(&n).expect("issuer");
        b.set_pubkey(&key).expect("pubkey");
        b.set_not_before(&Asn1Time::days_from_now(0).expect("t"))
            .expect("nb");
        b.set_not_after(&Asn1Time::days_from_now(30).expect("t"))
            .expect("na");
        b.append_extension(BasicConstraints::new().critical().ca().build().expect("bc"))
            .expect("ext");
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()
                .expect("ku"),
        )
        .expect("ext");
        // Key identifiers: strict verifiers (sslyze's, the CA/Browser profile) require them.
        let ski = SubjectKeyIdentifier::new()
            .build(&b.x509v3_context(None, None))
            .expect("ski");
        b.append_extension(ski).expect("ext");
        b.sign(&key, MessageDigest::sha256()).expect("sign");
        Self {
            cert: b.build(),
            key,
        }
    }

    /// Issues an ECDSA P-256 leaf for `names` (DNS names or IP literals).
    pub fn leaf(&self, names: &[&str]) -> (X509, PKey<Private>) {
        self.leaf_with_key(names, ec_key())
    }

    /// Issues an RSA 2048 leaf for `names`.
    pub fn leaf_rsa(&self, names: &[&str]) -> (X509, PKey<Private>) {
        self.leaf_with_key(names, rsa_key())
    }

    fn leaf_with_key(&self, names: &[&str], key: PKey<Private>) -> (X509, PKey<Private>) {
        let mut n = X509NameBuilder::new().expect("name");
        n.append_entry_by_nid(Nid::COMMONNAME, names.first().copied().unwrap_or("leaf"))
            .expect("cn");
        let n = n.build();
        let mut b = X509::builder().expect("builder");
        b.set_version(2).expect("v3");
        b.set_serial_number(&serial()).expect("serial");
        b.set_subject_name(&n).expect("subject");
        b.set_issuer_name(self.cert.subject_name()).expect("issuer");
        b.set_pubkey(&key).expect("pubkey");
        b.set_not_before(&Asn1Time::days_from_now(0).expect("t"))
            .expect("nb");
        b.set_not_after(&Asn1Time::days_from_now(30).expect("t"))
            .expect("na");
        let mut san = SubjectAlternativeName::new();
        for name in names {
            if name.parse::<std::net::IpAddr>().is_ok() {
                san.ip(name);
            } else {
                san.dns(name);
            }
        }
        let san = san
            .build(&b.x509v3_context(Some(&self.cert), None))
            .expect("san");
        b.append_extension(san).expect("ext");
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&b.x509v3_context(Some(&self.cert), None))
            .expect("aki");
        b.append_extension(aki).expect("ext");
        let ski = SubjectKeyIdentifier::new()
            .build(&b.x509v3_context(Some(&self.cert), None))
            .expect("ski");
        b.append_extension(ski).expect("ext");
        let mut ku = KeyUsage::new();
        ku.critical().digital_signature();
        // RSA key exchange (the TLS_RSA_* suites of old clients) encrypts to the key.
        if key.id() == openssl::pkey::Id::RSA {
            ku.key_encipherment();
        }
        let ku = ku.build().expect("ku");
        b.append_extension(ku).expect("ext");
        b.append_extension(ExtendedKeyUsage::new().server_auth().build().expect("eku"))
            .expect("ext");
        b.sign(&self.key, MessageDigest::sha256()).expect("sign");
        (b.build(), key)
    }

    /// Writes a leaf for `names` as `<stem>.pem` / `<stem>.key` in `dir`.
    pub fn write_leaf(&self, dir: &Path, stem: &str, names: &[&str]) -> LeafFiles {
        Self::write_pair(dir, stem, self.leaf(names))
    }

    /// Writes an RSA leaf for `names` as `<stem>.pem` / `<stem>.key` in `dir`.
    pub fn write_leaf_rsa(&self, dir: &Path, stem: &str, names: &[&str]) -> LeafFiles {
        Self::write_pair(dir, stem, self.leaf_rsa(names))
    }

    fn write_pair(dir: &Path, stem: &str, (cert, key): (X509, PKey<Private>)) -> LeafFiles {
        let files = LeafFiles {
            cert: dir.join(format!("{stem}.pem")),
            key: dir.join(format!("{stem}.key")),
        };
        std::fs::write(&files.cert, cert.to_pem().expect("pem")).expect("write cert");
        std::fs::write(&files.key, key.private_key_to_pem_pkcs8().expect("pem"))
            .expect("write key");
        files
    }

    /// Writes the CA certificate to `dir/<stem>.pem`.
    pub fn write_cert(&self, dir: &Path, stem: &str) -> PathBuf {
        let p = dir.join(format!("{stem}.pem"));
        std::fs::write(&p, self.cert.to_pem().expect("pem")).expect("write ca");
        p
    }
}
