//! The web console in a real headless Chromium (Debian's `chromium` + `chromium-driver`,
//! driven by Python selenium from Debian: tests/browser/dashboard.py): sign in, see the
//! instance, find a refusal made through the node by its IP with its reason, change the ACL
//! (a bad value shown next to the field, a preview, then save) and see the next request
//! allowed, the change in the audit, another partner's pages 404, POSTs without the CSRF token
//! refused, a viewer unable to change anything. Screenshots of the main pages are written to
//! `target/tmp/screenshots/` (CI keeps them as artifacts).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use test_support::api::Api;

const BASE: &str = "console.test";
const PASSWORD: &str = "correct horse battery staple";

fn user(config: &Path, name: &str, role: &str, partner: Option<&str>) {
    let mut cmd = Command::new(bin());
    cmd.args(["user", "create", "--config"])
        .arg(config)
        .args(["--name", name, "--role", role]);
    if let Some(p) = partner {
        cmd.args(["--partner", p]);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rpaas user create");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .expect("password");
    let out = child.wait_with_output().expect("user create");
    assert!(out.status.success(), "{out:?}");
}

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

fn browser(args: serde_json::Value) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/dashboard.py");
    let out = Command::new("/usr/bin/python3")
        .arg(&script)
        .arg(args.to_string())
        .output()
        .expect("run the browser script (python3-selenium, chromium, chromium-driver)");
    assert!(
        out.status.success(),
        "browser phase {} failed:\n{}\n{}",
        args["phase"],
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_partner_finds_a_refusal_and_fixes_its_acl_in_a_real_browser() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let cfg = format!(
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
"#,
        data = fx.path().join("data"),
    );
    let path = fx.path().join("rpaas.toml");
    std::fs::write(&path, &cfg).expect("config");
    let ops_key = operator_key(&path);
    let node = Node::start_file(bin(), &path);
    let control = node.control.expect("control");
    let ops = Api::new(control, &ops_key);
    for (id, name) in [("p1", "Acme IT"), ("p2", "Other MSP")] {
        assert_eq!(
            ops.post("/v1/partners", json!({"id": id, "name": name}))
                .status,
            201
        );
    }
    let mut ids = Vec::new();
    for p in ["p1", "p2"] {
        let r = ops.post(
            "/v1/instances",
            json!({"partner": p, "upstream": format!("http://{}", up.addr), "deployment": "agent-only"}),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        ids.push(r.json["id"].as_str().expect("id").to_string());
    }
    let (mine, other) = (&ids[0], &ids[1]);
    let (host, other_host) = (format!("{mine}.{BASE}"), format!("{other}.{BASE}"));
    user(&path, "alice", "partner-admin", Some("p1"));
    user(&path, "vera", "partner-viewer", Some("p1"));

    // A technician outside any trusted network is refused.
    let ip = "203.0.113.7";
    let t = Instant::now();
    while through(&node, &fx, &host, ip, "/automate/") != Ok(403) {
        assert!(t.elapsed() < Duration::from_secs(5), "never refused");
        std::thread::sleep(Duration::from_millis(50));
    }
    let t = Instant::now();
    let reason = loop {
        let r = ops.get(&format!("/v1/instances/{mine}/decisions?ip={ip}"));
        if let Some(reason) = r.json[0]["reason"].as_str() {
            break reason.to_string();
        }
        assert!(t.elapsed() < Duration::from_secs(5), "refusal not recorded");
        std::thread::sleep(Duration::from_millis(100));
    };

    let shots: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    std::env::set_var("SHOTS", &shots);
    let args = |phase: &str| {
        json!({
            "phase": phase,
            "base": format!("http://{control}"),
            "admin": "alice", "viewer": "vera", "password": PASSWORD,
            "instance": mine, "host": host, "other": other, "other_host": other_host,
            "ip": ip, "reason": reason, "network": "203.0.113.0/24",
        })
    };
    browser(args("refusal_and_acl"));

    // The change made in the browser is applied: the next request is allowed.
    let t = Instant::now();
    while through(&node, &fx, &host, ip, "/automate/") != Ok(200) {
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "the ACL change was not applied within 1 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    browser(args("after"));
    for page in ["instances", "instance", "decisions", "acl", "audit", "keys"] {
        assert!(
            shots.join(format!("{page}.png")).is_file(),
            "screenshot {page}"
        );
    }
}
