use super::*;
use rpaas_config::IpNet;

fn listener(mode: ClientIpSource, trusted: &[&str]) -> Listener {
    Listener {
        address: "127.0.0.1:0".parse().expect("addr"),
        tls: rpaas_config::TlsProfile::Intermediate,
        client_ip: mode,
        trusted_proxies: trusted
            .iter()
            .map(|s| s.parse::<IpNet>().expect("cidr"))
            .collect(),
        http2: true,
        default_host: None,
    }
}

fn req(xff: &[&str]) -> RequestHeader {
    let mut r = RequestHeader::build("GET", b"/", None).expect("req");
    for v in xff {
        r.append_header("x-forwarded-for", *v).expect("hdr");
    }
    r
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

#[test]
fn xff_ignored_from_untrusted_peer_and_on_socket_listeners() {
    let l = listener(ClientIpSource::XForwardedFor, &["10.0.0.0/8"]);
    assert_eq!(
        client_ip(&l, ip("192.0.2.1"), &req(&["203.0.113.5"])),
        ip("192.0.2.1")
    );
    let s = listener(ClientIpSource::Socket, &["10.0.0.0/8"]);
    assert_eq!(
        client_ip(&s, ip("10.0.0.1"), &req(&["203.0.113.5"])),
        ip("10.0.0.1")
    );
}

#[test]
fn xff_from_trusted_peer_takes_rightmost_untrusted() {
    let l = listener(ClientIpSource::XForwardedFor, &["10.0.0.0/8"]);
    assert_eq!(
        client_ip(
            &l,
            ip("10.0.0.1"),
            &req(&["198.51.100.1, 203.0.113.5, 10.9.9.9"])
        ),
        ip("203.0.113.5")
    );
    assert_eq!(
        client_ip(&l, ip("10.0.0.1"), &req(&["198.51.100.1", "203.0.113.5"])),
        ip("203.0.113.5")
    );
    assert_eq!(
        client_ip(&l, ip("10.0.0.1"), &req(&["[2001:db8::1]:443"])),
        ip("2001:db8::1")
    );
    // Garbage stops the walk at the last address we could trust.
    assert_eq!(
        client_ip(&l, ip("10.0.0.1"), &req(&["junk, 10.2.2.2"])),
        ip("10.2.2.2")
    );
    assert_eq!(client_ip(&l, ip("10.0.0.1"), &req(&[])), ip("10.0.0.1"));
    assert_eq!(
        client_ip(&l, ip("::ffff:10.0.0.1"), &req(&["203.0.113.9"])),
        ip("203.0.113.9")
    );
}

fn request_host(r: &RequestHeader) -> Option<String> {
    request_authority(r).map(|(h, _)| h)
}

#[test]
fn host_parsing() {
    let mut r = RequestHeader::build("GET", b"/", None).expect("req");
    assert_eq!(request_host(&r), None);
    r.insert_header("host", "A.Example.NET:443").expect("hdr");
    assert_eq!(request_host(&r).as_deref(), Some("a.example.net"));
    r.insert_header("host", "a.example.net.").expect("hdr");
    assert_eq!(request_host(&r).as_deref(), Some("a.example.net"));
    r.insert_header("host", "").expect("hdr");
    assert_eq!(request_host(&r), None);
    r.insert_header("host", "a b").expect("hdr");
    assert_eq!(request_host(&r), None);
    r.insert_header("host", "[::1]:443").expect("hdr");
    assert_eq!(
        request_authority(&r),
        Some(("[::1]".to_string(), Some(443)))
    );
    r.insert_header("host", "a.example.net:8443").expect("hdr");
    assert_eq!(
        request_authority(&r),
        Some(("a.example.net".to_string(), Some(8443)))
    );
}
