//! The Automate exclusion set measured on the IPS corpora (`rpaas-ips/corpus/*.jsonl`):
//! CRS PL1 bare and with `rules/automate-exclusions.conf` inserted after
//! `REQUEST-901-INITIALIZATION.conf`. With the exclusions no benign Automate request may be
//! blocked, and no attack that bare CRS blocks outside the exclusions' scope may get through.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rpaas_crs::automate::AUTOMATE_EXCLUSIONS;
use rpaas_crs::{load_files, Evaluation, RequestInput, RuleSet, Setup};
use rpaas_policy::{default_class, TrafficClass};

const CRS_DIR: &str = "/usr/share/modsecurity-crs/rules";

struct Case {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: String,
    note: String,
}

fn corpus(name: &str) -> Vec<Case> {
    let path = format!("{}/../rpaas-ips/corpus/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("corpus file");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
            let headers = v["headers"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|h| {
                            let part = |i: usize| h[i].as_str().unwrap_or("").to_string();
                            (part(0), part(1))
                        })
                        .collect()
                })
                .unwrap_or_default();
            Case {
                method: s("method"),
                target: s("target"),
                headers,
                body: s("body"),
                note: s("note"),
            }
        })
        .collect()
}

/// The class the node would preset as `TX:rpaas_class`; `None` when the node refuses the
/// path before CRS runs.
fn class_of(c: &Case) -> Option<TrafficClass> {
    let canon = rpaas_path::canonicalize(&c.target).ok()?;
    Some(default_class(&canon.path))
}

fn input(c: &Case, class: Option<TrafficClass>) -> RequestInput {
    let mut r = RequestInput::new(&c.method, &c.target);
    for (k, v) in &c.headers {
        r = r.header(k, v.as_bytes());
    }
    if !c.body.is_empty() {
        r = r.header("content-length", c.body.len().to_string());
        r.body = c.body.as_bytes().to_vec();
    }
    let class = class.map_or("other", TrafficClass::as_str);
    r.tx("rpaas_class", class)
}

/// The rule files in the order `load_dir` reads them, with the exclusion set after 901 when
/// asked.
fn rule_files(dir: &Path, exclusions: bool) -> Vec<(String, String)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read CRS dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "conf") && p.is_file())
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let text = std::fs::read(&p).expect("read rule file");
        let is_901 = p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("REQUEST-901-"));
        out.push((
            p.display().to_string(),
            String::from_utf8_lossy(&text).into_owned(),
        ));
        if exclusions && is_901 {
            out.push((
                "automate-exclusions.conf".to_string(),
                AUTOMATE_EXCLUSIONS.to_string(),
            ));
        }
    }
    assert!(
        !exclusions || out.iter().any(|(n, _)| n == "automate-exclusions.conf"),
        "no REQUEST-901 file to insert the exclusions after"
    );
    out
}

fn load(dir: &Path, exclusions: bool) -> RuleSet {
    let files = rule_files(dir, exclusions);
    let loaded = load_files(&files, dir, &Setup::paranoia(1)).expect("CRS loads");
    if exclusions {
        let ours: Vec<_> = loaded
            .report
            .unsupported
            .iter()
            .filter(|u| &*u.file == "automate-exclusions.conf")
            .collect();
        assert!(
            ours.is_empty(),
            "exclusion rules the engine cannot run: {ours:?}"
        );
    }
    loaded.rules
}

fn crs() -> Option<(RuleSet, RuleSet)> {
    let dir = Path::new(CRS_DIR);
    if !dir.is_dir() {
        eprintln!("note: {CRS_DIR} is absent; the Automate exclusion measurement is skipped");
        return None;
    }
    Some((load(dir, false), load(dir, true)))
}

/// Rules that scored, without the blocking evaluation itself.
fn scoring_ids(e: &Evaluation) -> Vec<u32> {
    let mut ids: Vec<u32> = e
        .matches
        .iter()
        .map(|m| m.id)
        .filter(|id| !(949000..950000).contains(id) && !(980000..981000).contains(id))
        .collect();
    ids.dedup();
    ids
}

