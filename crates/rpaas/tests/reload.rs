//! SIGHUP reload (good and bad files) while traffic runs, and SIGTERM drain.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

fn config(fx: &Fixture, up: std::net::SocketAddr, with_b: bool, trusted: &str) -> String {
    let mut c = format!(
        r#"
[node]
admin = "127.0.0.1:0"
drain_timeout = "5s"
[[listener]]
address = "127.0.0.1:0"
client_ip = "x-forwarded-for"
trusted_proxies = ["{trusted}"]
[[instance]]
id = "a"
hostnames = ["{HOST_A}"]
cert = "a.pem"
key = "a.key"
upstream = "http://{up}"
"#
    );
    if with_b {
        c.push_str(&format!(
            "[[instance]]\nid = \"b\"\nhostnames = [\"{HOST_B}\"]\ncert = \"b.pem\"\nkey = \"b.key\"\nupstream = \"http://{up}\"\n"
        ));
    }
    let _ = fx;
    c
}

#[test]
fn reload_good_and_bad_files_while_requests_run() {
    let up = Upstream::start();
    let fx = Fixture::new();
    fx.ca.write_leaf(fx.path(), "a", &[HOST_A]);
    fx.ca.write_leaf(fx.path(), "b", &[HOST_B]);
    let node = Node::start(bin(), fx.path(), &config(&fx, up.addr, false, "10.0.0.0/8"));
    let addr = node.listeners[0];

    // Background load: bounded in count and time, every failure counted.
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let ca = fx.ca_file.clone();
    let load = {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(20);
            for _ in 0..5000 {
                if stop.load(Ordering::Relaxed) || Instant::now() > end {
                    break;
                }
                let tls = Tls::new(HOST_A, &ca);
                match client::get(addr, &tls, HOST_A, "/automate/", "") {
                    Ok(r) if r.status == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        })
    };
    // A long request in flight across both reloads.
    let ca2 = fx.ca_file.clone();
    let slow = std::thread::spawn(move || {
        let tls = Tls::new(HOST_A, &ca2);
        client::get(addr, &tls, HOST_A, "/slow?ms=1500", "").map(|r| r.status)
    });
    std::thread::sleep(Duration::from_millis(200));

    assert!(
        client::connect(addr, &fx.tls(HOST_B)).is_err(),
        "b not configured yet"
    );

    // Good file: adds instance b and trusts the test client as a proxy.
    node.write_config(&config(&fx, up.addr, true, "127.0.0.0/8"));
    node.signal(libc::SIGHUP);
    node.wait_log(Duration::from_secs(10), |v| v["event"] == "reloaded")
        .expect("reloaded");
    let r = client::get(
        addr,
        &fx.tls(HOST_B),
        HOST_B,
        "/echo",
        "X-Forwarded-For: 203.0.113.50\r\n",
    )
    .expect("b after reload");
    assert_eq!(r.status, 200);
    assert_eq!(
        up.seen_path("/echo")[0].header("x-forwarded-for"),
        Some("203.0.113.50")
    );

    // Bad file: rejected with file, key and reason; the previous config keeps serving.
    node.write_config(&config(&fx, up.addr, true, "10.0.0.0/33"));
    node.signal(libc::SIGHUP);
    let line = node
        .wait_log(Duration::from_secs(10), |v| v["event"] == "reload_rejected")
        .expect("rejected");
    let reason = line["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("rpaas.toml"), "{reason}");
    assert!(
        reason.contains("listener[0].trusted_proxies[0]"),
        "{reason}"
    );
    assert!(reason.contains("not a CIDR"), "{reason}");
    let r = client::get(addr, &fx.tls(HOST_B), HOST_B, "/automate/", "").expect("b still served");
    assert_eq!(r.status, 200);
    let health = node.admin_get("/healthz");
    assert!(health.contains("\"generation\":2"), "{health}");
    let metrics = node.admin_get("/metrics");
    assert!(
        metrics.contains("rpaas_config_reloads_total{result=\"rejected\"} 1"),
        "{metrics}"
    );

    assert_eq!(
        slow.join().expect("slow thread"),
        Ok(200),
        "in-flight request broken by reload"
    );
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    load.join().expect("load thread");
    assert!(ok.load(Ordering::Relaxed) > 10, "too little load ran");
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed during reloads"
    );
}

#[test]
fn sigterm_drains_requests_in_flight() {
    let up = Upstream::start();
    let fx = Fixture::new();
    fx.ca.write_leaf(fx.path(), "a", &[HOST_A]);
    let mut node = Node::start(bin(), fx.path(), &config(&fx, up.addr, false, "10.0.0.0/8"));
    let addr = node.listeners[0];
    let ca = fx.ca_file.clone();
    let slow = std::thread::spawn(move || {
        let tls = Tls::new(HOST_A, &ca);
        client::get(addr, &tls, HOST_A, "/slow?ms=1000", "").map(|r| r.status)
    });
    std::thread::sleep(Duration::from_millis(300));
    node.signal(libc::SIGTERM);
    assert_eq!(slow.join().expect("thread"), Ok(200));
    let status = node.wait_exit(Duration::from_secs(10)).expect("exited");
    assert!(status.success(), "{status:?}");
    assert!(node
        .wait_log(Duration::from_secs(1), |v| v["event"] == "stopped"
            && v["clean"] == true)
        .is_some());
    // New connections are refused once draining.
    assert!(client::connect(addr, &fx.tls(HOST_A)).is_err());
}
