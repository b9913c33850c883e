//! The engine against the rules' plain meaning: every rule, every value of its targets, its
//! own chain and matcher, one at a time. Whatever the engine does to be fast (one scan per
//! group, case folding instead of lowercase copies, skipped transformations, byte-class
//! rules) must find exactly the rules this finds — over the corpora and over generated
//! requests that mix attack fragments, encodings and non-ASCII text into every target.

use std::borrow::Cow;

use super::*;
use crate::rules::compile_regex;

/// Each rule's regex, compiled on its own.
fn regexes(rs: &RuleSet) -> Vec<Option<regex::bytes::Regex>> {
    rs.rules
        .iter()
        .map(|r| match &r.op {
            Op::Regex(p) => compile_regex(p).ok(),
            _ => None,
        })
        .collect()
}

/// The ids of the rules that match, the slow and obvious way.
fn naive(
    rs: &RuleSet,
    res: &[Option<regex::bytes::Regex>],
    req: &RequestData,
    scope: Scope,
) -> Vec<u32> {
    let mut ids = Vec::new();
    for (r, re) in rs.rules.iter().zip(res) {
        if r.phase != Phase::Request || !applies(r, req.class, &req.method, Some(req)) {
            continue;
        }
        let hit = r.targets.iter().any(|t| {
            if let Op::CountGt(n) = r.op {
                return count(req, t, scope) > n;
            }
            let mut any = false;
            for_each_value(req, t, scope, &mut |_, v| {
                let v = r
                    .transforms
                    .iter()
                    .fold(Cow::Borrowed(v), |v, t| t.apply(v));
                let m = match &r.op {
                    Op::Regex(_) => re.as_ref().is_some_and(|re| re.is_match(v.as_bytes())),
                    Op::Contains(list) => list.iter().any(|n| v.contains(n.as_str())),
                    Op::Prefix(p) => v.starts_with(p.as_str()),
                    Op::Suffix(p) => v.ends_with(p.as_str()),
                    Op::Equals(p) => v == p.as_str(),
                    Op::LengthGt(n) => v.len() > *n,
                    Op::CountGt(_) => false,
                };
                any |= m != r.negate;
            });
            any
        });
        if hit {
            ids.push(r.id);
        }
    }
    ids.sort_unstable();
    ids
}

/// Compares both readings; returns how many rules matched.
fn check(
    rs: &RuleSet,
    res: &[Option<regex::bytes::Regex>],
    req: &RequestData,
    what: &str,
) -> usize {
    let mut n = 0;
    for scope in [Scope::Head, Scope::Body] {
        // Without the shipped exclusions: this compares matching, not tuning.
        let untuned = Settings {
            exclusions: Vec::new(),
            ..Default::default()
        };
        let fast = inspect(rs, &untuned, req, scope).ids();
        assert_eq!(
            fast,
            naive(rs, res, req, scope),
            "{what} ({scope:?}): {req:?}"
        );
        n += fast.len();
    }
    n
}

