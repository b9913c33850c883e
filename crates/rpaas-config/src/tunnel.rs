//! Validation of the tunnel keys: `[node] tunnel*`, and per instance the connector secret and
//! the `[[instance.udp]]` / `[[instance.tcp]]` relays.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rpaas_policy::Access;

use crate::validate::Validator;
use rpaas_spec::{InstanceSpec, NodeSpec};

/// `[node] tunnel = ...`: where connectors dial in.
#[derive(Debug, Clone, PartialEq)]
pub struct TunnelNode {
    pub address: SocketAddr,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Connector connections accepted per instance.
    pub max_connectors: usize,
    /// A UDP flow (one agent address) is forgotten after this long without traffic.
    pub flow_idle: Duration,
    /// Flows kept per node at most.
    pub max_flows: usize,
}

/// `[[instance.udp]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpRelay {
    pub listen: SocketAddr,
    /// As seen from the connector.
    pub target: SocketAddr,
}

/// Where a TCP relay goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Tunnel,
    /// Dial `target` from the node itself.
    Direct,
}

/// `[[instance.tcp]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpRelay {
    pub listen: SocketAddr,
    pub target: SocketAddr,
    pub access: Access,
    pub via: Via,
}

/// Ports Automate uses internally that the node must have no way to forward.
const NEVER: &[(u16, &str)] = &[
    (3306, "MySQL"),
    (12413, "the file service"),
    (3389, "RDP"),
    (135, "Windows RPC"),
    (139, "NetBIOS"),
    (445, "SMB"),
    (8002, "the mediator"),
];

impl Validator {
    fn addr(&mut self, file: &Path, key: &str, v: &Option<String>) -> Option<SocketAddr> {
        match v.as_deref() {
            None => {
                self.err(file, key, "is required");
                None
            }
            Some(s) => match s.parse() {
                Ok(a) => Some(a),
                Err(_) => {
                    self.err(
                        file,
                        key,
                        format!("{s:?} is not an address like 0.0.0.0:75"),
                    );
                    None
                }
            },
        }
    }

    fn never(&mut self, file: &Path, key: &str, target: SocketAddr) {
        if let Some((_, what)) = NEVER.iter().find(|(p, _)| *p == target.port()) {
            self.err(
                file,
                key,
                format!("port {} ({what}) must never be relayed", target.port()),
            );
        }
    }

    pub(crate) fn tunnel_node(&mut self, file: &Path, n: &NodeSpec) -> Option<TunnelNode> {
        let address = match &n.tunnel {
            None => {
                if n.tunnel_cert.is_some() || n.tunnel_key.is_some() {
                    self.err(
                        file,
                        "node.tunnel",
                        "tunnel_cert/tunnel_key are set but tunnel (the UDP address) is not",
                    );
                }
                return None;
            }
            some => self.addr(file, "node.tunnel", some)?,
        };
        let mut path = |key: &str, v: &Option<String>| -> Option<PathBuf> {
            match v {
                None => {
                    self.err(
                        file,
                        format!("node.{key}"),
                        "is required when node.tunnel is set",
                    );
                    None
                }
                Some(p) => {
                    let p = self.resolve(p);
                    if !p.is_file() {
                        self.err(
                            file,
                            format!("node.{key}"),
                            format!("file {} does not exist", p.display()),
                        );
                    }
                    Some(p)
                }
            }
        };
        let cert = path("tunnel_cert", &n.tunnel_cert);
        let key = path("tunnel_key", &n.tunnel_key);
        let max_connectors = match n.tunnel_max_connectors {
            None => 4,
            Some(v) if (1..=64).contains(&v) => v as usize,
            Some(v) => {
                self.err(
                    file,
                    "node.tunnel_max_connectors",
                    format!("{v} is out of range 1..=64"),
                );
                4
            }
        };
        let max_flows = match n.udp_max_flows {
            None => 100_000,
            Some(v) if (16..=10_000_000).contains(&v) => v as usize,
            Some(v) => {
                self.err(
                    file,
                    "node.udp_max_flows",
                    format!("{v} is out of range 16..=10000000"),
                );
                100_000
            }
        };
        let flow_idle = self.duration(
            file,
            "node.udp_flow_idle",
            &n.udp_flow_idle,
            Duration::from_secs(120),
        );
        Some(TunnelNode {
            address,
            cert: cert?,
            key: key?,
            max_connectors,
            flow_idle,
            max_flows,
        })
    }

