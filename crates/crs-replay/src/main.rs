//! `rpaas-crs-replay`: the CRS regression tests against a loopback rpaas node.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use crs_replay::{run, Options};

/// Replays OWASP CRS regression tests (ftw YAML) against a loopback rpaas node and reports
/// blocked attacks and passed negative tests per rule family and paranoia level.
#[derive(Debug, Parser)]
#[command(name = "rpaas-crs-replay")]
struct Cli {
    /// Directory of `<rule file>/<rule id>.yaml` test files.
    #[arg(long)]
    tests: PathBuf,
    /// The installed CRS rules, read for each rule's paranoia level.
    #[arg(long, default_value = "/usr/share/modsecurity-crs/rules")]
    rules: PathBuf,
    /// The node's listener: a loopback address and port (127.0.0.0/8 or [::1]).
    #[arg(long)]
    addr: String,
    /// The instance hostname sent instead of the tests' `Host: localhost` (and as SNI).
    #[arg(long)]
    host: String,
    /// Speak TLS, without verifying the certificate (a loopback test node).
    #[arg(long)]
    tls: bool,
    /// Also write the full report (summary rows and every stage's outcome) as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let opts = Options {
        tests: cli.tests,
        rules: cli.rules,
        addr: cli.addr,
        host: cli.host,
        tls: cli.tls,
    };
    let report = match run(&opts, &mut |done, total| {
        eprintln!("replayed {done}/{total}")
    }) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rpaas-crs-replay: {e}");
            return ExitCode::from(2);
        }
    };
    print!("{}", report.markdown());
    if let Some(path) = cli.json {
        let written = serde_json::to_vec_pretty(&report)
            .map_err(|e| e.to_string())
            .and_then(|j| std::fs::write(&path, j).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("rpaas-crs-replay: --json {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
