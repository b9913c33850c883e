//! `rpaas audit` as a user runs it: against the stand-in origin direct (it leaks what a default
//! IIS leaks: most checks fail), against an rpaas node in front of it (they pass), side by side
//! with `--compare`, port checks against sockets opened and closed here, the offline files,
//! and the failures (unreachable, silent, bad files, bad flags). Everything on 127.0.0.1.

mod common;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }
}

fn audit(args: &[&str]) -> Run {
    let out = Command::new(bin())
        .arg("audit")
        .args(args)
        .output()
        .expect("run rpaas audit");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// (status, detail) of check `id` in a `--json` report.
fn check(report: &serde_json::Value, id: &str) -> (String, String) {
    let c = report["checks"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["id"] == id))
        .unwrap_or_else(|| panic!("no check {id} in {report:#}"));
    (
        c["status"].as_str().unwrap_or("").to_string(),
        c["detail"].as_str().unwrap_or("").to_string(),
    )
}

fn assert_statuses(report: &serde_json::Value, want: &[(&str, &str)]) {
    for (id, status) in want {
        let (s, d) = check(report, id);
        assert_eq!(&s, status, "{id}: {d}");
    }
}

/// A loopback port with nothing listening on it (bound, then closed).
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../rpaas-audit/tests/fixtures")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn node_config(fx: &Fixture, up: SocketAddr) -> String {
    format!(
        r#"
[node]
admin = "127.0.0.1:0"
[[listener]]
address = "127.0.0.1:0"
tls = "intermediate"
[[instance]]
id = "a"
hostnames = ["{HOST_A}"]
{cert}upstream = "http://{up}"
upstream_host = "automate.partner.local"
deployment = "agent-only"
"#,
        cert = fx.cert_lines("a", HOST_A)
    )
}

/// The flags that keep the port checks on sockets this test controls.
fn port_flags(open: SocketAddr, closed: u16) -> Vec<String> {
    vec![
        "--udp-port".into(),
        "0".into(),
        "--expected-ports".into(),
        open.port().to_string(),
        "--closed-ports".into(),
        closed.to_string(),
        "--optional-ports".into(),
        "none".into(),
    ]
}

fn legacy_standin(fx: &Fixture) -> Upstream {
    let (cert, key) = fx.ca.leaf(&[HOST_A]);
    Upstream::start_tls_legacy(
        &cert.to_pem().expect("pem"),
        &key.private_key_to_pem_pkcs8().expect("pem"),
    )
}

