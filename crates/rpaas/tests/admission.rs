//! One admission decision: a live node's answers (status and logged reason) equal what
//! `explain` against that node says for the same request, code for code, over a matrix of
//! hosts, SNI mismatches, methods, encodings, classes, countries, trusted and untrusted
//! clients, bans and rate limits; and no client-chosen value becomes a metric label.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use rpaas_geoip::writer::{build, RecordShape};

const UNKNOWN: &str = "0f00000000000000.example.net";

fn config(fx: &Fixture, up: std::net::SocketAddr) -> String {
    let geo = build(
        RecordShape::MaxMind,
        &[
            ("203.0.113.0/24", "US"),
            ("192.0.2.0/24", "CN"),
            ("198.51.100.0/24", "CN"),
            ("100.64.0.0/16", "DE"),
        ],
    )
    .expect("mmdb");
    let geo_path = fx.path().join("country.mmdb");
    std::fs::write(&geo_path, geo).expect("write mmdb");
    format!(
        r#"
[node]
admin = "127.0.0.1:0"
geoip_db = {geo_path:?}
default_countries = ["US", "DE"]
[node.limits]
login = "3/1m"
classes = {{ api = "6/1m" }}
ban_after = 12
ban_window = "10m"
ban_time = "10m"

[[listener]]
address = "127.0.0.1:0"
client_ip = "x-forwarded-for"
trusted_proxies = ["127.0.0.0/8"]

[[instance]]
id = "a"
hostnames = ["{HOST_A}"]
{cert_a}upstream = "http://{up}"
deployment = "agent-only"
trusted = ["198.51.100.0/24"]
[[instance.restrict]]
name = "wcc2-splash"
block = ["/WCC2/"]

[[instance]]
id = "b"
hostnames = ["{HOST_B}"]
{cert_b}upstream = "http://{up}"
[instance.class.api]
countries = ["US"]
"#,
        cert_a = fx.cert_lines("a", HOST_A),
        cert_b = fx.cert_lines("b", HOST_B),
    )
}

/// (SNI, Host header; `None` sends no Host).
const HOSTS: &[(&str, Option<&str>)] = &[
    (HOST_A, Some(HOST_A)),
    (HOST_B, Some(HOST_B)),
    (HOST_A, Some(HOST_B)),
    (HOST_A, Some(UNKNOWN)),
    (HOST_B, None),
];

const METHODS: &[&str] = &["GET", "POST", "OPTIONS", "XYZZY"];

const TARGETS: &[&str] = &[
    "/LabTech/Agent.aspx",
    "/LabTech/Deployment.aspx?InstallerToken=0f3c",
    "/LabTech/ControlCenter.asmx",
    "/automate/",
    "/cwa/api/v1/computers?condition=Name%20like%20%27srv%25%27",
    "/cwa/api/v1/apitoken",
    "/WCC2/",
    "/a%2fb",
    "/LabTech/Updates/..%2F..%2Fautomate/",
    "/automate%u2215x",
    "/SetupWizard.aspx/x",
    "/cwa/api/v1/computers?id=1%27%20union%20select%20password%20from%20users--",
];

/// Repeated requests from fresh clients: rate limits, then the ban they lead to.
const BURSTS: &[(&str, &str, &str, usize)] = &[
    ("203.0.113.50", "POST", "/cwa/api/v1/apitoken", 5),
    ("203.0.113.51", "GET", "/cwa/api/v1/computers", 9),
    ("203.0.113.52", "GET", "/SetupWizard.aspx/x", 14),
];

const CLIENTS: &[&str] = &[
    "203.0.113.7",
    "192.0.2.7",
    "198.51.100.7",
    "100.64.1.1",
    "10.9.9.9",
];

/// A request sent: its status and request id (its log line is read at the end).
struct Live {
    status: u16,
    id: String,
}

