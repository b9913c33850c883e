//! Validation of `[control]`: the admin API's listener and TLS files, the store, the base
//! domain of provisioned instances, the node's id in a fleet, the local snapshot cache.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rpaas_spec::{ControlSpec, NodeSpec};

use crate::validate::{is_hostname, Validator};

/// `[control]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    pub listen: SocketAddr,
    /// HTTPS when set.
    pub cert: Option<(PathBuf, PathBuf)>,
    /// `sqlite:PATH` or `postgres://...`.
    pub store: String,
    pub base_domain: Option<String>,
    pub node_id: String,
    /// The last good config snapshot on local disk.
    pub cache: Option<PathBuf>,
    /// How long refusals, traffic and audit rows are kept.
    pub retention: Duration,
    /// How long audit rows are kept.
    pub audit_retention: Duration,
    /// How often the node checks the store for a revision it missed.
    pub poll_interval: Duration,
}

/// This machine's hostname (the default node id).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "node".into())
}

impl Validator {
    pub(crate) fn control(
        &mut self,
        file: &Path,
        c: &ControlSpec,
        node: &NodeSpec,
    ) -> Option<Control> {
        let before = self.errors.len();
        let listen = match c.listen.as_deref() {
            None => {
                self.err(
                    file,
                    "control.listen",
                    "is required (e.g. \"127.0.0.1:9443\")",
                );
                None
            }
            Some(a) => match a.parse::<SocketAddr>() {
                Ok(sa) => Some(sa),
                Err(_) => {
                    self.err(
                        file,
                        "control.listen",
                        format!("{a:?} is not an address like 127.0.0.1:9443"),
                    );
                    None
                }
            },
        };
        let cert = match (&c.cert, &c.key) {
            (Some(cert), Some(key)) => {
                for (k, p) in [("control.cert", cert), ("control.key", key)] {
                    if !Path::new(p).is_file() {
                        self.err(file, k, format!("file {p} does not exist"));
                    }
                }
                Some((PathBuf::from(cert), PathBuf::from(key)))
            }
            (None, None) => None,
            (Some(_), None) => {
                self.err(file, "control.key", "cert is set but key is not");
                None
            }
            (None, Some(_)) => {
                self.err(file, "control.cert", "key is set but cert is not");
                None
            }
        };
        let store = match (&c.store, &node.data_dir) {
            (Some(s), _) => {
                if !(s.starts_with("sqlite:")
                    || s.starts_with("postgres://")
                    || s.starts_with("postgresql://"))
                {
                    self.err(
                        file,
                        "control.store",
                        format!("{s:?}: use sqlite:PATH or postgres://user:pass@host:port/db"),
                    );
                }
                s.clone()
            }
            (None, Some(dir)) => format!("sqlite:{}", Path::new(dir).join("rpaas.db").display()),
            (None, None) => {
                self.err(
                    file,
                    "control.store",
                    "set [control] store, or [node] data_dir for the default SQLite file",
                );
                String::new()
            }
        };
        let base_domain = c.base_domain.as_ref().map(|d| d.to_ascii_lowercase());
        if let Some(d) = &base_domain {
            if !is_hostname(d) {
                self.err(
                    file,
                    "control.base_domain",
                    format!("{d:?} is not a DNS name"),
                );
            }
        }
        let node_id = c.node_id.clone().unwrap_or_else(hostname);
        if node_id.is_empty()
            || node_id.len() > 64
            || !node_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            self.err(
                file,
                "control.node_id",
                format!("{node_id:?}: 1-64 characters of [A-Za-z0-9._-]"),
            );
        }
        let retention = self.duration(
            file,
            "control.retention",
            &c.retention,
            Duration::from_secs(7 * 86_400),
        );
        let audit_retention = self.duration(
            file,
            "control.audit_retention",
            &c.audit_retention,
            Duration::from_secs(365 * 86_400),
        );
        let poll_interval = self.duration(
            file,
            "control.poll_interval",
            &c.poll_interval,
            Duration::from_secs(5),
        );
        if self.errors.len() > before {
            return None;
        }
        Some(Control {
            listen: listen?,
            cert,
            store,
            base_domain,
            node_id,
            cache: c.cache.as_ref().map(PathBuf::from).or_else(|| {
                node.data_dir
                    .as_ref()
                    .map(|d| Path::new(d).join("control-cache.json"))
            }),
            retention,
            audit_retention,
            poll_interval,
        })
    }
}
