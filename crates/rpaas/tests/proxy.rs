//! End to end through a real node: forwarding, instance selection, hardening, client address.

mod common;

use std::io::{BufReader, Write};

use common::*;

#[test]
fn get_and_post_with_bodies_reach_the_right_instance() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let node = Node::start(bin(), fx.path(), &fx.two_instances(up.addr, ""));
    let addr = node.listeners[0];

    let r = client::get(addr, &fx.tls(HOST_A), HOST_A, "/LabTech/Agent.aspx", "").expect("get");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "LabTech|240.120");
    assert_hardened(&r);

    let body = "x".repeat(100_000);
    let raw = format!(
        "POST /LabTech/Agent.aspx HTTP/1.1\r\nHost: {HOST_A}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let r = client::exchange(addr, &fx.tls(HOST_A), raw.as_bytes()).expect("post");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "check-in ok 100000");

    // Chunked upload.
    let raw = format!(
        "POST /echo HTTP/1.1\r\nHost: {HOST_B}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    );
    let r = client::exchange(addr, &fx.tls(HOST_B), raw.as_bytes()).expect("chunked");
    let j: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(j["body_len"], 11);

    // Instance a rewrites Host to its upstream_host; instance b keeps the public name.
    let seen = up.seen_path("/LabTech/Agent.aspx");
    assert_eq!(seen[0].header("host"), Some("automate.partner.local"));
    let seen = up.seen_path("/echo");
    assert_eq!(seen[0].header("host"), Some(HOST_B));
    assert_eq!(seen[0].header("x-forwarded-proto"), Some("https"));

    // Keep-alive: two requests on one connection.
    let mut c = client::connect(addr, &fx.tls(HOST_A)).expect("connect");
    write!(c, "GET /automate/ HTTP/1.1\r\nHost: {HOST_A}\r\n\r\n").expect("w");
    let mut rd = BufReader::new(c);
    let r1 = client::read_response(&mut rd, false).expect("r1");
    rd.get_mut()
        .write_all(
            format!("GET /cwa/api/v1/computers HTTP/1.1\r\nHost: {HOST_A}\r\n\r\n").as_bytes(),
        )
        .expect("w2");
    let r2 = client::read_response(&mut rd, false).expect("r2");
    assert_eq!((r1.status, r2.status), (200, 200));
    assert!(r2.text().contains("Computers"));

    // The access log has one line per request with the fields an operator needs.
    let line = node
        .wait_log(std::time::Duration::from_secs(5), |v| {
            v["target"] == "rpaas::access" && v["path"] == "/cwa/api/v1/computers"
        })
        .expect("access log line");
    for k in [
        "request_id",
        "instance",
        "client_ip",
        "method",
        "status",
        "bytes_sent",
        "duration_ms",
        "tls",
    ] {
        assert!(!line[k].is_null(), "{k} missing in {line}");
    }
    assert_eq!(line["instance"], "a");
    assert_eq!(line["status"], 200);
    assert_eq!(line["tls"], "TLSv1.3");
}

#[test]
fn sni_selects_certificate_and_unknown_hosts_are_never_forwarded() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let node = Node::start(bin(), fx.path(), &fx.two_instances(up.addr, ""));
    let addr = node.listeners[0];

    // Each SNI gets its own instance's certificate (verified against the SNI name).
    for host in [HOST_A, HOST_B] {
        let c = client::connect(addr, &fx.tls(host)).expect("handshake");
        let cert = c.ssl().peer_certificate().expect("cert");
        let names: Vec<String> = cert
            .subject_alt_names()
            .expect("san")
            .iter()
            .filter_map(|n| n.dnsname().map(String::from))
            .collect();
        assert_eq!(names, vec![host.to_string()]);
    }
    // Unknown SNI: the handshake fails.
    let err = client::connect(addr, &fx.tls("unknown.example.net")).expect_err("unknown sni");
    assert!(
        err.contains("unrecognized name") || err.contains("alert"),
        "{err}"
    );
    // Known SNI, unknown Host: 421, nothing forwarded.
    let before = up.seen().len();
    let r = client::get(addr, &fx.tls(HOST_A), "evil.example.org", "/automate/", "").expect("421");
    assert_eq!(r.status, 421);
    assert_hardened(&r);
    // Known SNI, the other tenant's Host: 421 (no cross-tenant routing on one connection).
    let r = client::get(addr, &fx.tls(HOST_A), HOST_B, "/automate/", "").expect("421");
    assert_eq!(r.status, 421);
    assert_eq!(
        up.seen().len(),
        before,
        "a refused request reached the origin"
    );
}

