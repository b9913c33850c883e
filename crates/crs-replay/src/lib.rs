//! Replays the OWASP CRS regression tests (ftw / go-ftw YAML, `<rule file>/<rule id>.yaml`)
//! against a live rpaas node and reports, per rule family and paranoia level, how many attack
//! tests the node refused and how many negative tests it let through.
//!
//! Owns: reading the test files ([`ftw`]), building each request's bytes exactly as the test
//! gives them ([`request`]), sending them over a raw TCP/TLS socket ([`send`]), each rule's
//! paranoia level from the installed CRS ([`paranoia`]), and the verdicts ([`report`]).
//!
//! Must not: talk to anything but loopback (`--addr` is refused otherwise), normalise a
//! request (the tests send malformed ones on purpose), or depend on the node crates: it
//! judges the node from the outside, by status code.
#![forbid(unsafe_code)]

pub mod ftw;
pub mod paranoia;
pub mod report;
pub mod request;
pub mod send;

use std::path::PathBuf;

use report::{CaseResult, Report};
use send::{Outcome, Target, TargetError};

/// What to replay, where.
#[derive(Debug, Clone)]
pub struct Options {
    pub tests: PathBuf,
    pub rules: PathBuf,
    pub addr: String,
    pub host: String,
    pub tls: bool,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    #[error("--addr: {0}")]
    Target(#[from] TargetError),
    #[error("--host {0:?}: not a host name (letters, digits, '.', '-', ':', '[', ']')")]
    Host(String),
    #[error("--rules: {0}")]
    Rules(#[from] paranoia::LevelsError),
    #[error("--tests: {0}")]
    Tests(#[from] ftw::FileError),
    #[error("--tests: no test stages found in {0}")]
    NoTests(PathBuf),
    #[error("the node at {addr} is not reachable: {reason}")]
    Unreachable { addr: String, reason: String },
}

/// Parses the options, then replays every stage in file order, one connection each.
/// `progress` is told `(done, total)` now and then.
pub fn run(opts: &Options, progress: &mut dyn FnMut(usize, usize)) -> Result<Report, RunError> {
    let addr = send::loopback_addr(&opts.addr)?;
    if opts.host.is_empty()
        || !opts
            .host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
    {
        return Err(RunError::Host(opts.host.clone()));
    }
    let target = if opts.tls {
        Target::dangerous_tls_unverified(addr, &opts.host)?
    } else {
        Target::plain(addr, &opts.host)
    };
    let levels = paranoia::Levels::load_dir(&opts.rules)?;
    let loaded = ftw::load_dir(&opts.tests)?;
    if loaded.cases.is_empty() {
        return Err(RunError::NoTests(opts.tests.clone()));
    }
    let total = loaded.cases.len();
    let mut results = Vec::with_capacity(total);
    for (i, case) in loaded.cases.iter().enumerate() {
        let outcome = target.send(&request::build(&case.request, &opts.host));
        if let (0, Outcome::Connect(reason)) = (i, &outcome) {
            return Err(RunError::Unreachable {
                addr: opts.addr.clone(),
                reason: reason.clone(),
            });
        }
        results.push(CaseResult::new(case, levels.get(case.rule()), outcome));
        if (i + 1) % 250 == 0 || i + 1 == total {
            progress(i + 1, total);
        }
    }
    let file_errors = loaded.errors.iter().map(ToString::to_string).collect();
    Ok(Report::new(
        results,
        file_errors,
        loaded.disabled,
        loaded.unchecked,
    ))
}
