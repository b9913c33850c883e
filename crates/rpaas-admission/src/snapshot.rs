//! [`Policy`]: the part of a config snapshot the admission decision reads — the validated
//! config, the hostname index, the country database and the compiled IPS rules.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use rpaas_config::{Config, ConfigError, ConfigErrors, Instance};
use rpaas_geoip::GeoDb;
use rpaas_ips::RuleSet;

/// What admission needs of one config generation. Immutable; a reload builds a new one.
#[derive(Debug)]
pub struct Policy {
    pub config: Config,
    hosts: HashMap<String, usize>,
    /// The country database, when `[node] geoip_db` is set.
    pub geo: Option<Arc<GeoDb>>,
    geo_stamp: Option<(PathBuf, SystemTime, u64)>,
    /// The compiled IPS rules.
    pub ips: Arc<RuleSet>,
    ips_stamp: u64,
}

fn rules_stamp(config: &Config) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    format!("{:?}", config.node.ips.rules).hash(&mut h);
    h.finish()
}

fn file_stamp(p: &std::path::Path) -> Option<(PathBuf, SystemTime, u64)> {
    let m = std::fs::metadata(p).ok()?;
    Some((p.to_path_buf(), m.modified().ok()?, m.len()))
}

impl Policy {
    /// Builds the admission view of `config`. The country database and the compiled rules of
    /// `prev` are reused when their files and rules did not change (a change by API must not
    /// cost a rule compilation or a database read).
    pub fn build(config: Config, prev: Option<&Policy>) -> Result<Policy, ConfigErrors> {
        let mut hosts = HashMap::new();
        for (i, inst) in config.instances.iter().enumerate() {
            for h in &inst.hostnames {
                hosts.insert(h.clone(), i);
            }
        }
        let geo_stamp = config.node.geoip_db.as_deref().and_then(file_stamp);
        let geo = match &config.node.geoip_db {
            None => None,
            Some(p) => match prev.filter(|pr| pr.geo.is_some() && pr.geo_stamp == geo_stamp) {
                Some(pr) => pr.geo.clone(),
                None => Some(Arc::new(GeoDb::open(p).map_err(|e| {
                    ConfigError::new(&config.source, "node.geoip_db", e.to_string())
                })?)),
            },
        };
        let ips_stamp = rules_stamp(&config);
        let ips = match prev.filter(|pr| pr.ips_stamp == ips_stamp) {
            Some(pr) => pr.ips.clone(),
            None => Arc::new(
                RuleSet::compile(config.node.ips.rules.clone()).map_err(|e| {
                    ConfigError::new(&config.source, "node.ips.rules", e.to_string())
                })?,
            ),
        };
        Ok(Policy {
            config,
            hosts,
            geo,
            geo_stamp,
            ips,
            ips_stamp,
        })
    }

    /// The index of the instance that serves `host` (lowercase, no port, no trailing dot).
    pub fn instance_for_host(&self, host: &str) -> Option<usize> {
        self.hosts.get(host).copied()
    }

    pub fn instance(&self, i: usize) -> Option<&Instance> {
        self.config.instances.get(i)
    }
}
