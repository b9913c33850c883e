use std::io::{Read, Write};
use std::net::TcpListener;

use super::*;

#[test]
fn only_loopback_targets() {
    assert!(loopback_addr("127.0.0.1:8443").is_ok());
    assert!(loopback_addr("127.3.2.1:1").is_ok());
    assert!(loopback_addr("[::1]:443").is_ok());
    for bad in [
        "10.0.0.1:443",
        "0.0.0.0:443",
        "[::]:443",
        "[::ffff:127.0.0.1]:443",
        "192.168.1.1:80",
    ] {
        assert!(
            matches!(loopback_addr(bad), Err(TargetError::NotLoopback(_))),
            "{bad}"
        );
    }
    assert!(matches!(
        loopback_addr("localhost:443"),
        Err(TargetError::Addr(_))
    ));
}

#[test]
fn status_lines() {
    assert_eq!(
        status_of(b"HTTP/1.1 403 Forbidden\r\n"),
        Some(Outcome::Status(403))
    );
    assert_eq!(status_of(b"HTTP/1.0 400\n"), Some(Outcome::Status(400)));
    assert_eq!(status_of(b"HTTP/1.1 40"), None);
    assert_eq!(status_of(b"SSH-2.0-x\r\n"), Some(Outcome::Garbage));
    // Interim responses are skipped, once their head is complete.
    assert_eq!(status_of(b"HTTP/1.1 100 Continue\r\n"), None);
    assert_eq!(
        status_of(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"),
        Some(Outcome::Status(200))
    );
}

/// A loopback server that reads the request head and answers with `reply` (or closes).
fn server(reply: &'static [u8]) -> (SocketAddr, std::thread::JoinHandle<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let h = std::thread::spawn(move || {
        let (mut s, _) = l.accept().expect("accept");
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        let _ = s.write_all(reply);
        got
    });
    (addr, h)
}

#[test]
fn sends_bytes_as_they_are_and_reads_the_status() {
    let (addr, h) = server(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
    let t = Target::plain(addr, "node.example");
    let req = b"\tGET /a b HTTP/1.1\r\nHost: node.example\r\n\r\n";
    assert_eq!(t.send(req), Outcome::Status(403));
    assert_eq!(h.join().expect("server"), req);
}

#[test]
fn a_close_without_a_response_is_closed() {
    let (addr, h) = server(b"");
    let t = Target::plain(addr, "h");
    assert_eq!(t.send(b"GET / HTTP/1.1\r\n\r\n"), Outcome::Closed);
    h.join().expect("server");
}

#[test]
fn nothing_listening_is_a_connect_failure() {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    assert!(matches!(
        Target::plain(addr, "h").send(b"GET / HTTP/1.1\r\n\r\n"),
        Outcome::Connect(_)
    ));
}

/// A self-signed certificate for `node.example`, made for the test.
fn self_signed() -> (
    openssl::pkey::PKey<openssl::pkey::Private>,
    openssl::x509::X509,
) {
    use openssl::{asn1::Asn1Time, ec, hash::MessageDigest, nid::Nid, pkey::PKey, x509};
    let group = ec::EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("curve");
    let key = PKey::from_ec_key(ec::EcKey::generate(&group).expect("key")).expect("pkey");
    let mut name = x509::X509NameBuilder::new().expect("name");
    name.append_entry_by_nid(Nid::COMMONNAME, "node.example")
        .expect("cn");
    let name = name.build();
    let mut b = x509::X509Builder::new().expect("builder");
    b.set_version(2).expect("version");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(&name).expect("issuer");
    b.set_pubkey(&key).expect("pubkey");
    b.set_not_before(&Asn1Time::days_from_now(0).expect("time"))
        .expect("nb");
    b.set_not_after(&Asn1Time::days_from_now(1).expect("time"))
        .expect("na");
    b.sign(&key, MessageDigest::sha256()).expect("sign");
    (key, b.build())
}

#[test]
fn tls_without_verification_and_with_sni() {
    use openssl::ssl::{SslAcceptor, SslMethod};
    let (key, cert) = self_signed();
    let mut a = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).expect("acceptor");
    a.set_private_key(&key).expect("key");
    a.set_certificate(&cert).expect("cert");
    let acceptor = a.build();
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let h = std::thread::spawn(move || {
        let (s, _) = l.accept().expect("accept");
        let mut s = acceptor.accept(s).expect("handshake");
        let sni = s
            .ssl()
            .servername(openssl::ssl::NameType::HOST_NAME)
            .map(str::to_string);
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).expect("read");
        s.write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n")
            .expect("write");
        (sni, buf[..n].to_vec())
    });
    let t = Target::dangerous_tls_unverified(addr, "node.example").expect("connector");
    assert_eq!(
        t.send(b"GET /?x=<script> HTTP/1.1\r\n\r\n"),
        Outcome::Status(403)
    );
    let (sni, got) = h.join().expect("server");
    assert_eq!(sni.as_deref(), Some("node.example"));
    assert_eq!(got, b"GET /?x=<script> HTTP/1.1\r\n\r\n");
}
