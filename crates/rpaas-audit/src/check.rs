//! The report: one [`Check`] per hardening item, its stable id, and how a report is printed
//! as text, as JSON, and side by side with another one.

use serde::Serialize;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The server does what the guide asks.
    Pass,
    /// It does not: the fix says what to change. Makes the exit code 1.
    Fail,
    /// Weaker than the guide would like, or the observation is ambiguous.
    Warn,
    /// The check could not run (no input, target unreachable, bad file); the detail says why.
    Skip,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Warn => "warn",
            Self::Skip => "skip",
        }
    }

    /// Worse is larger: fail > warn > pass; skip sorts below pass (it says nothing).
    fn rank(self) -> u8 {
        match self {
            Self::Skip => 0,
            Self::Pass => 1,
            Self::Warn => 2,
            Self::Fail => 3,
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable identifier (see [`ids`]).
    pub id: &'static str,
    pub status: Status,
    /// What was seen.
    pub detail: String,
    /// The guide's remedy, or the rpaas setting that does it.
    pub fix: &'static str,
}

impl Check {
    pub fn new(id: &'static str, status: Status, detail: impl Into<String>) -> Self {
        Self {
            id,
            status,
            detail: detail.into(),
            fix: crate::fixes::fix(id),
        }
    }

    pub fn skip(id: &'static str, why: impl Into<String>) -> Self {
        Self::new(id, Status::Skip, why)
    }
}

/// The stable check ids, in report order.
pub mod ids {
    pub const TLS_LEGACY: &str = "tls-legacy-protocols";
    pub const TLS_WEAK: &str = "tls-weak-ciphers";
    pub const SERVER_HEADER: &str = "server-header";
    pub const X_POWERED_BY: &str = "x-powered-by";
    pub const ASPNET_HEADERS: &str = "aspnet-version-headers";
    pub const OPTIONS: &str = "options-method";
    pub const TRACE: &str = "trace-method";
    pub const LOCATION: &str = "location-ip-leak";
    pub const ADMIN: &str = "admin-sites-restricted";
    pub const WCC2: &str = "wcc2-version-leak";
    pub const AGENT: &str = "agent-version-leak";
    pub const SCREENCONNECT: &str = "screenconnect-version-header";
    pub const PORTS_CLOSED: &str = "ports-closed";
    pub const PORTS_EXPECTED: &str = "ports-expected";
    pub const IIS_SERVER_HEADER: &str = "iis-remove-server-header";
    pub const IIS_OPTIONS: &str = "iis-options-denied";
    pub const IIS_IP: &str = "iis-ip-restrictions";
    pub const SCHANNEL_TLS10: &str = "schannel-tls10-disabled";
    pub const SCHANNEL_TLS11: &str = "schannel-tls11-disabled";

    /// Checks that need the network, in report order.
    pub const NETWORK: &[&str] = &[
        TLS_LEGACY,
        TLS_WEAK,
        SERVER_HEADER,
        X_POWERED_BY,
        ASPNET_HEADERS,
        OPTIONS,
        TRACE,
        LOCATION,
        ADMIN,
        WCC2,
        AGENT,
        SCREENCONNECT,
        PORTS_CLOSED,
        PORTS_EXPECTED,
    ];
    /// The TLS handshake checks.
    pub const TLS: &[&str] = &[TLS_LEGACY, TLS_WEAK];
    /// The checks over HTTP responses.
    pub const HTTP: &[&str] = &[
        SERVER_HEADER,
        X_POWERED_BY,
        ASPNET_HEADERS,
        OPTIONS,
        TRACE,
        LOCATION,
        ADMIN,
        WCC2,
        AGENT,
        SCREENCONNECT,
    ];
    /// Checks read from an exported applicationHost.config.
    pub const IIS: &[&str] = &[IIS_SERVER_HEADER, IIS_OPTIONS, IIS_IP];
    /// Checks read from a `reg export` of SCHANNEL\Protocols.
    pub const SCHANNEL: &[&str] = &[SCHANNEL_TLS10, SCHANNEL_TLS11];
}

/// A whole audit.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The URL audited; `None` for an offline-only run.
    pub target: Option<String>,
    /// Where connections went when `--connect` redirected them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect: Option<String>,
    pub checks: Vec<Check>,
    /// Offline files that could not be read as what they should be (their checks are skips).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl Report {
    pub fn get(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }

    /// 1 if a check failed, else 2 if an offline file was unreadable, else 0.
    pub fn exit_code(&self) -> u8 {
        if self.has_failure() {
            1
        } else if !self.errors.is_empty() {
            2
        } else {
            0
        }
    }

    pub fn has_failure(&self) -> bool {
        self.checks.iter().any(|c| c.status == Status::Fail)
    }

    fn count(&self, s: Status) -> usize {
        self.checks.iter().filter(|c| c.status == s).count()
    }

    fn title(&self) -> String {
        match (&self.target, &self.connect) {
            (Some(t), Some(c)) => format!("{t} (connecting to {c})"),
            (Some(t), None) => t.clone(),
            (None, _) => "offline files".to_string(),
        }
    }

    /// One line per check (`status id detail`, then `fix:` for failures and warnings) and a
    /// summary line.
    pub fn text(&self) -> String {
        let mut out = format!("audit of {}\n", self.title());
        for c in &self.checks {
            out.push_str(&format!(
                "{:<4}  {:<28}  {}",
                c.status.as_str(),
                c.id,
                c.detail
            ));
            if matches!(c.status, Status::Fail | Status::Warn) {
                out.push_str(&format!("  | fix: {}", c.fix));
            }
            out.push('\n');
        }
        out.push_str(&format!(
            "{} pass, {} fail, {} warn, {} skip\n",
            self.count(Status::Pass),
            self.count(Status::Fail),
            self.count(Status::Warn),
            self.count(Status::Skip)
        ));
        out
    }
}

