//! ACME through a real node and a real CA (Debian's `pebble`, with `pebble-challtestsrv` as
//! the DNS that resolves every name to 127.0.0.1): TLS-ALPN-01 validations answered on the
//! node's own TLS listener, a certificate issued for an instance from the TOML file and for
//! one provisioned by the API, each served live and verified by a client against pebble's
//! root; the status API says where each certificate comes from.

mod common;
#[allow(unused_imports)]
#[path = "../../rpaas-acme/tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use test_support::api::Api;

/// pebble validating on `tls_port` (TLS-ALPN-01) and `http_port` (HTTP-01), and its root
/// written to a file.
fn pebble(fx: &Fixture, tls_port: u16, http_port: u16) -> (support::Pebble, std::path::PathBuf) {
    let pebble = support::Pebble::start(tls_port, http_port);
    let root = fx.path().join("pebble-root.pem");
    std::fs::write(&root, pebble.root().to_pem().expect("pem")).expect("write root");
    (pebble, root)
}

/// Waits until `host` is served with a certificate that verifies against `root` (the file).
fn wait_trusted(node: &Node, host: &str, root: &std::path::Path, limit: Duration) -> Duration {
    let t = Instant::now();
    let mut last = String::new();
    while t.elapsed() < limit {
        let tls = Tls::new(host, root);
        match client::get(node.listeners[0], &tls, host, "/LabTech/Agent.aspx", "") {
            Ok(r) if r.status == 200 => return t.elapsed(),
            Ok(r) => last = format!("status {}", r.status),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("{host} never served a certificate from the CA: {last}");
}

#[test]
fn tls_alpn_01_issues_for_file_and_api_instances_and_serves_them_live() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let port = free_port();
    let (pebble, root) = pebble(&fx, port, free_port());
    let cfg = format!(
        r#"
[node]
admin = "127.0.0.1:0"
data_dir = {data:?}

[[listener]]
address = "127.0.0.1:{port}"

[control]
listen = "127.0.0.1:0"
base_domain = "acme.test"

[acme]
directory = "{dir}"
email = "ops@example.net"
ca = {ca:?}
challenge = "tls-alpn-01"

[[instance]]
id = "fromfile"
hostnames = ["fromfile.acme.test"]
cert = "acme"
upstream = "http://{up}"
"#,
        data = fx.path().join("data"),
        dir = pebble.directory,
        ca = pebble.https_ca,
        up = up.addr,
    );
    let path = fx.path().join("rpaas.toml");
    std::fs::write(&path, &cfg).expect("config");
    let key = operator_key(&path);
    let node = Node::start_file(bin(), &path);
    let api = Api::new(node.control.expect("control"), &key);

    // The TOML instance: self-signed first, then the CA's certificate, swapped in live.
    wait_trusted(&node, "fromfile.acme.test", &root, Duration::from_secs(90));
    assert!(node.log_count(|v| v["event"] == "tls_alpn_validation" && v["answered"] == true) > 0);

    // An API-provisioned instance gets one too (cert = "acme" by default with [acme]).
    assert_eq!(
        api.post("/v1/partners", json!({"id": "p1", "name": "Acme IT"}))
            .status,
        201
    );
    let r = api.post(
        "/v1/instances",
        json!({"partner": "p1", "upstream": format!("http://{}", up.addr)}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json["id"].as_str().expect("id").to_string();
    let host = format!("{id}.acme.test");
    wait_trusted(&node, &host, &root, Duration::from_secs(90));

    // `rpaas cert status` and the expiry metric.
    let out = std::process::Command::new(bin())
        .args(["cert", "status", "--admin"])
        .arg(node.admin.expect("admin").to_string())
        .output()
        .expect("rpaas cert status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("fromfile") && l.contains("acme") && l.contains("valid")),
        "{text}"
    );
    let metrics = node.admin_get("/metrics");
    assert!(
        metrics.contains(r#"rpaas_cert_days_to_expiry{instance="fromfile"}"#),
        "{metrics}"
    );

    for inst in ["fromfile", id.as_str()] {
        let st = api.get(&format!("/v1/instances/{inst}/status"));
        assert_eq!(st.status, 200, "{}", st.text);
        assert_eq!(st.json["cert"]["source"], "acme", "{}", st.text);
        assert_eq!(st.json["cert"]["state"], "valid", "{}", st.text);
        assert!(st.json["cert"]["not_after"].is_string(), "{}", st.text);
    }
}

/// A raw HTTP/1.1 GET on a plain listener: (status line, whole answer).
fn plain_get(addr: std::net::SocketAddr, host: &str, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    (out.lines().next().unwrap_or("").to_string(), out)
}

#[test]
fn http_01_on_a_plain_listener_and_everything_else_redirected() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let http_port = free_port();
    let (pebble, root) = pebble(&fx, free_port(), http_port);
    let cfg = format!(
        r#"
[node]
admin = "127.0.0.1:0"
data_dir = {data:?}

[[listener]]
address = "127.0.0.1:0"

[[listener]]
address = "127.0.0.1:{http_port}"
tls = "none"

[acme]
directory = "{dir}"
ca = {ca:?}
challenge = "http-01"

[[instance]]
id = "web"
hostnames = ["web.acme.test"]
cert = "acme"
upstream = "http://{up}"
"#,
        data = fx.path().join("data"),
        dir = pebble.directory,
        ca = pebble.https_ca,
        up = up.addr,
    );
    let node = Node::start(bin(), fx.path(), &cfg);
    assert_eq!(node.http.len(), 1, "the plain listener is announced");
    wait_trusted(&node, "web.acme.test", &root, Duration::from_secs(90));
    assert!(node.log_count(|v| v["event"] == "http01_validation") > 0);

    // Nothing is proxied over plain HTTP: served names are sent to HTTPS, others get 404.
    let (status, whole) = plain_get(node.http[0], "web.acme.test", "/automate/?a=1");
    assert!(status.starts_with("HTTP/1.1 301"), "{whole}");
    assert!(
        whole
            .to_ascii_lowercase()
            .contains("location: https://web.acme.test/automate/?a=1"),
        "{whole}"
    );
    let (status, whole) = plain_get(node.http[0], "evil.example.net", "/");
    assert!(status.starts_with("HTTP/1.1 404"), "{whole}");
    let (status, _) = plain_get(
        node.http[0],
        "web.acme.test",
        "/.well-known/acme-challenge/no-such-token",
    );
    assert!(status.starts_with("HTTP/1.1 404"), "{status}");
}

/// The serial of the certificate `host` is served with, verified against `root`.
fn served_serial(node: &Node, host: &str, root: &std::path::Path) -> Option<String> {
    served_leaf(node.listeners[0], host, root)
        .ok()
        .map(|(s, _)| s)
}

/// A node with one `cert = "acme"` instance (`id`, `host`) validated by TLS-ALPN-01 on its
/// listener, the pebble it orders from, and pebble's root written to a file.
fn tls_alpn_node(
    fx: &Fixture,
    up: &Upstream,
    id: &str,
    host: &str,
) -> (support::Pebble, std::path::PathBuf, Node) {
    let port = free_port();
    let (pebble, root) = pebble(fx, port, free_port());
    let cfg = format!(
        r#"
[node]
admin = "127.0.0.1:0"
data_dir = {data:?}

[[listener]]
address = "127.0.0.1:{port}"

[acme]
directory = "{dir}"
ca = {ca:?}

[[instance]]
id = "{id}"
hostnames = ["{host}"]
cert = "acme"
upstream = "http://{up}"
"#,
        data = fx.path().join("data"),
        dir = pebble.directory,
        ca = pebble.https_ca,
        up = up.addr,
    );
    let node = Node::start(bin(), fx.path(), &cfg);
    (pebble, root, node)
}

#[test]
fn a_forced_renewal_is_swapped_in_under_load_with_no_failed_request() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let up = Upstream::start();
    let fx = Fixture::new();
    let (_pebble, root, node) = tls_alpn_node(&fx, &up, "renewme", "renew.acme.test");
    let host = "renew.acme.test";
    wait_trusted(&node, host, &root, Duration::from_secs(90));
    let first = served_serial(&node, host, &root).expect("a served certificate");

    // Load: new TLS connections verified against pebble's root, one request each.
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let loader = {
        let (stop, sent, failed, root) = (stop.clone(), sent.clone(), failed.clone(), root.clone());
        let addr = node.listeners[0];
        std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(60);
            while !stop.load(Ordering::Relaxed) && Instant::now() < end {
                let tls = Tls::new(host, &root);
                let r = client::get(addr, &tls, host, "/LabTech/Agent.aspx", "");
                sent.fetch_add(1, Ordering::Relaxed);
                if r.map(|r| r.status) != Ok(200) {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let out = std::process::Command::new(bin())
        .args(["cert", "renew", "--admin"])
        .arg(node.admin.expect("admin").to_string())
        .arg("renewme")
        .output()
        .expect("rpaas cert renew");
    assert!(out.status.success(), "{out:?}");
    let t = Instant::now();
    let second = loop {
        match served_serial(&node, host, &root) {
            Some(s) if s != first => break s,
            _ => {}
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the renewal never came"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    loader.join().expect("load loop");
    assert_ne!(first, second);
    assert!(sent.load(Ordering::Relaxed) > 10, "the load loop ran");
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed during the swap"
    );
}

/// pebble's own record of a certificate (its management API): `"Valid"` or `"Revoked"`.
fn pebble_status(pebble: &support::Pebble, serial_hex: &str) -> String {
    let out = std::process::Command::new("curl")
        .args(["-sf", "--max-time", "10", "--cacert"])
        .arg(&pebble.https_ca)
        .arg(format!(
            "https://{}/cert-status-by-serial/{}",
            pebble.management,
            serial_hex.to_ascii_lowercase()
        ))
        .output()
        .expect("curl");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["Status"].as_str().unwrap_or("").to_string()
}

#[test]
fn a_revoked_certificate_is_replaced() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let (pebble, root, node) = tls_alpn_node(&fx, &up, "leaked", "leaked.acme.test");
    let host = "leaked.acme.test";
    wait_trusted(&node, host, &root, Duration::from_secs(90));
    let first = served_serial(&node, host, &root).expect("a served certificate");
    assert_eq!(pebble_status(&pebble, &first), "Valid");

    let out = std::process::Command::new(bin())
        .args(["cert", "revoke", "--admin"])
        .arg(node.admin.expect("admin").to_string())
        .arg("leaked")
        .output()
        .expect("rpaas cert revoke");
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"revoked\":2"),
        "{out:?}"
    );
    assert_eq!(
        pebble_status(&pebble, &first),
        "Revoked",
        "revoked at the CA"
    );
    let t = Instant::now();
    loop {
        match served_serial(&node, host, &root) {
            Some(s) if s != first => {
                assert_eq!(pebble_status(&pebble, &s), "Valid");
                break;
            }
            _ => {}
        }
        assert!(t.elapsed() < Duration::from_secs(60), "never replaced");
        std::thread::sleep(Duration::from_millis(200));
    }
    // An unknown instance is refused with the reason.
    let out = std::process::Command::new(bin())
        .args(["cert", "revoke", "--admin"])
        .arg(node.admin.expect("admin").to_string())
        .arg("nosuch")
        .output()
        .expect("rpaas cert revoke");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}
