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
    let mut trusted = String::new();
    for i in 0..1000u32 {
        let ip = std::net::Ipv4Addr::from(0x0b00_0000u32.wrapping_add(i << 8));
        trusted.push_str(&format!("\"{ip}/24\", "));
    }
    let text = format!(
        r#"
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
}

criterion_group!(benches, bench);
criterion_main!(benches);
