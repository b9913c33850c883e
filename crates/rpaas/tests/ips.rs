//! The IPS through a real node: signatures, body inspection, detect mode, tuning, rate
//! limits, bans (with anti-lockout and across reloads), response leakage, rule-file errors.

mod common;

use std::time::Duration;

use common::*;

const ATTACKER: &str = "203.0.113.66";
const OFFICE: &str = "198.51.100.7";

fn config(up: std::net::SocketAddr, extra_node: &str, ips_b: &str) -> String {
    format!(
        r#"
[node]
admin = "127.0.0.1:0"
[node.limits]
login = "3/1m"
ban_after = 3
ban_window = "1m"
ban_time = "10m"
{extra_node}

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
trusted = ["{OFFICE}/32"]

[[instance]]
id = "b"
hostnames = ["{HOST_B}"]
cert = "b.pem"
key = "b.key"
upstream = "http://{up}"
{ips_b}
"#
    )
}

fn fixture() -> Fixture {
    let fx = Fixture::new();
    fx.ca.write_leaf(fx.path(), "a", &[HOST_A]);
    fx.ca.write_leaf(fx.path(), "b", &[HOST_B]);
    fx
}

fn get_as(node: &Node, fx: &Fixture, host: &str, ip: &str, path: &str) -> client::Response {
    client::get(
        node.listeners[0],
        &fx.tls(host),
        host,
        path,
        &format!("X-Forwarded-For: {ip}\r\n"),
    )
    .expect("request")
}

fn post_as(
    node: &Node,
    fx: &Fixture,
    host: &str,
    ip: &str,
    path: &str,
    ct: &str,
    body: &str,
) -> client::Response {
    let raw = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-For: {ip}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    client::exchange(node.listeners[0], &fx.tls(host), raw.as_bytes()).expect("request")
}

