//! `[node]`, `[[listener]]`, `[control]` and `[acme]` as written.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A duration as written: seconds, or text such as `"30s"`, `"5m"`, `"30d"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DurationSpec {
    Seconds(i64),
    Text(String),
}

/// `[node]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances_dir: Option<String>,
    /// Where the node keeps its state (the default control store, certificates, caches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_headers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny_methods: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hsts: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_timeout: Option<DurationSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handshake_timeout: Option<DurationSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive_timeout: Option<DurationSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_timeout: Option<DurationSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_read_timeout: Option<DurationSpec>,
    /// How often upstream hostnames are resolved again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve_interval: Option<DurationSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geoip_db: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_countries: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown_country: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, Vec<String>>,
    #[serde(default, skip_serializing_if = "NodeIpsSpec::is_empty")]
    pub ips: NodeIpsSpec,
    #[serde(default, skip_serializing_if = "LimitsSpec::is_empty")]
    pub limits: LimitsSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel_cert: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel_max_connectors: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp_flow_idle: Option<DurationSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp_max_flows: Option<i64>,
}

/// `[node.ips]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeIpsSpec {
    /// Extra rule files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
    /// Use the shipped ruleset (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<bool>,
    /// Bytes of a request body inspected (default 65536).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_limit: Option<i64>,
    /// Bytes of an error response inspected for leakage (default 65536).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_limit: Option<i64>,
    /// The OWASP Core Rule Set to run beside the shipped rules: an installed CRS 3.x (e.g.
    /// `/usr/share/modsecurity-crs`) or its `rules` directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crs: Option<String>,
    /// CRS paranoia level 1..=4 for instances that name none (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paranoia: Option<i64>,
    /// Load rpaas's Automate exclusion set with CRS (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crs_exclusions: Option<bool>,
}

impl NodeIpsSpec {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// `[node.limits]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub classes: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ban_after: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ban_window: Option<DurationSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ban_time: Option<DurationSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ban_action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tracked: Option<i64>,
}

impl LimitsSpec {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// `[[listener]]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http2: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_host: Option<String>,
}

/// `[control]`: the admin API and the store behind it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<String>,
    /// How long refusals and audit rows are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<DurationSpec>,
    /// How long audit rows are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_retention: Option<DurationSpec>,
    /// How often a node checks the store for a revision it missed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval: Option<DurationSpec>,
}

/// `[acme]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_hook: Option<String>,
    /// dns-01: how long one hook run may take (default 60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_hook_timeout: Option<DurationSpec>,
    /// dns-01: wait after `add` before the CA looks (default 30s; `"0s"` for a hook that
    /// waits for propagation itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_delay: Option<DurationSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew_before: Option<DurationSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wildcard: Option<bool>,
}