#[test]
fn hardening_on_upstream_and_own_responses() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let node = Node::start(bin(), fx.path(), &fx.two_instances(up.addr, ""));
    let addr = node.listeners[0];
    let tls = fx.tls(HOST_A);

    // Upstream 200 and 404 lose their IIS headers and get HSTS.
    for path in ["/automate/", "/nope"] {
        let r = client::get(addr, &tls, HOST_A, path, "").expect("get");
        assert!(r.header("x-request-id").is_some());
        assert!(r.header("server").is_none() && r.header("x-powered-by").is_none());
        assert_eq!(
            r.header("strict-transport-security"),
            Some("max-age=31536000")
        );
    }

    // Dangerous methods: 405 from the node, never forwarded, hardened.
    let before = up.seen().len();
    for m in ["OPTIONS", "TRACE", "TRACK", "DEBUG", "options", "CONNECT"] {
        let raw = format!("{m} /automate/ HTTP/1.1\r\nHost: {HOST_A}\r\nConnection: close\r\n\r\n");
        let r = client::exchange(addr, &tls, raw.as_bytes()).expect(m);
        assert_eq!(r.status, 405, "{m}: {r:?}");
        assert_hardened(&r);
        assert!(r.text().contains("request id:"), "{m}");
    }
    // Requests Pingora itself cannot parse (authority-form CONNECT, a broken header line) are
    // refused before our phases run; the refusal must not name Pingora either.
    for raw in [
        format!("CONNECT example.org:443 HTTP/1.1\r\nHost: {HOST_A}\r\n\r\n"),
        format!("GET /automate/ HTTP/1.1\r\nHost: {HOST_A}\r\nBroken header\r\n\r\n"),
    ] {
        let r = client::exchange(addr, &tls, raw.as_bytes()).expect("unparseable");
        assert!(matches!(r.status, 400 | 405), "{raw:?}: {r:?}");
        assert!(r.header("server").is_none(), "{r:?}");
    }
    assert_eq!(
        up.seen().len(),
        before,
        "a denied method reached the origin"
    );

    // Location / Content-Location / Refresh naming the origin or an IP are rewritten.
    let r = client::get(addr, &tls, HOST_A, "/aspnet_client", "").expect("redirect");
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("location"),
        Some(format!("https://{HOST_A}/aspnet_client/").as_str())
    );
    assert_eq!(
        r.header("content-location"),
        Some(format!("https://{HOST_A}/aspnet_client/default.htm").as_str())
    );
    assert_eq!(
        r.header("refresh"),
        Some(format!("0; url=https://{HOST_A}/aspnet_client/").as_str())
    );
    assert_hardened(&r);
    let r = client::get(addr, &tls, HOST_A, "/automate", "").expect("redirect");
    assert_eq!(
        r.header("location"),
        Some(format!("https://{HOST_A}/automate/").as_str())
    );
    let r = client::get(
        addr,
        &tls,
        HOST_A,
        "/redirect?to=https://www.connectwise.com/",
        "",
    )
    .expect("external redirect");
    assert_eq!(r.header("location"), Some("https://www.connectwise.com/"));

    // HTTP/1.0 with no Host, and with an empty Host: an error naming no host or IP.
    for raw in [
        "GET /aspnet_client HTTP/1.0\r\n\r\n".to_string(),
        "GET /aspnet_client HTTP/1.0\r\nHost: \r\n\r\n".to_string(),
    ] {
        let r = client::exchange(addr, &tls, raw.as_bytes()).expect("http/1.0");
        assert_eq!(r.status, 400, "{raw:?}");
        assert_hardened(&r);
        assert!(r.header("location").is_none());
    }
}

#[test]
fn proxy_generated_502_and_504_are_hardened() {
    let up = Upstream::start();
    // An address with nothing listening: bind, note the port, close.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_addr = dead.local_addr().expect("addr");
    drop(dead);
    let fx = Fixture::new();
    let config = format!(
        r#"
[node]
admin = "127.0.0.1:0"
[[listener]]
address = "127.0.0.1:0"
[[instance]]
id = "down"
hostnames = ["{HOST_A}"]
{cert_a}upstream = "http://{dead_addr}"
[[instance]]
id = "slow"
hostnames = ["{HOST_B}"]
{cert_b}upstream = "http://{up}"
read_timeout = "1s"
"#,
        cert_a = fx.cert_lines("a", HOST_A),
        cert_b = fx.cert_lines("b", HOST_B),
        up = up.addr,
    );
    let node = Node::start(bin(), fx.path(), &config);
    let addr = node.listeners[0];
    let r = client::get(addr, &fx.tls(HOST_A), HOST_A, "/automate/", "").expect("502");
    assert_eq!(r.status, 502);
    assert_hardened(&r);
    let t = std::time::Instant::now();
    let r = client::get(addr, &fx.tls(HOST_B), HOST_B, "/slow?ms=5000", "").expect("504");
    assert_eq!(r.status, 504);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(4),
        "timeout not applied"
    );
    assert_hardened(&r);
    let metrics = node.admin_get("/metrics");
    assert!(
        metrics.contains("rpaas_upstream_errors_total{instance=\"down\""),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("rpaas_requests_total{class=\"other\",instance=\"slow\",status=\"504\"} 1"),
        "{metrics}"
    );
}

