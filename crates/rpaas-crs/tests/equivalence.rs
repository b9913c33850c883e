//! The fast evaluator (literal prefilters, grouped scans, the load-time snapshot of the
//! request-independent prefix and fixed rule outcomes) against its reference twin
//! ([`RuleSet::evaluate_reference`]: every rule, every operator on every value) on the CRS regression-test
//! inputs and the rpaas-ips corpora, at PL1 and PL2. Any difference in matched rules, messages,
//! excerpts, scores or the blocking rule fails. Skips, with a note, where the CRS or the inputs
//! are not installed.

use std::path::{Path, PathBuf};

use rpaas_crs::{load_dir, load_files, RequestInput, RuleSet, Setup};

const CRS_DIR: &str = "/usr/share/modsecurity-crs/rules";
const CRS_TESTS: &str = "/work/shared/crs-tests";
const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../rpaas-ips/corpus");

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml") {
            out.push(p);
        }
    }
}

fn text(v: &serde_yaml::Value) -> Option<String> {
    match v {
        serde_yaml::Value::String(s) => Some(s.clone()),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        serde_yaml::Value::Bool(b) => Some(b.to_string()),
        // ftw joins a list of body lines with CRLF.
        serde_yaml::Value::Sequence(l) => Some(
            l.iter()
                .map(|x| text(x).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\r\n"),
        ),
        _ => None,
    }
}

/// Every stage input of the ftw files that is not a raw `encoded_request`.
fn crs_test_requests() -> Vec<RequestInput> {
    let mut files = Vec::new();
    yaml_files(Path::new(CRS_TESTS), &mut files);
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let Ok(src) = std::fs::read_to_string(&f) else {
            continue;
        };
        let Ok(doc) = serde_yaml::from_str::<serde_yaml::Value>(&src) else {
            continue;
        };
        let Some(tests) = doc.get("tests").and_then(|t| t.as_sequence()) else {
            continue;
        };
        for t in tests {
            let stages = t.get("stages").and_then(|s| s.as_sequence());
            for stage in stages.into_iter().flatten() {
                let Some(input) = stage.get("stage").and_then(|s| s.get("input")) else {
                    continue;
                };
                if input.get("encoded_request").is_some() {
                    continue;
                }
                let field = |k: &str| input.get(k).and_then(text);
                let method = field("method").unwrap_or_else(|| "GET".into());
                let uri = field("uri").unwrap_or_else(|| "/".into());
                let mut req = RequestInput::new(&method, &uri);
                if let Some(v) = field("version") {
                    req.protocol = v;
                }
                if let Some(h) = input.get("headers").and_then(|h| h.as_mapping()) {
                    for (k, v) in h {
                        if let (Some(k), Some(v)) = (text(k), text(v)) {
                            req = req.header(&k, v);
                        }
                    }
                }
                if let Some(d) = field("data") {
                    req.body = d.into_bytes();
                }
                out.push(req);
            }
        }
    }
    out
}

fn corpus_requests(file: &str) -> Vec<RequestInput> {
    let Ok(src) = std::fs::read_to_string(Path::new(CORPUS).join(file)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in src.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).expect("corpus line is JSON");
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("");
        let mut req = RequestInput::new(s("method"), s("target"));
        for h in v
            .get("headers")
            .and_then(|h| h.as_array())
            .into_iter()
            .flatten()
        {
            if let (Some(n), Some(val)) = (h[0].as_str(), h[1].as_str()) {
                req = req.header(n, val);
            }
        }
        let body = s("body");
        if !body.is_empty() || !s("content_type").is_empty() {
            req = req.body(s("content_type"), body);
        }
        out.push(req);
    }
    out
}

fn check(rules: &RuleSet, reqs: &[RequestInput], pl: u8) -> (usize, usize) {
    let mut matched = 0;
    let mut blocked = 0;
    for (i, req) in reqs.iter().enumerate() {
        let fast = rules.evaluate(req);
        let slow = rules.evaluate_reference(req);
        assert_eq!(
            fast, slow,
            "PL{pl} request #{i} {} {} (tx {:?}) decides differently",
            req.method, req.uri, req.tx
        );
        matched += usize::from(!fast.matches.is_empty());
        blocked += usize::from(fast.would_block());
    }
    (matched, blocked)
}