#[test]
fn the_standin_direct_fails_what_an_unhardened_iis_fails() {
    let fx = Fixture::new();
    let up = legacy_standin(&fx);
    let url = format!("https://{HOST_A}/");
    let connect = up.addr.to_string();
    let mut args: Vec<String> = vec![url, "--connect".into(), connect, "--json".into()];
    args.extend(port_flags(up.addr, closed_port()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = audit(&args);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(j["target"], format!("https://{HOST_A}/"));
    assert_eq!(j["connect"], up.addr.to_string());
    assert_statuses(
        &j,
        &[
            ("tls-legacy-protocols", "fail"),
            ("tls-weak-ciphers", "fail"),
            ("server-header", "fail"),
            ("x-powered-by", "fail"),
            ("aspnet-version-headers", "fail"),
            ("options-method", "fail"),
            ("trace-method", "fail"),
            ("location-ip-leak", "fail"),
            ("admin-sites-restricted", "fail"),
            ("wcc2-version-leak", "fail"),
            ("agent-version-leak", "warn"),
            ("screenconnect-version-header", "pass"),
            ("ports-closed", "pass"),
            ("ports-expected", "pass"),
        ],
    );
    let detail = |id| check(&j, id).1;
    assert!(detail("tls-legacy-protocols").contains("TLS 1.0 accepted"));
    assert!(
        detail("tls-weak-ciphers").contains("NULL accepted"),
        "{}",
        detail("tls-weak-ciphers")
    );
    assert!(detail("server-header").contains("Microsoft-IIS/10.0"));
    assert!(detail("options-method").contains("Allow: OPTIONS, TRACE"));
    assert!(
        detail("trace-method").contains("echoed back"),
        "{}",
        detail("trace-method")
    );
    assert!(
        detail("location-ip-leak").contains("names the IP address 10.20.30.40"),
        "{}",
        detail("location-ip-leak")
    );
    let admin = detail("admin-sites-restricted");
    assert!(
        admin.contains("automate (/automate/) REACHABLE: 200"),
        "{admin}"
    );
    assert!(admin.contains("cwa (/cwa/) REACHABLE: 302"), "{admin}");
    assert!(
        admin.contains("LegacyCCASMX (/LabTech/ControlCenter.asmx) REACHABLE"),
        "{admin}"
    );
    assert!(detail("wcc2-version-leak").contains("shows version 240.120"));
    // Every fix is filled in.
    for c in j["checks"].as_array().expect("checks") {
        assert!(c["fix"].as_str().is_some_and(|f| f.len() > 20), "{c}");
    }

    // Polite: a handful of requests, bodiless, only the methods it tests, no redirect followed.
    let seen = up.seen();
    assert!(seen.len() <= 15, "{} requests: {seen:?}", seen.len());
    assert!(seen.iter().all(|s| s.body_len == 0));
    assert!(seen
        .iter()
        .all(|s| ["GET", "OPTIONS", "TRACE", "TRACK"].contains(&s.method.as_str())));
    assert!(!seen
        .iter()
        .any(|s| s.path_and_query.starts_with("/automate/login")));
}

#[test]
fn through_rpaas_the_http_checks_pass() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let node = Node::start(bin(), fx.path(), &node_config(&fx, up.addr));
    let addr = node.listeners[0];
    let url = format!("https://{HOST_A}/");
    let mut args: Vec<String> = vec![url, "--connect".into(), addr.to_string(), "--json".into()];
    args.extend(port_flags(addr, closed_port()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = audit(&args);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    assert_statuses(
        &j,
        &[
            ("tls-legacy-protocols", "pass"),
            ("tls-weak-ciphers", "pass"),
            ("server-header", "pass"),
            ("x-powered-by", "pass"),
            ("aspnet-version-headers", "pass"),
            ("options-method", "pass"),
            ("trace-method", "pass"),
            ("location-ip-leak", "pass"),
            ("admin-sites-restricted", "pass"),
            ("wcc2-version-leak", "pass"),
            // Agents read the version: rpaas forwards the probe, so this stays a warning.
            ("agent-version-leak", "warn"),
            ("screenconnect-version-header", "pass"),
            ("ports-closed", "pass"),
            ("ports-expected", "pass"),
        ],
    );
    let detail = |id| check(&j, id).1;
    assert!(detail("options-method").contains("OPTIONS refused (405)"));
    let admin = detail("admin-sites-restricted");
    assert!(
        admin.contains("automate (/automate/) refused: 403"),
        "{admin}"
    );
    assert!(
        admin.contains("LabTech (/LabTech/Agent.aspx) open (200)"),
        "{admin}"
    );
    assert!(admin.contains("WCC2 (/WCC2/) refused (403)"), "{admin}");
    // The node answered: none of the refused probes reached the origin.
    for p in ["/automate", "/cwa", "/WCC2", "/aspnet_client"] {
        assert!(up.seen_path(p).is_empty(), "{p} reached the origin");
    }
    assert!(up.seen().iter().all(|s| s.method == "GET"));
}

#[test]
fn compare_shows_what_rpaas_changes() {
    let fx = Fixture::new();
    let direct = legacy_standin(&fx);
    let up = Upstream::start();
    let node = Node::start(bin(), fx.path(), &node_config(&fx, up.addr));
    let url = format!("https://{HOST_A}/");
    let d = direct.addr.to_string();
    let n = node.listeners[0].to_string();
    let closed = closed_port().to_string();
    let base = [
        "--compare",
        &url,
        &url,
        "--connect",
        &d,
        "--connect",
        &n,
        "--udp-port",
        "0",
        "--expected-ports",
        "none",
        "--closed-ports",
        &closed,
        "--optional-ports",
        "none",
    ];
    let r = audit(&base);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], format!("1: {url} (connecting to {d})"));
    assert_eq!(lines[1], format!("2: {url} (connecting to {n})"));
    let row = |id: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(&format!("{id} ")))
            .map(|l| l.split_whitespace().take(4).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| panic!("no row {id}: {}", r.stdout))
    };
    assert_eq!(row("server-header"), "server-header fail pass fixed:");
    assert_eq!(
        row("tls-legacy-protocols"),
        "tls-legacy-protocols fail pass fixed:"
    );
    assert_eq!(row("location-ip-leak"), "location-ip-leak fail pass fixed:");
    assert_eq!(
        row("admin-sites-restricted"),
        "admin-sites-restricted fail pass fixed:"
    );
    assert_eq!(
        row("agent-version-leak"),
        "agent-version-leak warn warn same:"
    );
    assert_eq!(row("ports-closed"), "ports-closed pass pass same");
    assert!(
        r.stdout
            .ends_with("10 fixed, 0 worse; 2 has 0 failure(s)\n"),
        "{}",
        r.stdout
    );

    // Swapped, the second report fails: exit 1. JSON carries both reports and the changes.
    let swapped: Vec<&str> = base
        .iter()
        .map(|a| {
            if *a == d {
                n.as_str()
            } else if *a == n {
                d.as_str()
            } else {
                a
            }
        })
        .chain(["--json"])
        .collect();
    let r = audit(&swapped);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(check(&j["before"], "server-header").0, "pass");
    assert_eq!(check(&j["after"], "server-header").0, "fail");
    let change = j["changes"]
        .as_array()
        .and_then(|c| c.iter().find(|r| r["id"] == "trace-method"))
        .expect("row");
    assert_eq!(change["change"], "worse");
}

