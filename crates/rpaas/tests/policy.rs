//! The access policy through a real node: client addresses supplied by a trusted proxy
//! (`X-Forwarded-For`), a GeoIP database written at test time.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use rpaas_geoip::writer::{build, RecordShape};

const US: &str = "203.0.113.5";
const CN: &str = "192.0.2.5";
const OFFICE: &str = "198.51.100.5"; // trusted network, and in a refused country
const NOWHERE: &str = "100.64.0.9"; // no country in the database

fn write_geo(fx: &Fixture) -> std::path::PathBuf {
    let bytes = build(
        RecordShape::MaxMind,
        &[
            ("203.0.113.0/24", "US"),
            ("192.0.2.0/24", "CN"),
            ("198.51.100.0/24", "CN"),
        ],
    )
    .expect("mmdb");
    let p = fx.path().join("country.mmdb");
    std::fs::write(&p, bytes).expect("write mmdb");
    p
}

fn config(fx: &Fixture, up: std::net::SocketAddr) -> String {
    let geo = write_geo(fx);
    format!(
        r#"
[node]
admin = "127.0.0.1:0"
geoip_db = {geo:?}
default_countries = ["US"]

[node.networks]
office = ["198.51.100.0/24"]

# The test client is the trusted load balancer: it says who the client is.
[[listener]]
address = "127.0.0.1:0"
client_ip = "x-forwarded-for"
trusted_proxies = ["127.0.0.0/8"]

# Here the test client is an ordinary, untrusted peer.
[[listener]]
address = "127.0.0.1:0"
client_ip = "x-forwarded-for"
trusted_proxies = ["10.0.0.0/8"]

[[instance]]
id = "agentonly"
hostnames = ["{HOST_A}"]
{cert_a}upstream = "http://{up}"
deployment = "agent-only"
trusted = ["office"]

[[instance]]
id = "open"
hostnames = ["{HOST_B}"]
{cert_b}upstream = "http://{up}"
countries = ["CN"]
[instance.class.web_control_center]
access = "trusted"
[[instance.restrict]]
name = "splash"
block = ["/WCC2/"]
[[instance.restrict]]
name = "transfer-token"
paths = ["/LabTech/Transfer/private/"]
param = "authtoken"
secret = "t0ken-123"
[[instance.restrict]]
name = "psa"
header = "X-Integration-Key"
secret = "integration-key-1"
admit = ["web_control_center"]
"#,
        cert_a = fx.cert_lines("a", HOST_A),
        cert_b = fx.cert_lines("b", HOST_B),
    )
}

fn as_client(node: &Node, fx: &Fixture, host: &str, ip: &str, path: &str) -> client::Response {
    client::get(
        node.listeners[0],
        &fx.tls(host),
        host,
        path,
        &format!("X-Forwarded-For: {ip}\r\n"),
    )
    .expect("request")
}

#[test]
fn agent_only_instance_with_trusted_network_and_countries() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let node = Node::start(bin(), fx.path(), &config(&fx, up.addr));

    // Agents pass from an allowed country.
    let r = as_client(&node, &fx, HOST_A, US, "/LabTech/Agent.aspx");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "LabTech|240.120");

    // The Web Control Center is refused to an untrusted address: plain 403, request id only.
    let before = up.seen_path("/automate").len();
    let r = as_client(&node, &fx, HOST_A, US, "/automate/");
    assert_eq!(r.status, 403);
    assert_hardened(&r);
    let id = r.header("x-request-id").expect("request id").to_string();
    assert_eq!(r.text(), format!("403 Forbidden\nrequest id: {id}\n"));
    assert_eq!(
        up.seen_path("/automate").len(),
        before,
        "a refused request was forwarded"
    );

    // ...and allowed from the trusted network, whose country would otherwise be refused.
    let r = as_client(&node, &fx, HOST_A, OFFICE, "/automate/");
    assert_eq!(r.status, 200);

    // Encoding tricks do not help.
    for p in [
        "/AUTOMATE/",
        "/%61utomate/",
        "/automate./",
        "/(S(x))/automate/",
        "/LabTech/Updates/../../automate/",
    ] {
        let r = as_client(&node, &fx, HOST_A, US, p);
        assert!(matches!(r.status, 400 | 403), "{p}: {}", r.status);
    }
    // Ambiguous paths get 400 path:invalid.
    let r = as_client(&node, &fx, HOST_A, US, "/LabTech%2FAgent.aspx");
    assert_eq!(r.status, 400);

    // Country blocks: agents from a refused country and from nowhere.
    let r = as_client(&node, &fx, HOST_A, CN, "/LabTech/Agent.aspx");
    assert_eq!(r.status, 403);
    let r = as_client(&node, &fx, HOST_A, NOWHERE, "/LabTech/Agent.aspx");
    assert_eq!(r.status, 403);

    // The log lines carry class, country and reason.
    let line = node
        .wait_log(Duration::from_secs(5), |v| v["reason"] == "geoip:CN")
        .expect("geoip denial logged");
    assert_eq!(line["class"], "agent");
    assert_eq!(line["country"], "CN");
    assert_eq!(line["client_ip"], CN);
    assert!(node
        .wait_log(Duration::from_secs(5), |v| v["reason"] == "geoip:unknown")
        .is_some());
    let line = node
        .wait_log(Duration::from_secs(5), |v| {
            v["reason"] == "acl:web_control_center"
        })
        .expect("acl denial logged");
    assert_eq!(line["country"], "");
    assert!(node
        .wait_log(Duration::from_secs(5), |v| v["reason"] == "path:invalid")
        .is_some());
    let metrics = node.admin_get("/metrics");
    assert!(
        metrics.contains(r#"rpaas_denials_total{class="agent",country="CN",instance="agentonly",reason="geoip:CN"} 1"#),
        "{metrics}"
    );
}

