use super::*;

/// Builds a minimal ClientHello record.
fn hello(legacy: u16, sni: Option<&str>, versions: Option<&[u16]>) -> Vec<u8> {
    let mut exts = Vec::new();
    if let Some(name) = sni {
        let mut list = vec![0u8];
        list.extend_from_slice(&(name.len() as u16).to_be_bytes());
        list.extend_from_slice(name.as_bytes());
        let mut data = (list.len() as u16).to_be_bytes().to_vec();
        data.extend_from_slice(&list);
        exts.extend_from_slice(&0u16.to_be_bytes());
        exts.extend_from_slice(&(data.len() as u16).to_be_bytes());
        exts.extend_from_slice(&data);
    }
    if let Some(vs) = versions {
        let mut data = vec![(vs.len() * 2) as u8];
        for v in vs {
            data.extend_from_slice(&v.to_be_bytes());
        }
        exts.extend_from_slice(&0x2bu16.to_be_bytes());
        exts.extend_from_slice(&(data.len() as u16).to_be_bytes());
        exts.extend_from_slice(&data);
    }
    let mut body = legacy.to_be_bytes().to_vec();
    body.extend_from_slice(&[7u8; 32]);
    body.push(0);
    body.extend_from_slice(&[0, 2, 0x00, 0x2f]);
    body.extend_from_slice(&[1, 0]);
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);
    let mut hs = vec![1u8];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

#[test]
fn old_agent_tls10_hello() {
    let rec = hello(0x0301, Some("Agent.Example.NET"), None);
    match peek(&rec) {
        Peeked::Hello(info) => {
            assert_eq!(info.sni.as_deref(), Some("agent.example.net"));
            assert_eq!(info.version_names(), vec!["TLSv1"]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn tls13_supported_versions_wins_and_grease_dropped() {
    let rec = hello(0x0303, None, Some(&[0x3a3a, 0x0304, 0x0303]));
    assert_eq!(
        peek(&rec),
        Peeked::Hello(ClientHelloInfo {
            sni: None,
            versions: vec![0x0304, 0x0303],
            alpn: vec![],
        })
    );
}

#[test]
fn partial_record_asks_for_more() {
    let rec = hello(0x0303, Some("a.example"), None);
    assert_eq!(peek(&rec[..3]), Peeked::NeedBytes(5));
    assert_eq!(peek(&rec[..10]), Peeked::NeedBytes(rec.len()));
}

#[test]
fn not_tls_and_garbage() {
    assert_eq!(peek(b"GET / HTTP/1.1\r\n"), Peeked::NotTls);
    assert_eq!(peek(&[0x16, 0x02, 0, 0, 1]), Peeked::NotTls);
    assert_eq!(peek(&[0x16, 0x03, 1, 0, 0]), Peeked::Malformed);
    assert_eq!(peek(&[0x16, 0x03, 1, 0, 2, 9, 9]), Peeked::Malformed);
    // Every truncation of a valid hello body is handled without panicking.
    let rec = hello(0x0303, Some("x.example"), Some(&[0x0304]));
    for cut in 6..rec.len() {
        let mut r = rec[..cut].to_vec();
        let len = (cut - 5) as u16;
        r[3..5].copy_from_slice(&len.to_be_bytes());
        let _ = peek(&r);
    }
}

#[test]
fn sni_with_odd_bytes_is_not_echoed() {
    let rec = hello(0x0303, Some("evil\r\nhost"), None);
    match peek(&rec) {
        Peeked::Hello(info) => assert_eq!(info.sni, None),
        other => panic!("{other:?}"),
    }
}

#[test]
fn alpn_offers_are_read() {
    let mut rec = hello(0x0303, Some("a.example"), None);
    // Append an ALPN extension (acme-tls/1, h2) to the hello built above.
    let mut list = Vec::new();
    for p in [&b"acme-tls/1"[..], b"h2"] {
        list.push(p.len() as u8);
        list.extend_from_slice(p);
    }
    let mut data = (list.len() as u16).to_be_bytes().to_vec();
    data.extend_from_slice(&list);
    let mut ext = 0x10u16.to_be_bytes().to_vec();
    ext.extend_from_slice(&(data.len() as u16).to_be_bytes());
    ext.extend_from_slice(&data);
    let grow = |rec: &mut Vec<u8>, at: usize, width: usize| {
        let mut v = 0usize;
        for b in &rec[at..at + width] {
            v = (v << 8) | *b as usize;
        }
        let v = v + ext.len();
        for i in 0..width {
            rec[at + i] = (v >> (8 * (width - 1 - i))) as u8;
        }
    };
    // Lengths to grow: record (2 bytes at 3), handshake (3 bytes at 6), extensions block.
    let exts_at = 5 + 4 + 2 + 32 + 1 + 4 + 2;
    grow(&mut rec, 3, 2);
    grow(&mut rec, 6, 3);
    grow(&mut rec, exts_at, 2);
    rec.extend_from_slice(&ext);
    match peek(&rec) {
        Peeked::Hello(info) => {
            assert_eq!(info.sni.as_deref(), Some("a.example"));
            assert!(info.offers_alpn(b"acme-tls/1"));
            assert!(info.offers_alpn(b"h2"));
            assert!(!info.offers_alpn(b"http/1.1"));
        }
        other => panic!("{other:?}"),
    }
}
