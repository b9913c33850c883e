//! Real handshakes on loopback: a server with [`enable`] and OpenSSL clients that keep and
//! offer their sessions.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openssl::asn1::Asn1Time;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{
    SslAcceptor, SslConnector, SslMethod, SslOptions, SslSession, SslVerifyMode, SslVersion,
};
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509NameBuilder, X509};

use super::*;

fn cert() -> (X509, PKey<Private>) {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("group");
    let key = PKey::from_ec_key(EcKey::generate(&group).expect("key")).expect("pkey");
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", "a.test").expect("cn");
    let name = name.build();
    let mut b = X509::builder().expect("x509");
    b.set_version(2).expect("version");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(&name).expect("issuer");
    b.set_pubkey(&key).expect("pubkey");
    b.set_not_before(&Asn1Time::days_from_now(0).expect("t"))
        .expect("nb");
    b.set_not_after(&Asn1Time::days_from_now(1).expect("t"))
        .expect("na");
    let san = SubjectAlternativeName::new()
        .dns("a.test")
        .dns("b.test")
        .dns("a2.test")
        .build(&b.x509v3_context(None, None))
        .expect("san");
    b.append_extension(san).expect("ext");
    b.sign(&key, MessageDigest::sha256()).expect("sign");
    (b.build(), key)
}

/// a.test and a2.test are one instance, b.test another; no SNI is nobody's.
fn scope_of(name: Option<&str>) -> Option<Scope> {
    match name? {
        "a.test" | "a2.test" => Some(Scope::of(&[b"0", b"instance-a"])),
        "b.test" => Some(Scope::of(&[b"0", b"instance-b"])),
        _ => None,
    }
}

/// A server on loopback serving `conns` connections: each gets one byte, then is closed when
/// the client closes.
fn serve(resumption: Arc<Resumption>, conns: usize) -> std::net::SocketAddr {
    let (cert, key) = cert();
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).expect("acceptor");
    b.set_certificate(&cert).expect("cert");
    b.set_private_key(&key).expect("key");
    b.set_options(SslOptions::NO_TICKET);
    enable(&mut b, resumption, scope_of).expect("enable");
    let acceptor = b.build();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for _ in 0..conns {
            let Ok((tcp, _)) = listener.accept() else {
                return;
            };
            tcp.set_read_timeout(Some(Duration::from_secs(10))).ok();
            let Ok(mut tls) = acceptor.accept(tcp) else {
                continue;
            };
            let _ = tls.write_all(b"x");
            let mut rest = Vec::new();
            let _ = tls.read_to_end(&mut rest);
            // Without our close_notify OpenSSL drops the session from the cache (a session of
            // a connection that did not end cleanly is not resumed by id).
            let _ = tls.shutdown();
        }
    });
    addr
}

#[derive(Clone, Copy, Debug)]
enum Client {
    Tls13,
    Tls12Tickets,
    /// TLS 1.2 without tickets: resumption by session id, from the server's cache.
    Tls12SessionId,
}

/// Connects with `sni` offering `session`; returns whether it resumed and the new session.
fn connect(
    addr: std::net::SocketAddr,
    client: Client,
    sni: &str,
    session: Option<&SslSession>,
) -> (bool, SslSession) {
    let mut tls = handshake(addr, client, sni, session);
    let mut byte = [0u8; 1];
    tls.read_exact(&mut byte).expect("read");
    let reused = tls.ssl().session_reused();
    let sess = tls.ssl().session().expect("session").to_owned();
    let _ = tls.shutdown();
    (reused, sess)
}

/// A finished handshake with `sni`, offering `session`.
fn handshake(
    addr: std::net::SocketAddr,
    client: Client,
    sni: &str,
    session: Option<&SslSession>,
) -> openssl::ssl::SslStream<TcpStream> {
    let mut c = SslConnector::builder(SslMethod::tls_client()).expect("connector");
    c.set_verify(SslVerifyMode::NONE);
    match client {
        Client::Tls13 => c.set_min_proto_version(Some(SslVersion::TLS1_3)),
        Client::Tls12Tickets => c.set_max_proto_version(Some(SslVersion::TLS1_2)),
        Client::Tls12SessionId => {
            c.set_options(SslOptions::NO_TICKET);
            c.set_max_proto_version(Some(SslVersion::TLS1_2))
        }
    }
    .expect("version");
    let connector = c.build();
    let mut ssl = connector
        .configure()
        .expect("configure")
        .verify_hostname(false)
        .into_ssl(sni)
        .expect("ssl");
    if let Some(s) = session {
        // SAFETY: the session came from a connection of the same test (OpenSSL refcounts it).
        unsafe { ssl.set_session(s).expect("set_session") };
    }
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut tls = openssl::ssl::SslStream::new(ssl, tcp).expect("stream");
    tls.connect().expect("handshake");
    tls
}

fn fixed_secret(b: u8) -> Secret {
    Secret::from_bytes([b; 32])
}