#[test]
fn port_checks_see_sockets_opened_and_closed_here() {
    let open = TcpListener::bind("127.0.0.1:0").expect("bind");
    let open_port = open.local_addr().expect("addr").port();
    let closed = closed_port();
    // A heartbeat stand-in: answers any datagram.
    let udp = UdpSocket::bind("127.0.0.1:0").expect("udp");
    let udp_port = udp.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = udp.recv_from(&mut buf) {
            let _ = udp.send_to(&buf[..n], from);
        }
    });
    let udp_closed = UdpSocket::bind("127.0.0.1:0")
        .expect("udp")
        .local_addr()
        .expect("addr")
        .port();
    // The URL points at a closed port: the HTTP checks skip, the port checks still run.
    let url = format!("https://127.0.0.1:{closed}/");
    let run = |closed_list: String, expected: String, udp: u16| {
        let r = audit(&[
            &url,
            "--json",
            "--closed-ports",
            &closed_list,
            "--expected-ports",
            &expected,
            "--optional-ports",
            "none",
            "--udp-port",
            &udp.to_string(),
        ]);
        (r.code, r.json())
    };

    let (code, j) = run(
        format!("{closed},{open_port}-{open_port}"),
        open_port.to_string(),
        udp_port,
    );
    assert_eq!(code, 1);
    let (s, d) = check(&j, "ports-closed");
    assert_eq!(s, "fail");
    assert!(
        d.starts_with(&format!("open on 127.0.0.1: {open_port};")),
        "{d}"
    );
    assert!(
        d.ends_with("of 2 checked: 1 refused, 0 no answer (filtered)"),
        "{d}"
    );
    let (s, d) = check(&j, "ports-expected");
    assert_eq!(s, "pass", "{d}");
    assert!(d.contains(&format!("{open_port}/tcp open")), "{d}");
    assert!(
        d.contains(&format!("{udp_port}/udp answered (18 bytes)")),
        "{d}"
    );
    assert_eq!(check(&j, "server-header").0, "skip");

    let (code, j) = run(closed.to_string(), closed.to_string(), udp_closed);
    assert_eq!(code, 1);
    assert_eq!(check(&j, "ports-closed").0, "pass");
    let (s, d) = check(&j, "ports-expected");
    assert_eq!(s, "fail");
    assert!(d.contains(&format!("{closed}/tcp closed (refused)")), "{d}");
    assert!(d.contains("udp closed (ICMP port unreachable)"), "{d}");
    drop(open);
}