/// How a check moved from the first report to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Same,
    /// Better in the second report (e.g. fail → pass).
    Fixed,
    /// Worse in the second report.
    Worse,
    /// Ran in one report only, or moved to/from skip.
    Different,
}

impl Change {
    fn as_str(self) -> &'static str {
        match self {
            Self::Same => "same",
            Self::Fixed => "fixed",
            Self::Worse => "worse",
            Self::Different => "different",
        }
    }
}

/// One row of a comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub id: &'static str,
    pub before: Option<Status>,
    pub after: Option<Status>,
    pub change: Change,
}

/// Two reports side by side.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub before: Report,
    pub after: Report,
    pub changes: Vec<Row>,
}

impl Comparison {
    pub fn new(before: Report, after: Report) -> Self {
        let mut ids: Vec<&'static str> = before.checks.iter().map(|c| c.id).collect();
        for c in &after.checks {
            if !ids.contains(&c.id) {
                ids.push(c.id);
            }
        }
        let changes = ids
            .into_iter()
            .map(|id| {
                let b = before.get(id).map(|c| c.status);
                let a = after.get(id).map(|c| c.status);
                Row {
                    id,
                    before: b,
                    after: a,
                    change: change(b, a),
                }
            })
            .collect();
        Self {
            before,
            after,
            changes,
        }
    }

    /// A table: id, status in each report, what changed and, where it changed or is still a
    /// failure or warning, what the second report saw.
    pub fn text(&self) -> String {
        let st = |s: Option<Status>| s.map_or("-", Status::as_str);
        let mut out = format!(
            "1: {}\n2: {}\n{:<28}  {:<4}  {:<4}  change\n",
            self.before.title(),
            self.after.title(),
            "check",
            "1",
            "2"
        );
        for r in &self.changes {
            out.push_str(&format!(
                "{:<28}  {:<4}  {:<4}  {}",
                r.id,
                st(r.before),
                st(r.after),
                r.change.as_str()
            ));
            // The second report's detail where something changed or is still to do.
            let todo = matches!(r.after, Some(Status::Fail | Status::Warn));
            if r.change != Change::Same || todo {
                if let Some(c) = self.after.get(r.id) {
                    out.push_str(&format!(": {}", c.detail));
                }
            }
            out.push('\n');
        }
        let fixed = self
            .changes
            .iter()
            .filter(|r| r.change == Change::Fixed)
            .count();
        let worse = self
            .changes
            .iter()
            .filter(|r| r.change == Change::Worse)
            .count();
        out.push_str(&format!(
            "{fixed} fixed, {worse} worse; 2 has {} failure(s)\n",
            self.after.count(Status::Fail)
        ));
        out
    }
}

