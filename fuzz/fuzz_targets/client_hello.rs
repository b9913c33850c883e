//! The ClientHello reader (`rpaas_wire::client_hello::peek`) on arbitrary connection starts.
//!
//! Beyond "never panics": `NeedBytes(n)` asks for more than it has and no more than one
//! record, and given `n` bytes it decides or asks for more; only the first record is read, so
//! bytes after it change nothing; what a hello yields is bounded and clean (a hostname-shaped,
//! lowercase SNI, at most `MAX_ALPN` non-empty protocols, a non-empty version list without
//! GREASE values).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rpaas_wire::client_hello::{peek, Peeked, MAX_ALPN, MAX_RECORD_LEN, RECORD_HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    let got = peek(data);
    match &got {
        Peeked::NeedBytes(n) => {
            assert!(*n > data.len() && *n <= RECORD_HEADER_LEN + MAX_RECORD_LEN);
            // `n` bytes settle what was asked about: the record header (then perhaps more is
            // asked for, the record's length) or the record.
            let mut padded = data.to_vec();
            padded.resize(*n, 0);
            if let Peeked::NeedBytes(m) = peek(&padded) {
                assert!(m > *n, "{n} bytes were asked for, then {m}");
            }
        }
        Peeked::NotTls => {}
        Peeked::Hello(_) | Peeked::Malformed => {
            if data.len() >= RECORD_HEADER_LEN {
                let total = RECORD_HEADER_LEN + u16::from_be_bytes([data[3], data[4]]) as usize;
                if total <= data.len() {
                    assert_eq!(peek(&data[..total]), got, "bytes after the first record");
                }
            }
        }
    }
    if let Peeked::Hello(info) = &got {
        if let Some(sni) = &info.sni {
            assert!(!sni.is_empty() && sni.len() <= 253);
            assert!(sni.bytes().all(|b| b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || matches!(b, b'-' | b'.' | b'_')));
        }
        assert!(info.alpn.len() <= MAX_ALPN);
        assert!(info.alpn.iter().all(|p| !p.is_empty() && p.len() <= 255));
        assert!(!info.versions.is_empty());
        assert!(info.versions.iter().all(|v| v & 0x0f0f != 0x0a0a));
        assert_eq!(info.version_names().len(), info.versions.len());
    }
});
