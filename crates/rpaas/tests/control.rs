//! The control plane against a real node and a real SQLite file: provisioning served within
//! 2 s, partner isolation, ACL changes applied within 1 s under load with no failed request,
//! revisions, validation (nothing stored on bad input), operator-only fields, audit, keys
//! (revoked, expired, never stored in clear), restart persistence, DELETE.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use test_support::api::Api;

const BASE: &str = "rpaas.test";

fn config(fx: &Fixture, up: std::net::SocketAddr) -> String {
    format!(
        r#"
[node]
admin = "127.0.0.1:0"
data_dir = {data:?}

[[listener]]
address = "127.0.0.1:0"
client_ip = "x-forwarded-for"
trusted_proxies = ["127.0.0.0/8"]

[control]
listen = "127.0.0.1:0"
base_domain = "{BASE}"
poll_interval = "1s"

[[instance]]
id = "fromfile"
hostnames = ["{HOST_A}"]
{cert}upstream = "http://{up}"
"#,
        data = fx.path().join("data"),
        cert = fx.cert_lines("a", HOST_A)
    )
}

fn write_config(fx: &Fixture, up: std::net::SocketAddr) -> std::path::PathBuf {
    let p = fx.path().join("rpaas.toml");
    std::fs::write(&p, config(fx, up)).expect("write config");
    p
}

/// A GET through the node's listener to `host` from `ip`; the status.
fn through(node: &Node, fx: &Fixture, host: &str, ip: &str, path: &str) -> Result<u16, String> {
    let mut tls = fx.tls(host);
    tls.verify = false;
    client::get(
        node.listeners[0],
        &tls,
        host,
        path,
        &format!("X-Forwarded-For: {ip}\r\n"),
    )
    .map(|r| r.status)
}

