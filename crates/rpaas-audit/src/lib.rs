//! `rpaas-audit`: checks a ConnectWise Automate server, or an rpaas node in front of one,
//! against the vendor's hardening guide, and reports one [`Check`] per item with what was
//! seen and the fix.
//!
//! It owns: the check ids and their verdicts (pure: [`judge`], [`tls`], [`ports`], [`iis`],
//! [`schannel`]), the probes that feed them ([`probe`], [`run`]), and the report formats.
//!
//! It must not: depend on the node (Pingora) or on the node's config; send anything that
//! could harm the target (no bodies, no payloads, no retries beyond one lost UDP datagram, no
//! redirects followed, no brute force); run for longer than its overall timeout; touch the
//! network when it is given no URL; panic on anything a server or a file can contain.
#![forbid(unsafe_code)]

pub mod check;
pub mod error;
pub mod files;
pub mod fixes;
pub mod iis;
pub mod judge;
pub mod ports;
pub mod probe;
mod run;
pub mod schannel;
pub mod target;
pub mod tls;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use check::{Change, Check, Comparison, Report, Status};
pub use error::{FileError, ProbeError, UsageError};
pub use target::{Connect, Target};

/// Everything but the URL, validated.
#[derive(Debug, Clone)]
pub struct Options {
    /// The whole audit of one URL.
    pub timeout: Duration,
    /// One connection, handshake or request.
    pub probe_timeout: Duration,
    /// 0: do not probe UDP.
    pub udp_port: u16,
    pub closed_ports: Vec<u16>,
    pub expected_ports: Vec<u16>,
    pub optional_ports: Vec<u16>,
    pub iis_config: Option<PathBuf>,
    pub schannel: Option<PathBuf>,
}

/// The command line's flags as written.
#[derive(Debug, Clone)]
pub struct Flags<'a> {
    pub timeout: &'a str,
    pub probe_timeout: &'a str,
    pub udp_port: u16,
    pub closed_ports: &'a str,
    pub expected_ports: &'a str,
    pub optional_ports: &'a str,
    pub iis_config: Option<&'a Path>,
    pub schannel: Option<&'a Path>,
}

impl Default for Flags<'_> {
    fn default() -> Self {
        Self {
            timeout: "30s",
            probe_timeout: "5s",
            udp_port: 75,
            closed_ports: target::GUIDE_CLOSED,
            expected_ports: target::GUIDE_EXPECTED,
            optional_ports: target::GUIDE_OPTIONAL,
            iis_config: None,
            schannel: None,
        }
    }
}

impl Options {
    pub fn from_flags(f: &Flags<'_>) -> Result<Self, UsageError> {
        Ok(Self {
            timeout: target::parse_duration("timeout", f.timeout)?,
            probe_timeout: target::parse_duration("probe-timeout", f.probe_timeout)?,
            udp_port: f.udp_port,
            closed_ports: target::parse_ports("closed-ports", f.closed_ports)?,
            expected_ports: target::parse_ports("expected-ports", f.expected_ports)?,
            optional_ports: target::parse_ports("optional-ports", f.optional_ports)?,
            iis_config: f.iis_config.map(Path::to_path_buf),
            schannel: f.schannel.map(Path::to_path_buf),
        })
    }
}

/// The checks read from the offline files that were given (none for a file not given), and
/// the files that could not be read (their checks are skips).
pub fn offline_checks(opts: &Options) -> (Vec<Check>, Vec<FileError>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut skip = |list: &[&'static str], e: FileError| {
        let v: Vec<Check> = list
            .iter()
            .map(|id| Check::skip(id, e.to_string()))
            .collect();
        errors.push(e);
        v
    };
    if let Some(p) = &opts.iis_config {
        match iis::IisConfig::load(p) {
            Ok(c) => out.extend(iis::judge_iis(&c)),
            Err(e) => out.extend(skip(check::ids::IIS, e)),
        }
    }
    if let Some(p) = &opts.schannel {
        match schannel::Schannel::load(p) {
            Ok(s) => out.extend(schannel::judge_schannel(&s)),
            Err(e) => out.extend(skip(check::ids::SCHANNEL, e)),
        }
    }
    (out, errors)
}

fn runtime() -> Result<tokio::runtime::Runtime, UsageError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(UsageError::Runtime)
}

/// Audits `url` (through `connect` when given) plus the offline files. With no URL only the
/// offline checks run and nothing is sent on the network.
pub fn audit(
    url: Option<&str>,
    connect: Option<&str>,
    opts: &Options,
) -> Result<Report, UsageError> {
    let target = url.map(Target::parse).transpose()?;
    let connect = connect.map(Connect::parse).transpose()?;
    if target.is_none() && opts.iis_config.is_none() && opts.schannel.is_none() {
        return Err(UsageError::Nothing);
    }
    let mut checks = Vec::new();
    if let Some(t) = &target {
        let rt = runtime()?;
        checks.extend(rt.block_on(run::network(t, connect.as_ref(), opts)));
    }
    let (offline, errors) = offline_checks(opts);
    checks.extend(offline);
    Ok(Report {
        target: target.map(|t| t.url),
        connect: connect.map(|c| c.to_string()),
        checks,
        errors: errors.iter().map(ToString::to_string).collect(),
    })
}

/// Audits two URLs one after the other and puts the reports side by side. `connect` holds
/// zero, one (for both) or two (one each) `--connect` values.
pub fn compare(
    urls: [&str; 2],
    connect: &[String],
    opts: &Options,
) -> Result<Comparison, UsageError> {
    let (c1, c2) = match connect {
        [] => (None, None),
        [c] => (Some(c.as_str()), Some(c.as_str())),
        [a, b] => (Some(a.as_str()), Some(b.as_str())),
        _ => {
            return Err(UsageError::Connect {
                value: connect.join(" "),
                reason: "give --connect once (both URLs) or twice (one per URL)",
            })
        }
    };
    // Both URLs are parsed before anything is sent.
    Target::parse(urls[1])?;
    if let Some(c) = c2 {
        Connect::parse(c)?;
    }
    let before = audit(Some(urls[0]), c1, opts)?;
    let after = audit(Some(urls[1]), c2, opts)?;
    Ok(Comparison::new(before, after))
}
