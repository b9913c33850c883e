//! A fleet: three real nodes on one real PostgreSQL (a throwaway cluster of Debian's
//! `postgresql`). A change through one node is applied by the others within 1 s; concurrent
//! writes with the same `If-Match` have one winner; a ban on one node refuses the client on
//! another; PostgreSQL stopped under load fails no proxied request and turns writes into 503;
//! a node restarted while the database is down serves its cached snapshot; the database back,
//! a new change reaches every node; `/v1/nodes` shows a node that stopped.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use test_support::api::Api;
use test_support::postgres::Postgres;

const BASE: &str = "fleet.test";

fn config(fx: &Fixture, name: &str, db: &str) -> PathBuf {
    let dir = fx.path().join(name);
    std::fs::create_dir_all(&dir).expect("node dir");
    let text = format!(
        r#"
[node]
admin = "127.0.0.1:0"
data_dir = {data:?}

[node.limits]
ban_after = 3
ban_window = "1m"
ban_time = "10m"

[[listener]]
address = "127.0.0.1:0"
client_ip = "x-forwarded-for"
trusted_proxies = ["127.0.0.0/8"]

[control]
listen = "127.0.0.1:0"
store = "{db}"
node_id = "{name}"
base_domain = "{BASE}"
poll_interval = "1s"
"#,
        data = dir.join("data"),
    );
    let p = dir.join("rpaas.toml");
    std::fs::write(&p, text).expect("write config");
    p
}

/// A CA file (instances serve self-signed certificates here: the client does not verify).
fn ca() -> PathBuf {
    static CA: std::sync::OnceLock<(tempfile::TempDir, PathBuf)> = std::sync::OnceLock::new();
    CA.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = Ca::new("unused").write_cert(dir.path(), "ca");
        (dir, f)
    })
    .1
    .clone()
}

