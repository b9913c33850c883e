//! `rpaas`: the node binary. Subcommands: `serve` runs a node, `check` validates a config.
//! Everything else lives in the library crates; this file only parses arguments.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    }
}
