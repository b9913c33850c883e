//! `rpaas audit`: the hardening-guide checks of `rpaas-audit`, printed.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Args};

/// Check an Automate server (or an rpaas node in front of it) against the vendor's
/// hardening guide: one line per check, exit 1 if any fails (docs/audit.md).
#[derive(Args)]
#[command(group(ArgGroup::new("what").required(true).multiple(true)
    .args(["url", "compare", "iis_config", "schannel"])))]
pub struct AuditArgs {
    /// The server as agents reach it, e.g. https://automate.example.com/. Without it only
    /// the offline files are read and nothing is sent.
    #[arg(conflicts_with = "compare")]
    url: Option<String>,
    /// Audit two URLs (e.g. the server direct, then through rpaas) and print them side by
    /// side; exit 1 if the second has a failure.
    #[arg(long, num_args = 2, value_names = ["URL1", "URL2"])]
    compare: Option<Vec<String>>,
    /// Connect here instead of the URL's host, keeping its SNI and Host (like curl's
    /// --resolve). With --compare: once for both URLs, or twice, one per URL.
    #[arg(long, value_name = "HOST:PORT")]
    connect: Vec<String>,
    /// The heartbeat port probed with one small datagram; 0 skips it.
    #[arg(long, default_value_t = 75)]
    udp_port: u16,
    /// An exported IIS applicationHost.config.
    #[arg(long, value_name = "FILE")]
    iis_config: Option<PathBuf>,
    /// A `reg export` of HKLM\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols.
    #[arg(long, value_name = "FILE.reg")]
    schannel: Option<PathBuf>,
    /// Print JSON: {"target", "checks": [{"id", "status", "detail", "fix"}]}.
    #[arg(long)]
    json: bool,
    /// Time limit for the whole audit of one URL.
    #[arg(long, default_value = "30s")]
    timeout: String,
    /// Time limit for one connection, handshake or request.
    #[arg(long, default_value = "5s")]
    probe_timeout: String,
    /// TCP ports that must be closed (the guide's list by default; ranges allowed, `none`).
    #[arg(long, default_value = rpaas_audit::target::GUIDE_CLOSED)]
    closed_ports: String,
    /// TCP ports that must be open.
    #[arg(long, default_value = rpaas_audit::target::GUIDE_EXPECTED)]
    expected_ports: String,
    /// TCP ports reported but not judged (the Solution Center).
    #[arg(long, default_value = rpaas_audit::target::GUIDE_OPTIONAL)]
    optional_ports: String,
}

pub fn run(args: AuditArgs) -> ExitCode {
    let AuditArgs {
        url,
        compare,
        connect,
        udp_port,
        iis_config,
        schannel,
        json,
        timeout,
        probe_timeout,
        closed_ports,
        expected_ports,
        optional_ports,
    } = args;
    let flags = rpaas_audit::Flags {
        timeout: &timeout,
        probe_timeout: &probe_timeout,
        udp_port,
        closed_ports: &closed_ports,
        expected_ports: &expected_ports,
        optional_ports: &optional_ports,
        iis_config: iis_config.as_deref(),
        schannel: schannel.as_deref(),
    };
    let usage = |e: rpaas_audit::UsageError| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    };
    let opts = match rpaas_audit::Options::from_flags(&flags) {
        Ok(o) => o,
        Err(e) => return usage(e),
    };
    let print = |text: String, value: Result<String, serde_json::Error>| {
        if json {
            match value {
                Ok(s) => println!("{s}"),
                Err(e) => eprintln!("error: {e}"),
            }
        } else {
            print!("{text}");
        }
    };
    let code = match compare.as_deref() {
        Some([a, b]) => match rpaas_audit::compare([a, b], &connect, &opts) {
            Ok(c) => {
                print(c.text(), serde_json::to_string_pretty(&c));
                for e in &c.after.errors {
                    eprintln!("error: {e}");
                }
                c.after.exit_code()
            }
            Err(e) => return usage(e),
        },
        Some(_) => return ExitCode::from(2),
        None => {
            if connect.len() > 1 {
                eprintln!("error: --connect: give it once (twice only with --compare)");
                return ExitCode::from(2);
            }
            match rpaas_audit::audit(url.as_deref(), connect.first().map(String::as_str), &opts) {
                Ok(r) => {
                    print(r.text(), serde_json::to_string_pretty(&r));
                    for e in &r.errors {
                        eprintln!("error: {e}");
                    }
                    r.exit_code()
                }
                Err(e) => return usage(e),
            }
        }
    };
    ExitCode::from(code)
}
