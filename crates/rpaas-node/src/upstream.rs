//! An instance's origin at run time: the Pingora peer (cloned per request; identical clones
//! share one connection pool), and the address behind it. A hostname is resolved when the
//! instance is built and again every `[node] resolve_interval` (and soon after a failed
//! connect), so an origin that moves is followed without a reload.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use openssl::x509::X509;
use pingora::connectors::l4::BindTo;
use pingora::upstreams::peer::HttpPeer;
use rpaas_config::Instance;

/// What the peer is made of: instances whose key did not change keep their peer (and pool).
#[derive(Debug, Clone, PartialEq)]
struct Key {
    tls: bool,
    host: String,
    port: u16,
    sni: String,
    ca: Option<std::path::PathBuf>,
    verify: bool,
    bind: Option<std::net::IpAddr>,
    timeouts: rpaas_config::Timeouts,
}

/// An instance's upstream.
pub struct UpstreamRt {
    key: Key,
    ca: Option<Arc<Box<[X509]>>>,
    peer: ArcSwapOption<HttpPeer>,
}

impl std::fmt::Debug for UpstreamRt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamRt")
            .field("host", &self.key.host)
            .field("port", &self.key.port)
            .finish_non_exhaustive()
    }
}

fn key(inst: &Instance) -> Key {
    Key {
        tls: inst.upstream.tls,
        host: inst.upstream.host.clone(),
        port: inst.upstream.port,
        sni: inst
            .upstream_host
            .clone()
            .unwrap_or_else(|| inst.upstream.host.clone()),
        ca: inst.upstream_ca.clone(),
        verify: inst.upstream_verify,
        bind: inst.bind,
        timeouts: inst.timeouts,
    }
}

/// Resolves `host:port` now (blocking); the first address.
pub fn resolve_blocking(host: &str, port: u16) -> Result<SocketAddr, ResolveError> {
    (host, port)
        .to_socket_addrs()
        .map_err(|e| ResolveError::Lookup(host.to_string(), e))?
        .next()
        .ok_or_else(|| ResolveError::NoAddress(host.to_string()))
}

/// Why an upstream's name did not resolve.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("cannot resolve {0:?}: {1}")]
    Lookup(String, std::io::Error),
    #[error("{0:?} resolves to no address")]
    NoAddress(String),
}

impl UpstreamRt {
    /// The upstream of `inst`, reusing `prev` when nothing it is made of changed. The error
    /// names the field and the reason.
    pub fn build(
        inst: &Instance,
        prev: Option<&Arc<UpstreamRt>>,
    ) -> Result<Arc<UpstreamRt>, (String, String)> {
        let key = key(inst);
        if let Some(p) = prev.filter(|p| p.key == key) {
            return Ok(p.clone());
        }
        let ca = match &inst.upstream_ca {
            Some(ca) => {
                let pem = std::fs::read(ca).map_err(|e| {
                    (
                        "upstream_ca".to_string(),
                        format!("cannot read {}: {e}", ca.display()),
                    )
                })?;
                let certs = X509::stack_from_pem(&pem)
                    .map_err(|e| ("upstream_ca".to_string(), format!("bad PEM: {e}")))?;
                if certs.is_empty() {
                    return Err((
                        "upstream_ca".to_string(),
                        "no certificate in the file".into(),
                    ));
                }
                Some(Arc::new(certs.into_boxed_slice()))
            }
            None => None,
        };
        let up = UpstreamRt {
            key,
            ca,
            peer: ArcSwapOption::empty(),
        };
        let addr = match inst.upstream.literal() {
            Some(a) => Some(a),
            None => match resolve_blocking(&inst.upstream.host, inst.upstream.port) {
                Ok(a) => Some(a),
                Err(reason) => {
                    // Served with 502 until the name resolves; the resolver keeps trying.
                    tracing::warn!(
                        target: "rpaas::upstream",
                        event = "upstream_unresolved",
                        instance = %inst.id,
                        reason = %reason,
                        "upstream name does not resolve"
                    );
                    None
                }
            },
        };
        if let Some(a) = addr {
            up.set_addr(a);
        }
        Ok(Arc::new(up))
    }

    fn make_peer(&self, addr: SocketAddr) -> HttpPeer {
        let k = &self.key;
        let mut peer = HttpPeer::new(addr, k.tls, k.sni.clone());
        let o = &mut peer.options;
        o.connection_timeout = Some(k.timeouts.connect);
        o.total_connection_timeout = Some(k.timeouts.connect);
        o.read_timeout = Some(k.timeouts.read);
        o.write_timeout = Some(k.timeouts.write);
        o.idle_timeout = Some(k.timeouts.idle);
        o.verify_cert = k.verify;
        o.verify_hostname = k.verify;
        o.ca = self.ca.clone();
        if let Some(ip) = k.bind {
            let mut b = BindTo::default();
            b.addr = Some(SocketAddr::new(ip, 0));
            o.bind_to = Some(b);
        }
        peer
    }

    fn set_addr(&self, addr: SocketAddr) {
        self.peer.store(Some(Arc::new(self.make_peer(addr))));
    }

    /// The peer to connect to; `None` while the name does not resolve.
    pub fn peer(&self) -> Option<HttpPeer> {
        self.peer.load().as_deref().cloned()
    }

    /// The address connected to now.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.peer
            .load()
            .as_deref()
            .and_then(|p| p._address.as_inet().copied())
    }

    /// Resolves the name again; a changed address replaces the peer. Returns the new address
    /// when it changed.
    pub async fn refresh(&self) -> Result<Option<SocketAddr>, String> {
        if self.key.host.parse::<std::net::IpAddr>().is_ok() || self.key.host.starts_with('[') {
            return Ok(None);
        }
        let lookup = tokio::net::lookup_host((self.key.host.as_str(), self.key.port));
        let mut addrs = tokio::time::timeout(Duration::from_secs(5), lookup)
            .await
            .map_err(|_| format!("resolving {:?} timed out", self.key.host))?
            .map_err(|e| format!("cannot resolve {:?}: {e}", self.key.host))?;
        let Some(addr) = addrs.next() else {
            return Err(format!("{:?} resolves to no address", self.key.host));
        };
        if self.addr() == Some(addr) {
            return Ok(None);
        }
        self.set_addr(addr);
        Ok(Some(addr))
    }
}
