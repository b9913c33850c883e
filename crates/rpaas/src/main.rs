//! `rpaas`: the node binary. `serve` runs a node, `check` validates a config, `explain` says
//! what would happen to a request and why, `geoip` looks addresses up, `audit` checks an
//! Automate server against the vendor's hardening guide. Everything else lives in the library
//! crates; this file only parses arguments and prints.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "rpaas",
    version,
    about = "Security reverse proxy for ConnectWise Automate servers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a proxy node.
    Serve {
        /// The node config (rpaas.toml).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a config: exit 0 if a node could start with it, else list every problem.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// What would the node do with this request from this address, and why.
    Explain {
        #[arg(long, short)]
        config: PathBuf,
        /// The FQDN the client asks for (SNI/Host).
        #[arg(long)]
        host: String,
        /// The client address.
        #[arg(long)]
        ip: IpAddr,
        #[arg(long, default_value = "GET")]
        method: String,
        /// A request header, `Name: value` (repeatable).
        #[arg(long = "header", value_name = "'K: V'")]
        headers: Vec<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// A request body to inspect (give its type with --header 'Content-Type: ...').
        #[arg(long)]
        data: Option<String>,
        /// The request target, e.g. `/automate/` or `/LabTech/Deployment.aspx?InstallerToken=x`.
        target: String,
    },
    /// Country of each address: `IP CC` per line (`--` when unknown).
    #[command(group(ArgGroup::new("source").required(true).args(["db", "config"])))]
    Geoip {
        /// A .mmdb file.
        #[arg(long)]
        db: Option<PathBuf>,
        /// A node config whose [node] geoip_db is used.
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[arg(required = true)]
        ips: Vec<String>,
    },
    /// Check an Automate server (or an rpaas node in front of it) against the vendor's
    /// hardening guide: one line per check, exit 1 if any fails (docs/audit.md).
    #[command(group(ArgGroup::new("what").required(true).multiple(true)
        .args(["url", "compare", "iis_config", "schannel"])))]
    Audit {
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
    },
}

fn audit(cmd: Command) -> ExitCode {
    let Command::Audit {
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
    } = cmd
    else {
        return ExitCode::from(2);
    };
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        cmd @ Command::Audit { .. } => audit(cmd),
        Command::Serve { config } => match rpaas_node::serve(&config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Check { config } => match rpaas_node::check(&config) {
            Ok(s) => {
                println!(
                    "{}: ok ({} listener(s), {} instance(s))",
                    config.display(),
                    s.listeners,
                    s.instances
                );
                for id in s.self_signed {
                    println!("warning: instance {id:?} has no cert/key: a self-signed certificate will be served");
                }
                ExitCode::SUCCESS
            }
            Err(errors) => {
                for e in &errors.0 {
                    eprintln!("error: {e}");
                }
                ExitCode::from(1)
            }
        },
        Command::Explain {
            config,
            host,
            ip,
            method,
            headers,
            json,
            data,
            target,
        } => {
            let mut hs = Vec::new();
            for h in &headers {
                match h.split_once(':') {
                    Some((k, v)) if !k.trim().is_empty() => {
                        hs.push((k.trim().to_ascii_lowercase(), v.trim().to_string()))
                    }
                    _ => {
                        eprintln!("error: --header {h:?}: write it as 'Name: value'");
                        return ExitCode::from(2);
                    }
                }
            }
            let q = rpaas_node::Question {
                host: &host,
                ip,
                method: &method,
                headers: hs,
                target: &target,
                body: data.as_deref().map(str::as_bytes),
            };
            match rpaas_node::explain(&config, &q) {
                Ok(e) => {
                    if json {
                        match serde_json::to_string_pretty(&e) {
                            Ok(s) => println!("{s}"),
                            Err(err) => {
                                eprintln!("error: {err}");
                                return ExitCode::FAILURE;
                            }
                        }
                    } else {
                        print!("{}", e.text());
                    }
                    ExitCode::SUCCESS
                }
                Err(errors) => {
                    for e in &errors.0 {
                        eprintln!("error: {e}");
                    }
                    ExitCode::from(1)
                }
            }
        }
        Command::Geoip { db, config, ips } => {
            let db = match (db, config) {
                (Some(db), _) => db,
                (None, Some(c)) => match rpaas_config::load(&c) {
                    Ok(cfg) => match cfg.node.geoip_db {
                        Some(p) => p,
                        None => {
                            eprintln!("error: {}: node.geoip_db: not set", c.display());
                            return ExitCode::from(1);
                        }
                    },
                    Err(errors) => {
                        for e in &errors.0 {
                            eprintln!("error: {e}");
                        }
                        return ExitCode::from(1);
                    }
                },
                (None, None) => return ExitCode::from(2),
            };
            match rpaas_node::geoip_lookup(&db, &ips) {
                Ok(rows) => {
                    for (ip, cc) in rows {
                        println!("{ip} {}", cc.as_deref().unwrap_or("--"));
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}
