//! `[[instance]]` as written, and its partner-editable part, [`AclSpec`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::DurationSpec;

/// A trusted or denied network: a CIDR (or a `[node.networks]` name), optionally with a note
/// saying whose it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NetEntry {
    Cidr(String),
    Noted {
        cidr: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
}

impl NetEntry {
    pub fn cidr(&self) -> &str {
        match self {
            Self::Cidr(c) | Self::Noted { cidr: c, .. } => c,
        }
    }
}

/// A certificate field: one file, several side by side (ECDSA and RSA), or `"acme"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Files {
    One(String),
    Many(Vec<String>),
}

impl Files {
    pub fn list(&self) -> Vec<&str> {
        match self {
            Self::One(s) => vec![s.as_str()],
            Self::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// `[[instance]]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<Files>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Files>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_ca: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dangerous_skip_upstream_verify: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<DurationSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_timeout: Option<DurationSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_timeout: Option<DurationSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<DurationSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_headers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hsts: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted: Vec<NetEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<NetEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub countries: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub class: BTreeMap<String, ClassSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restrict: Vec<RestrictSpec>,
    #[serde(default, skip_serializing_if = "InstanceIpsSpec::is_empty")]
    pub ips: InstanceIpsSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_secret_file: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub udp: Vec<UdpSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tcp: Vec<TcpSpec>,
}

/// The part of an instance its partner may change: who reaches which class, from where, and
/// how the IPS judges it. Never the upstream, certificates, hostnames, timeouts or relays.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted: Vec<NetEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<NetEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub countries: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub class: BTreeMap<String, ClassSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restrict: Vec<RestrictSpec>,
    #[serde(default, skip_serializing_if = "InstanceIpsSpec::is_empty")]
    pub ips: InstanceIpsSpec,
}

/// The instance fields an [`AclSpec`] holds (everything else is the operator's).
pub const ACL_FIELDS: &[&str] = &[
    "deployment",
    "trusted",
    "deny",
    "countries",
    "class",
    "restrict",
    "ips",
];

/// The instance fields only the operator may change (everything that is not the ACL).
pub const OPERATOR_FIELDS: &[&str] = &[
    "id",
    "hostnames",
    "cert",
    "key",
    "upstream",
    "upstream_host",
    "upstream_ca",
    "dangerous_skip_upstream_verify",
    "bind",
    "connect_timeout",
    "read_timeout",
    "write_timeout",
    "idle_timeout",
    "strip_headers",
    "hsts",
    "connector_secret",
    "connector_secret_file",
    "udp",
    "tcp",
];

impl InstanceSpec {
    /// The partner-editable part.
    pub fn acl(&self) -> AclSpec {
        AclSpec {
            deployment: self.deployment.clone(),
            trusted: self.trusted.clone(),
            deny: self.deny.clone(),
            countries: self.countries.clone(),
            class: self.class.clone(),
            restrict: self.restrict.clone(),
            ips: self.ips.clone(),
        }
    }

    /// Replaces the partner-editable part.
    pub fn set_acl(&mut self, acl: AclSpec) {
        self.deployment = acl.deployment;
        self.trusted = acl.trusted;
        self.deny = acl.deny;
        self.countries = acl.countries;
        self.class = acl.class;
        self.restrict = acl.restrict;
        self.ips = acl.ips;
    }
}

/// `[instance.class.<name>]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub countries: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
}

/// `[[instance.restrict]]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestrictSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admit: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<String>,
}

/// `[instance.ips]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceIpsSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disable: Vec<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<ExclusionSpec>,
    /// Run the node's CRS on this instance (default true when `[node.ips] crs` is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crs: Option<bool>,
    /// CRS paranoia level 1..=4 (default `[node.ips] paranoia`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paranoia: Option<i64>,
}

impl InstanceIpsSpec {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// `[[instance.ips.exclude]]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExclusionSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// Why the exclusion exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `[[instance.udp]]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UdpSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// `[[instance.tcp]]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}
