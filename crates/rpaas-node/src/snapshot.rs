//! The immutable runtime view of one config generation: the admission policy (config,
//! hostname index, GeoIP, compiled IPS rules) and, per instance, what forwarding needs (the
//! upstream peer, response hardening). A reload builds a new [`Snapshot`] — reusing every part
//! that did not change — and swaps it in; requests in flight keep the one they started with.
//! Certificates are not here: they live in [`crate::certs::CertStore`].

use std::sync::Arc;

use http::HeaderValue;
use rpaas_admission::Policy;
use rpaas_config::{Config, ConfigError, ConfigErrors, Instance};

use crate::upstream::UpstreamRt;

/// One instance, ready to forward.
#[derive(Debug)]
pub struct InstanceRt {
    pub cfg: Instance,
    pub upstream: Arc<UpstreamRt>,
    /// Names that identify the origin (for the Location rewrite).
    pub internal_hosts: Vec<String>,
    /// Response headers removed (node list plus the instance's extras), lowercase.
    pub strip: Vec<String>,
    pub hsts: Option<HeaderValue>,
}

/// A whole config generation.
#[derive(Debug)]
pub struct Snapshot {
    pub policy: Policy,
    pub generation: u64,
    /// In the order of `policy.config.instances`.
    pub instances: Vec<Arc<InstanceRt>>,
    /// Node-level HSTS header, for responses made before an instance is known.
    pub hsts: Option<HeaderValue>,
}

impl Snapshot {
    /// Builds the runtime view of `config`, reusing from `prev` the GeoIP database and IPS
    /// rules (when unchanged) and each instance's upstream (when its origin settings are).
    pub fn build(
        config: Config,
        generation: u64,
        prev: Option<&Snapshot>,
    ) -> Result<Snapshot, ConfigErrors> {
        let mut errors = Vec::new();
        let mut instances = Vec::new();
        for inst in &config.instances {
            let prev_up = prev
                .and_then(|p| p.instances.iter().find(|i| i.cfg.id == inst.id))
                .map(|i| &i.upstream);
            match build_instance(&config, inst, prev_up) {
                Ok(rt) => instances.push(Arc::new(rt)),
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        let hsts = match &config.node.hsts {
            Some(v) => Some(HeaderValue::from_str(v).map_err(|_| {
                ConfigError::new(&config.source, "node.hsts", "not a valid header value")
            })?),
            None => None,
        };
        let policy = Policy::build(config, prev.map(|p| &p.policy))?;
        Ok(Snapshot {
            policy,
            generation,
            instances,
            hsts,
        })
    }

    pub fn config(&self) -> &Config {
        &self.policy.config
    }

    /// The instance that serves `host` (lowercase, no port, no trailing dot).
    pub fn instance_for_host(&self, host: &str) -> Option<&Arc<InstanceRt>> {
        self.policy
            .instance_for_host(host)
            .and_then(|i| self.instances.get(i))
    }

    pub fn instance_by_id(&self, id: &str) -> Option<&Arc<InstanceRt>> {
        self.instances.iter().find(|i| i.cfg.id == id)
    }
}

fn build_instance(
    config: &Config,
    inst: &Instance,
    prev: Option<&Arc<UpstreamRt>>,
) -> Result<InstanceRt, ConfigError> {
    let err = |field: &str, reason: String| ConfigError::new(&inst.source, inst.key(field), reason);
    let upstream = UpstreamRt::build(inst, prev).map_err(|(f, r)| err(&f, r))?;
    let mut strip = config.node.strip_headers.clone();
    for h in &inst.strip_headers {
        if !strip.contains(h) {
            strip.push(h.clone());
        }
    }
    let hsts_value = match &inst.hsts {
        Some(v) => v.clone(),
        None => config.node.hsts.clone(),
    };
    let hsts = match hsts_value {
        Some(v) => Some(
            HeaderValue::from_str(&v)
                .map_err(|_| err("hsts", "not a valid header value".into()))?,
        ),
        None => None,
    };
    Ok(InstanceRt {
        internal_hosts: inst.internal_hosts(),
        cfg: inst.clone(),
        upstream,
        strip,
        hsts,
    })
}
