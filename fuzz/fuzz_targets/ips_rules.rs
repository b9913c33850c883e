//! The IPS rule-file parser (`rpaas_ips::parse_rules`) and, for the files it accepts, the
//! engine they compile to.
//!
//! Input: a rule file, then optionally a NUL (TOML text has none) and a request: its target
//! on the first line, a form body after it. Beyond "never panics": an error list is never
//! empty and names the file; an accepted file has unique, non-zero ids, a message and a
//! target per rule, and compiles into a `RuleSet` (a file `rpaas check` passes must not fail
//! when the node loads it); inspection reports only the set's own rules, sorted, and agrees
//! with the settings (detect mode finds the same and only records, a disabled rule never
//! matches, `off` inspects nothing).
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use rpaas_ips::{
    inspect, inspect_response, parse_rules, Mode, Outcome, RequestData, RuleSet, Scope, Settings,
    TrafficClass, Verdict,
};

const FILE: &str = "fuzz.toml";

fuzz_target!(|data: &[u8]| {
    let (rules_part, request_part) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let Ok(text) = std::str::from_utf8(rules_part) else {
        return;
    };
    let rules = match parse_rules(FILE, text) {
        Ok(rules) => rules,
        Err(errors) => {
            assert!(!errors.is_empty());
            assert!(
                errors
                    .iter()
                    .all(|e| e.file == FILE && !e.reason.is_empty()),
                "{errors:?}"
            );
            return;
        }
    };
    let mut ids = HashSet::new();
    for r in &rules {
        assert!(r.id != 0 && ids.insert(r.id), "id {}", r.id);
        assert!(!r.msg.is_empty() && !r.targets.is_empty() && r.score <= 1000);
    }
    let rs = match RuleSet::compile(rules) {
        Ok(rs) => rs,
        Err(e) => panic!("accepted by parse_rules, refused by RuleSet::compile: {e}"),
    };
    assert_eq!(rs.len(), ids.len());

    let mut requests = vec![sample()];
    if let Some(bytes) = request_part {
        requests.push(from_bytes(bytes));
    }
    for req in &requests {
        for scope in [Scope::Head, Scope::Body] {
            check(&rs, &ids, req, scope);
        }
    }
    let settings = Settings::default();
    let headers = vec![("content-type".to_string(), "text/html".to_string())];
    let out = inspect_response(
        &rs,
        &settings,
        TrafficClass::Other,
        "GET",
        "/labtech/",
        &headers,
        "<html>Server Error in '/' Application. System.Data.SqlClient</html>",
    );
    well_formed(&out, &ids);
});

fn check(rs: &RuleSet, ids: &HashSet<u32>, req: &RequestData, scope: Scope) {
    let block = Settings::default();
    let out = inspect(rs, &block, req, scope);
    well_formed(&out, ids);
    if out.verdict == Verdict::Block {
        assert!(out.rule.is_some());
    }

    let detect = Settings {
        mode: Mode::Detect,
        ..Settings::default()
    };
    let seen = inspect(rs, &detect, req, scope);
    assert_eq!(
        seen.matches, out.matches,
        "detect mode finds what block mode finds"
    );
    assert_ne!(seen.verdict, Verdict::Block);

    let off = Settings {
        mode: Mode::Off,
        ..Settings::default()
    };
    assert!(inspect(rs, &off, req, scope).matches.is_empty());

    if let Some(first) = out.matches.first() {
        let mut disabled = Settings::default();
        disabled.disabled.insert(first.id);
        let without = inspect(rs, &disabled, req, scope);
        assert!(without.matches.iter().all(|m| m.id != first.id));
    }
}

fn well_formed(out: &Outcome, ids: &HashSet<u32>) {
    assert!(out.matches.windows(2).all(|w| w[0].id < w[1].id), "{out:?}");
    assert!(out.matches.iter().all(|m| ids.contains(&m.id)), "{out:?}");
    if let Some(rule) = out.rule {
        assert!(out.matches.iter().any(|m| m.id == rule), "{out:?}");
    }
}

/// A request that touches every target: query, headers, cookies, a URL-valued header, a body.
fn sample() -> RequestData {
    let target = "/LabTech/Agent.aspx?id=1%27%20OR%201=1--&name=<script>alert(1)</script>";
    let canon = rpaas_path::canonicalize(target).expect("sample target");
    let mut req = RequestData::new(
        "POST",
        &canon.path,
        target,
        [
            ("User-Agent", "sqlmap/1.7"),
            ("Cookie", "ASP.NET_SessionId=abc; token=../../etc/passwd"),
            ("Referer", "https://example.net/a/../b?x=%2e%2e%2f&y=1"),
            ("X-Forwarded-For", "127.0.0.1"),
        ],
        TrafficClass::Agent,
    );
    req.set_body(
        "application/x-www-form-urlencoded",
        b"user=admin&pass=' or ''='&cmd=powershell -enc AAAA",
    );
    req
}

/// A request from fuzz bytes: the target line, then a form body.
fn from_bytes(bytes: &[u8]) -> RequestData {
    let text = String::from_utf8_lossy(bytes);
    let (target, body) = text.split_once('\n').unwrap_or((&text, ""));
    let path = rpaas_path::canonicalize(target)
        .map(|c| c.path)
        .unwrap_or_else(|_| "/".into());
    let mut req = RequestData::new(
        "GET",
        &path,
        target,
        [("referer", body), ("cookie", body)],
        TrafficClass::Other,
    );
    req.set_body("application/x-www-form-urlencoded", body.as_bytes());
    req
}
