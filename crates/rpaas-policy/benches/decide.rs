//! The whole decision: canonicalise + classify + trusted-network trie + GeoIP + restrictions.
//! `cargo bench -p rpaas-policy --bench decide`
#![allow(clippy::expect_used)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use rpaas_geoip::writer::{build, RecordShape};
use rpaas_geoip::{CountryCode, GeoDb};
use rpaas_policy::*;

fn policy(trusted_nets: usize) -> InstancePolicy {
    let mut trusted = Vec::new();
    for i in 0..trusted_nets {
        let ip = std::net::Ipv4Addr::from(0x0b00_0000u32.wrapping_add((i as u32) << 8));
        trusted.push(IpNet::V4(ipnet::Ipv4Net::new(ip, 24).expect("bench setup")));
    }
    InstancePolicy::new(PolicySpec {
        deployment: Deployment::Mixed,
        trusted,
        countries: vec![
            CountryCode::parse("US").expect("bench setup"),
            CountryCode::parse("CA").expect("bench setup"),
        ],
        ..Default::default()
    })
}

fn geo() -> GeoDb {
    // A few thousand networks so the tree has realistic depth.
    let mut entries: Vec<(String, &str)> = Vec::new();
    for a in 1..=200u32 {
        for b in 0..16u32 {
            entries.push((
                format!("{a}.{}.0.0/12", b * 16),
                if (a + b) % 3 == 0 { "US" } else { "DE" },
            ));
        }
    }
    entries.push(("8.8.8.0/24".into(), "US"));
    let refs: Vec<(&str, &str)> = entries.iter().map(|(n, c)| (n.as_str(), *c)).collect();
    GeoDb::from_bytes(build(RecordShape::MaxMind, &refs).expect("bench setup"))
        .expect("bench setup")
}

fn bench(c: &mut Criterion) {
    let g = geo();
    let p = policy(1000);
    let headers: Vec<(String, String)> = vec![
        ("host".into(), "052d3c3287c38201.example.net".into()),
        ("user-agent".into(), "LTService".into()),
        ("content-type".into(), "application/octet-stream".into()),
    ];
    let agent = RequestView {
        ip: "8.8.8.8".parse().expect("bench setup"),
        method: "POST",
        target: "/LabTech/Agent.aspx",
        headers: &headers,
    };
    c.bench_function("decide/agent_checkin", |b| {
        b.iter(|| black_box(decide(black_box(&p), Some(&g), black_box(&agent))))
    });
    let tech = RequestView {
        ip: "11.0.1.7".parse().expect("bench setup"),
        method: "GET",
        target: "/cwa/api/v1/computers?condition=ComputerName%20like%20%27%25srv%25%27&pageSize=50",
        headers: &headers,
    };
    c.bench_function("decide/technician_api_trusted", |b| {
        b.iter(|| black_box(decide(black_box(&p), Some(&g), black_box(&tech))))
    });
    c.bench_function("canonicalize/agent", |b| {
        b.iter(|| black_box(rpaas_path::canonicalize(black_box("/LabTech/Agent.aspx"))))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