#[test]
fn forged_forwarded_for_from_an_untrusted_peer_changes_nothing() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let node = Node::start(bin(), fx.path(), &config(&fx, up.addr));
    // On the second listener the test client is not a trusted proxy: its claim to be in the
    // office network is ignored; it is 127.0.0.1, untrusted and of no country.
    let r = client::get(
        node.listeners[1],
        &fx.tls(HOST_A),
        HOST_A,
        "/automate/",
        &format!("X-Forwarded-For: {OFFICE}\r\n"),
    )
    .expect("request");
    assert_eq!(r.status, 403);
    let line = node
        .wait_log(Duration::from_secs(5), |v| v["path"] == "/automate/")
        .expect("logged");
    assert_eq!(line["client_ip"], "127.0.0.1");
    assert_eq!(line["reason"], "acl:web_control_center");
}

#[test]
fn restrictions_and_class_overrides() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let node = Node::start(bin(), fx.path(), &config(&fx, up.addr));
    // Instance "open" admits US (node default) and CN (its own).
    assert_eq!(
        as_client(&node, &fx, HOST_B, CN, "/cwa/api/v1/computers").status,
        200
    );
    // Its Web Control Center is trusted-only (override) and it has no trusted networks...
    assert_eq!(as_client(&node, &fx, HOST_B, US, "/automate/").status, 403);
    // ...but the integration header admits into it.
    let r = client::get(
        node.listeners[0],
        &fx.tls(HOST_B),
        HOST_B,
        "/automate/",
        &format!("X-Forwarded-For: {US}\r\nX-Integration-Key: integration-key-1\r\n"),
    )
    .expect("admitted");
    assert_eq!(r.status, 200);
    // The WCC2 splash page is blocked.
    assert_eq!(as_client(&node, &fx, HOST_B, US, "/WCC2/").status, 403);
    assert!(node
        .wait_log(Duration::from_secs(5), |v| v["reason"] == "restrict:splash")
        .is_some());
    // A path that needs a token: refused without, served with, then the cookie carries it.
    let p = "/LabTech/Transfer/private/tool.zip";
    assert_eq!(as_client(&node, &fx, HOST_B, US, p).status, 403);
    let r = as_client(&node, &fx, HOST_B, US, &format!("{p}?authtoken=t0ken-123"));
    assert_eq!(r.status, 404); // the stand-in has no such file, but it was forwarded
    let cookie = r.header("set-cookie").expect("cookie set").to_string();
    assert!(
        cookie.starts_with("rpaas_transfer-token=t0ken-123;"),
        "{cookie}"
    );
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let r = client::get(
        node.listeners[0],
        &fx.tls(HOST_B),
        HOST_B,
        p,
        &format!("X-Forwarded-For: {US}\r\nCookie: rpaas_transfer-token=t0ken-123\r\n"),
    )
    .expect("cookie");
    assert_eq!(r.status, 404);
    // Agents still use POST; PUT is not an agent method.
    let raw = format!(
        "PUT /LabTech/Agent.aspx HTTP/1.1\r\nHost: {HOST_B}\r\nX-Forwarded-For: {US}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let r = client::exchange(node.listeners[0], &fx.tls(HOST_B), raw.as_bytes()).expect("put");
    assert_eq!(r.status, 403);
    assert!(node
        .wait_log(Duration::from_secs(5), |v| v["reason"] == "method:PUT")
        .is_some());
}

