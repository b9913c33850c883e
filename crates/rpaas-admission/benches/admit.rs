//! The admission core per request: host → instance, methods, bans, canonicalise + classify +
//! policy (trusted-network trie, GeoIP), rate limits, IPS on the head.
//! `cargo bench -p rpaas-admission --bench admit`
#![allow(clippy::expect_used)]

use std::net::IpAddr;
use std::time::Instant;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use rpaas_admission::*;
use rpaas_config::{compile, spec, Document};

struct Open;

impl Gates for Open {
    fn banned(&self, _: IpAddr, _: Instant) -> Option<bool> {
        Some(false)
    }
    fn take(
        &self,
        _: IpAddr,
        _: &'static str,
        _: rpaas_ips::limits::Rate,
        _: Instant,
    ) -> Option<bool> {
        Some(true)
    }
}

fn policy(ips: &str) -> Policy {
    policy_with(ips, "")
}

fn policy_with(ips: &str, node: &str) -> Policy {
    let mut trusted = String::new();
    for i in 0..1000u32 {
        let ip = std::net::Ipv4Addr::from(0x0b00_0000u32.wrapping_add(i << 8));
        trusted.push_str(&format!("\"{ip}/24\", "));
    }
    let text = format!(
        r#"
{node}
[[listener]]
address = "127.0.0.1:0"
[[instance]]
id = "a"
hostnames = ["052d3c3287c38201.example.net"]
upstream = "http://127.0.0.1:9"
deployment = "mixed"
trusted = [{trusted}]
[instance.ips]
mode = "{ips}"
"#
    );
    let s: spec::Spec = spec::from_toml(&text).expect("bench spec");
    Policy::build(
        compile(&Document::from_spec("bench", s)).expect("bench config"),
        None,
    )
    .expect("bench policy")
}

fn bench(c: &mut Criterion) {
    let host = "052d3c3287c38201.example.net";
    let agent_headers: Vec<(String, String)> = vec![
        ("host".into(), host.into()),
        ("user-agent".into(), "LTService".into()),
        ("content-type".into(), "application/octet-stream".into()),
        ("content-length".into(), "612".into()),
    ];
    let conn = Conn {
        listener: 0,
        peer: "8.8.8.8".parse().expect("bench ip"),
        sni: Some(host),
    };
    let head = Head {
        method: "POST",
        target: b"/LabTech/Agent.aspx",
        authority: Some(host),
        headers: &agent_headers,
        protocol: "HTTP/1.1",
    };
    for mode in ["off", "block"] {
        let p = policy(mode);
        c.bench_function(&format!("admit/agent_checkin/ips_{mode}"), |b| {
            b.iter(|| {
                black_box(admit(
                    black_box(&p),
                    &conn,
                    black_box(&head),
                    &Open,
                    Instant::now(),
                ))
            })
        });
    }

    // A technician's REST call with a JSON body (head, then head and body, as the node runs
    // it), with the OWASP CRS loaded at paranoia levels 1 and 2 and the Automate exclusions.
    let crs = "/usr/share/modsecurity-crs";
    if !std::path::Path::new(crs).join("rules").is_dir() {
        eprintln!("note: {crs} is absent; no CRS bench");
        return;
    }
    let tech_headers: Vec<(String, String)> = vec![
        ("host".into(), host.into()),
        ("user-agent".into(), "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36".into()),
        ("accept".into(), "application/json, text/plain, */*".into()),
        ("accept-language".into(), "en-US,en;q=0.9".into()),
        ("authorization".into(), "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abc".into()),
        ("cookie".into(), "ASP.NET_SessionId=abcdefghijklmnopqrstuvwx; cwa_ui=1".into()),
        ("content-type".into(), "application/json".into()),
        ("content-length".into(), "112".into()),
    ];
    let tech = Head {
        method: "POST",
        target: b"/cwa/api/v1/computers?condition=ComputerName%20like%20%27%25srv%25%27%20and%20Client.Name%20%3D%20%27Acme%27&pageSize=50",
        authority: Some(host),
        headers: &tech_headers,
        protocol: "HTTP/1.1",
    };
    // The technician's office is one of the instance's trusted networks (11.0.0.0/24).
    let office = Conn {
        listener: 0,
        peer: "11.0.0.5".parse().expect("bench ip"),
        sni: Some(host),
    };
    let body = br#"{"ComputerIds":[101,102,103],"Comment":"Patch window Tuesday 22:00","ScriptId":4411,"Parameters":{"reboot":"false"}}"#;
    for pl in [1, 2] {
        let p = policy_with(
            "block",
            &format!("[node.ips]\ncrs = \"{crs}\"\nparanoia = {pl}\n"),
        );
        let first = admit(&p, &office, &tech, &Open, Instant::now());
        assert_eq!(first.verdict, Verdict::Forward, "{:?}", first.reason());
        assert!(
            first.crs.is_some() && first.body.is_some(),
            "CRS runs on head and body"
        );
        c.bench_function(&format!("admit/technician_json/crs_pl{pl}"), |b| {
            b.iter(|| {
                let mut d = admit(
                    black_box(&p),
                    &office,
                    black_box(&tech),
                    &Open,
                    Instant::now(),
                );
                if let (Some(plan), Some(i)) = (d.body.as_mut(), d.instance) {
                    let mut o = d.ips.take().unwrap_or_else(rpaas_ips::Outcome::pass);
                    black_box(judge_body(&p, i, plan, &mut o, body));
                }
                black_box(d)
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
