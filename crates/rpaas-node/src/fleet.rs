//! The node in a fleet (several nodes on one store): it follows the store's committed
//! revisions (PostgreSQL `LISTEN/NOTIFY`, plus the periodic poll in `lifecycle`), sends its
//! heartbeat, and shares bans: the ones it decides go to the store, the ones other nodes
//! decided are applied here. Rate-limit counters stay local to each node.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rpaas_control::store::now_ms;
use rpaas_control::Store;
use tokio::sync::mpsc;

use crate::lifecycle::Node;

/// Bans waiting to be shared at most (more are dropped and counted).
const BAN_QUEUE: usize = 10_000;
/// How often other nodes' bans are read.
const BAN_POLL: Duration = Duration::from_millis(500);
const HEARTBEAT: Duration = Duration::from_secs(1);

/// The bans this node decided, on their way to the store.
#[derive(Debug)]
pub struct BanOutbox {
    tx: mpsc::Sender<(IpAddr, i64)>,
    rx: std::sync::Mutex<Option<mpsc::Receiver<(IpAddr, i64)>>>,
}

impl Default for BanOutbox {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(BAN_QUEUE);
        BanOutbox {
            tx,
            rx: std::sync::Mutex::new(Some(rx)),
        }
    }
}

impl BanOutbox {
    /// Queues a ban for the fleet (never blocks).
    pub fn share(&self, ip: IpAddr, duration: Duration) {
        let until = now_ms() + duration.as_millis() as i64;
        if self.tx.try_send((ip, until)).is_err() {
            tracing::warn!(target: "rpaas::control", "the ban queue is full; a ban stays on this node only");
        }
    }
}

fn node_id(node: &Node) -> String {
    node.shared
        .snapshot
        .load()
        .config()
        .control
        .as_ref()
        .map_or_else(String::new, |c| c.node_id.clone())
}

/// Runs the fleet tasks until the node stops.
pub async fn run(node: Arc<Node>, store: Store) {
    let (tx, rx) = mpsc::channel(16);
    tokio::join!(
        rpaas_control::fleet::watch(store.clone(), tx),
        follow(node.clone(), store.clone(), rx),
        heartbeat(node.clone(), store.clone()),
        bans(node, store),
    );
}

/// Reloads when another node committed a revision this node does not serve.
async fn follow(node: Arc<Node>, store: Store, mut rx: mpsc::Receiver<Option<i64>>) {
    while let Some(r) = rx.recv().await {
        let applied = node.shared.applied_revision.load(Ordering::Acquire);
        let behind = match r {
            Some(r) => r > applied,
            // A (re)connect: a notification may have been missed.
            None => store.revision().await.is_ok_and(|r| r != applied),
        };
        if behind {
            let _ = node.reload().await;
        }
    }
}

async fn heartbeat(node: Arc<Node>, store: Store) {
    let started = now_ms();
    let version = env!("CARGO_PKG_VERSION");
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tick.tick().await;
        let applied = node.shared.applied_revision.load(Ordering::Acquire);
        if let Err(e) = store
            .heartbeat(&node_id(&node), version, applied, started)
            .await
        {
            tracing::debug!(target: "rpaas::control", error = %e, "cannot send the heartbeat");
        }
    }
}

/// Shares this node's bans and applies the others'.
async fn bans(node: Arc<Node>, store: Store) {
    let Some(mut outbox) = node
        .shared
        .ban_outbox
        .rx
        .lock()
        .ok()
        .and_then(|mut r| r.take())
    else {
        return;
    };
    let me = node_id(&node);
    // From the start: bans still in force when this node starts apply to it too.
    let mut after = 0i64;
    let mut tick = tokio::time::interval(BAN_POLL);
    loop {
        tokio::select! {
            b = outbox.recv() => {
                let Some((ip, until)) = b else { return };
                if let Err(e) = store.add_ban(ip, until, &me).await {
                    tracing::warn!(target: "rpaas::control", error = %e, "cannot share a ban with the fleet");
                }
            }
            _ = tick.tick() => {
                match store.bans_since(after, 1000).await {
                    Ok(rows) => {
                        let now_ms = now_ms();
                        let now = Instant::now();
                        for b in rows {
                            after = after.max(b.id);
                            if b.node == me {
                                continue;
                            }
                            let left = Duration::from_millis((b.until - now_ms).max(0) as u64);
                            node.shared.bans.ban(b.ip, now + left);
                            tracing::info!(target: "rpaas::ips", event = "banned_by_fleet", client_ip = %b.ip, node = %b.node, seconds = left.as_secs(), "client banned by another node");
                        }
                    }
                    Err(e) => {
                        tracing::debug!(target: "rpaas::control", error = %e, "cannot read the fleet's bans");
                    }
                }
            }
        }
    }
}
