//! `rpaas geoip`: the country of each address, from a database file or a config's
//! `geoip_db`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

pub fn run(db: Option<PathBuf>, config: Option<PathBuf>, ips: &[String]) -> ExitCode {
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
            Err(errors) => return super::config_errors(&errors),
        },
        (None, None) => return ExitCode::from(2),
    };
    let db = match rpaas_geoip::GeoDb::open(&db) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    for s in ips {
        let Ok(ip) = s.parse::<IpAddr>() else {
            eprintln!("error: {s:?} is not an IP address");
            return ExitCode::from(1);
        };
        let cc = db.country(ip).map(|c| c.to_string());
        println!("{s} {}", cc.as_deref().unwrap_or("--"));
    }
    ExitCode::SUCCESS
}
