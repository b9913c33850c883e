//! `rpaas config export`: the effective config as JSON (a node started from it behaves the
//! same: `rpaas check|serve --config FILE.json`).

use std::path::Path;
use std::process::ExitCode;

pub fn export(config: &Path) -> ExitCode {
    let loaded = match rpaas_config::load(config) {
        Ok(c) => c,
        Err(e) => return super::config_errors(&e),
    };
    match serde_json::to_string_pretty(&rpaas_config::export(&loaded)) {
        Ok(s) => {
            println!("{s}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
