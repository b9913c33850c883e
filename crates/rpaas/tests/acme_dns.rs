//! DNS-01 through a real node and a real CA (Debian's `pebble`; `pebble-challtestsrv` is the
//! DNS pebble asks, and the hook sets its TXT records through the management API):
//! `[acme] wildcard = true` gives every API-provisioned instance under `base_domain` the one
//! `*.base_domain` pair, an instance outside it gets its own DNS-01 pair; a failing hook backs
//! off with its own message in the status; `rpaas check` names what is wrong with `[acme]`.

mod common;
#[allow(unused_imports)]
#[path = "../../rpaas-acme/tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use test_support::api::Api;

fn wait_served(node: &Node, host: &str, root: &Path) -> (String, Vec<String>) {
    wait_served_leaf(node.listeners[0], host, root)
}

fn start(fx: &Fixture, pebble: &support::Pebble, acme_extra: &str, up: &Upstream) -> Node {
    let cfg = format!(
        r#"
[node]
admin = "127.0.0.1:0"
data_dir = {data:?}

[[listener]]
address = "127.0.0.1:0"

[control]
listen = "127.0.0.1:0"
base_domain = "wild.test"

[acme]
directory = "{dir}"
ca = {ca:?}
challenge = "dns-01"
dns_delay = "0s"
{acme_extra}

[[instance]]
id = "outside"
hostnames = ["portal.other.test"]
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
    Node::start_file(bin(), &path)
}

#[test]
fn dns_01_wildcard_serves_one_pair_for_every_provisioned_instance() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let pebble = support::Pebble::start(free_port(), free_port());
    let root = fx.path().join("pebble-root.pem");
    std::fs::write(&root, pebble.root().to_pem().expect("pem")).expect("root");
    let hook = pebble.dns_hook(false);
    let node = start(
        &fx,
        &pebble,
        &format!("wildcard = true\ndns_hook = {hook:?}"),
        &up,
    );
    let key = operator_key(&fx.path().join("rpaas.toml"));
    let api = Api::new(node.control.expect("control"), &key);
    assert_eq!(
        api.post("/v1/partners", json!({"id": "p1", "name": "Acme IT"}))
            .status,
        201
    );
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = api.post(
            "/v1/instances",
            json!({"partner": "p1", "upstream": format!("http://{}", up.addr)}),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        ids.push(r.json["id"].as_str().expect("id").to_string());
    }
    let (s1, n1) = wait_served(&node, &format!("{}.wild.test", ids[0]), &root);
    let (s2, _) = wait_served(&node, &format!("{}.wild.test", ids[1]), &root);
    assert_eq!(n1, ["*.wild.test"]);
    assert_eq!(s1, s2, "one wildcard pair for both instances");

    // An instance outside base_domain: its own pair, proven by DNS-01 too.
    let (s3, n3) = wait_served(&node, "portal.other.test", &root);
    assert_eq!(n3, ["portal.other.test"]);
    assert_ne!(s3, s1);

    // The proxy serves through the wildcard certificate, and the status says where it is from.
    let host = format!("{}.wild.test", ids[0]);
    let tls = Tls::new(&host, &root);
    let r = client::get(node.listeners[0], &tls, &host, "/LabTech/Agent.aspx", "").expect("get");
    assert_eq!(r.status, 200);
    for id in &ids {
        let st = api.get(&format!("/v1/instances/{id}/status"));
        assert_eq!(st.status, 200, "{}", st.text);
        assert_eq!(st.json["cert"]["source"], "acme", "{}", st.text);
        assert_eq!(st.json["cert"]["state"], "valid", "{}", st.text);
    }
    // A third instance provisioned later is served the pair at once (no new order).
    let r = api.post(
        "/v1/instances",
        json!({"partner": "p1", "upstream": format!("http://{}", up.addr)}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let third = format!("{}.wild.test", r.json["id"].as_str().expect("id"));
    let t = Instant::now();
    let (s4, _) = wait_served(&node, &third, &root);
    assert_eq!(s4, s1);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

#[test]
fn a_failing_dns_hook_backs_off_and_says_why() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let pebble = support::Pebble::start(free_port(), free_port());
    let hook = pebble.dns_hook(true);
    let root = fx.path().join("pebble-root.pem");
    std::fs::write(&root, pebble.root().to_pem().expect("pem")).expect("root");
    let node = start(&fx, &pebble, &format!("dns_hook = {hook:?}"), &up);
    let key = operator_key(&fx.path().join("rpaas.toml"));
    let api = Api::new(node.control.expect("control"), &key);
    let t = Instant::now();
    let cert = loop {
        let st = api.get("/v1/instances/outside/status");
        assert_eq!(st.status, 200, "{}", st.text);
        if st.json["cert"]["last_error"].is_string() {
            break st.json["cert"].clone();
        }
        assert!(t.elapsed() < Duration::from_secs(60), "{}", st.text);
        std::thread::sleep(Duration::from_millis(250));
    };
    let err = cert["last_error"].as_str().expect("last_error");
    assert!(err.contains("zone for"), "the hook's own message: {err}");
    assert!(cert["next_attempt"].is_string(), "{cert}");
    assert_ne!(cert["state"], "valid", "{cert}");
    // Still serving (self-signed) while it backs off.
    let mut tls = Tls::new("portal.other.test", &root);
    tls.verify = false;
    let r = client::get(
        node.listeners[0],
        &tls,
        "portal.other.test",
        "/LabTech/Agent.aspx",
        "",
    )
    .expect("get");
    assert_eq!(r.status, 200);
}

#[test]
fn rpaas_check_names_the_acme_field_that_is_wrong() {
    let fx = Fixture::new();
    let hook = fx.path().join("not-executable.sh");
    std::fs::write(&hook, "#!/bin/sh\n").expect("hook");
    let cases = [
        (
            "[control]\nlisten = \"127.0.0.1:0\"\n[acme]\nchallenge = \"dns-01\"\nwildcard = true\ndns_hook = \"/bin/true\"\n",
            "acme.wildcard",
            "base_domain",
        ),
        (
            "[control]\nlisten = \"127.0.0.1:0\"\n[acme]\nchallenge = \"dns-01\"\ndns_hook = \"not-executable.sh\"\n",
            "acme.dns_hook",
            "not an executable file",
        ),
        (
            "[control]\nlisten = \"127.0.0.1:0\"\n[acme]\nca = \"missing-root.pem\"\n",
            "acme.ca",
            "cannot read",
        ),
        (
            "[control]\nlisten = \"127.0.0.1:0\"\n[acme]\nchallenge = \"http-01\"\n",
            "acme.challenge",
            "tls = \"none\"",
        ),
        ("[acme]\n", "node.data_dir", "is required"),
    ];
    for (table, key, reason) in cases {
        let node = if key == "node.data_dir" {
            String::new()
        } else {
            format!("data_dir = {:?}", fx.path().join("data"))
        };
        let cfg = format!(
            "[node]\n{node}\n[[listener]]\naddress = \"127.0.0.1:0\"\n{table}\n[[instance]]\nid = \"a\"\nhostnames = [\"a.example.net\"]\ncert = \"acme\"\nupstream = \"http://127.0.0.1:8080\"\n"
        );
        let p = fx.path().join("rpaas.toml");
        std::fs::write(&p, &cfg).expect("write");
        let out = std::process::Command::new(bin())
            .args(["check", "--config"])
            .arg(&p)
            .output()
            .expect("rpaas check");
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{cfg}\n{text}");
        assert!(
            text.contains(&format!(": {key}: ")) && text.contains(reason),
            "{key} / {reason} expected:\n{text}"
        );
    }
}
