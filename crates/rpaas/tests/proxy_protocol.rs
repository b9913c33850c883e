//! Client addresses from a load balancer's PROXY protocol header, only from trusted peers.

mod common;

use std::net::SocketAddr;

use common::*;
use rpaas_wire::proxy::{encode_v1, encode_v2};

fn config(fx: &Fixture, up: SocketAddr, trusted: &str) -> String {
    format!(
        r#"
[[listener]]
address = "127.0.0.1:0"
client_ip = "proxy-protocol"
trusted_proxies = ["{trusted}"]
[[instance]]
id = "a"
hostnames = ["{HOST_A}"]
{cert}upstream = "http://{up}"
"#,
        cert = fx.cert_lines("a", HOST_A)
    )
}

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("addr")
}

#[test]
fn v1_and_v2_from_a_trusted_balancer_set_the_client_address() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let node = Node::start(bin(), fx.path(), &config(&fx, up.addr, "127.0.0.0/8"));
    let addr = node.listeners[0];
    for (header, want) in [
        (encode_v1(sa("203.0.113.9:40000"), addr), "203.0.113.9"),
        (encode_v2(sa("198.51.100.20:40001"), addr), "198.51.100.20"),
        (
            encode_v2(sa("[2001:db8::5]:40002"), sa("[::1]:443")),
            "2001:db8::5",
        ),
    ] {
        let mut tls = fx.tls(HOST_A);
        tls.preamble = &header;
        let r = client::get(
            addr,
            &tls,
            HOST_A,
            "/echo",
            "X-Forwarded-For: 192.0.2.1\r\n",
        )
        .expect("request");
        assert_eq!(r.status, 200);
        let seen = up.seen_path("/echo");
        let last = seen.last().expect("seen");
        assert_eq!(last.header("x-forwarded-for"), Some(want));
        assert_eq!(last.header_count("x-forwarded-for"), 1);
    }
    // A trusted peer that sends no header is refused: the balancer is misconfigured.
    assert!(client::connect(addr, &fx.tls(HOST_A)).is_err());
}

#[test]
fn untrusted_peer_cannot_supply_an_address() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let node = Node::start(bin(), fx.path(), &config(&fx, up.addr, "10.0.0.0/8"));
    let addr = node.listeners[0];
    // Its header is not read, so the stream is not TLS and the handshake fails.
    let header = encode_v1(sa("203.0.113.9:40000"), addr);
    let mut tls = fx.tls(HOST_A);
    tls.preamble = &header;
    assert!(client::connect(addr, &tls).is_err());
    // Without a header it is served, under its socket address.
    let r = client::get(addr, &fx.tls(HOST_A), HOST_A, "/echo", "").expect("plain");
    assert_eq!(r.status, 200);
    assert_eq!(
        up.seen_path("/echo")[0].header("x-forwarded-for"),
        Some("127.0.0.1")
    );
}