#[test]
fn prefiltered_evaluation_equals_reference() {
    if !Path::new(CRS_DIR).is_dir() {
        eprintln!("note: {CRS_DIR} is absent (apt-get install modsecurity-crs); skipping");
        return;
    }
    let mut reqs = crs_test_requests();
    let from_tests = reqs.len();
    reqs.extend(corpus_requests("attacks.jsonl"));
    reqs.extend(corpus_requests("benign.jsonl"));
    // The same requests with the body sent as a form and as JSON, so body rules see them too.
    let extra: Vec<RequestInput> = reqs
        .iter()
        .filter(|r| r.body.is_empty())
        .filter_map(|r| r.uri.split_once('?'))
        .take(150)
        .flat_map(|(path, q)| {
            let json = format!("{{\"q\":{}}}", serde_json::Value::String(q.to_string()));
            [
                RequestInput::new("POST", path).body("application/x-www-form-urlencoded", q),
                RequestInput::new("POST", path).body("application/json", json),
            ]
        })
        .collect();
    reqs.extend(extra);
    println!(
        "{from_tests} CRS test inputs, {} requests in all",
        reqs.len()
    );
    assert!(reqs.len() >= 300, "too few inputs: {}", reqs.len());
    for pl in [1, 2] {
        let loaded = load_dir(Path::new(CRS_DIR), pl).expect("CRS loads");
        let fixed = loaded.rules.fixed_rule_count();
        assert!(
            fixed > 100,
            "the snapshot should cover 900/901 and the skips: {fixed}"
        );
        let (matched, blocked) = check(&loaded.rules, &reqs, pl);
        println!(
            "PL{pl}: {matched} requests matched some rule, {blocked} would be blocked, \
             {fixed} rules fixed at load"
        );
        assert!(blocked > 50, "the inputs should include attacks: {blocked}");
    }
}

/// CRS with the Automate exclusion set after 901, the way the node loads it, and requests
/// with each traffic class preset: the exclusions work through `ctl:` target removals and TX
/// variables, which the prefilters must respect.
#[test]
fn prefiltered_evaluation_equals_reference_with_automate_exclusions() {
    let dir = Path::new(CRS_DIR);
    if !dir.is_dir() {
        eprintln!("note: {CRS_DIR} is absent (apt-get install modsecurity-crs); skipping");
        return;
    }
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read CRS dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    paths.sort();
    let mut files = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(&p).expect("read rule file");
        let is_901 = p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("REQUEST-901-"));
        files.push((p.display().to_string(), text));
        if is_901 {
            files.push((
                "automate-exclusions.conf".to_string(),
                rpaas_crs::automate::AUTOMATE_EXCLUSIONS.to_string(),
            ));
        }
    }
    let mut reqs = corpus_requests("benign.jsonl");
    reqs.extend(corpus_requests("attacks.jsonl"));
    let classes = [
        "agent",
        "deployment",
        "control_center",
        "web_control_center",
        "api",
        "portal",
        "other",
    ];
    let reqs: Vec<RequestInput> = reqs
        .into_iter()
        .enumerate()
        .flat_map(|(i, r)| {
            [
                r.clone().tx("rpaas_class", classes[i % classes.len()]),
                r.tx("rpaas_class", classes[(i + 3) % classes.len()]),
            ]
        })
        .collect();
    for pl in [1, 2] {
        let loaded = load_files(&files, dir, &Setup::paranoia(pl)).expect("CRS loads");
        let (matched, blocked) = check(&loaded.rules, &reqs, pl);
        println!(
            "with exclusions, PL{pl}: {} requests, {matched} matched some rule, {blocked} blocked",
            reqs.len()
        );
    }
}
