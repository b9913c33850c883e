//! TLS profiles as a client sees them, and what an operator sees when a handshake fails.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use openssl::ssl::SslVersion;

fn config(fx: &Fixture, up: std::net::SocketAddr) -> String {
    format!(
        r#"
[node]
admin = "127.0.0.1:0"
[[listener]]
address = "127.0.0.1:0"
tls = "intermediate"
[[listener]]
address = "127.0.0.1:0"
tls = "legacy"
[[listener]]
address = "127.0.0.1:0"
tls = "modern"
[[instance]]
id = "a"
hostnames = ["{HOST_A}"]
{cert}upstream = "http://{up}"
"#,
        cert = fx.cert_lines("a", HOST_A)
    )
}

fn handshake(addr: std::net::SocketAddr, fx: &Fixture, v: SslVersion) -> Result<String, String> {
    let mut tls = fx.tls(HOST_A);
    tls.min = Some(v);
    tls.max = Some(v);
    client::connect(addr, &tls).map(|c| c.ssl().version_str().to_string())
}

#[test]
fn profiles_accept_and_refuse_the_right_versions() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let node = Node::start(bin(), fx.path(), &config(&fx, up.addr));
    let (inter, legacy, modern) = (node.listeners[0], node.listeners[1], node.listeners[2]);

    assert_eq!(
        handshake(legacy, &fx, SslVersion::TLS1).as_deref(),
        Ok("TLSv1")
    );
    assert_eq!(
        handshake(legacy, &fx, SslVersion::TLS1_1).as_deref(),
        Ok("TLSv1.1")
    );
    assert_eq!(
        handshake(legacy, &fx, SslVersion::TLS1_3).as_deref(),
        Ok("TLSv1.3")
    );
    assert!(handshake(inter, &fx, SslVersion::TLS1).is_err());
    assert!(handshake(inter, &fx, SslVersion::TLS1_1).is_err());
    assert_eq!(
        handshake(inter, &fx, SslVersion::TLS1_2).as_deref(),
        Ok("TLSv1.2")
    );
    assert_eq!(
        handshake(inter, &fx, SslVersion::TLS1_3).as_deref(),
        Ok("TLSv1.3")
    );
    assert!(handshake(modern, &fx, SslVersion::TLS1_2).is_err());
    assert_eq!(
        handshake(modern, &fx, SslVersion::TLS1_3).as_deref(),
        Ok("TLSv1.3")
    );

    // A whole request over TLS 1.0 on the legacy listener, as an old agent would make it.
    let mut tls = fx.tls(HOST_A);
    tls.min = Some(SslVersion::TLS1);
    tls.max = Some(SslVersion::TLS1);
    let r = client::get(legacy, &tls, HOST_A, "/LabTech/Agent.aspx", "").expect("tls1.0 request");
    assert_eq!(r.status, 200);

    // The same with the openssl command line, as an operator would check it.
    let s_client = |addr: std::net::SocketAddr| {
        let out = Command::new("openssl")
            .args([
                "s_client",
                "-tls1",
                "-cipher",
                "DEFAULT@SECLEVEL=0",
                "-servername",
                HOST_A,
                "-connect",
            ])
            .arg(addr.to_string())
            .stdin(Stdio::null())
            .output()
            .expect("openssl s_client");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(
        s_client(legacy).contains("Protocol  : TLSv1\n"),
        "{}",
        s_client(legacy)
    );
    assert!(s_client(inter).contains("Cipher is (NONE)"));
}

#[test]
fn server_cipher_preference_wins() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let node = Node::start(bin(), fx.path(), &config(&fx, up.addr));
    let legacy = node.listeners[1];
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-tls1_2",
            "-cipher",
            "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES128-GCM-SHA256:@SECLEVEL=0",
            "-servername",
            HOST_A,
            "-connect",
        ])
        .arg(legacy.to_string())
        .stdin(Stdio::null())
        .output()
        .expect("openssl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Cipher is ECDHE-ECDSA-AES128-GCM-SHA256"),
        "{text}"
    );
}

#[test]
fn refused_old_client_is_logged_with_what_it_offered() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let node = Node::start(bin(), fx.path(), &config(&fx, up.addr));
    let inter = node.listeners[0];
    assert!(handshake(inter, &fx, SslVersion::TLS1).is_err());
    let line = node
        .wait_log(Duration::from_secs(5), |v| {
            v["event"] == "tls_handshake_failed"
        })
        .expect("handshake failure logged");
    assert_eq!(line["client_ip"], "127.0.0.1");
    assert_eq!(line["sni"], HOST_A);
    assert_eq!(line["offered"], "TLSv1");
    assert_eq!(line["profile"], "intermediate");
    assert_eq!(line["reason"], "protocol_version");
    let metrics = node.admin_get("/metrics");
    assert!(
        metrics.contains(
            "rpaas_tls_handshake_failures_total{profile=\"intermediate\",reason=\"protocol_version\"} 1"
        ),
        "{metrics}"
    );
    // Successful handshakes are counted by version.
    handshake(inter, &fx, SslVersion::TLS1_2).expect("tls1.2");
    let metrics = node.admin_get("/metrics");
    assert!(
        metrics
            .contains("rpaas_tls_handshakes_total{profile=\"intermediate\",version=\"TLSv1.2\"} 1"),
        "{metrics}"
    );
    // Unknown SNI is logged as such.
    assert!(client::connect(inter, &fx.tls("nobody.example.net")).is_err());
    let line = node
        .wait_log(Duration::from_secs(5), |v| v["sni"] == "nobody.example.net")
        .expect("unknown sni logged");
    assert_eq!(line["reason"], "unknown_sni");
}

#[test]
fn self_signed_certificate_when_none_is_configured() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let cfg = format!(
        "[[listener]]\naddress = \"127.0.0.1:0\"\n[[instance]]\nid = \"a\"\nhostnames = [\"{HOST_A}\"]\nupstream = \"http://{}\"\n",
        up.addr
    );
    let node = Node::start(bin(), fx.path(), &cfg);
    assert!(node
        .wait_log(Duration::from_secs(1), |v| v["level"] == "WARN"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.contains("self-signed")))
        .is_some());
    // Our CA does not know it, but the handshake happens with the instance's name in it.
    let err = client::connect(node.listeners[0], &fx.tls(HOST_A)).expect_err("untrusted");
    assert!(err.contains("certificate verify failed"), "{err}");
}
