//! `rpaas-connector`: the small program on the Automate server. It dials out to its node over
//! QUIC, authenticates as one instance, and relays:
//!
//! * UDP datagrams (the agent heartbeat) to local targets, one local socket per agent flow so
//!   each reply goes back to the agent that caused it;
//! * TCP streams the node opens to local targets.
//!
//! It refuses every target not in its `allow` list, so a compromised node cannot use it to
//! reach other hosts on the partner's network. It reconnects with jittered exponential backoff
//! and stops only on a bad config or rejected credentials.
//!
//! With several nodes (a fleet) it keeps one tunnel to each at the same time: agents reach
//! whichever node is up, each datagram's replies go back through the tunnel it came from, and
//! one node going away does not touch the others' tunnels.
#![forbid(unsafe_code)]

pub mod config;
mod relay;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use config::{load, Config};
use rpaas_tunnel::quinn;
use rpaas_tunnel::wire::{read_msg, write_msg};
use rpaas_tunnel::{Hello, Welcome};

/// Why the connector stopped for good.
#[derive(Debug, thiserror::Error)]
pub enum Fatal {
    #[error("the node refused this connector: {0}")]
    Rejected(String),
    #[error("cannot start: {0}")]
    Setup(String),
}

enum Attempt {
    /// Connected, then lost the connection after this long.
    Ended(Duration),
    Failed(String),
    Rejected(String),
}

/// Exponential backoff with full jitter, 0.5 s to 30 s.
struct Backoff {
    next: Duration,
}

impl Backoff {
    const MIN: Duration = Duration::from_millis(500);
    const MAX: Duration = Duration::from_secs(30);

    fn new() -> Self {
        Self { next: Self::MIN }
    }

    fn reset(&mut self) {
        self.next = Self::MIN;
    }

    fn wait(&mut self) -> Duration {
        let cap = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        // Between half and all of the cap: spread reconnecting connectors apart.
        let ms = cap.as_millis() as u64;
        Duration::from_millis(ms / 2 + fastrand::u64(0..=ms / 2))
    }
}

/// Runs until a fatal error.
pub async fn run(cfg: Config) -> Result<(), Fatal> {
    let client = rpaas_tunnel::tls::client_config(cfg.trust.clone())
        .map_err(|e| Fatal::Setup(e.to_string()))?;
    let bind: SocketAddr = "[::]:0"
        .parse()
        .map_err(|_| Fatal::Setup("bind address".into()))?;
    let mut endpoint = match quinn::Endpoint::client(bind) {
        Ok(e) => e,
        Err(_) => quinn::Endpoint::client(SocketAddr::from(([0, 0, 0, 0], 0)))
            .map_err(|e| Fatal::Setup(e.to_string()))?,
    };
    endpoint.set_default_client_config(client);
    let cfg = Arc::new(cfg);
    let mut tunnels = tokio::task::JoinSet::new();
    for node in cfg.nodes.clone() {
        tunnels.spawn(tunnel(endpoint.clone(), cfg.clone(), node));
    }
    // Each tunnel runs until the node rejects this connector: that is fatal for all.
    match tunnels.join_next().await {
        Some(Ok(fatal)) => Err(fatal),
        Some(Err(e)) => Err(Fatal::Setup(e.to_string())),
        None => Ok(()),
    }
}

/// Keeps one tunnel to `node` up; returns only when the node rejects the connector.
async fn tunnel(endpoint: quinn::Endpoint, cfg: Arc<Config>, node: String) -> Fatal {
    let mut backoff = Backoff::new();
    loop {
        tracing::info!(node = %node, instance = %cfg.instance, "connecting");
        match attempt(&endpoint, &cfg, &node).await {
            Attempt::Ended(lasted) => {
                tracing::warn!(node = %node, after_secs = lasted.as_secs(), "disconnected from the node");
                if lasted > Duration::from_secs(10) {
                    backoff.reset();
                }
            }
            Attempt::Failed(reason) => {
                tracing::warn!(node = %node, %reason, "connection to the node failed")
            }
            Attempt::Rejected(reason) => return Fatal::Rejected(reason),
        }
        let wait = backoff.wait();
        tracing::info!(node = %node, retry_in_ms = wait.as_millis() as u64, "reconnecting");
        tokio::time::sleep(wait).await;
    }
}

async fn attempt(endpoint: &quinn::Endpoint, cfg: &Arc<Config>, node: &str) -> Attempt {
    let addr = match tokio::net::lookup_host(node).await.map(|mut a| a.next()) {
        Ok(Some(a)) => a,
        Ok(None) => return Attempt::Failed(format!("{node} resolves to no address")),
        Err(e) => return Attempt::Failed(format!("cannot resolve {node}: {e}")),
    };
    let connecting = match endpoint.connect(addr, &cfg.server_name) {
        Ok(c) => c,
        Err(e) => return Attempt::Failed(e.to_string()),
    };
    let conn = match tokio::time::timeout(Duration::from_secs(10), connecting).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Attempt::Failed(e.to_string()),
        Err(_) => return Attempt::Failed("handshake timed out".into()),
    };
    let hello = Hello {
        version: 1,
        instance: cfg.instance.clone(),
        secret: cfg.secret.clone(),
    };
    let welcome = async {
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
        write_msg(&mut send, &hello)
            .await
            .map_err(|e| e.to_string())?;
        let _ = send.finish();
        read_msg::<_, Welcome>(&mut recv)
            .await
            .map_err(|e| e.to_string())
    };
    let welcome = match tokio::time::timeout(Duration::from_secs(10), welcome).await {
        Ok(Ok(w)) => w,
        Ok(Err(e)) => return Attempt::Failed(format!("no welcome from the node: {e}")),
        Err(_) => return Attempt::Failed("no welcome from the node in time".into()),
    };
    if !welcome.ok {
        let reason = welcome.error.unwrap_or_else(|| "refused".into());
        conn.close(quinn::VarInt::from_u32(1), b"rejected");
        return Attempt::Rejected(reason);
    }
    let started = Instant::now();
    tracing::info!(node = %addr, "connected");
    let udp = tokio::spawn(relay::datagrams(conn.clone(), cfg.clone()));
    let tcp = tokio::spawn(relay::streams(conn.clone(), cfg.clone()));
    let reason = conn.closed().await;
    udp.abort();
    tcp.abort();
    tracing::debug!(%reason, "connection closed");
    Attempt::Ended(started.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let mut b = Backoff::new();
        let waits: Vec<Duration> = (0..10).map(|_| b.wait()).collect();
        assert!(waits[0] >= Duration::from_millis(250) && waits[0] <= Duration::from_millis(500));
        assert!(waits[9] <= Backoff::MAX && waits[9] >= Backoff::MAX / 2);
        b.reset();
        assert!(b.wait() <= Backoff::MIN);
    }
}