fn get(node: &Node, host: &str, ip: &str, path: &str) -> Result<u16, String> {
    let ca = ca();
    let mut tls = Tls::new(host, &ca);
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

/// How long until `node` answers `want` (panics after `limit`).
fn wait_for(node: &Node, host: &str, ip: &str, path: &str, want: u16, limit: Duration) -> Duration {
    let t = Instant::now();
    let mut last = Ok(0);
    while t.elapsed() < limit {
        last = get(node, host, ip, path);
        if last == Ok(want) {
            return t.elapsed();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{host}{path} from {ip} never answered {want} (last: {last:?})");
}

/// A TLS 1.3 request to `node` offering `session`: whether it resumed, and the session to
/// offer next (read after the response, when the tickets have arrived).
#[allow(unsafe_code)]
fn tls13_request(
    node: &Node,
    host: &str,
    session: Option<&openssl::ssl::SslSession>,
) -> (bool, openssl::ssl::SslSession) {
    use std::io::{Read, Write};
    let mut b = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client())
        .expect("connector");
    b.set_verify(openssl::ssl::SslVerifyMode::NONE);
    b.set_min_proto_version(Some(openssl::ssl::SslVersion::TLS1_3))
        .expect("version");
    let mut ssl = b
        .build()
        .configure()
        .expect("configure")
        .verify_hostname(false)
        .into_ssl(host)
        .expect("ssl");
    if let Some(s) = session {
        // SAFETY: a session from a connection of this test (refcounted by OpenSSL).
        unsafe { ssl.set_session(s).expect("set_session") };
    }
    let tcp = std::net::TcpStream::connect(node.listeners[0]).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(20))).ok();
    let mut tls = openssl::ssl::SslStream::new(ssl, tcp).expect("stream");
    tls.connect().expect("handshake");
    write!(
        tls,
        "GET /automate/ HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out);
    let r = (
        tls.ssl().session_reused(),
        tls.ssl().session().expect("session").to_owned(),
    );
    let _ = tls.shutdown();
    r
}

fn acl_put(api: &Api, id: &str, acl: serde_json::Value) -> test_support::api::Answer {
    let etag = api
        .get(&format!("/v1/instances/{id}"))
        .header("etag")
        .expect("etag")
        .to_string();
    api.call(
        "PUT",
        &format!("/v1/instances/{id}/acl"),
        Some(&acl),
        &format!("If-Match: {etag}\r\n"),
    )
}

#[test]
fn three_nodes_on_one_postgresql() {
    let pg = Postgres::start();
    let up = Upstream::start();
    let fx = Fixture::new();
    let cfgs: Vec<PathBuf> = ["a", "b", "c"]
        .iter()
        .map(|n| config(&fx, n, &pg.url))
        .collect();
    let key = operator_key(&cfgs[0]);

    // Three nodes start together: the migrations run once.
    let mut nodes: Vec<Option<Node>> = cfgs
        .iter()
        .map(|c| Some(Node::start_file(bin(), c)))
        .collect();
    let node = |nodes: &Vec<Option<Node>>, i: usize| -> Api {
        Api::new(
            nodes[i]
                .as_ref()
                .and_then(|n| n.control)
                .expect("control address"),
            &key,
        )
    };
    let a = node(&nodes, 0);
    assert_eq!(
        a.post("/v1/partners", json!({"id": "p1", "name": "Acme IT"}))
            .status,
        201
    );
    let r = a.post(
        "/v1/instances",
        json!({"partner": "p1", "upstream": format!("http://{}", up.addr), "deployment": "agent-only"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json["id"].as_str().expect("id").to_string();
    let host = format!("{id}.{BASE}");
    for n in nodes.iter().flatten() {
        let took = wait_for(
            n,
            &host,
            "192.0.2.10",
            "/automate/",
            403,
            Duration::from_secs(5),
        );
        assert!(took < Duration::from_secs(2), "provisioned after {took:?}");
    }

    // A TLS session from A resumes on B and C: the ticket keys derive from the fleet's
    // secret in the store.
    let session = tls13_request(nodes[0].as_ref().expect("a"), &host, None).1;
    for n in nodes.iter().flatten().skip(1) {
        assert!(
            tls13_request(n, &host, Some(&session)).0,
            "a ticket from node a resumes on the others"
        );
    }

    // A change through A: applied on B and C within 1 s.
    let r = acl_put(
        &a,
        &id,
        json!({"deployment": "agent-only", "trusted": [{"cidr": "192.0.2.0/24", "note": "office"}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    for n in nodes.iter().flatten().skip(1) {
        let took = wait_for(
            n,
            &host,
            "192.0.2.10",
            "/automate/",
            200,
            Duration::from_secs(5),
        );
        assert!(took < Duration::from_secs(1), "applied after {took:?}");
    }

    // The same If-Match through two nodes at once: exactly one wins.
    let etag = a
        .get(&format!("/v1/instances/{id}"))
        .header("etag")
        .expect("etag")
        .to_string();
    let racers: Vec<_> = [node(&nodes, 1), node(&nodes, 2)]
        .into_iter()
        .enumerate()
        .map(|(i, api)| {
            let (id, etag) = (id.clone(), etag.clone());
            std::thread::spawn(move || {
                api.call(
                    "PUT",
                    &format!("/v1/instances/{id}/acl"),
                    Some(&json!({"deployment": "agent-only", "trusted": [format!("192.0.2.0/24"), format!("10.{i}.0.0/16")]})),
                    &format!("If-Match: {etag}\r\n"),
                )
                .status
            })
        })
        .collect();
    let mut statuses: Vec<u16> = racers
        .into_iter()
        .map(|t| t.join().expect("racer"))
        .collect();
    statuses.sort();
    assert_eq!(statuses, vec![200, 412]);

    // A ban decided on A refuses the client on C within 2 s (agent paths are open to all).
    let attacker = "203.0.113.66";
    assert_eq!(
        get(
            nodes[2].as_ref().expect("c"),
            &host,
            attacker,
            "/LabTech/Agent.aspx"
        ),
        Ok(200)
    );
    for _ in 0..4 {
        let _ = get(
            nodes[0].as_ref().expect("a"),
            &host,
            attacker,
            "/LabTech/Agent.aspx?id=1%27%20UNION%20SELECT%20password%20FROM%20users--",
        );
    }
    let took = wait_for(
        nodes[2].as_ref().expect("c"),
        &host,
        attacker,
        "/LabTech/Agent.aspx",
        403,
        Duration::from_secs(5),
    );
    assert!(took < Duration::from_secs(2), "ban shared after {took:?}");

    // Every node in step.
    let list = a.get("/v1/nodes");
    assert_eq!(list.status, 200, "{}", list.text);
    let ids: Vec<&str> = list
        .json
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["id"].as_str())
        .collect();
    assert_eq!(ids, vec!["a", "b", "c"]);

    // PostgreSQL goes away under load: no proxied request fails; writes answer 503.
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let targets: Vec<std::net::SocketAddr> =
        nodes.iter().flatten().map(|n| n.listeners[0]).collect();
    let loader = {
        let (stop, sent, failed, host) = (stop.clone(), sent.clone(), failed.clone(), host.clone());
        std::thread::spawn(move || {
            let ca = ca();
            let mut tls = Tls::new(&host, &ca);
            tls.verify = false;
            let end = Instant::now() + Duration::from_secs(30);
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) && Instant::now() < end {
                let r = client::get(
                    targets[i % targets.len()],
                    &tls,
                    &host,
                    "/automate/",
                    "X-Forwarded-For: 192.0.2.10\r\n",
                );
                i += 1;
                sent.fetch_add(1, Ordering::Relaxed);
                if r.map(|r| r.status) != Ok(200) {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    pg.stop();
    let r = a.post("/v1/partners", json!({"id": "p2", "name": "Other"}));
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(!r.error_fields().is_empty(), "a reason: {}", r.text);
    let r = acl_put(&a, &id, json!({"deployment": "mixed"}));
    assert_eq!(
        r.status, 503,
        "an ACL change while the database is down: {}",
        r.text
    );
    // Reads of what the node knows still answer: the instance, its ACL, the live explain.
    let r = a.get(&format!("/v1/instances/{id}"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["id"], id.as_str());
    assert_eq!(a.get(&format!("/v1/instances/{id}/acl")).status, 200);
    let r = a.post(
        &format!("/v1/instances/{id}/explain"),
        json!({"ip": "192.0.2.10", "path": "/automate/"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["verdict"], "ALLOW", "{}", r.text);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    loader.join().expect("load loop");
    assert!(sent.load(Ordering::Relaxed) > 20, "the load loop ran");
    assert_eq!(failed.load(Ordering::Relaxed), 0, "proxied requests failed");

    // B restarts while the database is down: it serves its cached snapshot.
    nodes[1] = None;
    nodes[1] = Some(Node::start_file(bin(), &cfgs[1]));
    let b = nodes[1].as_ref().expect("b");
    assert_eq!(get(b, &host, "192.0.2.10", "/automate/"), Ok(200));
    assert!(
        b.log_count(|v| v["event"] == "serving_cache") > 0,
        "B says it serves the cache"
    );

    // C stops for good (its heartbeat stops).
    nodes[2] = None;

    // The database is back: a new change reaches the nodes without anyone touching them.
    pg.start_again();
    let t = Instant::now();
    let r = loop {
        let r = acl_put(&a, &id, json!({"deployment": "agent-only"}));
        if r.status == 200 || t.elapsed() > Duration::from_secs(15) {
            break r;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(r.status, 200, "{}", r.text);
    for n in nodes.iter().flatten() {
        wait_for(
            n,
            &host,
            "192.0.2.10",
            "/automate/",
            403,
            Duration::from_secs(10),
        );
    }

    // /v1/nodes: A and B alive and in step, C not heard from.
    let t = Instant::now();
    loop {
        let list = a.get("/v1/nodes");
        assert_eq!(list.status, 200, "{}", list.text);
        let by_id = |id: &str| {
            list.json
                .as_array()
                .and_then(|l| l.iter().find(|n| n["id"] == id).cloned())
                .unwrap_or_default()
        };
        let (na, nb, nc) = (by_id("a"), by_id("b"), by_id("c"));
        if na["alive"] == true
            && na["in_step"] == true
            && nb["alive"] == true
            && nb["in_step"] == true
            && nc["alive"] == false
        {
            assert!(nc["last_heartbeat"].as_i64() > Some(0));
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "nodes never showed C stopped: {}",
            list.text
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