fn rpaas(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin()).args(args).output().expect("run rpaas");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn explain_and_geoip_commands() {
    let fx = Fixture::new();
    let cfg = config(&fx, "127.0.0.1:9".parse().expect("addr"));
    let path = fx.path().join("rpaas.toml");
    std::fs::write(&path, cfg).expect("write");
    let p = path.to_str().expect("utf8");

    let (code, out, err) = rpaas(&[
        "explain",
        "--config",
        p,
        "--host",
        HOST_A,
        "--ip",
        US,
        "/automate/",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("DENY acl:web_control_center\n"), "{out}");
    assert!(out.contains("agentonly (agent-only)"), "{out}");
    assert!(
        out.contains("web_control_center (access: trusted)"),
        "{out}"
    );
    assert!(out.contains("403 from the node"), "{out}");

    let (_, out, _) = rpaas(&[
        "explain",
        "--config",
        p,
        "--host",
        HOST_A,
        "--ip",
        OFFICE,
        "/Automate/",
    ]);
    assert!(out.starts_with("ALLOW\n"), "{out}");
    assert!(out.contains("trusted network"), "{out}");
    assert!(out.contains("canonical  /automate/"), "{out}");

    let (_, out, _) = rpaas(&[
        "explain",
        "--config",
        p,
        "--host",
        HOST_A,
        "--ip",
        CN,
        "--method",
        "POST",
        "/LabTech/Agent.aspx",
    ]);
    assert!(out.starts_with("DENY geoip:CN\n"), "{out}");

    let (_, out, _) = rpaas(&[
        "explain",
        "--config",
        p,
        "--host",
        HOST_B,
        "--ip",
        US,
        "--header",
        "X-Integration-Key: integration-key-1",
        "--json",
        "/automate/",
    ]);
    let j: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(j["verdict"], "ALLOW");
    assert_eq!(j["class"], "web_control_center");
    assert_eq!(j["country"], "US");
    assert!(j["rule"].as_str().unwrap_or("").contains("psa"), "{j}");

    let (_, out, _) = rpaas(&[
        "explain",
        "--config",
        p,
        "--host",
        "nope.example.net",
        "--ip",
        US,
        "/",
    ]);
    assert!(out.starts_with("DENY host:unknown"), "{out}");
    let (_, out, _) = rpaas(&[
        "explain", "--config", p, "--host", HOST_A, "--ip", US, "--method", "TRACE", "/",
    ]);
    assert!(out.starts_with("DENY method:TRACE"), "{out}");
    let (_, out, _) = rpaas(&[
        "explain", "--config", p, "--host", HOST_A, "--ip", US, "/a%2fb",
    ]);
    assert!(out.starts_with("DENY path:invalid"), "{out}");

    let db = fx.path().join("country.mmdb");
    let (code, out, _) = rpaas(&[
        "geoip",
        "--db",
        db.to_str().expect("utf8"),
        US,
        CN,
        NOWHERE,
        "::1",
    ]);
    assert_eq!(code, 0);
    assert_eq!(out, format!("{US} US\n{CN} CN\n{NOWHERE} --\n::1 --\n"));
    let (code, out, _) = rpaas(&["geoip", "--config", p, OFFICE]);
    assert_eq!(code, 0);
    assert_eq!(out, format!("{OFFICE} CN\n"));
    let (code, _, err) = rpaas(&["geoip", "--db", db.to_str().expect("utf8"), "not-an-ip"]);
    assert_eq!(code, 1);
    assert!(err.contains("not an IP address"), "{err}");
}

#[test]
fn policy_config_errors() {
    let fx = Fixture::new();
    let base = "[[listener]]\naddress = \"127.0.0.1:0\"\n[[instance]]\nid = \"a\"\nhostnames = [\"a.example.net\"]\nupstream = \"http://127.0.0.1:1\"\n";
    let cases = [
        (
            "countries without db",
            format!("{base}countries = [\"US\"]\n"),
            "instance[0].countries",
            "geoip_db is not set",
        ),
        (
            "bad country",
            format!("[node]\ngeoip_db = \"x.mmdb\"\n{base}"),
            "node.geoip_db",
            "does not exist",
        ),
        (
            "unknown deployment",
            format!("{base}deployment = \"agents\"\n"),
            "instance[0].deployment",
            "must be",
        ),
        (
            "unknown network",
            format!("{base}trusted = [\"office\"]\n"),
            "instance[0].trusted[0]",
            "neither a CIDR nor a network",
        ),
        (
            "unknown class",
            format!("{base}[instance.class.wcc]\naccess = \"open\"\n"),
            "instance[0].class.wcc",
            "unknown traffic class",
        ),
        (
            "bad access",
            format!("{base}[instance.class.api]\naccess = \"maybe\"\n"),
            "instance[0].class.api.access",
            "must be",
        ),
        (
            "restriction without kind",
            format!("{base}[[instance.restrict]]\nname = \"x\"\n"),
            "instance[0].restrict[0]",
            "exactly one of",
        ),
        (
            "bad unknown_country",
            format!("[node]\nunknown_country = \"maybe\"\n{base}"),
            "node.unknown_country",
            "must be",
        ),
    ];
    for (what, text, key, reason) in cases {
        let p = fx.path().join("rpaas.toml");
        std::fs::write(&p, &text).expect("write");
        let (code, out, err) = rpaas(&["check", "--config", p.to_str().expect("utf8")]);
        assert_eq!(code, 1, "{what}: {out}{err}");
        assert!(
            err.contains(&format!("rpaas.toml: {key}: ")),
            "{what}: {err}"
        );
        assert!(err.contains(reason), "{what}: {err}");
    }
}
