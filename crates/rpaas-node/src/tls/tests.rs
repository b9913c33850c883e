//! Profiles and certificate selection through real handshakes on loopback.

use std::net::{SocketAddr, TcpListener, TcpStream};

use openssl::ssl::{SslConnector, SslVerifyMode, SslVersion};

use super::*;

/// Mozilla server-side TLS 5.7 (`ciphers.openssl`), as sslyze 6.3 ships it.
const MOZILLA_INTERMEDIATE: &[&str] = &[
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
    "DHE-RSA-AES128-GCM-SHA256",
    "DHE-RSA-AES256-GCM-SHA384",
    "DHE-RSA-CHACHA20-POLY1305",
];
const MOZILLA_OLD: &[&str] = &[
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
    "DHE-RSA-AES128-GCM-SHA256",
    "DHE-RSA-AES256-GCM-SHA384",
    "DHE-RSA-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA256",
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA384",
    "ECDHE-ECDSA-AES256-SHA",
    "ECDHE-RSA-AES256-SHA",
    "DHE-RSA-AES128-SHA256",
    "DHE-RSA-AES256-SHA256",
    "AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
    "AES128-SHA256",
    "AES256-SHA256",
    "AES128-SHA",
    "AES256-SHA",
    "DES-CBC3-SHA",
];

fn suites(list: &str) -> Vec<&str> {
    list.split(':').filter(|s| !s.starts_with('@')).collect()
}

#[test]
fn cipher_lists_follow_mozilla() {
    assert_eq!(suites(INTERMEDIATE_CIPHERS), MOZILLA_INTERMEDIATE);
    for s in suites(LEGACY_CIPHERS) {
        assert!(MOZILLA_OLD.contains(&s), "{s} is not in Mozilla old");
    }
    assert!(!LEGACY_CIPHERS.contains("DES-CBC3"), "no 3DES");
}

fn host() -> Vec<String> {
    vec!["a.example.net".to_string()]
}

/// A server for `n` connections with `profile` that installs `cert` on SNI, the way the
/// listener acceptor does.
fn serve(acceptor: SslAcceptor, n: usize) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().take(n) {
            let Ok(s) = s else { continue };
            let _ = acceptor.accept(s);
        }
    });
    addr
}

fn profile_acceptor(profile: TlsProfile, cert: CertKey) -> SslAcceptor {
    let mut b = profile_builder(profile).unwrap();
    b.set_servername_callback(move |ssl, _| cert.install(ssl).map_err(|_| SniError::ALERT_FATAL));
    b.build()
}

#[derive(Default)]
struct Client {
    version: Option<SslVersion>,
    ciphers: Option<&'static str>,
    sigalgs: Option<&'static str>,
    groups: Option<&'static str>,
    alpn: Option<&'static [u8]>,
}

/// Connects; on success returns the server certificate's key type and the ALPN selected.
fn connect(addr: SocketAddr, sni: &str, c: &Client) -> Result<(Id, Option<Vec<u8>>), String> {
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    b.set_verify(SslVerifyMode::NONE);
    if let Some(v) = c.version {
        b.set_min_proto_version(Some(v)).unwrap();
        b.set_max_proto_version(Some(v)).unwrap();
    }
    if let Some(ci) = c.ciphers {
        b.set_cipher_list(ci).unwrap();
    }
    if let Some(s) = c.sigalgs {
        b.set_sigalgs_list(s).unwrap();
    }
    if let Some(g) = c.groups {
        b.set_groups_list(g).unwrap();
    }
    if let Some(a) = c.alpn {
        b.set_alpn_protos(a).unwrap();
    }
    let ssl = b.build().configure().unwrap().into_ssl(sni).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let s = ssl.connect(tcp).map_err(|e| e.to_string())?;
    let id = s
        .ssl()
        .peer_certificate()
        .ok_or("no certificate")?
        .public_key()
        .unwrap()
        .id();
    Ok((id, s.ssl().selected_alpn_protocol().map(<[u8]>::to_vec)))
}

#[test]
fn every_profile_offers_only_x25519_p256_p384() {
    let cert = CertKey::self_signed(&host()).unwrap();
    for profile in [
        TlsProfile::Modern,
        TlsProfile::Intermediate,
        TlsProfile::Legacy,
    ] {
        let addr = serve(profile_acceptor(profile, cert.clone()), 6);
        for (group, ok) in [
            ("X25519", true),
            ("P-256", true),
            ("P-384", true),
            ("X448", false),
            ("P-521", false),
            ("ffdhe2048", false),
        ] {
            let c = Client {
                groups: Some(group),
                ..Client::default()
            };
            let r = connect(addr, "a.example.net", &c);
            assert_eq!(r.is_ok(), ok, "{profile:?} {group}: {r:?}");
        }
    }
}

