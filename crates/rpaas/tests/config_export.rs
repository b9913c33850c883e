//! Config as data: `rpaas config export` prints the effective config as JSON; `check` and
//! `serve` take it back, and a node served from the export answers exactly as the node
//! served from the TOML files.

mod common;

use std::process::Command;

use common::*;

fn config(fx: &Fixture, up: std::net::SocketAddr) -> String {
    std::fs::create_dir_all(fx.path().join("instances")).expect("mkdir");
    std::fs::write(
        fx.path().join("instances/b.toml"),
        format!(
            r#"
[[instance]]
id = "b"
hostnames = ["{HOST_B}"]
{cert_b}upstream = "http://{up}"
deployment = "mixed"
trusted = [{{ cidr = "198.51.100.0/24", note = "the MSP's office" }}]
[instance.ips]
mode = "detect"
"#,
            cert_b = fx.cert_lines("b", HOST_B)
        ),
    )
    .expect("write instance file");
    std::fs::write(fx.path().join("secret.txt"), "s3cr3t-token\n").expect("secret");
    format!(
        r#"
[node]
admin = "127.0.0.1:0"
instances_dir = "instances"
deny_methods = ["OPTIONS", "TRACE"]
keepalive_timeout = "30s"
[node.limits]
login = "5/1m"
[node.networks]
office = ["203.0.113.0/24"]

[[listener]]
address = "127.0.0.1:0"
client_ip = "x-forwarded-for"
trusted_proxies = ["127.0.0.0/8"]

[[instance]]
id = "a"
hostnames = ["{HOST_A}"]
{cert_a}upstream = "http://{up}"
deployment = "agent-only"
trusted = ["office"]
[[instance.restrict]]
name = "login-token"
paths = ["/automate/login"]
param = "authtoken"
secret_file = "secret.txt"
[instance.class.api]
access = "trusted"
"#,
        cert_a = fx.cert_lines("a", HOST_A)
    )
}

fn rpaas(args: &[&str], config: &std::path::Path) -> std::process::Output {
    Command::new(bin())
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("run rpaas")
}

const REQUESTS: &[(&str, &str, &str, &str)] = &[
    (HOST_A, "GET", "/LabTech/Agent.aspx", "192.0.2.1"),
    (HOST_A, "GET", "/automate/", "192.0.2.1"),
    (HOST_A, "GET", "/automate/", "203.0.113.9"),
    (HOST_A, "GET", "/automate/login", "203.0.113.9"),
    (
        HOST_A,
        "GET",
        "/automate/login?authtoken=s3cr3t-token",
        "203.0.113.9",
    ),
    (HOST_A, "OPTIONS", "/", "192.0.2.1"),
    (HOST_A, "GET", "/cwa/api/v1/computers", "203.0.113.9"),
    (HOST_B, "GET", "/automate/", "198.51.100.4"),
    (HOST_B, "GET", "/automate/", "192.0.2.1"),
    (HOST_B, "GET", "/SetupWizard.aspx/x", "198.51.100.4"),
    (HOST_B, "TRACE", "/", "192.0.2.1"),
    (HOST_B, "GET", "/a%2fb", "192.0.2.1"),
];

/// (status, logged reason) of each request.
fn answers(node: &Node, fx: &Fixture) -> Vec<(u16, String)> {
    REQUESTS
        .iter()
        .map(|(host, method, target, ip)| {
            let raw = format!(
                "{method} {target} HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-For: {ip}\r\nConnection: close\r\n\r\n"
            );
            let r = client::exchange(node.listeners[0], &fx.tls(host), raw.as_bytes())
                .expect("request");
            let id = r.header("x-request-id").expect("request id").to_string();
            let line = node
                .wait_log(std::time::Duration::from_secs(5), |v| {
                    v["request_id"] == id.as_str()
                })
                .expect("logged");
            (r.status, line["reason"].as_str().unwrap_or("").to_string())
        })
        .collect()
}

#[test]
fn export_check_serve_round_trip() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let toml = fx.path().join("rpaas.toml");
    std::fs::write(&toml, config(&fx, up.addr)).expect("write");

    let out = rpaas(&["config", "export"], &toml);
    assert!(out.status.success(), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    // Effective: both files' instances, defaults filled in, paths absolute, notes kept.
    assert_eq!(json["instance"].as_array().map(Vec::len), Some(2));
    assert_eq!(json["instance"][0]["read_timeout"], "5m");
    assert_eq!(
        json["instance"][1]["trusted"][0]["note"],
        "the MSP's office"
    );
    assert_eq!(json["node"]["limits"]["ban_after"], 20);
    assert!(json["node"].get("instances_dir").is_none());
    let secret = json["instance"][0]["restrict"][0]["secret_file"]
        .as_str()
        .expect("secret_file");
    assert!(std::path::Path::new(secret).is_absolute(), "{secret}");

    // The export elsewhere, on its own: it names absolute paths, so it means the same.
    let other = tempfile::tempdir().expect("tempdir");
    let exported = other.path().join("exported.json");
    std::fs::write(&exported, &out.stdout).expect("write export");
    let check = rpaas(&["check"], &exported);
    assert!(check.status.success(), "{check:?}");
    // Exporting the export changes nothing.
    let again = rpaas(&["config", "export"], &exported);
    assert_eq!(
        String::from_utf8_lossy(&again.stdout),
        String::from_utf8_lossy(&out.stdout)
    );

    let from_toml = Node::start(bin(), fx.path(), &config(&fx, up.addr));
    let a = answers(&from_toml, &fx);
    drop(from_toml);
    let text = std::fs::read_to_string(&exported).expect("read");
    let from_json = {
        // Node::start writes rpaas.toml; serve the JSON file itself.
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("node.json");
        std::fs::write(&p, text).expect("write");
        (dir, p)
    };
    let node = test_support::node::Node::start_file(bin(), &from_json.1);
    let b = answers(&node, &fx);
    assert_eq!(a, b);
    assert!(a.iter().any(|(s, _)| *s == 200) && a.iter().any(|(s, _)| *s == 403));
}

#[test]
fn a_bad_json_config_names_the_field() {
    let fx = Fixture::new();
    let p = fx.path().join("bad.json");
    std::fs::write(
        &p,
        r#"{"listener":[{"address":"127.0.0.1:0"}],"instance":[{"id":"a","hostnames":["a.example.net"],"upstream":"http://127.0.0.1:9","trusted":["10.0.0.1/8"],"ips":{"mode":"blok"}}]}"#,
    )
    .expect("write");
    let out = rpaas(&["check"], &p);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("instance[0].trusted[0]"), "{err}");
    assert!(err.contains("instance[0].ips.mode"), "{err}");
    std::fs::write(&p, r#"{"listener":[{"adress":"127.0.0.1:0"}]}"#).expect("write");
    let out = rpaas(&["check"], &p);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("listener[0].adress"), "{err}");
}
