//! The OWASP CRS project's own regression tests (CRS v3.3.4, go-ftw YAML, read from
//! `../shared/crs-tests` or `$RPAAS_CRS_TESTS`) replayed through a real node that runs the
//! installed CRS at paranoia level 1 beside the shipped rules, in block mode, on an all-traffic
//! instance. At least 95% of the attack tests of PL1 rules must be refused with 403; the report
//! (per family and paranoia level, and every miss) is printed and written to
//! `target/crs-replay.md`.

mod common;

use std::path::PathBuf;

use common::*;
use crs_replay::report::{Kind, Verdict};

const CRS: &str = "/usr/share/modsecurity-crs";

fn tests_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("RPAAS_CRS_TESTS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/crs-tests"),
        PathBuf::from,
    );
    dir.is_dir().then_some(dir)
}

#[test]
fn crs_regression_tests_pl1_attacks_are_refused() {
    let (Some(tests), true) = (
        tests_dir(),
        std::path::Path::new(CRS).join("rules").is_dir(),
    ) else {
        eprintln!("CRS tests (../shared/crs-tests) or {CRS} missing: skipped");
        return;
    };
    let up = Upstream::start();
    let fx = Fixture::new();
    fx.ca.write_leaf(fx.path(), "a", &[HOST_A]);
    // Bans off: the replay is one client sending 2,000 attacks.
    let cfg = format!(
        r#"
[node]
admin = "127.0.0.1:0"
[node.limits]
ban_after = 0
login = "off"
[node.ips]
crs = "{CRS}"

[[listener]]
address = "127.0.0.1:0"

[[instance]]
id = "a"
hostnames = ["{HOST_A}"]
cert = "a.pem"
key = "a.key"
upstream = "http://{up}"
deployment = "all-traffic"
"#,
        up = up.addr
    );
    let node = Node::start(bin(), fx.path(), &cfg);
    let report = crs_replay::run(
        &crs_replay::Options {
            tests,
            rules: PathBuf::from(CRS).join("rules"),
            addr: node.listeners[0].to_string(),
            host: HOST_A.to_string(),
            tls: true,
        },
        &mut |_, _| {},
    )
    .expect("replay");
    let md = report.markdown();
    println!("{md}");
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/crs-replay.md");
    let _ = std::fs::write(&out, &md);

    let pl1: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.kind == Kind::Attack && r.paranoia == Some(1))
        .collect();
    let blocked = pl1.iter().filter(|r| r.verdict == Verdict::Blocked).count();
    assert!(pl1.len() > 1000, "only {} PL1 attack tests read", pl1.len());
    let rate = blocked as f64 / pl1.len() as f64;
    println!(
        "PL1 attack tests refused with 403: {blocked} / {} ({:.1}%)",
        pl1.len(),
        rate * 100.0
    );
    assert!(
        rate >= 0.95,
        "{blocked} / {} PL1 attacks blocked",
        pl1.len()
    );
}
