//! The shape of the TOML files, as written. Only syntax is checked here (`deny_unknown_fields`
//! catches typos); meaning is checked in `validate`.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    #[serde(default)]
    pub node: FileNode,
    #[serde(default)]
    pub listener: Vec<FileListener>,
    #[serde(default)]
    pub instance: Vec<FileInstance>,
}

/// Keys that later issues add to `[node]` are accepted by name here so that one config file can
/// serve the whole product; unknown keys are still refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileNode {
    pub admin: Option<String>,
    pub log: Option<String>,
    pub instances_dir: Option<String>,
    pub strip_headers: Option<Vec<String>>,
    pub deny_methods: Option<Vec<String>>,
    pub hsts: Option<String>,
    pub drain_timeout: Option<FileDuration>,
    pub threads: Option<i64>,
    pub handshake_timeout: Option<FileDuration>,
    pub keepalive_timeout: Option<FileDuration>,
    pub header_timeout: Option<FileDuration>,
    pub body_read_timeout: Option<FileDuration>,
    pub geoip_db: Option<String>,
    pub default_countries: Option<Vec<String>>,
    pub unknown_country: Option<String>,
    #[serde(default)]
    pub deny: Vec<String>,
    #[serde(default)]
    pub networks: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub ips: FileNodeIps,
    #[serde(default)]
    pub limits: FileLimits,
    pub tunnel: Option<String>,
    pub tunnel_cert: Option<String>,
    pub tunnel_key: Option<String>,
    pub tunnel_max_connectors: Option<i64>,
    pub udp_flow_idle: Option<FileDuration>,
    pub udp_max_flows: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileNodeIps {
    /// Extra rule files.
    #[serde(default)]
    pub rules: Vec<String>,
    /// Use the shipped ruleset (default true).
    pub builtin: Option<bool>,
    /// Bytes of a request body inspected (default 65536).
    pub body_limit: Option<i64>,
    /// Bytes of an error response inspected for leakage (default 65536).
    pub response_limit: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileLimits {
    pub login: Option<String>,
    #[serde(default)]
    pub classes: BTreeMap<String, String>,
    pub ban_after: Option<i64>,
    pub ban_window: Option<FileDuration>,
    pub ban_time: Option<FileDuration>,
    pub ban_action: Option<String>,
    pub max_tracked: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum FileDuration {
    Seconds(i64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileListener {
    pub address: Option<String>,
    pub tls: Option<String>,
    pub client_ip: Option<String>,
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    pub http2: Option<bool>,
    pub default_host: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileInstances {
    #[serde(default)]
    pub instance: Vec<FileInstance>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileInstance {
    pub id: Option<String>,
    #[serde(default)]
    pub hostnames: Vec<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub upstream: Option<String>,
    pub upstream_host: Option<String>,
    pub upstream_ca: Option<String>,
    pub dangerous_skip_upstream_verify: Option<bool>,
    pub bind: Option<String>,
    pub connect_timeout: Option<FileDuration>,
    pub read_timeout: Option<FileDuration>,
    pub write_timeout: Option<FileDuration>,
    pub idle_timeout: Option<FileDuration>,
    pub strip_headers: Option<Vec<String>>,
    pub hsts: Option<String>,
    pub deployment: Option<String>,
    #[serde(default)]
    pub trusted: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
    pub countries: Option<Vec<String>>,
    #[serde(default)]
    pub class: BTreeMap<String, FileClass>,
    #[serde(default)]
    pub restrict: Vec<FileRestrict>,
    #[serde(default)]
    pub ips: FileInstanceIps,
    pub connector_secret: Option<String>,
    pub connector_secret_file: Option<String>,
    #[serde(default)]
    pub udp: Vec<FileUdp>,
    #[serde(default)]
    pub tcp: Vec<FileTcp>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileUdp {
    pub listen: Option<String>,
    pub target: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileTcp {
    pub listen: Option<String>,
    pub target: Option<String>,
    pub access: Option<String>,
    pub via: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileInstanceIps {
    pub mode: Option<String>,
    pub threshold: Option<i64>,
    #[serde(default)]
    pub disable: Vec<i64>,
    #[serde(default)]
    pub exclude: Vec<FileExclusion>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileExclusion {
    #[serde(default)]
    pub rules: Vec<i64>,
    pub classes: Option<Vec<String>>,
    pub paths: Option<Vec<String>>,
    pub args: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileClass {
    pub access: Option<String>,
    pub countries: Option<Vec<String>>,
    pub methods: Option<Vec<String>>,
    #[serde(default)]
    pub paths: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileRestrict {
    pub name: Option<String>,
    pub block: Option<Vec<String>>,
    pub paths: Option<Vec<String>>,
    pub param: Option<String>,
    pub cookie: Option<String>,
    pub header: Option<String>,
    pub admit: Option<Vec<String>>,
    pub secret: Option<String>,
    pub secret_file: Option<String>,
}
