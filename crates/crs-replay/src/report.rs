//! Judging each replayed stage and summing the verdicts per rule family (the rule id's first
//! three digits) and paranoia level, as a markdown table and as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::ftw::{Case, Expect};
use crate::send::Outcome;

/// What kind of test a stage is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `log_contains`: the node should refuse it.
    Attack,
    /// `no_log_contains`: the node should not refuse it with 403.
    Negative,
    /// `status` only.
    Status,
    /// `expect_error` only.
    Error,
}

/// The verdict on one stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Attack refused with 403.
    Blocked,
    /// Attack refused as malformed: 400, or the connection closed without a response.
    Refused,
    /// Attack let through.
    NotBlocked,
    Passed,
    Failed,
    /// The node could not be reached for this stage.
    Unreached,
}

pub fn kind(e: &Expect) -> Kind {
    match e {
        Expect::Fires(_) => Kind::Attack,
        Expect::Silent(_) => Kind::Negative,
        Expect::Status(_) => Kind::Status,
        Expect::Error => Kind::Error,
    }
}

/// Judges one outcome against what the stage expects.
pub fn judge(expect: &Expect, outcome: &Outcome) -> Verdict {
    if matches!(outcome, Outcome::Connect(_)) {
        return Verdict::Unreached;
    }
    let pass = |ok: bool| if ok { Verdict::Passed } else { Verdict::Failed };
    match expect {
        Expect::Fires(_) => match outcome {
            Outcome::Status(403) => Verdict::Blocked,
            Outcome::Status(400) | Outcome::Closed => Verdict::Refused,
            _ => Verdict::NotBlocked,
        },
        Expect::Silent(_) => pass(*outcome != Outcome::Status(403)),
        // A close without a response is how a node refuses what it cannot parse: it stands
        // for 400.
        Expect::Status(codes) => pass(match outcome {
            Outcome::Status(s) => codes.contains(s),
            Outcome::Closed => codes.contains(&400),
            _ => false,
        }),
        Expect::Error => pass(matches!(outcome, Outcome::Closed | Outcome::Garbage)),
    }
}

/// One replayed stage.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub title: String,
    pub rule: u32,
    pub family: String,
    /// `None` when the rule carries no `paranoia-level/N` tag (or is not in the rule files).
    pub paranoia: Option<u8>,
    pub kind: Kind,
    pub outcome: Outcome,
    pub verdict: Verdict,
}

impl CaseResult {
    pub fn new(case: &Case, paranoia: Option<u8>, outcome: Outcome) -> Self {
        let rule = case.rule();
        Self {
            title: case.title.clone(),
            rule,
            family: family(rule),
            paranoia,
            kind: kind(&case.expect),
            verdict: judge(&case.expect, &outcome),
            outcome,
        }
    }
}

/// `942` for 942100.
pub fn family(rule: u32) -> String {
    let s = rule.to_string();
    s.get(..3).unwrap_or(&s).to_string()
}

/// The counts of one family at one paranoia level.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Row {
    pub family: String,
    pub paranoia: Option<u8>,
    pub attacks: usize,
    pub blocked_403: usize,
    pub refused_400_or_closed: usize,
    pub negatives: usize,
    pub negatives_passed: usize,
    pub status_tests: usize,
    pub status_passed: usize,
    pub error_tests: usize,
    pub error_passed: usize,
    pub unreached: usize,
}

impl Row {
    fn add(&mut self, r: &CaseResult) {
        if r.verdict == Verdict::Unreached {
            self.unreached += 1;
        }
        let passed = r.verdict == Verdict::Passed;
        match r.kind {
            Kind::Attack => {
                self.attacks += 1;
                self.blocked_403 += usize::from(r.verdict == Verdict::Blocked);
                self.refused_400_or_closed += usize::from(r.verdict == Verdict::Refused);
            }
            Kind::Negative => {
                self.negatives += 1;
                self.negatives_passed += usize::from(passed);
            }
            Kind::Status => {
                self.status_tests += 1;
                self.status_passed += usize::from(passed);
            }
            Kind::Error => {
                self.error_tests += 1;
                self.error_passed += usize::from(passed);
            }
        }
    }
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub rows: Vec<Row>,
    pub total: Row,
    pub results: Vec<CaseResult>,
    /// Files that could not be read, with the reason.
    pub file_errors: Vec<String>,
    pub disabled: usize,
    pub unchecked: usize,
}