fn change(before: Option<Status>, after: Option<Status>) -> Change {
    match (before, after) {
        (Some(b), Some(a)) if b == a => Change::Same,
        (Some(b), Some(a)) if b != Status::Skip && a != Status::Skip => {
            if a.rank() < b.rank() {
                Change::Fixed
            } else {
                Change::Worse
            }
        }
        _ => Change::Different,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(statuses: &[(&'static str, Status)]) -> Report {
        Report {
            target: Some("https://x/".into()),
            connect: None,
            errors: Vec::new(),
            checks: statuses
                .iter()
                .map(|(id, s)| Check::new(id, *s, "seen"))
                .collect(),
        }
    }

    #[test]
    fn the_network_list_is_tls_then_http_then_ports() {
        let mut all: Vec<&str> = ids::TLS.iter().chain(ids::HTTP).copied().collect();
        all.extend([ids::PORTS_CLOSED, ids::PORTS_EXPECTED]);
        assert_eq!(all, ids::NETWORK);
    }

    #[test]
    fn changes_are_named_by_direction() {
        let a = report(&[
            (ids::SERVER_HEADER, Status::Fail),
            (ids::TRACE, Status::Pass),
            (ids::AGENT, Status::Warn),
            (ids::WCC2, Status::Skip),
        ]);
        let b = report(&[
            (ids::SERVER_HEADER, Status::Pass),
            (ids::TRACE, Status::Fail),
            (ids::AGENT, Status::Warn),
            (ids::WCC2, Status::Pass),
            (ids::OPTIONS, Status::Pass),
        ]);
        let c = Comparison::new(a, b);
        let by = |id: &str| {
            c.changes
                .iter()
                .find(|r| r.id == id)
                .map(|r| r.change)
                .expect("row")
        };
        assert_eq!(by(ids::SERVER_HEADER), Change::Fixed);
        assert_eq!(by(ids::TRACE), Change::Worse);
        assert_eq!(by(ids::AGENT), Change::Same);
        assert_eq!(by(ids::WCC2), Change::Different);
        assert_eq!(by(ids::OPTIONS), Change::Different);
        let t = c.text();
        assert!(
            t.contains("server-header                 fail  pass  fixed: seen"),
            "{t}"
        );
        assert!(t.contains("1 fixed, 1 worse; 2 has 1 failure(s)"), "{t}");
        assert!(
            t.contains("agent-version-leak            warn  warn  same: seen"),
            "{t}"
        );
        assert!(
            t.contains("options-method                -     pass  different: seen"),
            "{t}"
        );
    }

    #[test]
    fn text_shows_the_fix_only_where_something_is_to_do() {
        let r = report(&[
            (ids::SERVER_HEADER, Status::Fail),
            (ids::TRACE, Status::Pass),
        ]);
        let t = r.text();
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[1].starts_with("fail  server-header"), "{t}");
        assert!(lines[1].contains("| fix: "), "{t}");
        assert!(!lines[2].contains("fix:"), "{t}");
        assert_eq!(lines[3], "1 pass, 1 fail, 0 warn, 0 skip");
        let j = serde_json::to_value(&r).expect("json");
        assert_eq!(j["checks"][0]["id"], "server-header");
        assert_eq!(j["checks"][0]["status"], "fail");
        assert!(j["checks"][0]["fix"]
            .as_str()
            .is_some_and(|f| !f.is_empty()));
    }
}
