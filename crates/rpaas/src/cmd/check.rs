//! `rpaas check`: everything `serve` would check, without serving.

use std::path::Path;
use std::process::ExitCode;

pub fn run(config: &Path) -> ExitCode {
    let loaded = match rpaas_config::load(config) {
        Ok(c) => c,
        Err(e) => return super::config_errors(&e),
    };
    match rpaas_node::verify(loaded) {
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
        Err(errors) => super::config_errors(&errors),
    }
}
