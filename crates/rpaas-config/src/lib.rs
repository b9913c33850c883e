//! rpaas configuration: the compile step from the spec (`rpaas-spec`, config as data) to the
//! validated, typed config a node runs ([`Config`], [`Listener`], [`Instance`]), and the file
//! source that reads a spec from `rpaas.toml` (or `.json`) plus `instances_dir/*.toml`
//! ([`source`]). [`export`] turns a config back into its effective spec. Nothing downstream
//! re-checks a value.
//!
//! Every problem is reported as a [`ConfigError`] naming the source, the field path (e.g.
//! `instance[1].upstream`) and the reason; all of them at once. This crate reads the files a
//! spec names but resolves no names and opens no sockets; building TLS material from the
//! certificate files is the node's job.
#![forbid(unsafe_code)]

mod control;
pub mod crs;
mod export;
mod ips;
mod policy;
pub mod source;
mod tunnel;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use control::Control;
pub use export::export;
pub use ipnet::IpNet;
pub use ips::{BanAction, Limits, NodeIps};
pub use rpaas_geoip::CountryCode;
pub use rpaas_policy::{InstancePolicy, UnknownCountry};
pub use rpaas_spec as spec;
pub use source::{Document, Sourced};
pub use tunnel::{TcpRelay, TunnelNode, UdpRelay, Via};
pub use validate::{compile, load, parse_cidr};

/// A secret value: never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Self(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {key}: {reason}", file.display())]
pub struct ConfigError {
    pub file: PathBuf,
    pub key: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(file: &Path, key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// All the problems found in one load; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        Self(vec![e])
    }
}

/// The whole validated configuration of a node.
#[derive(Debug, Clone)]
pub struct Config {
    /// The main file it was read from (or a label such as `store`).
    pub source: PathBuf,
    /// The node part of the spec as written (paths absolute; no instances).
    pub spec: rpaas_spec::Spec,
    pub node: Node,
    pub listeners: Vec<Listener>,
    /// `tls = "none"` listeners: ACME HTTP-01 answers and a redirect to HTTPS, nothing proxied.
    pub http_listeners: Vec<HttpListener>,
    pub instances: Vec<Instance>,
    /// `[control]`: the admin API and its store, if configured.
    pub control: Option<Control>,
}

/// A plain-HTTP listener (`tls = "none"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpListener {
    pub address: SocketAddr,
}

/// `[node]`.
#[derive(Debug, Clone)]
pub struct Node {
    /// Where `/healthz` and `/metrics` are served; `None` disables the admin endpoint.
    pub admin: Option<SocketAddr>,
    pub log: LogTarget,
    /// Response headers removed from every response (lowercase).
    pub strip_headers: Vec<String>,
    /// Methods answered with 405 before they reach any upstream (uppercase).
    pub deny_methods: Vec<String>,
    /// `Strict-Transport-Security` value added to every response; `None` adds none.
    pub hsts: Option<String>,
    /// How long SIGTERM waits for requests in flight.
    pub drain_timeout: Duration,
    /// Worker threads for the proxy runtime.
    pub threads: usize,
    /// Time allowed for the PROXY header and TLS handshake of a new connection.
    pub handshake_timeout: Duration,
    /// Idle time before a client keep-alive connection is closed.
    pub keepalive_timeout: Duration,
    /// Time allowed for the first request head of an HTTP/1 connection (slowloris).
    pub header_timeout: Duration,
    /// Longest wait for each read of a request body.
    pub body_read_timeout: Duration,
    /// How often upstream hostnames are resolved again.
    pub resolve_interval: Duration,
    /// The `.mmdb` country database, if GeoIP is used.
    pub geoip_db: Option<PathBuf>,
    /// Countries every instance admits (instances add to it, classes replace it).
    pub default_countries: Vec<CountryCode>,
    pub unknown_country: UnknownCountry,
    /// Addresses refused on every instance.
    pub deny: Vec<IpNet>,
    /// Named network lists instances refer to in `trusted`/`deny`.
    pub networks: BTreeMap<String, Vec<IpNet>>,
    /// `[node.ips]`: the rules in force and inspection limits.
    pub ips: NodeIps,
    /// `[node.limits]`: rate limits and bans.
    pub limits: Limits,
    /// Where connectors dial in, if anywhere.
    pub tunnel: Option<TunnelNode>,
}

/// Where JSON log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    Stdout,
    File(PathBuf),
}

