//! The rpaas control plane: the admin API (`/v1`, axum) on `[control] listen`, the store
//! behind it (SQLite embedded by default, PostgreSQL for a fleet), API keys, the audit trail,
//! and the recent refusals and traffic counters a node records.
//!
//! It owns: who may change what (operator keys everything, partner keys only their instances'
//! typed ACL fields), validation of every change with the same compile step as `rpaas check`
//! before anything is stored, revisions (`ETag`/`If-Match`), and the OpenAPI document. It must
//! not depend on the node: the node hands it a [`NodeHooks`] (apply a committed change, explain
//! a request, what the node has seen) and reads the store back as config.

mod api;
mod auth;
mod error;
pub mod fleet;
mod last_good;
pub mod openapi;
pub mod store;
mod store_acme;
mod store_keys;
mod store_secrets;
pub mod users;

use std::sync::Arc;

pub use api::keys::{key_request, KeyView, NewKey};
pub use api::{router, serve, ApiServer, ClientAddr, SessionPrincipal};
pub use auth::{ct_eq, new_key, random_hex, Failures, Principal, Scope};
pub use error::{ApiError, FieldError, StoreError};
pub use store::{Actor, Change, DecisionRow, Partner, Store, StoredInstance, TrafficRow};

/// What the control plane asks of the node it runs in.
#[async_trait::async_trait]
pub trait NodeHooks: Send + Sync {
    /// The node's config as its files say (node, listeners, the files' instances), without the
    /// store's instances.
    fn base(&self) -> Result<rpaas_config::Document, rpaas_config::ConfigErrors>;
    /// Rebuilds the node's config from its files and the store (after a committed change);
    /// returns the store revision now applied.
    async fn apply(&self) -> Result<i64, HookError>;
    /// The store revision the node serves.
    fn applied_revision(&self) -> i64;
    /// The live node's answer for a request to an instance (same shape as
    /// `rpaas explain --json`); `None` if the node does not serve the instance.
    fn explain(&self, instance: &str, q: &ExplainQuery) -> Option<serde_json::Value>;
    /// Distinct agent addresses the node saw for the instance in the last hour.
    fn agents_seen(&self, instance: &str) -> u64;
    /// This node's id.
    fn node_id(&self) -> String;
    /// The certificate the node serves for the instance: `{source, state, not_after,
    /// last_error, next_attempt}`.
    fn cert(&self, instance: &str) -> Option<serde_json::Value>;
    /// Replays the node's recent sample of requests to the instance under `spec`: (sampled,
    /// refused under the config in force, refused under `spec`).
    async fn preview(
        &self,
        instance: &str,
        spec: &rpaas_spec::InstanceSpec,
    ) -> Result<(u64, u64, u64), HookError>;
}

/// Why the node could not do what a hook asked.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The config (files and store, or the proposed change) does not compile; every error
    /// has its field.
    #[error("{0}")]
    Config(#[from] rpaas_config::ConfigErrors),
    /// The node refused to apply a valid config (e.g. the change needs a restart), or failed.
    #[error("{0}")]
    Node(Box<dyn std::error::Error + Send + Sync>),
}

/// `POST /v1/instances/{id}/explain`.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplainQuery {
    /// The client address.
    #[schema(value_type = String)]
    pub ip: std::net::IpAddr,
    #[serde(default = "default_method")]
    pub method: String,
    /// The request target, e.g. `/automate/` or `/cwa/api/v1/computers?condition=...`.
    pub path: String,
    /// Request headers (name → value).
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
}

fn default_method() -> String {
    "GET".into()
}

/// The control plane's settings, from `[control]`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Provisioned instances get `<16 hex>.<base_domain>`.
    pub base_domain: Option<String>,
    /// New instances get `cert = "acme"` (an `[acme]` section exists).
    pub acme: bool,
    /// How long refusals, traffic and audit rows are kept.
    pub retention: std::time::Duration,
}

/// Everything the API handlers share.
pub struct Control {
    pub store: Store,
    pub node: Arc<dyn NodeHooks>,
    pub settings: Settings,
    pub failures: auth::Failures,
    /// Validation and commit of instance changes happen one at a time on a node.
    write: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Control {
    pub fn new(store: Store, node: Arc<dyn NodeHooks>, settings: Settings) -> Arc<Control> {
        Arc::new(Control {
            store,
            node,
            settings,
            failures: auth::Failures::default(),
            write: tokio::sync::Mutex::new(()),
        })
    }
}