fn wait_status(node: &Node, fx: &Fixture, host: &str, ip: &str, path: &str, want: u16) -> Duration {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(5) {
        if through(node, fx, host, ip, path) == Ok(want) {
            return t.elapsed();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{host}{path} from {ip} never answered {want}");
}

#[test]
fn provision_isolate_change_and_audit() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let cfg = write_config(&fx, up.addr);
    let ops_key = cli_key(&cfg, &["--name", "ops", "--scope", "operator"]);
    let node = Node::start(bin(), fx.path(), &config(&fx, up.addr));
    let ops = Api::new(node.control.expect("control address"), &ops_key);

    // No key, a bad key: 401.
    assert_eq!(
        Api {
            key: None,
            ..ops.clone()
        }
        .get("/v1/instances")
        .status,
        401
    );
    assert_eq!(
        ops.with_key("rpk_not-a-real-key-at-all-000000000000")
            .get("/v1/instances")
            .status,
        401
    );

    for (id, name) in [("p1", "Acme IT"), ("p2", "Other MSP")] {
        let r = ops.post("/v1/partners", json!({"id": id, "name": name}));
        assert_eq!(r.status, 201, "{}", r.text);
    }
    assert_eq!(
        ops.post("/v1/partners", json!({"id": "p1", "name": "again"}))
            .status,
        409
    );

    // Provision: 201 with a fresh id and hostname, served within 2 s.
    let r = ops.post(
        "/v1/instances",
        json!({"partner": "p1", "upstream": format!("http://{}", up.addr)}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json["id"].as_str().expect("id").to_string();
    assert!(
        id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    let host = format!("{id}.{BASE}");
    assert_eq!(r.json["hostnames"][0], host.as_str());
    assert_eq!(r.json["certificate"], "self-signed");
    let rev = r.json["revision"].as_i64().expect("revision");
    assert_eq!(r.header("etag"), Some(format!("\"{rev}\"").as_str()));
    let served = wait_status(&node, &fx, &host, "192.0.2.10", "/automate/", 200);
    assert!(served < Duration::from_secs(2), "served after {served:?}");

    let r2 = ops.post(
        "/v1/instances",
        json!({"partner": "p2", "upstream": format!("http://{}", up.addr)}),
    );
    assert_eq!(r2.status, 201, "{}", r2.text);
    let other = r2.json["id"].as_str().expect("id").to_string();

    // Partner keys: one made by the CLI while the node runs, one by the API.
    let p1_key = cli_key(
        &cfg,
        &[
            "--name",
            "acme-admin",
            "--scope",
            "partner",
            "--partner",
            "p1",
        ],
    );
    let p1 = ops.with_key(&p1_key);
    let r = ops.post(
        "/v1/keys",
        json!({"name": "other", "scope": "partner", "partner": "p2"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let p2 = ops.with_key(r.json["key"].as_str().expect("key"));

    // Isolation: p1 sees only its instance; p2's is 404 for every verb.
    let list = p1.get("/v1/instances");
    assert_eq!(list.status, 200);
    let ids: Vec<&str> = list
        .json
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(ids, vec![id.as_str()]);
    let o = format!("/v1/instances/{other}");
    for (m, p) in [
        ("GET", o.clone()),
        ("PATCH", o.clone()),
        ("DELETE", o.clone()),
        ("GET", format!("{o}/acl")),
        ("PUT", format!("{o}/acl")),
        ("GET", format!("{o}/status")),
        ("GET", format!("{o}/decisions")),
        ("POST", format!("{o}/explain")),
        ("GET", format!("{o}/audit")),
        ("GET", "/v1/instances/fromfile".to_string()),
    ] {
        let body = json!({"deployment": "mixed", "ip": "1.2.3.4", "path": "/"});
        let r = p1.call(m, &p, Some(&body), "");
        assert_eq!(r.status, 404, "{m} {p}: {}", r.text);
    }
    // Operator endpoints.
    assert_eq!(p1.get("/v1/partners").status, 403);
    assert_eq!(
        p1.post(
            "/v1/instances",
            json!({"partner": "p1", "upstream": "http://x"})
        )
        .status,
        403
    );
    // A partner key may not mint a wider key.
    assert_eq!(
        p1.post("/v1/keys", json!({"name": "x", "scope": "operator"}))
            .status,
        403
    );
    assert_eq!(
        p1.post(
            "/v1/keys",
            json!({"name": "x", "scope": "partner", "partner": "p2"})
        )
        .status,
        403
    );
    // File instances are read-only by API.
    assert_eq!(
        ops.patch("/v1/instances/fromfile", json!({"deployment": "mixed"}))
            .status,
        409
    );
    let listed = ops.get("/v1/instances");
    assert!(listed
        .json
        .as_array()
        .expect("list")
        .iter()
        .any(|i| i["source"] == "file"));

    // Operator-only fields are 403 for partner keys, by field.
    let me = format!("/v1/instances/{id}");
    for body in [
        json!({"upstream": "http://10.0.0.1"}),
        json!({"bind": "10.0.0.2"}),
        json!({"cert": "acme"}),
        json!({"hostnames": ["evil.example.net"]}),
        json!({"read_timeout": "1s"}),
        json!({"udp": [{"listen": "0.0.0.0:75", "target": "10.0.0.5:75"}]}),
    ] {
        let r = p1.patch(&me, body.clone());
        assert_eq!(r.status, 403, "{body}: {}", r.text);
        let r = p1.put(&format!("{me}/acl"), body.clone());
        assert_eq!(r.status, 403, "{body}: {}", r.text);
    }

    // Bad input: 422 naming the field; nothing stored.
    let acl_before = p1.get(&format!("{me}/acl"));
    let bad: Vec<(serde_json::Value, &str)> = vec![
        (json!({"trusted": ["10.0.0.1/8"]}), "acl.trusted[0]"),
        (json!({"trusted": ["not-a-network"]}), "acl.trusted[0]"),
        (json!({"deny": [{"cidr": "300.0.0.1"}]}), "acl.deny[0].cidr"),
        (json!({"countries": ["XX1"]}), "acl.countries[0]"),
        (json!({"deployment": "everything"}), "acl.deployment"),
        (
            json!({"class": {"nope": {"access": "open"}}}),
            "acl.class.nope",
        ),
        (
            json!({"class": {"api": {"access": "sometimes"}}}),
            "acl.class.api.access",
        ),
        (
            json!({"class": {"api": {"paths": ["/x?y"]}}}),
            "acl.class.api.paths[0]",
        ),
        (json!({"ips": {"mode": "blok"}}), "acl.ips.mode"),
        (json!({"ips": {"disable": [123]}}), "acl.ips.disable[0]"),
        (json!({"ips": {"threshold": 0}}), "acl.ips.threshold"),
        (json!({"restrict": [{"name": "x"}]}), "acl.restrict[0]"),
        (json!({"unknown_field": 1}), "acl.unknown_field"),
    ];
    for (body, field) in &bad {
        let r = p1.put(&format!("{me}/acl"), body.clone());
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        assert!(
            r.error_fields().iter().any(|f| f == field),
            "{body}: want {field}, got {:?}",
            r.error_fields()
        );
    }
    assert_eq!(p1.get(&format!("{me}/acl")).json, acl_before.json);
    assert_eq!(p1.get(&me).json["revision"].as_i64(), Some(rev));

    // An ACL change applies within 1 s under load, with no failed request.
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(AtomicUsize::new(0));
    let loader = {
        let (stop, failed, sent) = (stop.clone(), failed.clone(), sent.clone());
        let listener = node.listeners[0];
        let host = host.clone();
        let ca = fx.ca_file.clone();
        std::thread::spawn(move || {
            let mut tls = test_support::client::Tls::new(&host, &ca);
            tls.verify = false;
            let end = Instant::now() + Duration::from_secs(20);
            while !stop.load(Ordering::Relaxed) && Instant::now() < end {
                // The MSP's office: trusted before and after the change.
                let r = client::get(
                    listener,
                    &tls,
                    &host,
                    "/automate/",
                    "X-Forwarded-For: 198.51.100.7\r\n",
                );
                sent.fetch_add(1, Ordering::Relaxed);
                if r.map(|r| r.status) != Ok(200) {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let etag = p1.get(&me).header("etag").expect("etag").to_string();
    let r = p1.call(
        "PUT",
        &format!("{me}/acl"),
        Some(&json!({
            "deployment": "agent-only",
            "trusted": [{"cidr": "198.51.100.0/24", "note": "Acme office"}]
        })),
        &format!("If-Match: {etag}\r\n"),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let new_rev = r.json["revision"].as_i64().expect("revision");
    assert!(new_rev > rev);
    let applied = wait_status(&node, &fx, &host, "192.0.2.10", "/automate/", 403);
    assert!(
        applied < Duration::from_secs(1),
        "applied after {applied:?}"
    );
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    loader.join().expect("load loop");
    assert!(sent.load(Ordering::Relaxed) > 10, "the load loop ran");
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed during the change"
    );

    // A stale revision: 412, nothing changed.
    let r = p1.call(
        "PUT",
        &format!("{me}/acl"),
        Some(&json!({"deployment": "all-traffic"})),
        &format!("If-Match: {etag}\r\n"),
    );
    assert_eq!(r.status, 412, "{}", r.text);
    assert_eq!(
        p1.get(&format!("{me}/acl")).json["deployment"],
        "agent-only"
    );

    // Refusals, status and explain see what the node did.
    let refused = through(&node, &fx, &host, "192.0.2.10", "/automate/").expect("request");
    assert_eq!(refused, 403);
    let t = Instant::now();
    let rows = loop {
        let d = p1.get(&format!("{me}/decisions?ip=192.0.2.10"));
        assert_eq!(d.status, 200, "{}", d.text);
        if d.json.as_array().is_some_and(|a| !a.is_empty()) || t.elapsed() > Duration::from_secs(5)
        {
            break d.json;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(rows[0]["reason"], "acl:web_control_center", "{rows}");
    assert_eq!(rows[0]["ip"], "192.0.2.10");
    let e = p1.post(
        &format!("{me}/explain"),
        json!({"ip": "192.0.2.10", "path": "/automate/"}),
    );
    assert_eq!(e.status, 200, "{}", e.text);
    assert_eq!(e.json["reason"], "acl:web_control_center");
    assert_eq!(e.json["status"], 403);
    let st = p1.get(&format!("{me}/status"));
    assert_eq!(st.status, 200, "{}", st.text);
    assert!(
        st.json["last_hour"]["requests"].as_i64().unwrap_or(0) > 0,
        "{}",
        st.text
    );
    assert!(
        st.json["last_hour"]["refusals_by_reason"]["acl:web_control_center"]
            .as_i64()
            .unwrap_or(0)
            > 0,
        "{}",
        st.text
    );
    assert_eq!(st.json["applied_revision"].as_i64(), Some(new_rev));

    // The audit trail: who, from where, before and after.
    let audit = p1.get(&format!("{me}/audit"));
    let rows = audit.json.as_array().expect("audit");
    let acl = rows
        .iter()
        .find(|a| a["action"] == "acl.update")
        .expect("acl row");
    assert_eq!(acl["actor"], "acme-admin");
    assert_eq!(acl["source_ip"], "127.0.0.1");
    assert_eq!(acl["after"]["deployment"], "agent-only");
    assert_eq!(acl["before"].get("deployment"), None);
    assert!(rows
        .iter()
        .any(|a| a["action"] == "instance.create" && a["actor"] == "ops"));

    // Keys: revoked and expired are 401 at once; keys are not in the database file.
    let r = ops.post(
        "/v1/keys",
        json!({"name": "short", "scope": "partner", "partner": "p1", "expires": "1s"}),
    );
    assert_eq!(r.status, 201);
    let short = ops.with_key(r.json["key"].as_str().expect("key"));
    assert_eq!(short.get("/v1/instances").status, 200);
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(short.get("/v1/instances").status, 401);
    let keys = p2.get("/v1/keys");
    let p2_id = keys.json[0]["id"].as_str().expect("id").to_string();
    assert_eq!(p2.delete(&format!("/v1/keys/{p2_id}")).status, 204);
    assert_eq!(p2.get("/v1/instances").status, 401);
    let mut db = Vec::new();
    for f in ["rpaas.db", "rpaas.db-wal"] {
        db.extend(std::fs::read(fx.path().join("data").join(f)).unwrap_or_default());
    }
    for k in [&ops_key, &p1_key] {
        let needle = &k.as_bytes()[8..];
        assert!(
            !db.windows(needle.len()).any(|w| w == needle),
            "a key is in the database file"
        );
    }

    // DELETE stops serving the hostname.
    assert_eq!(ops.delete(&format!("/v1/instances/{other}")).status, 204);
    let gone = format!("{other}.{BASE}");
    let t = Instant::now();
    while through(&node, &fx, &gone, "192.0.2.10", "/").is_ok()
        && t.elapsed() < Duration::from_secs(2)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        through(&node, &fx, &gone, "192.0.2.10", "/").is_err(),
        "still served"
    );
    assert_eq!(ops.get(&format!("/v1/instances/{other}")).status, 404);

    // The OpenAPI document is there and names the paths.
    let doc = ops.get("/v1/openapi.json");
    assert_eq!(doc.status, 200);
    assert!(
        doc.json["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc.text
    );
    assert!(doc.json["paths"]["/v1/instances/{id}/acl"].is_object());
}

#[test]
fn api_instances_survive_a_restart() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let cfg = write_config(&fx, up.addr);
    let key = cli_key(&cfg, &["--name", "ops", "--scope", "operator"]);
    let node = Node::start(bin(), fx.path(), &config(&fx, up.addr));
    let ops = Api::new(node.control.expect("control"), &key);
    assert_eq!(
        ops.post("/v1/partners", json!({"id": "p1", "name": "Acme"}))
            .status,
        201
    );
    let r = ops.post(
        "/v1/instances",
        json!({"partner": "p1", "upstream": format!("http://{}", up.addr), "deployment": "agent-only"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let host = r.json["hostnames"][0].as_str().expect("host").to_string();
    wait_status(&node, &fx, &host, "192.0.2.10", "/LabTech/Agent.aspx", 200);
    drop(node);

    let node = Node::start(bin(), fx.path(), &config(&fx, up.addr));
    assert_eq!(
        through(&node, &fx, &host, "192.0.2.10", "/LabTech/Agent.aspx"),
        Ok(200)
    );
    assert_eq!(
        through(&node, &fx, &host, "192.0.2.10", "/automate/"),
        Ok(403)
    );
    let ops = Api::new(node.control.expect("control"), &key);
    let list = ops.get("/v1/instances");
    assert_eq!(list.json.as_array().map(Vec::len), Some(2));
}
