//! State shared by every task of a running node. It lives below its users: modules take what
//! they need from here, never from the crate root.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::{Mutex, Notify};

use crate::certs::CertStore;
use crate::metrics::Metrics;
use crate::snapshot::Snapshot;

/// State shared by every task of a running node.
pub struct Shared {
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    /// Certificates by instance, replaced one at a time (a reload or a renewal) without a new
    /// snapshot.
    pub certs: Arc<CertStore>,
    pub metrics: Metrics,
    /// Open client connections (for the drain on SIGTERM).
    pub active: AtomicUsize,
    pub idle: Notify,
    /// Rate buckets and bans: process-wide, so they survive reloads.
    pub limiter: rpaas_ips::limits::Limiter,
    pub bans: rpaas_ips::limits::Bans,
    /// Live connectors and UDP flows.
    pub tunnels: crate::tunnel::Tunnels,
    /// Wakes the upstream resolver early (an upstream connect failed).
    pub resolve_now: Notify,
    pub config_path: PathBuf,
    pub reload_lock: Mutex<()>,
    /// The control store's revision the served config holds (0 without a store).
    pub applied_revision: std::sync::atomic::AtomicI64,
    /// Traffic and refusals for the control store, when there is one.
    pub telemetry: Option<crate::telemetry::Telemetry>,
    /// Bans this node decided, for the fleet (read only when there is a store).
    pub ban_outbox: crate::fleet::BanOutbox,
    /// ACME, when `[acme]` is set.
    pub acme: Option<Arc<crate::acme::Acme>>,
    /// TLS session ticket keys (and their rotation), shared by every listener's acceptor.
    pub resumption: Arc<rpaas_tls_session::Resumption>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config_path", &self.config_path)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Open client connections.
    pub fn open_connections(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }
}
