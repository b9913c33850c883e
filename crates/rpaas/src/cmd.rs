//! One module per `rpaas` verb: each parses nothing itself (clap did), calls the library
//! crates and prints.

pub mod audit;
pub mod cert;
pub mod check;
pub mod config;
pub mod explain;
pub mod geoip;
pub mod key;
pub mod user;

use std::process::ExitCode;

/// Prints every config error, one `file: key: reason` line each, and exits 1.
pub fn config_errors(errors: &rpaas_config::ConfigErrors) -> ExitCode {
    for e in &errors.0 {
        eprintln!("error: {e}");
    }
    ExitCode::from(1)
}