fn describe(e: &Evaluation) -> String {
    e.matches
        .iter()
        .map(|m| format!("{} {}={:?}", m.id, m.var_name, m.excerpt))
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn benign_automate_traffic_passes_with_the_exclusions() {
    let Some((bare, excl)) = crs() else { return };
    let cases = corpus("benign.jsonl");
    let mut bare_fp = 0usize;
    let mut by_rule: BTreeMap<u32, usize> = BTreeMap::new();
    let mut by_note: BTreeMap<&str, usize> = BTreeMap::new();
    let mut still_blocked = Vec::new();
    for c in &cases {
        let class = class_of(c);
        assert!(class.is_some(), "benign path refused: {}", c.target);
        let req = input(c, class);
        let e = bare.evaluate(&req);
        if e.would_block() {
            bare_fp += 1;
            *by_note.entry(c.note.as_str()).or_default() += 1;
            for id in scoring_ids(&e) {
                *by_rule.entry(id).or_default() += 1;
            }
        }
        let e = excl.evaluate(&req);
        if e.would_block() {
            still_blocked.push(format!(
                "{} {} [{}] ({}): score {} by {:?}: {}",
                c.method,
                c.target,
                class.map_or("-", TrafficClass::as_str),
                c.note,
                e.anomaly_score,
                e.blocked_by,
                describe(&e)
            ));
        }
    }
    let n = cases.len();
    println!(
        "bare CRS PL1: {bare_fp} of {n} benign requests would block ({:.1}%)",
        100.0 * bare_fp as f64 / n as f64
    );
    let mut top: Vec<_> = by_rule.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    println!("top rules in the false positives (rule: requests):");
    for (id, k) in top.iter().take(15) {
        println!("  {id}: {k}");
    }
    println!("false positives by kind of traffic:");
    for (note, k) in &by_note {
        println!("  {note}: {k}");
    }
    println!(
        "with the Automate exclusions: {} of {n} benign requests would block",
        still_blocked.len()
    );
    assert!(
        still_blocked.is_empty(),
        "benign requests still blocked:\n{}",
        still_blocked.join("\n")
    );
}

/// Classes (as the node names them) that some exclusion narrows. Attacks in every other
/// class must see exactly bare CRS.
fn excluded_scope(class: Option<TrafficClass>) -> bool {
    matches!(
        class,
        Some(
            TrafficClass::Agent
                | TrafficClass::Deployment
                | TrafficClass::Api
                | TrafficClass::ControlCenter
        )
    )
}

#[test]
fn exclusions_do_not_weaken_detection_outside_their_scope() {
    let Some((bare, excl)) = crs() else { return };
    let cases = corpus("attacks.jsonl");
    let (mut bare_blocks, mut excl_blocks) = (0usize, 0usize);
    let mut lost_in_scope = Vec::new();
    let mut lost_outside = Vec::new();
    for c in &cases {
        let class = class_of(c);
        let req = input(c, class);
        let b = bare.evaluate(&req).would_block();
        let x = excl.evaluate(&req);
        bare_blocks += usize::from(b);
        excl_blocks += usize::from(x.would_block());
        if b && !x.would_block() {
            let line = format!(
                "{} {} [{}] ({})",
                c.method,
                c.target,
                class.map_or("refused path", TrafficClass::as_str),
                c.note
            );
            if excluded_scope(class) {
                lost_in_scope.push(line);
            } else {
                lost_outside.push(line);
            }
        }
    }
    let n = cases.len();
    println!("attacks CRS PL1 blocks: bare {bare_blocks} of {n}, with the Automate exclusions {excl_blocks} of {n}");
    println!(
        "blocked by bare CRS, not with the exclusions, inside their scope ({}):",
        lost_in_scope.len()
    );
    for l in &lost_in_scope {
        println!("  {l}");
    }
    assert!(
        lost_outside.is_empty(),
        "attacks outside the exclusions' scope no longer blocked:\n{}",
        lost_outside.join("\n")
    );
}

struct Probe {
    what: &'static str,
    class: &'static str,
    method: &'static str,
    target: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: Option<(&'static str, &'static str)>,
}

const BROWSER: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0.0.0 Safari/537.36";

/// Attacks just outside each exclusion's scope: bare CRS blocks them, and so must CRS with
/// the exclusions.
const OUT_OF_SCOPE: &[Probe] = &[
    Probe {
        what: "agent body with query arguments is inspected",
        class: "agent",
        method: "POST",
        target: "/LabTech/Agent.aspx?id=1",
        headers: &[("User-Agent", "LTService")],
        body: Some(("application/x-www-form-urlencoded", "a=1' union select password from users--")),
    },
    Probe {
        what: "agent body of another content type is inspected",
        class: "agent",
        method: "POST",
        target: "/LabTech/Agent.aspx",
        headers: &[("User-Agent", "LTService")],
        body: Some(("application/json", r#"{"a":"<script>alert(1)</script>"}"#)),
    },
    Probe {
        what: "agent headers are inspected",
        class: "agent",
        method: "POST",
        target: "/LabTech/Agent.aspx",
        headers: &[("User-Agent", "sqlmap/1.7.2#stable (https://sqlmap.org)")],
        body: Some(("application/octet-stream", "opaque")),
    },
    Probe {
        what: "an opaque body outside the agent classes is inspected",
        class: "other",
        method: "POST",
        target: "/LabTech/Other.aspx",
        headers: &[("User-Agent", "LTService")],
        body: Some(("application/x-www-form-urlencoded", "x=' or 1=1 -- <script> ../../ union select")),
    },
    Probe {
        what: "condition with a keyword outside a literal",
        class: "api",
        method: "GET",
        target: "/cwa/api/v1/computers?condition=Id%20%3D%201%20union%20select%20password%20from%20users",
        headers: &[("User-Agent", "python-requests/2.31.0")],
        body: None,
    },
    Probe {
        what: "condition sent twice (one well-formed, one not)",
        class: "api",
        method: "GET",
        target: "/cwa/api/v1/computers?condition=Id%20%3D%201&condition=1%27%20or%20%271%27%3D%271",
        headers: &[("User-Agent", "python-requests/2.31.0")],
        body: None,
    },
    Probe {
        what: "well-formed condition with XSS in a literal (XSS rules stay)",
        class: "api",
        method: "GET",
        target: "/cwa/api/v1/computers?condition=Name%20%3D%20%27%3Cscript%3Ealert(1)%3C%2Fscript%3E%27",
        headers: &[("User-Agent", "python-requests/2.31.0")],
        body: None,
    },
    Probe {
        what: "CommandExecute: XSS in the parameters (only RCE and file-access rules are lifted)",
        class: "api",
        method: "POST",
        target: "/cwa/api/v1/Computers/12/CommandExecute",
        headers: &[("Authorization", "Bearer x")],
        body: Some(("application/json", r#"{"Command":{"Id":2},"Parameters":["<script>alert(1)</script>"]}"#)),
    },
    Probe {
        what: "command injection in another JSON member of CommandExecute",
        class: "api",
        method: "POST",
        target: "/cwa/api/v1/Computers/12/CommandExecute",
        headers: &[("Authorization", "Bearer x")],
        body: Some(("application/json", r#"{"Command":{"Id":2,"Name":"x; cat /etc/passwd"},"Parameters":["ipconfig"]}"#)),
    },
    Probe {
        what: "OS file access in another JSON member of CommandExecute",
        class: "api",
        method: "POST",
        target: "/cwa/api/v1/Computers/12/CommandExecute",
        headers: &[("Authorization", "Bearer x")],
        body: Some(("application/json", r#"{"Command":{"Id":2,"Name":"../../../../etc/passwd"},"Parameters":["ipconfig"]}"#)),
    },
    Probe {
        what: "OS file access in the query of the Control Center endpoint",
        class: "control_center",
        method: "GET",
        target: "/LabTech/ControlCenter.asmx?wsdl=../../../../etc/passwd",
        headers: &[],
        body: None,
    },
    Probe {
        what: "command parameters outside CommandExecute",
        class: "api",
        method: "POST",
        target: "/cwa/api/v1/tickets",
        headers: &[("Authorization", "Bearer x")],
        body: Some(("application/json", r#"{"Parameters":["x; cat /etc/passwd"]}"#)),
    },
    Probe {
        what: "ReturnUrl with a command",
        class: "web_control_center",
        method: "GET",
        target: "/automate/login?ReturnUrl=%2Fx%3Fa%3D1%3Bcat%20%2Fetc%2Fpasswd",
        headers: &[("User-Agent", BROWSER)],
        body: None,
    },
    Probe {
        what: "search phrase with a chained command",
        class: "web_control_center",
        method: "GET",
        target: "/automate/api/search?q=a%3B%20cat%20%2Fetc%2Fpasswd",
        headers: &[("User-Agent", BROWSER)],
        body: None,
    },
    Probe {
        what: "same-site Referer with SQLi outside a literal",
        class: "web_control_center",
        method: "GET",
        target: "/automate/computers",
        headers: &[
            ("User-Agent", BROWSER),
            ("Referer", "https://h.example/automate/computers?page=2&id=1%27%20or%20%271%27%3D%271"),
        ],
        body: None,
    },
    Probe {
        what: "Control Center SOAP: SQLi in the XML (only RCE rules and 942100 are lifted)",
        class: "control_center",
        method: "POST",
        target: "/LabTech/ControlCenter.asmx",
        headers: &[("SOAPAction", "\"http://tempuri.org/GetComputers\"")],
        body: Some((
            "text/xml; charset=utf-8",
            "<?xml version=\"1.0\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body><GetComputers xmlns=\"http://tempuri.org/\"><id>1' union select password from users--</id></GetComputers></soap:Body></soap:Envelope>",
        )),
    },
    Probe {
        what: "XML with a command to ControlCenter.asmx without SOAPAction",
        class: "control_center",
        method: "POST",
        target: "/LabTech/ControlCenter.asmx",
        headers: &[],
        body: Some(("text/xml", "<x>$(Get-Service LTService); Invoke-Expression $a</x>")),
    },
];

fn probe(p: &Probe) -> RequestInput {
    let mut r = RequestInput::new(p.method, p.target).header("Host", "h.example");
    for (k, v) in p.headers {
        r = r.header(k, *v);
    }
    if let Some((ct, body)) = p.body {
        r = r.body(ct, body);
    }
    r.tx("rpaas_class", p.class)
}

#[test]
fn attacks_just_outside_each_exclusion_stay_blocked() {
    let Some((bare, excl)) = crs() else { return };
    let mut wrong = Vec::new();
    for p in OUT_OF_SCOPE {
        let req = probe(p);
        let (b, x) = (bare.evaluate(&req), excl.evaluate(&req));
        if !b.would_block() {
            wrong.push(format!(
                "{}: bare CRS does not block it ({})",
                p.what,
                describe(&b)
            ));
        } else if !x.would_block() {
            wrong.push(format!("{}: not blocked with the exclusions", p.what));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
