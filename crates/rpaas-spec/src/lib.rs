//! The config of a node as data: one serialisable spec for the node (`[node]`, listeners) and
//! for an instance, read from TOML files today and from the control store and the admin API
//! next. Everything here is *as written*: only the shape is checked (`deny_unknown_fields`
//! catches typos); meaning is checked by `rpaas-config`'s compile step, which names the field
//! path and the reason of every problem.
//!
//! Must not: read files (beyond parsing text it is given), resolve names, or know about the
//! node. Optional fields stay `None` when not written, so the spec that comes back out is the
//! one that went in.
#![forbid(unsafe_code)]

mod instance;
mod node;

use serde::{Deserialize, Serialize};

pub use instance::{
    AclSpec, ClassSpec, ExclusionSpec, Files, InstanceIpsSpec, InstanceSpec, NetEntry,
    RestrictSpec, TcpSpec, UdpSpec, ACL_FIELDS, OPERATOR_FIELDS,
};
pub use node::{
    AcmeSpec, ControlSpec, DurationSpec, LimitsSpec, ListenerSpec, NodeIpsSpec, NodeSpec,
};

/// A whole node config: `[node]`, `[[listener]]`s, `[[instance]]`s, `[control]`, `[acme]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    #[serde(default)]
    pub node: NodeSpec,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listener: Vec<ListenerSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instance: Vec<InstanceSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<ControlSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme: Option<AcmeSpec>,
}

/// A file of extra instances (`[node] instances_dir`): `[[instance]]` tables only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstancesFile {
    #[serde(default)]
    pub instance: Vec<InstanceSpec>,
}

/// A shape error: the field path (`instance[0].ips.mode`, `-` for the document) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeError {
    pub path: String,
    pub reason: String,
}

impl std::fmt::Display for ShapeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

impl std::error::Error for ShapeError {}

/// `-` for the document itself: serde_path_to_error says `.`, and an empty key (`"" = 1`)
/// would leave nothing to read.
fn field_path(path: String) -> String {
    if path == "." || path.is_empty() {
        "-".into()
    } else {
        path
    }
}

/// Parses TOML text into `T`, naming the field path and the line of the first problem.
pub fn from_toml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ShapeError> {
    let de = toml::Deserializer::new(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // toml gives some syntax errors (a key with no value at the end of the text) an
        // empty message.
        let mut reason = match inner.message() {
            "" => "malformed TOML".to_string(),
            m => m.to_string(),
        };
        if let Some(span) = inner.span() {
            let upto = &text.as_bytes()[..span.start.min(text.len())];
            let line = upto.iter().filter(|b| **b == b'\n').count() + 1;
            reason = format!("{reason} (line {line})");
        }
        ShapeError {
            path: field_path(path),
            reason,
        }
    })
}

/// Parses JSON text into `T`, naming the field path and the line of the first problem.
pub fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ShapeError> {
    from_json_value_path(&mut serde_json::Deserializer::from_str(text))
}

fn from_json_value_path<'de, T: serde::de::DeserializeOwned>(
    de: &mut serde_json::Deserializer<serde_json::de::StrRead<'de>>,
) -> Result<T, ShapeError> {
    serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        ShapeError {
            path: field_path(path),
            reason: inner.to_string(),
        }
    })
}

/// Reads a JSON value (e.g. an API body) into `T`, naming the field path of the first problem.
pub fn from_value<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, ShapeError> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        ShapeError {
            path: field_path(path),
            reason: e.into_inner().to_string(),
        }
    })
}

#[cfg(test)]
mod tests;