fn live(
    node: &Node,
    fx: &Fixture,
    sni: &str,
    host: Option<&str>,
    method: &str,
    target: &str,
    ip: &str,
) -> Live {
    let host_line = host.map(|h| format!("Host: {h}\r\n")).unwrap_or_default();
    let raw = format!(
        "{method} {target} HTTP/1.1\r\n{host_line}X-Forwarded-For: {ip}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let r = client::exchange(node.listeners[0], &fx.tls(sni), raw.as_bytes()).expect("request");
    Live {
        status: r.status,
        id: r.header("x-request-id").expect("request id").to_string(),
    }
}

/// The logged reason of each request, by request id.
fn reasons(node: &Node, ids: &[String]) -> std::collections::HashMap<String, String> {
    let end = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let map: std::collections::HashMap<String, String> = node
            .logs
            .lock()
            .map(|l| {
                l.iter()
                    .filter_map(|v| {
                        Some((
                            v["request_id"].as_str()?.to_string(),
                            v["reason"].as_str().unwrap_or("").to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if ids.iter().all(|i| map.contains_key(i)) || std::time::Instant::now() > end {
            return map;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn explain(
    node: &Node,
    sni: &str,
    host: Option<&str>,
    method: &str,
    target: &str,
    ip: &str,
) -> serde_json::Value {
    let q = serde_json::json!({
        "host": host.unwrap_or(""),
        "sni": sni,
        "ip": ip,
        "method": method,
        "target": target,
        "headers": [["content-length", "0"]],
    });
    let (status, body) = node.admin_post("/explain", &q.to_string());
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("explanation JSON")
}

#[test]
fn a_live_node_and_explain_agree_code_for_code() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let node = Node::start(bin(), fx.path(), &config(&fx, up.addr));
    let mut cases = Vec::new();
    let mut ask = |sni: &str, host: Option<&str>, method: &str, target: &str, ip: &str| {
        // Ask first: explain peeks at bans and rate limits, the request consumes.
        let e = explain(&node, sni, host, method, target, ip);
        let l = live(&node, &fx, sni, host, method, target, ip);
        let what = format!("{method} {target} from {ip} sni {sni} host {host:?}");
        cases.push((what, e, l));
    };
    // Every host, method and target from one client; every client on every target.
    for (sni, host) in HOSTS {
        for method in METHODS {
            for target in TARGETS {
                ask(sni, *host, method, target, CLIENTS[0]);
            }
        }
    }
    for ip in CLIENTS {
        for (sni, host) in [(HOST_A, Some(HOST_A)), (HOST_B, Some(HOST_B))] {
            for target in TARGETS {
                ask(sni, host, "GET", target, ip);
            }
        }
    }
    for (ip, method, target, times) in BURSTS {
        for _ in 0..*times {
            ask(HOST_B, Some(HOST_B), method, target, ip);
        }
    }
    let n = cases.len();
    let ids: Vec<String> = cases.iter().map(|(_, _, l)| l.id.clone()).collect();
    let logged = reasons(&node, &ids);
    let mut codes = BTreeSet::new();
    let mut mismatches = Vec::new();
    for (what, e, l) in &cases {
        let want_reason = e["reason"].as_str().unwrap_or("").to_string();
        let want_status = e["status"].as_u64().map(|s| s as u16);
        let got = logged
            .get(&l.id)
            .cloned()
            .unwrap_or_else(|| "<no log line>".into());
        if got != want_reason || want_status.is_some_and(|s| s != l.status) {
            mismatches.push(format!(
                "{what}: node {} {got:?}, explain {want_status:?} {want_reason:?}",
                l.status
            ));
        }
        codes.insert(if want_reason.is_empty() {
            "forward".to_string()
        } else {
            want_reason
        });
    }
    assert!(n >= 200, "{n} requests");
    assert!(
        mismatches.is_empty(),
        "{} of {n} differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    // The matrix reached every kind of decision.
    for want in [
        "forward",
        "host:missing",
        "host:unknown",
        "host:mismatch",
        "method:OPTIONS",
        "method:other",
        "path:invalid",
        "acl:web_control_center",
        "restrict:wcc2-splash",
        "geoip:CN",
        "geoip:unknown",
        "rate:login",
        "rate:api",
        "ips:100001",
        "ban",
    ] {
        assert!(codes.contains(want), "no {want} in {codes:?}");
    }
}

#[test]
fn an_offline_explain_says_what_it_cannot_know() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let cfg = config(&fx, up.addr);
    let path = fx.path().join("rpaas.toml");
    std::fs::write(&path, cfg).expect("write");
    let out = std::process::Command::new(bin())
        .args(["explain", "--config"])
        .arg(&path)
        .args([
            "--host",
            HOST_B,
            "--ip",
            "203.0.113.7",
            "--json",
            "/cwa/api/v1/apitoken",
        ])
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["verdict"], "ALLOW");
    assert_eq!(v["unknown"], serde_json::json!(["bans", "rate limits"]));
    let out = std::process::Command::new(bin())
        .args(["explain", "--config"])
        .arg(&path)
        .args([
            "--host",
            HOST_B,
            "--ip",
            "203.0.113.7",
            "/cwa/api/v1/apitoken",
        ])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("not known without a running node"), "{text}");
}

/// Series in the exposition text: lines that are not comments.
fn series(node: &Node) -> usize {
    node.admin_get("/metrics")
        .lines()
        .filter(|l| l.starts_with("rpaas_"))
        .count()
}

#[test]
fn client_chosen_values_never_become_metric_labels() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let node = Node::start(bin(), fx.path(), &config(&fx, up.addr));
    let send = |i: usize| {
        let host = format!("h{i}.example.net");
        let raw = match i % 4 {
            0 => format!("M{i}X /LabTech/Agent.aspx HTTP/1.1\r\nHost: {HOST_B}\r\nX-Forwarded-For: 203.0.113.{}\r\nConnection: close\r\n\r\n", i % 200),
            1 => format!("GET /x{i}/y?z{i}=1 HTTP/1.1\r\nHost: {HOST_B}\r\nUser-Agent: ua-{i}\r\nX-Forwarded-For: 203.0.113.{}\r\nConnection: close\r\n\r\n", i % 200),
            2 => format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
            _ => format!("PUT /cwa/api/v1/computers/{i} HTTP/1.1\r\nHost: {HOST_B}\r\nX-Custom-{i}: v{i}\r\nReferer: https://r{i}.example/?a={i}\r\nX-Forwarded-For: 100.64.{}.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", i % 250),
        };
        let _ = client::exchange(node.listeners[0], &fx.tls(HOST_B), raw.as_bytes());
    };
    for i in 0..400 {
        send(i);
    }
    let after_400 = series(&node);
    for i in 400..1600 {
        send(i);
    }
    let after = series(&node);
    // 1200 more requests, each with a method, path, host and headers never seen before: not
    // one more series.
    assert_eq!(after_400, after);
    assert!(after < 400, "{after} series");
    let m = node.admin_get("/metrics");
    assert!(m.contains(r#"reason="method:other""#), "{m}");
    assert!(
        !m.contains("M17X") && !m.contains("h18.example.net") && !m.contains("ua-"),
        "client values in labels"
    );
}
