//! `rpaas`: the node binary. `serve` runs a node, `check` validates a config, `explain` says
//! what would happen to a request and why, `geoip` looks addresses up. Everything else lives in
//! the library crates; this file only parses arguments and prints.

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
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