/// A TLS profile for a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsProfile {
    /// TLS 1.3 only.
    Modern,
    /// Mozilla intermediate: TLS 1.2 and 1.3 with forward-secret AEAD suites.
    Intermediate,
    /// TLS 1.0 and up, for old agents; only on a listener that says so.
    Legacy,
}

impl TlsProfile {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Modern => "modern",
            Self::Intermediate => "intermediate",
            Self::Legacy => "legacy",
        }
    }
}

/// Where a listener takes the client address from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientIpSource {
    Socket,
    XForwardedFor,
    ProxyProtocol,
}

/// `[[listener]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Listener {
    pub address: SocketAddr,
    pub tls: TlsProfile,
    pub client_ip: ClientIpSource,
    /// Peers allowed to supply the client address (PROXY header or `X-Forwarded-For`).
    pub trusted_proxies: Vec<IpNet>,
    /// Offer HTTP/2 by ALPN (default on).
    pub http2: bool,
    /// Instance hostname whose certificate is used when a client sends no SNI.
    pub default_host: Option<String>,
}

impl Listener {
    /// Is `peer` allowed to tell us the client address?
    pub fn trusts(&self, peer: IpAddr) -> bool {
        let peer = canonical_ip(peer);
        self.trusted_proxies.iter().any(|n| n.contains(&peer))
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are compared as IPv4.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// An instance's origin. A name is resolved by the node (and again periodically), not here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub tls: bool,
    /// Host as written in the URL (a name or an IP literal), lowercase.
    pub host: String,
    pub port: u16,
}

impl Upstream {
    /// The address, when the host is an IP literal.
    pub fn literal(&self) -> Option<SocketAddr> {
        self.host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, self.port))
    }
}

/// Where an instance's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertSource {
    /// None configured: a self-signed certificate made by the node (warned).
    SelfSigned,
    /// Certificate chain and key files, one pair per key type (ECDSA and RSA side by side).
    Files(Vec<(PathBuf, PathBuf)>),
    /// Obtained and renewed by ACME (`[acme]`).
    Acme,
}

/// Per-instance timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    /// Longest wait for upstream bytes (Automate's long requests need minutes).
    pub read: Duration,
    pub write: Duration,
    /// How long an idle pooled upstream connection is kept.
    pub idle: Duration,
}

/// `[[instance]]`.
#[derive(Debug, Clone)]
pub struct Instance {
    /// The compiled access policy (deployment model, classes, networks, countries, restrictions).
    pub policy: InstancePolicy,
    /// `[instance.ips]`: mode, threshold, disabled rules, exclusions.
    pub ips: rpaas_ips::Settings,
    /// The CRS paranoia level this instance runs at; `None`: no CRS.
    pub crs: Option<u8>,
    /// What this instance's connectors authenticate with.
    pub connector_secret: Option<Secret>,
    pub udp: Vec<UdpRelay>,
    pub tcp: Vec<TcpRelay>,
    pub id: String,
    /// Lowercase FQDNs; each belongs to exactly one instance.
    pub hostnames: Vec<String>,
    pub cert: CertSource,
    pub upstream: Upstream,
    /// Host header and SNI sent upstream; `None` keeps the client's Host and uses the URL host
    /// as SNI.
    pub upstream_host: Option<String>,
    /// CA file that verifies the upstream; `None` uses the system store.
    pub upstream_ca: Option<PathBuf>,
    /// Whether the upstream certificate is verified at all (`dangerous_skip_upstream_verify`).
    pub upstream_verify: bool,
    /// Egress source address.
    pub bind: Option<IpAddr>,
    pub timeouts: Timeouts,
    /// Extra response headers to strip for this instance (lowercase), on top of the node's.
    pub strip_headers: Vec<String>,
    /// Overrides the node's HSTS value: `Some(None)` turns it off.
    pub hsts: Option<Option<String>>,
    /// The file this instance was read from, and its index among that file's `[[instance]]`s.
    pub source: PathBuf,
    pub position: usize,
    /// The spec it was compiled from (paths absolute).
    pub spec: rpaas_spec::InstanceSpec,
}

impl Instance {
    /// The config key of one of this instance's fields, e.g. `instance[2].cert`.
    pub fn key(&self, field: &str) -> String {
        format!("instance[{}].{field}", self.position)
    }
}

impl Instance {
    /// Hostnames that identify the origin itself; a redirect naming one of these leaks it.
    pub fn internal_hosts(&self) -> Vec<String> {
        let mut v = vec![self.upstream.host.clone()];
        if let Some(h) = &self.upstream_host {
            if !v.contains(h) {
                v.push(h.clone());
            }
        }
        v
    }
}

#[cfg(test)]
mod tests;