#[test]
fn signatures_body_inspection_and_leakage() {
    let up = Upstream::start();
    let fx = fixture();
    let node = Node::start(bin(), fx.path(), &config(up.addr, "", ""));

    // CVE-2024-1709: blocked at the head, never forwarded.
    let r = get_as(&node, &fx, HOST_A, "192.0.2.10", "/SetupWizard.aspx/x");
    assert_eq!(r.status, 403);
    assert_hardened(&r);
    assert!(up.seen_path("/SetupWizard").is_empty());
    let line = node
        .wait_log(Duration::from_secs(5), |v| v["reason"] == "ips:100001")
        .expect("logged");
    assert_eq!(line["ips_rules"], "100001");
    assert_eq!(line["class"], "other");

    // SQL injection in a JSON body to the API: judged before a byte of it is forwarded.
    let r = post_as(
        &node,
        &fx,
        HOST_A,
        "192.0.2.11",
        "/cwa/api/v1/computers/search",
        "application/json",
        r#"{"condition":"1' union select password from users--"}"#,
    );
    assert_eq!(r.status, 403, "{r:?}");
    let seen = up.seen_path("/cwa/api/v1/computers/search");
    assert!(
        seen.iter().all(|s| s.body_len == 0),
        "body bytes reached the origin: {seen:?}"
    );
    let line = node
        .wait_log(Duration::from_secs(5), |v| {
            v["path"] == "/cwa/api/v1/computers/search"
        })
        .expect("logged");
    assert!(
        line["reason"].as_str().unwrap_or("").starts_with("ips:"),
        "{line}"
    );
    assert!(line["ips_score"].as_u64().unwrap_or(0) >= 5, "{line}");

    // A benign API search with SQL-like filters passes, body and all.
    let benign = r#"{"condition":"(ComputerName like '%srv%') and (Client.Name = 'O''Brien')","pageSize":50}"#;
    let r = post_as(
        &node,
        &fx,
        HOST_A,
        "192.0.2.12",
        "/echo",
        "application/json",
        benign,
    );
    assert_eq!(r.status, 200);
    let seen = up.seen_path("/echo");
    assert_eq!(seen.last().map(|s| s.body_len), Some(benign.len() as u64));

    // Agent bodies are opaque: attack-looking bytes in a check-in are not read.
    let r = post_as(
        &node,
        &fx,
        HOST_A,
        "192.0.2.13",
        "/LabTech/Agent.aspx",
        "application/octet-stream",
        "' or 1=1 -- <script>alert(1)</script> ../../../../windows/win.ini",
    );
    assert_eq!(r.status, 200);

    // An IIS error page with a .NET error is replaced before it reaches the client.
    let r = get_as(&node, &fx, HOST_A, "192.0.2.14", "/does-not-exist");
    assert_eq!(r.status, 404);
    assert!(!r.text().contains("Server Error"), "{}", r.text());
    assert!(!r.text().contains("WIN-AUTOMATE01"));
    assert!(node
        .wait_log(Duration::from_secs(5), |v| v["reason"] == "ips:954100")
        .is_some());

    let metrics = node.admin_get("/metrics");
    assert!(
        metrics.contains(r#"rpaas_ips_matches_total{action="block",instance="a",rule="100001"} 1"#),
        "{metrics}"
    );
}

#[test]
fn detect_mode_disable_and_exclusions() {
    let up = Upstream::start();
    let fx = fixture();
    let ips_b = r#"
[instance.ips]
mode = "detect"
disable = [100001]
"#;
    let node = Node::start(bin(), fx.path(), &config(up.addr, "", ips_b));
    // Detect: the attack is forwarded and recorded.
    let r = get_as(
        &node,
        &fx,
        HOST_B,
        "192.0.2.20",
        "/automate/?q=%3Cscript%3Ealert(1)%3C/script%3E",
    );
    assert_eq!(r.status, 200);
    let line = node
        .wait_log(Duration::from_secs(5), |v| v["client_ip"] == "192.0.2.20")
        .expect("logged");
    assert!(
        line["ips_rules"].as_str().unwrap_or("").contains("941100"),
        "{line}"
    );
    assert_eq!(line["reason"], "");
    let metrics = node.admin_get("/metrics");
    assert!(
        metrics
            .contains(r#"rpaas_ips_matches_total{action="detect",instance="b",rule="941100"} 1"#),
        "{metrics}"
    );

    // Disabled rule: no match recorded at all.
    let _ = get_as(&node, &fx, HOST_B, "192.0.2.21", "/SetupWizard.aspx/x");
    let line = node
        .wait_log(Duration::from_secs(5), |v| v["client_ip"] == "192.0.2.21")
        .expect("logged");
    assert!(
        !line["ips_rules"].as_str().unwrap_or("").contains("100001"),
        "{line}"
    );

    // Scoped exclusion: a rule ignored for one argument of one API path only.
    let excl = r#"
[[instance.ips.exclude]]
rules = [942110, 942140, 942150]
classes = ["api"]
paths = ["/cwa/api/v1/computers"]
args = ["condition"]
"#;
    drop(node);
    let fx = fixture();
    let node = Node::start(bin(), fx.path(), &config(up.addr, "", excl));
    let payload = "x%27%20or%201%3D1--";
    let r = get_as(
        &node,
        &fx,
        HOST_B,
        "192.0.2.22",
        &format!("/cwa/api/v1/computers?condition={payload}"),
    );
    assert_eq!(r.status, 200, "excluded argument");
    let r = get_as(
        &node,
        &fx,
        HOST_B,
        "192.0.2.23",
        &format!("/cwa/api/v1/computers?orderBy={payload}"),
    );
    assert_eq!(r.status, 403, "other argument");
    let r = get_as(
        &node,
        &fx,
        HOST_B,
        "192.0.2.24",
        &format!("/cwa/api/v1/clients?condition={payload}"),
    );
    assert_eq!(r.status, 403, "other path");
}

#[test]
fn login_rate_limit_bans_anti_lockout_and_reload() {
    let up = Upstream::start();
    let fx = fixture();
    let cfg = config(up.addr, "", "");
    let node = Node::start(bin(), fx.path(), &cfg);

    // Login endpoint: 3 per minute per client, then 429.
    let token = |ip: &str| {
        post_as(
            &node,
            &fx,
            HOST_A,
            ip,
            "/cwa/api/v1/apitoken",
            "application/json",
            r#"{"UserName":"u","Password":"p"}"#,
        )
        .status
    };
    let statuses: Vec<u16> = (0..4).map(|_| token("192.0.2.30")).collect();
    assert_eq!(
        statuses,
        vec![200, 200, 200, 429],
        "the 4th is refused by rpaas"
    );
    assert_eq!(
        token("192.0.2.31"),
        200,
        "another client has its own bucket"
    );
    assert!(node
        .wait_log(Duration::from_secs(5), |v| v["reason"] == "rate:login")
        .is_some());

    // Three blocked attacks earn a ban: then even a clean request is refused.
    for _ in 0..3 {
        assert_eq!(
            get_as(&node, &fx, HOST_A, ATTACKER, "/SetupWizard.aspx/x").status,
            403
        );
    }
    let r = get_as(&node, &fx, HOST_A, ATTACKER, "/LabTech/Agent.aspx");
    assert_eq!(r.status, 403);
    assert!(node
        .wait_log(Duration::from_secs(5), |v| v["reason"] == "ban")
        .is_some());
    assert!(node
        .wait_log(Duration::from_secs(5), |v| v["event"] == "banned")
        .is_some());
    // Across instances too: the ban is the client's.
    assert_eq!(
        get_as(&node, &fx, HOST_B, ATTACKER, "/LabTech/Agent.aspx").status,
        403
    );

    // Anti-lockout: the instance's trusted network is blocked per request but never banned.
    for _ in 0..5 {
        assert_eq!(
            get_as(&node, &fx, HOST_A, OFFICE, "/SetupWizard.aspx/x").status,
            403
        );
    }
    assert_eq!(
        get_as(&node, &fx, HOST_A, OFFICE, "/LabTech/Agent.aspx").status,
        200
    );

    // The ban survives a reload.
    node.write_config(&cfg.replace("ban_time = \"10m\"", "ban_time = \"20m\""));
    node.signal(libc::SIGHUP);
    node.wait_log(Duration::from_secs(10), |v| v["event"] == "reloaded")
        .expect("reloaded");
    assert_eq!(
        get_as(&node, &fx, HOST_A, ATTACKER, "/LabTech/Agent.aspx").status,
        403
    );
    let metrics = node.admin_get("/metrics");
    assert!(metrics.contains("rpaas_banned_clients 1"), "{metrics}");
    assert!(
        metrics.contains(r#"rpaas_rate_limited_total{bucket="login",instance="a"} 1"#),
        "{metrics}"
    );
}

#[test]
fn ban_can_close_the_connection() {
    let up = Upstream::start();
    let fx = fixture();
    let cfg = config(up.addr, "ban_action = \"close\"", "");
    let node = Node::start(bin(), fx.path(), &cfg);
    for _ in 0..3 {
        let _ = get_as(&node, &fx, HOST_A, ATTACKER, "/SetupWizard.aspx/x");
    }
    let err = client::get(
        node.listeners[0],
        &fx.tls(HOST_A),
        HOST_A,
        "/LabTech/Agent.aspx",
        &format!("X-Forwarded-For: {ATTACKER}\r\n"),
    );
    assert!(err.is_err(), "expected a closed connection, got {err:?}");
}

#[test]
fn bad_rule_file_is_rejected_with_file_rule_and_reason() {
    let fx = fixture();
    std::fs::write(
        fx.path().join("extra.toml"),
        "[[rule]]\nid = 700001\nmsg = \"x\"\ntargets = [\"args\"]\npattern = \"(unclosed\"\n",
    )
    .expect("write");
    let cfg = config(
        "127.0.0.1:9".parse().expect("addr"),
        "",
        "[instance.ips]\ndisable = [123]\n",
    )
    .replace(
        "[node.limits]",
        "[node.ips]\nrules = [\"extra.toml\"]\n[node.limits]",
    );
    let p = fx.path().join("rpaas.toml");
    std::fs::write(&p, cfg).expect("write");
    let out = std::process::Command::new(bin())
        .args(["check", "--config"])
        .arg(&p)
        .output()
        .expect("check");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("extra.toml: rule 700001: bad regex"), "{err}");
    assert!(
        err.contains("instance[1].ips.disable[0]: no rule has id 123"),
        "{err}"
    );
}

#[test]
fn explain_shows_matched_rules_and_score() {
    let fx = fixture();
    let p = fx.path().join("rpaas.toml");
    std::fs::write(&p, config("127.0.0.1:9".parse().expect("addr"), "", "")).expect("write");
    let out = std::process::Command::new(bin())
        .args(["explain", "--config"])
        .arg(&p)
        .args([
            "--host",
            HOST_A,
            "--ip",
            "192.0.2.1",
            "--method",
            "POST",
            "--header",
            "Content-Type: application/json",
            "--data",
        ])
        .arg(r#"{"q":"<script>alert(1)</script>"}"#)
        .arg("/cwa/api/v1/tickets")
        .output()
        .expect("explain");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("DENY ips:941100"), "{text}");
    assert!(text.contains("matched 941100 (5, score) args[q]"), "{text}");
    assert!(text.contains("mode block, score"), "{text}");
}

#[test]
fn urls_in_browser_headers_are_read_as_urls() {
    // Browsers send a Referer on every click; its query string is arguments, not a shell line.
    // Enough refusals would ban the technician (ban_after = 3 here).
    let up = Upstream::start();
    let fx = fixture();
    let node = Node::start(bin(), fx.path(), &config(up.addr, "", ""));
    let ip = "192.0.2.77";
    for (i, (name, value)) in [
        (
            "Referer",
            format!("https://{HOST_A}/automate/computers?page=2&id=123"),
        ),
        (
            "Referer",
            format!("https://{HOST_A}/automate/scripts?ls=1&cat=2&sh=3#/x?id=4"),
        ),
        ("Origin", format!("https://{HOST_A}")),
        (
            "Referer",
            format!("https://{HOST_A}/automate/login?ReturnUrl=%2Fautomate%2Fx%3Fid%3D5%26rm%3D1"),
        ),
        (
            "Referer",
            format!("https://{HOST_A}/automate/computers?q=DC01%20%26%20DC02&echo=true"),
        ),
    ]
    .iter()
    .enumerate()
    {
        let r = client::get(
            node.listeners[0],
            &fx.tls(HOST_B),
            HOST_B,
            &format!("/automate/computers?n={i}"),
            &format!("X-Forwarded-For: {ip}\r\n{name}: {value}\r\n"),
        )
        .expect("request");
        assert_eq!(r.status, 200, "{name}: {value}: {r:?}");
    }
    // Attacks in a Referer's query are still attacks.
    for value in [
        format!("https://{HOST_A}/x?id=1%27%20union%20select%20password%20from%20users--"),
        format!("https://{HOST_A}/x?q=%3Cscript%3Ealert(1)%3C/script%3E"),
    ] {
        let r = client::get(
            node.listeners[0],
            &fx.tls(HOST_B),
            HOST_B,
            "/automate/computers",
            &format!("X-Forwarded-For: 192.0.2.78\r\nReferer: {value}\r\n"),
        )
        .expect("request");
        assert_eq!(r.status, 403, "{value}: {r:?}");
    }
}

#[test]
fn technician_commands_are_forwarded_and_injection_beside_them_is_not() {
    let up = Upstream::start();
    let fx = fixture();
    let node = Node::start(bin(), fx.path(), &config(up.addr, "", ""));
    // Commands naming OS files, over REST and the Control Center's SOAP: what a technician
    // sends (the shipped Automate exclusions).
    for cmd in [
        "cat /etc/os-release; uname -a",
        r"Get-ChildItem C:\Windows\Temp",
        r"type C:\Windows\System32\drivers\etc\hosts",
    ] {
        let body = serde_json::json!({"Command": {"Id": 2}, "Parameters": [cmd]}).to_string();
        let r = post_as(
            &node,
            &fx,
            HOST_A,
            OFFICE,
            "/cwa/api/v1/Computers/12/CommandExecute",
            "application/json",
            &body,
        );
        assert_ne!(r.status, 403, "{cmd}: {}", r.text());
        let soap = format!(
            r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><SendCommand xmlns="http://tempuri.org/"><computerId>12</computerId><parameters>{cmd}</parameters></SendCommand></soap:Body></soap:Envelope>"#
        );
        let r = post_as(
            &node,
            &fx,
            HOST_A,
            OFFICE,
            "/LabTech/ControlCenter.asmx",
            "text/xml; charset=utf-8",
            &soap,
        );
        assert_ne!(r.status, 403, "SOAP {cmd}: {}", r.text());
    }
    // The same shapes outside what the exclusions name stay refused: another member of the
    // command, `Parameters` on another endpoint, file access in the SOAP endpoint's query.
    let r = post_as(
        &node,
        &fx,
        HOST_A,
        OFFICE,
        "/cwa/api/v1/Computers/12/CommandExecute",
        "application/json",
        r#"{"Command": {"Id": 2, "Name": "x; cat /etc/passwd"}, "Parameters": ["ipconfig"]}"#,
    );
    assert_eq!(r.status, 403, "{}", r.text());
    let r = post_as(
        &node,
        &fx,
        HOST_A,
        OFFICE,
        "/cwa/api/v1/Computers/12/Notes",
        "application/json",
        r#"{"Parameters": ["x; cat /etc/passwd"]}"#,
    );
    assert_eq!(r.status, 403, "{}", r.text());
    let r = get_as(
        &node,
        &fx,
        HOST_A,
        OFFICE,
        "/LabTech/ControlCenter.asmx?wsdl=../../../../windows/win.ini",
    );
    assert_eq!(r.status, 403, "{}", r.text());
}
