//! The attack and benign corpora (`corpus/*.jsonl`, written by `corpus/generate.py`) through
//! the same pipeline the node runs: canonical path (refusal = blocked), traffic class, IPS
//! head, IPS body for classes whose bodies are read. Every attack must be blocked and no
//! benign request may be.

use rpaas_ips::*;
use rpaas_policy::default_class;

struct Case {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    content_type: String,
    body: String,
    note: String,
}

fn load(name: &str) -> Vec<Case> {
    let path = format!("{}/corpus/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("corpus file");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
            Case {
                method: s("method"),
                target: s("target"),
                headers: v["headers"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|h| {
                                (
                                    h[0].as_str().unwrap_or("").to_string(),
                                    h[1].as_str().unwrap_or("").to_string(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                content_type: s("content_type"),
                body: s("body"),
                note: s("note"),
            }
        })
        .collect()
}

/// `Some(reason)` if the pipeline blocks the case.
fn blocked(rs: &RuleSet, c: &Case) -> Option<String> {
    let canon = match rpaas_path::canonicalize(&c.target) {
        Ok(c) => c,
        Err(e) => return Some(format!("path:invalid ({e})")),
    };
    let class = default_class(&canon.path);
    let mut data = RequestData::new(
        &c.method,
        &canon.path,
        &c.target,
        c.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        class,
    );
    let settings = Settings::default();
    let mut out = inspect(rs, &settings, &data, Scope::Head);
    let opaque = matches!(class, TrafficClass::Agent | TrafficClass::Deployment);
    if !opaque && !c.body.is_empty() {
        data.set_body(&c.content_type, c.body.as_bytes());
        out.merge(inspect(rs, &settings, &data, Scope::Body), &settings);
    }
    (out.verdict == Verdict::Block).then(|| {
        format!(
            "ips:{} score {} matches {:?}",
            out.rule.unwrap_or(0),
            out.score,
            out.ids()
        )
    })
}

#[test]
fn corpus_detection_and_false_positives() {
    let rs = RuleSet::builtin().expect("builtin rules");
    let attacks = load("attacks.jsonl");
    let benign = load("benign.jsonl");
    assert!(attacks.len() >= 150, "{} attacks", attacks.len());
    assert!(benign.len() >= 300, "{} benign", benign.len());
    let missed: Vec<String> = attacks
        .iter()
        .filter(|c| blocked(&rs, c).is_none())
        .map(|c| {
            format!(
                "MISSED {} {} {} [{}]",
                c.note,
                c.method,
                c.target,
                c.body.chars().take(120).collect::<String>()
            )
        })
        .collect();
    let false_pos: Vec<String> = benign
        .iter()
        .filter_map(|c| {
            blocked(&rs, c).map(|why| {
                format!(
                    "FALSE POSITIVE {} {} {} -> {why} [{}]",
                    c.note,
                    c.method,
                    c.target,
                    c.body.chars().take(160).collect::<String>()
                )
            })
        })
        .collect();
    let detection = 100.0 * (attacks.len() - missed.len()) as f64 / attacks.len() as f64;
    let fp_rate = 100.0 * false_pos.len() as f64 / benign.len() as f64;
    println!(
        "IPS corpus: {} attacks, detection {detection:.1}%; {} benign, false positives {fp_rate:.1}%",
        attacks.len(),
        benign.len()
    );
    for m in missed.iter().chain(false_pos.iter()) {
        println!("{m}");
    }
    assert!(
        missed.is_empty() && false_pos.is_empty(),
        "{} missed, {} false positives (see output)",
        missed.len(),
        false_pos.len()
    );
}
