//! ACME in a fleet: two real nodes on one real PostgreSQL (a throwaway cluster of Debian's
//! `postgresql`) and a real CA (Debian's `pebble`). The CA validates on node A's listener
//! only; whichever node takes the issuer lease orders, the challenge response is in the store
//! so node A answers it either way, the pair is ordered once, and both nodes serve it.

mod common;
#[allow(unused_imports)]
#[path = "../../rpaas-acme/tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use test_support::api::Api;
use test_support::postgres::Postgres;

fn config(fx: &Fixture, name: &str, db: &str, port: u16, pebble: &support::Pebble) -> PathBuf {
    let dir = fx.path().join(name);
    std::fs::create_dir_all(&dir).expect("node dir");
    let text = format!(
        r#"
[node]
admin = "127.0.0.1:0"
data_dir = {data:?}

[[listener]]
address = "127.0.0.1:{port}"

[control]
listen = "127.0.0.1:0"
store = "{db}"
node_id = "{name}"
base_domain = "fleet.acme.test"
poll_interval = "1s"

[acme]
directory = "{directory}"
ca = {ca:?}
"#,
        data = dir.join("data"),
        directory = pebble.directory,
        ca = pebble.https_ca,
    );
    let p = dir.join("rpaas.toml");
    std::fs::write(&p, text).expect("write config");
    p
}

fn wait_serial(node: &Node, host: &str, root: &Path) -> String {
    wait_served_leaf(node.listeners[0], host, root).0
}

#[test]
fn two_nodes_on_postgresql_order_once_and_serve_the_same_pair() {
    let pg = Postgres::start();
    let up = Upstream::start();
    let fx = Fixture::new();
    let port_a = free_port();
    let pebble = support::Pebble::start(port_a, free_port());
    let root = fx.path().join("pebble-root.pem");
    std::fs::write(&root, pebble.root().to_pem().expect("pem")).expect("root");
    let a_cfg = config(&fx, "a", &pg.url, port_a, &pebble);
    let b_cfg = config(&fx, "b", &pg.url, 0, &pebble);
    let key = operator_key(&a_cfg);
    let a = Node::start_file(bin(), &a_cfg);
    let b = Node::start_file(bin(), &b_cfg);

    // Provisioned through B; the CA's validations reach A only.
    let api = Api::new(b.control.expect("control"), &key);
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
    let host = format!("{id}.fleet.acme.test");
    let t = Instant::now();
    let sa = wait_serial(&a, &host, &root);
    let sb = wait_serial(&b, &host, &root);
    let acme_lines = |n: &Node| -> Vec<String> {
        n.logs
            .lock()
            .map(|l| {
                l.iter()
                    .filter(|v| v["target"] == "rpaas::acme")
                    .map(|v| v.to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "both nodes served it after {:?}\na: {:#?}\nb: {:#?}",
        t.elapsed(),
        acme_lines(&a),
        acme_lines(&b)
    );
    assert_eq!(sa, sb, "both nodes serve the one pair");
    assert!(a.log_count(|v| v["event"] == "tls_alpn_validation" && v["answered"] == true) > 0);
    // One issuance for the fleet: an ECDSA and an RSA certificate, by one node.
    let issued = |n: &Node| n.log_count(|v| v["message"] == "certificate issued");
    let (by_a, by_b) = (issued(&a), issued(&b));
    eprintln!("certificates issued by node a: {by_a}, by node b: {by_b}");
    assert_eq!(by_a + by_b, 2, "issued once for the fleet");

    // Both nodes report it valid; a client on either verifies the chain and is proxied.
    for (n, node) in [("a", &a), ("b", &b)] {
        let st = Api::new(node.control.expect("control"), &key)
            .get(&format!("/v1/instances/{id}/status"));
        assert_eq!(st.status, 200, "{n}: {}", st.text);
        assert_eq!(st.json["cert"]["state"], "valid", "{n}: {}", st.text);
        let tls = Tls::new(&host, &root);
        let r =
            client::get(node.listeners[0], &tls, &host, "/LabTech/Agent.aspx", "").expect("get");
        assert_eq!(r.status, 200, "{n}");
    }
}
