//! `connector.toml`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use rpaas_tunnel::tls::{load_certs, Trust};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    node: Option<Nodes>,
    server_name: Option<String>,
    node_cert: Option<String>,
    node_ca: Option<String>,
    instance: Option<String>,
    secret: Option<String>,
    secret_file: Option<String>,
    #[serde(default)]
    allow: Vec<String>,
    flow_idle_seconds: Option<u64>,
}

/// `node = "host:port"` or, for a fleet, `node = ["a:4433", "b:4433"]`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Nodes {
    One(String),
    Many(Vec<String>),
}

/// A validated connector configuration.
#[derive(Clone)]
pub struct Config {
    /// `host:port` of each node's tunnel (one tunnel to each, all at once).
    pub nodes: Vec<String>,
    pub server_name: String,
    pub trust: Trust,
    pub instance: String,
    pub secret: String,
    /// The only local targets the node may ask for.
    pub allow: Vec<SocketAddr>,
    pub flow_idle: std::time::Duration,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("nodes", &self.nodes)
            .field("instance", &self.instance)
            .field("allow", &self.allow)
            .finish_non_exhaustive()
    }
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Why a connector config was refused; reads `file: key: reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {key}: {reason}", file.display())]
pub struct ConfigError {
    pub file: PathBuf,
    /// The key (`node[1]`, `secret_file`, `-` for the whole file).
    pub key: String,
    pub reason: String,
}

/// Loads and checks `path`; errors read `file: key: reason`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let err = |key: String, reason: String| ConfigError {
        file: path.to_path_buf(),
        key,
        reason,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| err("-".into(), format!("cannot read file: {e}")))?;
    let file: File = toml::from_str(&text).map_err(|e| err("-".into(), e.message().to_string()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let nodes = match file.node {
        None => {
            return Err(err(
                "node".into(),
                "is required (host:port of the node's tunnel)".to_string(),
            ))
        }
        Some(Nodes::One(n)) => vec![n],
        Some(Nodes::Many(l)) => l,
    };
    if nodes.is_empty() {
        return Err(err(
            "node".into(),
            "name at least one node (host:port)".to_string(),
        ));
    }
    for (i, node) in nodes.iter().enumerate() {
        if node
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .is_none()
        {
            return Err(err(
                format!("node[{i}]"),
                format!("{node:?} must be host:port"),
            ));
        }
        if nodes[..i].contains(node) {
            return Err(err(
                format!("node[{i}]"),
                format!("{node:?} is listed twice"),
            ));
        }
    }
    let server_name = file.server_name.ok_or_else(|| {
        err(
            "server_name".into(),
            "is required (the name in the node's certificate)".to_string(),
        )
    })?;
    let trust = match (file.node_cert, file.node_ca) {
        (Some(c), None) => {
            let certs = load_certs(&resolve(base, &c))
                .map_err(|e| err("node_cert".into(), format!("{e}")))?;
            Trust::Pin(certs[0].clone())
        }
        (None, Some(c)) => Trust::Ca(
            load_certs(&resolve(base, &c)).map_err(|e| err("node_ca".into(), format!("{e}")))?,
        ),
        (Some(_), Some(_)) => {
            return Err(err(
                "node_cert".into(),
                "set node_cert (a pin) or node_ca, not both".to_string(),
            ))
        }
        (None, None) => {
            return Err(err(
                "node_cert".into(),
                "set node_cert (pin the node's certificate) or node_ca".to_string(),
            ))
        }
    };
    let instance = file
        .instance
        .filter(|i| !i.is_empty())
        .ok_or_else(|| err("instance".into(), "is required".into()))?;
    let secret = match (file.secret, file.secret_file) {
        (Some(s), None) if !s.is_empty() => s,
        (None, Some(p)) => {
            let p = resolve(base, &p);
            let s = std::fs::read_to_string(&p).map_err(|e| {
                err(
                    "secret_file".into(),
                    format!("cannot read {}: {e}", p.display()),
                )
            })?;
            let s = s.trim_end_matches(['\r', '\n']).to_string();
            if s.is_empty() {
                return Err(err(
                    "secret_file".into(),
                    format!("{} is empty", p.display()),
                ));
            }
            s
        }
        (Some(_), Some(_)) => {
            return Err(err(
                "secret".into(),
                "set secret or secret_file, not both".to_string(),
            ))
        }
        _ => {
            return Err(err(
                "secret".into(),
                "a non-empty secret (or secret_file) is required".to_string(),
            ))
        }
    };
    let mut allow = Vec::new();
    for (i, a) in file.allow.iter().enumerate() {
        allow.push(a.parse::<SocketAddr>().map_err(|_| {
            err(
                format!("allow[{i}]"),
                format!("{a:?} is not an address like 127.0.0.1:75"),
            )
        })?);
    }
    if allow.is_empty() {
        return Err(err(
            "allow".into(),
            "list the local targets the node may reach (e.g. \"127.0.0.1:75\")".to_string(),
        ));
    }
    Ok(Config {
        nodes,
        server_name,
        trust,
        instance,
        secret,
        allow,
        flow_idle: std::time::Duration::from_secs(file.flow_idle_seconds.unwrap_or(120).max(1)),
    })
}