#[test]
fn sessions_resume_on_their_instance_and_never_on_another() {
    for client in [Client::Tls13, Client::Tls12Tickets, Client::Tls12SessionId] {
        let res = Arc::new(Resumption::new(fixed_secret(1), DEFAULT_ROTATION));
        let addr = serve(res, 5);
        let (reused, a) = connect(addr, client, "a.test", None);
        assert!(!reused, "a first connection cannot resume");
        let (reused, a_again) = connect(addr, client, "a.test", Some(&a));
        assert!(reused, "{client:?}: a.test's session resumes on a.test");
        let (reused, _) = connect(addr, client, "a2.test", Some(&a_again));
        assert!(reused, "{client:?}: and on the same instance's other name");
        let (reused, _) = connect(addr, client, "b.test", Some(&a_again));
        assert!(
            !reused,
            "{client:?}: a.test's session must not resume on b.test"
        );
        let (reused, _) = connect(addr, client, "nobody.test", Some(&a_again));
        assert!(!reused, "nor on a name of no instance");
    }
}

#[test]
fn tickets_rotate_and_one_epoch_back_is_renewed() {
    let now = Arc::new(AtomicU64::new(1_000_000 * 3600));
    let clock = now.clone();
    let res = Arc::new(Resumption::with_clock(
        fixed_secret(2),
        Duration::from_secs(3600),
        move || clock.load(Ordering::SeqCst),
    ));
    let addr = serve(res, 4);
    let (_, first) = connect(addr, Client::Tls12Tickets, "a.test", None);
    now.fetch_add(3600, Ordering::SeqCst);
    let (reused, renewed) = connect(addr, Client::Tls12Tickets, "a.test", Some(&first));
    assert!(reused, "a ticket of the previous epoch still resumes");
    now.fetch_add(2 * 3600, Ordering::SeqCst);
    let (reused, _) = connect(addr, Client::Tls12Tickets, "a.test", Some(&first));
    assert!(!reused, "a ticket three epochs old does not");
    now.fetch_sub(3600, Ordering::SeqCst);
    let (reused, _) = connect(addr, Client::Tls12Tickets, "a.test", Some(&renewed));
    assert!(
        reused,
        "the renewed ticket (issued one epoch later) still resumes"
    );
}

#[test]
fn nodes_sharing_the_secret_resume_each_others_tickets() {
    let one = serve(
        Arc::new(Resumption::new(fixed_secret(3), DEFAULT_ROTATION)),
        2,
    );
    let two = serve(
        Arc::new(Resumption::new(fixed_secret(3), DEFAULT_ROTATION)),
        2,
    );
    let other = serve(
        Arc::new(Resumption::new(fixed_secret(4), DEFAULT_ROTATION)),
        1,
    );
    for client in [Client::Tls13, Client::Tls12Tickets] {
        let (_, s) = connect(one, client, "a.test", None);
        let (reused, _) = connect(two, client, "a.test", Some(&s));
        assert!(reused, "same secret: the ticket opens on the other node");
        if let Client::Tls13 = client {
            let (reused, _) = connect(other, client, "a.test", Some(&s));
            assert!(!reused, "another secret: it does not");
        }
    }
}

#[test]
fn keys_differ_by_scope_epoch_and_secret() {
    let a = Scope::of(&[b"0", b"a"]);
    let b = Scope::of(&[b"0", b"b"]);
    let k = EpochKeys::derive(&fixed_secret(1), &a, 7);
    assert!(k == EpochKeys::derive(&fixed_secret(1), &a, 7));
    assert!(k.name != EpochKeys::derive(&fixed_secret(1), &b, 7).name);
    assert!(k.name != EpochKeys::derive(&fixed_secret(1), &a, 8).name);
    assert!(k.name != EpochKeys::derive(&fixed_secret(2), &a, 7).name);
    assert!(k.aes != k.hmac);
    // Length-prefixed: moving a byte between parts changes the scope.
    assert_ne!(Scope::of(&[b"ab", b"c"]), Scope::of(&[b"a", b"bc"]));
}

#[test]
fn secrets_round_trip_as_hex() {
    let s = Secret::random().expect("random");
    let back = Secret::from_hex(&s.to_hex()).expect("hex");
    assert_eq!(s.to_hex(), back.to_hex());
    assert!(Secret::from_hex("00").is_none());
    assert!(Secret::from_hex(&"zz".repeat(32)).is_none());
    assert_eq!(format!("{s:?}"), "Secret(..)");
}

#[test]
fn the_sni_is_read_as_openssl_reads_it() {
    let ext = |entries: &[(u8, &[u8])]| {
        let mut list = Vec::new();
        for (kind, name) in entries {
            list.push(*kind);
            list.extend_from_slice(&(name.len() as u16).to_be_bytes());
            list.extend_from_slice(name);
        }
        let mut out = (list.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(&list);
        out
    };
    assert_eq!(
        keys::sni_host_name(&ext(&[(0, b"a.test")])),
        Some(&b"a.test"[..])
    );
    // Two entries, another type, NUL, an empty list or a short buffer: OpenSSL refuses them.
    assert_eq!(
        keys::sni_host_name(&ext(&[(0, b"a.test"), (0, b"b.test")])),
        None
    );
    assert_eq!(keys::sni_host_name(&ext(&[(1, b"a.test")])), None);
    assert_eq!(keys::sni_host_name(&ext(&[(0, b"a\0.test")])), None);
    assert_eq!(keys::sni_host_name(&[0, 0]), None);
    assert_eq!(keys::sni_host_name(&[0]), None);
    let mut truncated = ext(&[(0, b"a.test")]);
    truncated.pop();
    assert_eq!(keys::sni_host_name(&truncated), None);
}

#[test]
fn hmac_is_rfc_4231() {
    // RFC 4231 test case 2 (key "Jefe"), through the same function the keys come from.
    let out = keys::hmac_for_test(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
    let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hex,
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}