#[test]
fn ecdsa_and_rsa_side_by_side_the_client_gets_what_it_supports() {
    let dual = CertKey::self_signed_dual(&host()).unwrap();
    assert_eq!(dual.pairs.len(), 2);
    assert!(dual.self_signed);
    let cases: [(TlsProfile, Client, Id); 5] = [
        (TlsProfile::Intermediate, Client::default(), Id::EC),
        (
            TlsProfile::Intermediate,
            Client {
                version: Some(SslVersion::TLS1_2),
                ciphers: Some("ECDHE-RSA-AES128-GCM-SHA256"),
                ..Client::default()
            },
            Id::RSA,
        ),
        (
            TlsProfile::Modern,
            Client {
                sigalgs: Some("rsa_pss_rsae_sha256"),
                ..Client::default()
            },
            Id::RSA,
        ),
        (
            TlsProfile::Modern,
            Client {
                sigalgs: Some("ecdsa_secp256r1_sha256"),
                ..Client::default()
            },
            Id::EC,
        ),
        // An old Windows agent: TLS 1.0, RSA key exchange/signatures only.
        (
            TlsProfile::Legacy,
            Client {
                version: Some(SslVersion::TLS1),
                ciphers: Some("ECDHE-RSA-AES128-SHA:AES128-SHA:@SECLEVEL=0"),
                ..Client::default()
            },
            Id::RSA,
        ),
    ];
    for (profile, client, want) in cases {
        let addr = serve(profile_acceptor(profile, dual.clone()), 1);
        let (got, _) = connect(addr, "a.example.net", &client).unwrap();
        assert_eq!(got, want, "{profile:?}");
    }
    // With the ECDSA certificate alone, the RSA-only client is refused.
    let ec = CertKey::self_signed(&host()).unwrap();
    let addr = serve(profile_acceptor(TlsProfile::Legacy, ec), 1);
    let c = Client {
        version: Some(SslVersion::TLS1),
        ciphers: Some("AES128-SHA:@SECLEVEL=0"),
        ..Client::default()
    };
    assert!(connect(addr, "a.example.net", &c).is_err());
}

#[test]
fn pairs_are_checked_when_loaded() {
    let ec = CertKey::self_signed(&host()).unwrap();
    let dual = CertKey::self_signed_dual(&host()).unwrap();
    let pem = |p: &CertPair| {
        (
            p.chain[0].to_pem().unwrap(),
            p.key.private_key_to_pem_pkcs8().unwrap(),
        )
    };
    let (ec_cert, ec_key) = pem(&ec.pairs[0]);
    let (rsa_cert, rsa_key) = pem(&dual.pairs[1]);
    let both = CertKey::load_pairs(&[(&ec_cert, &ec_key), (&rsa_cert, &rsa_key)]).unwrap();
    assert_eq!(
        both.pairs
            .iter()
            .map(CertPair::key_type)
            .collect::<Vec<_>>(),
        [Id::EC, Id::RSA]
    );
    assert!(!both.self_signed);
    assert!(both.not_after().is_some());
    let e = CertKey::load_pairs(&[(&ec_cert, &ec_key), (&rsa_cert, &ec_key)]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "pair 2: the private key does not match the certificate"
    );
    let e = CertKey::load_pairs(&[(&ec_cert, &ec_key), (&ec_cert, &ec_key)]).unwrap_err();
    assert_eq!(e, CertError::DuplicateKeyType("ECDSA".into()));
    assert!(CertKey::load_pairs(&[]).is_err());
    // The one-pair constructor keeps its messages.
    let e = CertKey::load(&ec_cert, &rsa_key).unwrap_err();
    assert_eq!(e, CertError::KeyMismatch);
}

#[test]
fn acme_tls_alpn01_acceptor_serves_only_the_challenge() {
    let challenge = CertKey::self_signed(&["v.example.net".to_string()]).unwrap();
    let want = challenge.pairs[0].chain[0].to_der().unwrap();
    let responder: AcmeTlsResponder =
        Arc::new(move |name: &str| (name == "v.example.net").then(|| challenge.clone()));
    let addr = serve(acme_tls_acceptor(responder).unwrap(), 4);
    let acme = Client {
        alpn: Some(b"\x0aacme-tls/1"),
        ..Client::default()
    };
    let (_, alpn) = connect(addr, "v.example.net", &acme).unwrap();
    assert_eq!(alpn.as_deref(), Some(ACME_TLS_ALPN));
    // The certificate is the challenge one.
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    b.set_verify(SslVerifyMode::NONE);
    b.set_alpn_protos(b"\x0aacme-tls/1").unwrap();
    let ssl = b
        .build()
        .configure()
        .unwrap()
        .into_ssl("v.example.net")
        .unwrap();
    let s = ssl.connect(TcpStream::connect(addr).unwrap()).unwrap();
    assert_eq!(s.ssl().peer_certificate().unwrap().to_der().unwrap(), want);
    // No acme-tls/1, or a name with no pending validation: refused.
    let h2 = Client {
        alpn: Some(b"\x02h2"),
        ..Client::default()
    };
    assert!(connect(addr, "v.example.net", &h2).is_err());
    assert!(connect(addr, "w.example.net", &acme).is_err());
}