#[test]
fn an_unreachable_target_gives_skips_with_reasons() {
    let closed = closed_port().to_string();
    let r = audit(&[
        &format!("https://{HOST_A}/"),
        "--connect",
        &format!("127.0.0.1:{closed}"),
        "--udp-port",
        "0",
        "--closed-ports",
        "none",
        "--expected-ports",
        "none",
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 1 + 14 + 1, "{}", r.stdout);
    for l in &lines[1..13] {
        assert!(l.starts_with("skip "), "{l}");
        assert!(
            l.ends_with(&format!(
                "cannot reach https://{HOST_A}/ at 127.0.0.1:{closed}: connection refused"
            )),
            "{l}"
        );
    }
    assert!(lines[13].starts_with("skip  ports-closed"), "{}", lines[13]);
    assert_eq!(lines[15], "0 pass, 0 fail, 0 warn, 14 skip");
}

#[test]
fn a_silent_server_is_bounded_by_the_timeouts() {
    // Accepts TCP (the kernel does) but never answers a byte.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = silent.local_addr().expect("addr");
    let start = Instant::now();
    let r = audit(&[
        &format!("https://{HOST_A}/"),
        "--connect",
        &addr.to_string(),
        "--json",
        "--probe-timeout",
        "300ms",
        "--timeout",
        "3s",
        "--udp-port",
        "0",
        "--closed-ports",
        "none",
        "--expected-ports",
        &addr.port().to_string(),
    ]);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    let (s, d) = check(&j, "admin-sites-restricted");
    assert_eq!(s, "skip");
    assert!(d.contains("no answer within 300 ms"), "{d}");
    assert_eq!(check(&j, "ports-expected").0, "pass");

    // The overall limit cuts the per-connection one: skips that say so, in about a second.
    let start = Instant::now();
    let r = audit(&[
        &format!("https://{HOST_A}/"),
        "--connect",
        &addr.to_string(),
        "--json",
        "--probe-timeout",
        "20s",
        "--timeout",
        "1s",
        "--expected-ports",
        &addr.port().to_string(),
    ]);
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    for id in [
        "tls-legacy-protocols",
        "server-header",
        "ports-closed",
        "ports-expected",
    ] {
        let (s, d) = check(&j, id);
        assert_eq!(s, "skip", "{id}: {d}");
        assert!(d.contains("time limit"), "{id}: {d}");
    }
    drop(silent);
}

#[test]
fn offline_files_alone_send_nothing_and_give_the_guide_verdicts() {
    let hardened = [
        "--iis-config",
        &fixture("applicationHost.hardened.config"),
        "--schannel",
        &fixture("schannel.hardened.reg"),
        "--json",
    ];
    let r = audit(&hardened);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(j["target"], serde_json::Value::Null);
    let ids: Vec<&str> = j["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "iis-remove-server-header",
            "iis-options-denied",
            "iis-ip-restrictions",
            "schannel-tls10-disabled",
            "schannel-tls11-disabled"
        ]
    );
    for id in &ids {
        assert_eq!(check(&j, id).0, "pass", "{id}: {}", check(&j, id).1);
    }

    let r = audit(&[
        "--iis-config",
        &fixture("applicationHost.default.config"),
        "--schannel",
        &fixture("schannel.default.reg"),
    ]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.starts_with("audit of offline files\n"),
        "{}",
        r.stdout
    );
    for id in ids {
        let line = r
            .stdout
            .lines()
            .find(|l| l.contains(&format!(" {id} ")))
            .unwrap_or_else(|| panic!("{id}: {}", r.stdout));
        assert!(line.starts_with("fail "), "{line}");
        assert!(line.contains("| fix: "), "{line}");
    }
    assert!(r
        .stdout
        .contains("Default Web Site/cwa: OPEN to unspecified clients"));
    assert!(r.stdout.contains("no TLS 1.0\\Server key"));
}

#[test]
fn bad_files_and_bad_flags_are_clear_errors() {
    let dir = tempfile::tempdir().expect("tmp");
    let xml = dir.path().join("applicationHost.config");
    std::fs::write(&xml, "<configuration><system.webServer></configuration>").expect("w");
    let reg = dir.path().join("schannel.reg");
    std::fs::write(&reg, [0x7f, 0x45, 0x4c, 0x46, 0, 1, 2]).expect("w");
    let r = audit(&[
        "--iis-config",
        xml.to_str().expect("p"),
        "--schannel",
        reg.to_str().expect("p"),
        "--json",
    ]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    let (s, d) = check(&j, "iis-ip-restrictions");
    assert_eq!(s, "skip");
    assert!(
        d.starts_with(&format!("{}: not XML (byte", xml.display())),
        "{d}"
    );
    let (s, d) = check(&j, "schannel-tls10-disabled");
    assert_eq!(s, "skip");
    assert!(d.contains("NUL bytes"), "{d}");
    assert!(
        r.stderr
            .contains(&format!("error: {}: not XML", xml.display())),
        "{}",
        r.stderr
    );

    let missing = dir.path().join("missing.reg");
    let r = audit(&["--schannel", missing.to_str().expect("p")]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("missing.reg: cannot read"),
        "{}",
        r.stderr
    );

    for (args, msg) in [
        (vec!["ftp://automate.example.net/"], "write it as https://"),
        (
            vec!["https://x/", "--connect", "nowhere"],
            "--connect \"nowhere\"",
        ),
        (
            vec!["https://x/", "--closed-ports", "1-99999"],
            "--closed-ports",
        ),
        (vec!["https://x/", "--timeout", "5h"], "--timeout"),
        (
            vec![
                "https://x/",
                "--connect",
                "127.0.0.1:1",
                "--connect",
                "127.0.0.1:2",
            ],
            "twice only with --compare",
        ),
        (vec![], "required"),
    ] {
        let r = audit(&args);
        assert_eq!(r.code, 2, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains(msg), "{args:?}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{args:?} printed a report");
    }
}
