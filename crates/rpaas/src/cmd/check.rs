//! `rpaas check`: everything `serve` would check, without serving.

use std::path::Path;
use std::process::ExitCode;

pub fn run(config: &Path) -> ExitCode {
    let loaded = match rpaas_config::load(config) {
        Ok(c) => c,
        Err(e) => return super::config_errors(&e),
    };
    let crs = loaded.node.ips.crs.clone();
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
            if let Some(crs) = crs {
                print_crs(&crs);
            }
            ExitCode::SUCCESS
        }
        Err(errors) => super::config_errors(&errors),
    }
}

/// The CRS in force and every rule it does not run, with the reason (never silently dropped).
fn print_crs(crs: &rpaas_config::crs::Crs) {
    println!(
        "crs: {} ({} rules at paranoia level {}; Automate exclusions {})",
        crs.dir.display(),
        crs.rule_count(),
        crs.paranoia,
        if crs.exclusions { "on" } else { "off" }
    );
    // Every level loads the same files: one report tells what is not run.
    if let Some((_, report)) = crs.reports().next() {
        for u in &report.unsupported {
            println!(
                "crs: not run: rule {} ({}:{}): {}",
                u.rule_id, u.file, u.line, u.reason
            );
        }
        if !report.response_phase.is_empty() {
            println!(
                "crs: not run: {} response-phase rules (responses are checked by the shipped leakage rules)",
                report.response_phase.len()
            );
        }
        for u in &report.ignored_directives {
            println!("crs: ignored: {}:{}: {}", u.file, u.line, u.reason);
        }
    }
}
