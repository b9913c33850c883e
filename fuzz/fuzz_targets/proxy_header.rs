//! PROXY protocol v1/v2 (`rpaas_wire::proxy::parse`) on arbitrary stream prefixes.
//!
//! Beyond "never panics": the answer must not depend on how the stream was cut into reads. A
//! prefix of the bytes is either still `Incomplete` or already gives the final answer, and a
//! complete header reads the same whatever follows it. A parsed address survives our own
//! encoders (the test clients' headers).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rpaas_wire::proxy::{encode_v1, encode_v2, parse, Parsed, ProxyHeader, V2_MAX_LEN};

fuzz_target!(|data: &[u8]| {
    let full = parse(data);

    // Every cut a reader could make: all short prefixes (the v1 line is at most 107 bytes),
    // and the ones next to the header's end and the buffer's end.
    let mut cuts: Vec<usize> = (0..data.len().min(128)).collect();
    if let Ok(Parsed::Done { len, .. }) = &full {
        cuts.extend([len.saturating_sub(1), *len]);
    }
    cuts.push(data.len().saturating_sub(1));
    for k in cuts.into_iter().filter(|k| *k <= data.len()) {
        let part = parse(&data[..k]);
        match (&full, &part) {
            (_, Ok(Parsed::Incomplete)) => {}
            (Ok(Parsed::Done { len, .. }), _) => assert!(
                k >= *len && part == full,
                "prefix of {k} bytes gave {part:?}, the whole stream {full:?}"
            ),
            (Err(_), Err(_)) => {}
            _ => panic!("prefix of {k} bytes gave {part:?}, the whole stream {full:?}"),
        }
    }

    match full {
        Ok(Parsed::Done { header, len }) => {
            assert!(len <= data.len() && len <= V2_MAX_LEN);
            let mut longer = data[..len].to_vec();
            longer.extend_from_slice(b"GET / HTTP/1.1\r\n");
            assert_eq!(parse(&longer), Ok(Parsed::Done { header, len }));
            if let ProxyHeader::Proxied {
                source,
                destination,
            } = header
            {
                assert_eq!(source.is_ipv4(), destination.is_ipv4());
                for encoded in [
                    encode_v1(source, destination),
                    encode_v2(source, destination),
                ] {
                    assert_eq!(
                        parse(&encoded),
                        Ok(Parsed::Done {
                            header,
                            len: encoded.len()
                        })
                    );
                }
            }
        }
        Ok(Parsed::Incomplete) => assert!(data.len() < V2_MAX_LEN),
        Err(_) => {}
    }
});
