//! `rpaas`: the node binary. `serve` runs a node, `check` validates a config, `explain` says
//! what would happen to a request and why, `geoip` looks addresses up, `config export` prints
//! the effective config, `key` manages API keys, `audit` checks an Automate server against the hardening guide.
//! Everything else lives in the library crates; this file only parses arguments and
//! dispatches to `cmd`.

mod cmd;

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
        /// The node config (rpaas.toml, or the JSON `config export` prints).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a config: exit 0 if a node could start with it, else list every problem.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// What would the node do with this request from this address, and why.
    Explain(cmd::explain::ExplainArgs),
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
    /// The config as data.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// API keys of the control plane (works while the node runs).
    #[command(subcommand)]
    Key(cmd::key::KeyCommand),
    /// Dashboard users (`/ui/` on the control listener).
    #[command(subcommand)]
    User(cmd::user::UserCommand),
    /// Certificates as the running node serves them (ACME state, expiry).
    #[command(subcommand)]
    Cert(cmd::cert::CertCommand),
    /// Check an Automate server (or an rpaas node in front of it) against the vendor's
    /// hardening guide: one line per check, exit 1 if any fails (docs/audit.md).
    Audit(cmd::audit::AuditArgs),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective config (files merged, defaults filled in) as JSON.
    Export {
        #[arg(long, short)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve { config } => match rpaas_node::serve(&config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Check { config } => cmd::check::run(&config),
        Command::Explain(a) => cmd::explain::run(a),
        Command::Geoip { db, config, ips } => cmd::geoip::run(db, config, &ips),
        Command::Config(ConfigCommand::Export { config }) => cmd::config::export(&config),
        Command::Key(k) => cmd::key::run(k),
        Command::Audit(a) => cmd::audit::run(a),
        Command::Cert(c) => cmd::cert::run(c),
        Command::User(u) => cmd::user::run(u),
    }
}