fn corpus(name: &str) -> Vec<serde_json::Value> {
    let path = format!("{}/corpus/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).expect("corpus file");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

fn build(
    method: &str,
    target: &str,
    headers: &[(String, String)],
    ct: &str,
    body: &str,
) -> Option<RequestData> {
    let canon = rpaas_path::canonicalize(target).ok()?;
    let class = rpaas_policy::default_class(&canon.path);
    let mut r = RequestData::new(
        method,
        &canon.path,
        target,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        class,
    );
    if !body.is_empty() {
        r.set_body(ct, body.as_bytes());
    }
    Some(r)
}

#[test]
fn engine_matches_the_plain_reading_on_the_corpora() {
    let rs = RuleSet::builtin().expect("builtin");
    let res = regexes(&rs);
    let mut n = 0;
    for file in ["attacks.jsonl", "benign.jsonl"] {
        for v in corpus(file) {
            let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
            let headers: Vec<(String, String)> = v["headers"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|h| {
                            let f = |i: usize| h[i].as_str().unwrap_or("").to_string();
                            (f(0), f(1))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let Some(req) = build(
                &s("method"),
                &s("target"),
                &headers,
                &s("content_type"),
                &s("body"),
            ) else {
                continue;
            };
            check(&rs, &res, &req, &s("note"));
            n += 1;
        }
    }
    assert!(n > 500, "{n}");
}

/// Pieces that exercise every transformation, the byte-class rules, case folding and the
/// separators of the joined scan.
const FRAGMENTS: &[&str] = &[
    "' or 1=1--",
    "\" OR \"a\"=\"a",
    "UNION/**/SELECT",
    "un/*!50000ion*/ sel/**/ect",
    "%2527%20oR%201%3d1",
    "<ScRiPt>",
    "%3cscript%3e",
    "&lt;img src=x onerror=alert(1)&gt;",
    "%uff1cscript%uff1e",
    "${jndi:ldap://x}",
    "$%7Bjndi:ldap://x%7D",
    "() { :; };",
    ";cat /etc/passwd",
    "| whoami",
    "..%2f..%2f",
    "..\\..\\windows\\win.ini",
    "%0d%0aSet-Cookie: a=b",
    "\r\n",
    "\u{0}",
    "%00",
    "\u{7}",
    "\u{212a}",
    "%u212a",
    "é",
    "%c3%a9",
    "\u{a0}",
    "  ",
    "\t",
    "#",
    "--",
    "//",
    "/./",
    "+",
    "%",
    "%u",
    "&",
    "&#x27;",
    "SLEEP(5)",
    "sqlmap",
    "Nikto",
    "file:///etc/passwd",
    "\\\\host\\share",
    "<!DOCTYPE x [<!ENTITY y SYSTEM \"file:///c:/windows/win.ini\">]>",
    "javascript:alert(1)",
    "-e JABzAD0ATgBlAHcALQBPAGIAagBlAGMAdAAgAFMAeQBzAHQAZQBtAC4ATgBlAHQALgBTAG8AYwBrAGUAdABz",
    "plain",
    "Acme Corp",
    "42",
    "",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as usize
    }

    fn text(&mut self) -> String {
        let n = 1 + self.next() % 3;
        (0..n)
            .map(|_| FRAGMENTS[self.next() % FRAGMENTS.len()])
            .collect()
    }
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~%+".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn engine_matches_the_plain_reading_on_generated_requests() {
    let rs = RuleSet::builtin().expect("builtin");
    let res = regexes(&rs);
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let paths = [
        "/cwa/api/v1/computers",
        "/automate/",
        "/WCC2/Home/Login",
        "/LabTech/ControlCenter.asmx",
        "/LabTech/Agent.aspx",
        "/x",
    ];
    let (mut checked, mut matching) = (0, 0);
    for i in 0..1500 {
        let path = paths[rng.next() % paths.len()];
        let (k1, v1, v2) = (rng.text(), rng.text(), rng.text());
        let target = match i % 3 {
            0 => format!("{path}?{}={}&b={}", enc(&k1), enc(&v1), enc(&v2)),
            1 => format!("{path}?q={}", v1.replace(['#', ' ', '\r', '\n'], "+")),
            _ => path.to_string(),
        };
        let headers = vec![
            ("Host".to_string(), "x.example.net".to_string()),
            ("User-Agent".to_string(), rng.text()),
            (
                "Referer".to_string(),
                format!("https://x.example.net/{}", rng.text()),
            ),
            ("Cookie".to_string(), format!("s={}; t=1", enc(&rng.text()))),
            (format!("X-{}", rng.next() % 5), rng.text()),
            ("Content-Type".to_string(), "application/json".to_string()),
        ];
        let (ct, body) = match i % 4 {
            0 => (
                "application/x-www-form-urlencoded",
                format!("a={}&{}=1", enc(&rng.text()), enc(&rng.text())),
            ),
            1 => (
                "application/json",
                serde_json::json!({ "Comment": rng.text(), rng.text(): [rng.text(), 1] })
                    .to_string(),
            ),
            2 => ("text/xml", format!("<r>{}</r>", rng.text())),
            _ => ("", String::new()),
        };
        for method in ["GET", "POST", "PROPFIND"] {
            if let Some(req) = build(method, &target, &headers, ct, &body) {
                if check(&rs, &res, &req, "generated") > 0 {
                    matching += 1;
                }
                checked += 1;
            }
        }
    }
    // Most generated requests match something: the comparison is not over empty results.
    assert!(
        checked > 3000 && matching * 2 > checked,
        "{matching} of {checked}"
    );
}