    pub(crate) fn relays(
        &mut self,
        file: &Path,
        key: &str,
        f: &InstanceSpec,
        tunnel: Option<&TunnelNode>,
    ) -> (Option<crate::Secret>, Vec<UdpRelay>, Vec<TcpRelay>) {
        let secret = match (&f.connector_secret, &f.connector_secret_file) {
            (Some(s), None) => {
                if s.len() < 16 {
                    self.err(
                        file,
                        format!("{key}.connector_secret"),
                        "use at least 16 characters",
                    );
                }
                Some(s.clone())
            }
            (None, Some(p)) => {
                let p = self.resolve(p);
                match std::fs::read_to_string(&p) {
                    Ok(s) => {
                        let s = s.trim_end_matches(['\r', '\n']).to_string();
                        if s.len() < 16 {
                            self.err(
                                file,
                                format!("{key}.connector_secret_file"),
                                "the secret needs at least 16 characters",
                            );
                        }
                        Some(s)
                    }
                    Err(e) => {
                        self.err(
                            file,
                            format!("{key}.connector_secret_file"),
                            format!("cannot read {}: {e}", p.display()),
                        );
                        None
                    }
                }
            }
            (Some(_), Some(_)) => {
                self.err(
                    file,
                    format!("{key}.connector_secret"),
                    "set connector_secret or connector_secret_file, not both",
                );
                None
            }
            (None, None) => None,
        };
        let mut udp = Vec::new();
        for (i, u) in f.udp.iter().enumerate() {
            let k = format!("{key}.udp[{i}]");
            let listen = self.addr(file, &format!("{k}.listen"), &u.listen);
            let target = self.addr(file, &format!("{k}.target"), &u.target);
            if let Some(t) = target {
                self.never(file, &format!("{k}.target"), t);
            }
            if let (Some(listen), Some(target)) = (listen, target) {
                udp.push(UdpRelay { listen, target });
            }
        }
        let mut tcp = Vec::new();
        for (i, t) in f.tcp.iter().enumerate() {
            let k = format!("{key}.tcp[{i}]");
            let listen = self.addr(file, &format!("{k}.listen"), &t.listen);
            let target = self.addr(file, &format!("{k}.target"), &t.target);
            if let Some(tg) = target {
                self.never(file, &format!("{k}.target"), tg);
            }
            let access = match t.access.as_deref() {
                None => Access::Trusted,
                Some(a) => Access::parse(a).unwrap_or_else(|| {
                    self.err(
                        file,
                        format!("{k}.access"),
                        format!("{a:?} must be \"open\", \"trusted\" or \"deny\""),
                    );
                    Access::Deny
                }),
            };
            let via = match t.via.as_deref() {
                None | Some("tunnel") => Via::Tunnel,
                Some("direct") => Via::Direct,
                Some(v) => {
                    self.err(
                        file,
                        format!("{k}.via"),
                        format!("{v:?} must be \"tunnel\" or \"direct\""),
                    );
                    Via::Tunnel
                }
            };
            if let (Some(listen), Some(target)) = (listen, target) {
                tcp.push(TcpRelay {
                    listen,
                    target,
                    access,
                    via,
                });
            }
        }
        let needs_tunnel = !udp.is_empty() || tcp.iter().any(|t| t.via == Via::Tunnel);
        if needs_tunnel && tunnel.is_none() {
            self.err(
                file,
                format!("{key}.udp"),
                "relays through the tunnel need [node] tunnel, tunnel_cert and tunnel_key",
            );
        }
        if needs_tunnel && secret.is_none() {
            self.err(
                file,
                format!("{key}.connector_secret"),
                "relays through the tunnel need a connector_secret (or connector_secret_file)",
            );
        }
        (secret.map(crate::Secret::new), udp, tcp)
    }
}
