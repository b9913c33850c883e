//! The immutable runtime view of one config generation: instances with their TLS material and
//! upstream peer templates, and the hostname index. A reload builds a new [`Snapshot`] and swaps
//! it in; requests in flight keep the one they started with.

use std::collections::HashMap;
use std::sync::Arc;

use http::HeaderValue;
use openssl::x509::X509;
use pingora::connectors::l4::BindTo;
use pingora::upstreams::peer::HttpPeer;
use rpaas_config::{Config, ConfigError, ConfigErrors, Instance};
use rpaas_geoip::GeoDb;
use rpaas_ips::RuleSet;

use crate::tls::CertKey;

/// One instance, ready to serve.
pub struct InstanceRt {
    pub cfg: Instance,
    pub cert: CertKey,
    /// Cloned per request; identical clones share one upstream connection pool.
    pub peer: HttpPeer,
    /// Names that identify the origin (for the Location rewrite).
    pub internal_hosts: Vec<String>,
    /// Response headers removed (node list plus the instance's extras), lowercase.
    pub strip: Vec<String>,
    pub hsts: Option<HeaderValue>,
}

impl std::fmt::Debug for InstanceRt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceRt")
            .field("id", &self.cfg.id)
            .finish_non_exhaustive()
    }
}

/// A whole config generation.
#[derive(Debug)]
pub struct Snapshot {
    pub config: Config,
    pub generation: u64,
    pub instances: Vec<Arc<InstanceRt>>,
    hosts: HashMap<String, usize>,
    /// Node-level HSTS header, for responses made before an instance is known.
    pub hsts: Option<HeaderValue>,
    /// The country database, when `[node] geoip_db` is set.
    pub geo: Option<Arc<GeoDb>>,
    /// The compiled IPS rules.
    pub ips: Arc<RuleSet>,
}

impl Snapshot {
    /// Builds the runtime view of `config`. Self-signed certificates of `prev` are reused for
    /// instances whose hostnames did not change, so a reload does not rotate them.
    pub fn build(
        config: Config,
        generation: u64,
        prev: Option<&Snapshot>,
    ) -> Result<Snapshot, ConfigErrors> {
        let mut errors = Vec::new();
        let mut instances = Vec::new();
        let mut hosts = HashMap::new();
        for inst in &config.instances {
            match build_instance(&config, inst, prev) {
                Ok(rt) => {
                    for h in &inst.hostnames {
                        hosts.insert(h.clone(), instances.len());
                    }
                    instances.push(Arc::new(rt));
                }
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
        let geo = match &config.node.geoip_db {
            Some(p) => Some(Arc::new(GeoDb::open(p).map_err(|e| {
                ConfigError::new(&config.source, "node.geoip_db", e.to_string())
            })?)),
            None => None,
        };
        let ips = Arc::new(
            RuleSet::compile(config.node.ips.rules.clone())
                .map_err(|e| ConfigError::new(&config.source, "node.ips.rules", e.to_string()))?,
        );
        Ok(Snapshot {
            config,
            generation,
            instances,
            hosts,
            hsts,
            geo,
            ips,
        })
    }

    /// The instance that serves `host` (lowercase, no port, no trailing dot).
    pub fn instance_for_host(&self, host: &str) -> Option<&Arc<InstanceRt>> {
        self.hosts.get(host).and_then(|i| self.instances.get(*i))
    }
}

fn build_instance(
    config: &Config,
    inst: &Instance,
    prev: Option<&Snapshot>,
) -> Result<InstanceRt, ConfigError> {
    let err = |field: &str, reason: String| ConfigError::new(&inst.source, inst.key(field), reason);
    let cert = match (&inst.cert, &inst.key) {
        (Some(c), Some(k)) => {
            let cert_pem = std::fs::read(c)
                .map_err(|e| err("cert", format!("cannot read {}: {e}", c.display())))?;
            let key_pem = std::fs::read(k)
                .map_err(|e| err("key", format!("cannot read {}: {e}", k.display())))?;
            CertKey::load(&cert_pem, &key_pem).map_err(|r| err("cert", r))?
        }
        _ => {
            let reuse = prev
                .and_then(|p| p.instances.iter().find(|i| i.cfg.id == inst.id))
                .filter(|p| p.cert.self_signed && p.cfg.hostnames == inst.hostnames)
                .map(|p| p.cert.clone());
            match reuse {
                Some(c) => c,
                None => {
                    tracing::warn!(
                        instance = %inst.id,
                        "no cert/key configured: serving a self-signed certificate"
                    );
                    CertKey::self_signed(&inst.hostnames).map_err(|e| {
                        err(
                            "cert",
                            format!("cannot make a self-signed certificate: {e}"),
                        )
                    })?
                }
            }
        }
    };

    let sni = inst
        .upstream_host
        .clone()
        .unwrap_or_else(|| inst.upstream.host.clone());
    let mut peer = HttpPeer::new(inst.upstream.addr, inst.upstream.tls, sni);
    let o = &mut peer.options;
    o.connection_timeout = Some(inst.timeouts.connect);
    o.total_connection_timeout = Some(inst.timeouts.connect);
    o.read_timeout = Some(inst.timeouts.read);
    o.write_timeout = Some(inst.timeouts.write);
    o.idle_timeout = Some(inst.timeouts.idle);
    o.verify_cert = inst.upstream_verify;
    o.verify_hostname = inst.upstream_verify;
    if let Some(ca) = &inst.upstream_ca {
        let pem = std::fs::read(ca)
            .map_err(|e| err("upstream_ca", format!("cannot read {}: {e}", ca.display())))?;
        let certs =
            X509::stack_from_pem(&pem).map_err(|e| err("upstream_ca", format!("bad PEM: {e}")))?;
        if certs.is_empty() {
            return Err(err("upstream_ca", "no certificate in the file".into()));
        }
        o.ca = Some(Arc::new(certs.into_boxed_slice()));
    }
    if let Some(ip) = inst.bind {
        let mut b = BindTo::default();
        b.addr = Some(std::net::SocketAddr::new(ip, 0));
        o.bind_to = Some(b);
    }

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
        cert,
        peer,
        strip,
        hsts,
    })
}