impl Report {
    pub fn new(
        results: Vec<CaseResult>,
        file_errors: Vec<String>,
        disabled: usize,
        unchecked: usize,
    ) -> Self {
        let mut rows: BTreeMap<(String, Option<u8>), Row> = BTreeMap::new();
        let mut total = Row {
            family: "all".into(),
            ..Row::default()
        };
        for r in &results {
            rows.entry((r.family.clone(), r.paranoia))
                .or_insert_with(|| Row {
                    family: r.family.clone(),
                    paranoia: r.paranoia,
                    ..Row::default()
                })
                .add(r);
            total.add(r);
        }
        Self {
            rows: rows.into_values().collect(),
            total,
            results,
            file_errors,
            disabled,
            unchecked,
        }
    }

    /// Attack stages the node let through (or could not be asked about).
    pub fn not_blocked(&self) -> impl Iterator<Item = &CaseResult> {
        self.results.iter().filter(|r| {
            r.kind == Kind::Attack && matches!(r.verdict, Verdict::NotBlocked | Verdict::Unreached)
        })
    }

    pub fn markdown(&self) -> String {
        let mut s = String::new();
        s.push_str("| family | PL | attacks blocked (403) | attacks refused (400/closed) | attacks | negative passed | negative | status passed | status | unreached |\n");
        s.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for r in self.rows.iter().chain(std::iter::once(&self.total)) {
            let pl = match (&r.family[..], r.paranoia) {
                ("all", _) => "all".to_string(),
                (_, Some(p)) => p.to_string(),
                (_, None) => "?".to_string(),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.family,
                pl,
                r.blocked_403,
                r.refused_400_or_closed,
                r.attacks,
                r.negatives_passed,
                r.negatives,
                r.status_passed + r.error_passed,
                r.status_tests + r.error_tests,
                r.unreached
            );
        }
        let missed: Vec<_> = self.not_blocked().collect();
        let _ = writeln!(s, "\n## Attack tests not blocked ({})\n", missed.len());
        for r in missed {
            let pl = r.paranoia.map_or("?".to_string(), |p| p.to_string());
            let _ = writeln!(
                s,
                "- {} (rule {}, family {}, PL{}): {}",
                r.title,
                r.rule,
                r.family,
                pl,
                describe(&r.outcome)
            );
        }
        let failed: Vec<_> = self
            .results
            .iter()
            .filter(|r| r.kind != Kind::Attack && r.verdict != Verdict::Passed)
            .collect();
        if !failed.is_empty() {
            let _ = writeln!(s, "\n## Other tests failed ({})\n", failed.len());
            for r in failed {
                let _ = writeln!(
                    s,
                    "- {} ({:?}, rule {}): {}",
                    r.title,
                    r.kind,
                    r.rule,
                    describe(&r.outcome)
                );
            }
        }
        if self.disabled + self.unchecked > 0 {
            let _ = writeln!(
                s,
                "\n{} disabled tests skipped; {} stages with no checkable expectation skipped.",
                self.disabled, self.unchecked
            );
        }
        if !self.file_errors.is_empty() {
            let _ = writeln!(s, "\n## Test files not read ({})\n", self.file_errors.len());
            for e in &self.file_errors {
                let _ = writeln!(s, "- {e}");
            }
        }
        s
    }
}

fn describe(o: &Outcome) -> String {
    match o {
        Outcome::Status(c) => format!("status {c}"),
        Outcome::Closed => "closed without a response".into(),
        Outcome::Timeout => "no response within 5 s".into(),
        Outcome::Connect(e) => format!("connect failed: {e}"),
        Outcome::Garbage => "not an HTTP response".into(),
    }
}

#[cfg(test)]
mod tests;
