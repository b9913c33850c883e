//! A throw-away CA and leaf certificates, written as PEM files.

use std::path::{Path, PathBuf};

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectAlternativeName};
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
    pub fn new(name: &str) -> Self {
        let key = ec_key();
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
        b.sign(&key, MessageDigest::sha256()).expect("sign");
        Self {
            cert: b.build(),
            key,
        }
    }

    /// Issues a leaf for `names` (DNS names or IP literals).
    pub fn leaf(&self, names: &[&str]) -> (X509, PKey<Private>) {
        let key = ec_key();
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
        b.sign(&self.key, MessageDigest::sha256()).expect("sign");
        (b.build(), key)
    }

    /// Writes a leaf for `names` as `<stem>.pem` / `<stem>.key` in `dir`.
    pub fn write_leaf(&self, dir: &Path, stem: &str, names: &[&str]) -> LeafFiles {
        let (cert, key) = self.leaf(names);
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