#[test]
fn forwarding_headers_come_from_the_proxy_not_the_client() {
    let up = Upstream::start();
    let fx = Fixture::new();
    // Trust only 10.0.0.0/8: the test client (127.0.0.1) is untrusted.
    let node = Node::start(
        bin(),
        fx.path(),
        &fx.two_instances(
            up.addr,
            "client_ip = \"x-forwarded-for\"\ntrusted_proxies = [\"10.0.0.0/8\"]",
        ),
    );
    let addr = node.listeners[0];
    let forged = "X-Forwarded-For: 203.0.113.66\r\nX-Real-IP: 203.0.113.66\r\nForwarded: for=203.0.113.66\r\nX-Forwarded-Proto: http\r\nX-Original-URL: /cwa/api/v1/users\r\nX-HTTP-Method-Override: DELETE\r\n";
    let r = client::get(addr, &fx.tls(HOST_B), HOST_B, "/echo", forged).expect("echo");
    assert_eq!(r.status, 200);
    let seen = up.seen_path("/echo");
    let s = &seen[0];
    assert_eq!(s.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(s.header_count("x-forwarded-for"), 1);
    assert_eq!(s.header("x-real-ip"), Some("127.0.0.1"));
    assert_eq!(s.header("x-forwarded-proto"), Some("https"));
    assert!(s.header("forwarded").is_none());
    assert!(s.header("x-original-url").is_none());
    assert!(s.header("x-http-method-override").is_none());
    let line = node
        .wait_log(std::time::Duration::from_secs(5), |v| v["path"] == "/echo")
        .expect("log");
    assert_eq!(line["client_ip"], "127.0.0.1");
}

#[test]
fn x_forwarded_for_is_honoured_from_a_trusted_peer() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let node = Node::start(
        bin(),
        fx.path(),
        &fx.two_instances(
            up.addr,
            "client_ip = \"x-forwarded-for\"\ntrusted_proxies = [\"127.0.0.0/8\"]",
        ),
    );
    let addr = node.listeners[0];
    let r = client::get(
        addr,
        &fx.tls(HOST_B),
        HOST_B,
        "/echo",
        "X-Forwarded-For: 198.51.100.1, 203.0.113.7\r\n",
    )
    .expect("echo");
    assert_eq!(r.status, 200);
    let s = &up.seen_path("/echo")[0];
    assert_eq!(s.header("x-forwarded-for"), Some("203.0.113.7"));
    assert_eq!(s.header("x-real-ip"), Some("203.0.113.7"));
    let line = node
        .wait_log(std::time::Duration::from_secs(5), |v| v["path"] == "/echo")
        .expect("log");
    assert_eq!(line["client_ip"], "203.0.113.7");
}

#[test]
fn websocket_echo_through_the_proxy() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let node = Node::start(bin(), fx.path(), &fx.two_instances(up.addr, ""));
    let addr = node.listeners[0];
    let mut c = client::connect(addr, &fx.tls(HOST_A)).expect("connect");
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    write!(
        c,
        "GET /ws HTTP/1.1\r\nHost: {HOST_A}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .expect("upgrade");
    let mut rd = BufReader::new(c);
    let r = client::read_response(&mut rd, false).expect("101");
    assert_eq!(r.status, 101);
    assert_eq!(
        r.header("sec-websocket-accept"),
        Some(test_support::upstream::ws_accept(key).as_str())
    );
    assert!(r.header("server").is_none());
    for msg in ["hello", &"y".repeat(5000)] {
        let f = client::ws_frame(0x1, msg.as_bytes(), Some([1, 2, 3, 4]));
        rd.get_mut().write_all(&f).expect("frame");
        let (op, payload) = client::read_ws_frame(&mut rd).expect("echo");
        assert_eq!(op, 0x1);
        assert_eq!(payload, msg.as_bytes());
    }
}

#[test]
fn http2_is_offered_by_alpn() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let node = Node::start(bin(), fx.path(), &fx.two_instances(up.addr, ""));
    let addr = node.listeners[0];
    let mut tls = fx.tls(HOST_A);
    tls.alpn = b"\x02h2\x08http/1.1";
    let c = client::connect(addr, &tls).expect("connect");
    assert_eq!(c.ssl().selected_alpn_protocol(), Some(&b"h2"[..]));
    // A real HTTP/2 exchange, as a user would make it.
    let out = std::process::Command::new("curl")
        .args(["-sS", "--http2", "-D", "-", "--cacert"])
        .arg(&fx.ca_file)
        .arg("--resolve")
        .arg(format!("{HOST_A}:{}:127.0.0.1", addr.port()))
        .arg(format!("https://{HOST_A}:{}/automate/", addr.port()))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/2 200"), "{text}");
    assert!(!text.to_ascii_lowercase().contains("server:"), "{text}");
    assert!(text.contains("ConnectWise Automate"));
}
