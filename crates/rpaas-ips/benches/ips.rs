//! IPS evaluation time with the shipped ruleset, and how it grows with the number of rules.
//! `cargo bench -p rpaas-ips --bench ips`
#![allow(clippy::expect_used)]

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use rpaas_ips::*;

fn agent() -> RequestData {
    RequestData::new(
        "POST",
        "/labtech/agent.aspx",
        "/LabTech/Agent.aspx",
        [
            ("host", "052d3c3287c38201.example.net"),
            ("user-agent", "LTService"),
            ("content-type", "application/octet-stream"),
            ("content-length", "2048"),
            ("connection", "keep-alive"),
        ],
        TrafficClass::Agent,
    )
}

fn technician() -> RequestData {
    let mut r = RequestData::new(
        "POST",
        "/cwa/api/v1/computers",
        "/cwa/api/v1/computers?condition=ComputerName%20like%20%27%25srv%25%27%20and%20Client.Name%20%3D%20%27Acme%27&pageSize=50&orderBy=computerName%20asc",
        [
            ("host", "052d3c3287c38201.example.net"),
            ("user-agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"),
            ("accept", "application/json, text/plain, */*"),
            ("accept-language", "en-US,en;q=0.9"),
            ("authorization", "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abc"),
            ("clientid", "3f2c9a7e-1b5d-4e8f-9a2b-7c6d5e4f3a2b"),
            ("cookie", "ASP.NET_SessionId=abcdefghijklmnopqrstuvwx; cwa_ui=1"),
            ("referer", "https://052d3c3287c38201.example.net/automate/computers"),
            ("content-type", "application/json"),
        ],
        TrafficClass::Api,
    );
    r.set_body(
        "application/json",
        br#"{"ComputerIds":[101,102,103],"Comment":"Patch window Tuesday 22:00","ScriptId":4411,"Parameters":{"reboot":"false"}}"#,
    );
    r
}

fn synthetic(n: usize) -> Vec<Rule> {
    let mut text = String::new();
    for i in 0..n {
        text.push_str(&format!(
            "[[rule]]\nid = {}\nmsg = \"synthetic\"\nseverity = \"notice\"\ntargets = [\"args\", \"arg_names\"]\ntransforms = [\"url_decode\", \"lowercase\"]\npattern = '''\\bsyn{i}tok[0-9]+(?:x|y)\\b'''\n",
            500_000 + i
        ));
    }
    parse_rules("synthetic", &text).expect("synthetic rules")
}

fn bench(c: &mut Criterion) {
    let rs = RuleSet::builtin().expect("builtin");
    let s = Settings::default();
    let a = agent();
    let t = technician();
    c.bench_function("ips/agent_checkin_head", |b| {
        b.iter(|| black_box(inspect(&rs, &s, black_box(&a), Scope::Head)))
    });
    c.bench_function("ips/technician_api_head", |b| {
        b.iter(|| black_box(inspect(&rs, &s, black_box(&t), Scope::Head)))
    });
    c.bench_function("ips/technician_api_head_and_body", |b| {
        b.iter(|| {
            let mut o = inspect(&rs, &s, black_box(&t), Scope::Head);
            o.merge(inspect(&rs, &s, black_box(&t), Scope::Body), &s);
            black_box(o)
        })
    });
    // A 16 KiB form (100 fields of 150 bytes): body inspection per byte.
    let mut form = RequestData::new(
        "POST",
        "/automate/post",
        "/automate/post",
        [("content-type", "application/x-www-form-urlencoded")],
        TrafficClass::WebControlCenter,
    );
    let body: Vec<String> = (0..100)
        .map(|i| format!("field{i}={}", "v".repeat(150)))
        .collect();
    form.set_body(
        "application/x-www-form-urlencoded",
        body.join("&").as_bytes(),
    );
    c.bench_function("ips/form_body_16k", |b| {
        b.iter(|| black_box(inspect(&rs, &s, black_box(&form), Scope::Body)))
    });
    let mut g = c.benchmark_group("ips/technician_by_rule_count");
    let base = rpaas_ips::parse_rules("builtin.toml", BUILTIN_RULES).expect("builtin");
    for extra in [0usize, 100, 500, 1000] {
        let mut rules = base.clone();
        rules.extend(synthetic(extra));
        let n = rules.len();
        let rs = RuleSet::compile(rules).expect("compile");
        g.bench_with_input(BenchmarkId::from_parameter(n), &rs, |b, rs| {
            b.iter(|| {
                let mut o = inspect(rs, &s, black_box(&t), Scope::Head);
                o.merge(inspect(rs, &s, black_box(&t), Scope::Body), &s);
                black_box(o)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
