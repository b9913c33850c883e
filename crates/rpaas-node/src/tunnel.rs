//! The node's end of the connector tunnel: the QUIC server, connector authentication, the
//! registry of live connectors per instance, and the UDP flow table that maps agents to flow
//! ids and back.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rpaas_tunnel::quinn;
use rpaas_tunnel::wire::{read_msg, write_msg};
use rpaas_tunnel::{ConnectorDatagram, Hello, Welcome};
use tokio::net::UdpSocket;

use crate::state::Shared;

struct Flow {
    instance: String,
    relay: Arc<UdpSocket>,
    agent: SocketAddr,
    last: Instant,
}

/// Live connectors and UDP flows. Lives for the process.
#[derive(Default)]
pub struct Tunnels {
    conns: Mutex<HashMap<String, Vec<(u64, quinn::Connection)>>>,
    next_conn: AtomicU64,
    flows: Mutex<FlowTable>,
}

#[derive(Default)]
struct FlowTable {
    by_agent: HashMap<(usize, SocketAddr), u32>,
    by_id: HashMap<u32, Flow>,
}

static NEXT_FLOW: AtomicU32 = AtomicU32::new(1);

/// What happened to an agent's datagram.
pub enum FlowLookup {
    Known(u32),
    New,
}

impl std::fmt::Debug for Tunnels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tunnels")
    }
}

impl Tunnels {
    /// A live connector of `instance` (the newest: after a failover it is the one that works).
    pub fn pick(&self, instance: &str) -> Option<quinn::Connection> {
        let map = self.conns.lock().ok()?;
        map.get(instance)?
            .iter()
            .rev()
            .find(|(_, c)| c.close_reason().is_none())
            .map(|(_, c)| c.clone())
    }

    pub fn count(&self, instance: &str) -> usize {
        self.conns
            .lock()
            .map(|m| {
                m.get(instance).map_or(0, |v| {
                    v.iter().filter(|(_, c)| c.close_reason().is_none()).count()
                })
            })
            .unwrap_or(0)
    }

    fn add(&self, instance: &str, conn: quinn::Connection) -> u64 {
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut m) = self.conns.lock() {
            m.entry(instance.to_string()).or_default().push((id, conn));
        }
        id
    }

    fn remove(&self, instance: &str, id: u64) {
        if let Ok(mut m) = self.conns.lock() {
            if let Some(v) = m.get_mut(instance) {
                v.retain(|(i, _)| *i != id);
            }
        }
    }

    /// The flow of `agent` on relay `relay_key`, if known (and touches it).
    pub fn flow(&self, relay_key: usize, agent: SocketAddr) -> FlowLookup {
        let Ok(mut t) = self.flows.lock() else {
            return FlowLookup::New;
        };
        match t.by_agent.get(&(relay_key, agent)).copied() {
            Some(id) => {
                if let Some(f) = t.by_id.get_mut(&id) {
                    f.last = Instant::now();
                }
                FlowLookup::Known(id)
            }
            None => FlowLookup::New,
        }
    }

    /// Opens a flow; `None` when the table is full.
    pub fn open_flow(
        &self,
        relay_key: usize,
        instance: &str,
        relay: Arc<UdpSocket>,
        agent: SocketAddr,
        max: usize,
    ) -> Option<u32> {
        let mut t = self.flows.lock().ok()?;
        if t.by_id.len() >= max {
            return None;
        }
        let id = NEXT_FLOW.fetch_add(1, Ordering::Relaxed);
        t.by_agent.insert((relay_key, agent), id);
        t.by_id.insert(
            id,
            Flow {
                instance: instance.to_string(),
                relay,
                agent,
                last: Instant::now(),
            },
        );
        Some(id)
    }

    fn reply_target(&self, id: u32) -> Option<(Arc<UdpSocket>, SocketAddr, String)> {
        let mut t = self.flows.lock().ok()?;
        let f = t.by_id.get_mut(&id)?;
        f.last = Instant::now();
        Some((f.relay.clone(), f.agent, f.instance.clone()))
    }

    /// Forgets flows idle for longer than `idle`; returns the number of flows per instance.
    pub fn sweep(&self, idle: Duration) -> HashMap<String, usize> {
        let now = Instant::now();
        let mut per = HashMap::new();
        if let Ok(mut t) = self.flows.lock() {
            t.by_id.retain(|_, f| now.duration_since(f.last) < idle);
            let live: std::collections::HashSet<u32> = t.by_id.keys().copied().collect();
            t.by_agent.retain(|_, id| live.contains(id));
            for f in t.by_id.values() {
                *per.entry(f.instance.clone()).or_insert(0) += 1;
            }
        }
        per
    }
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Accepts connectors until the endpoint closes.
pub async fn serve(shared: Arc<Shared>, endpoint: quinn::Endpoint) {
    while let Some(incoming) = endpoint.accept().await {
        let shared = shared.clone();
        tokio::spawn(async move {
            let remote = incoming.remote_address();
            match incoming.await {
                Ok(conn) => connector(shared, conn).await,
                Err(e) => {
                    tracing::warn!(target: "rpaas::tunnel", event = "tunnel_handshake_failed", peer = %remote, reason = %e, "tunnel handshake failed")
                }
            }
        });
    }
}

async fn connector(shared: Arc<Shared>, conn: quinn::Connection) {
    let remote = conn.remote_address();
    let hello = async {
        let (send, mut recv) = conn.accept_bi().await.map_err(|e| e.to_string())?;
        let hello: Hello = read_msg(&mut recv).await.map_err(|e| e.to_string())?;
        Ok::<_, String>((send, hello))
    };
    let (mut send, hello) = match tokio::time::timeout(Duration::from_secs(10), hello).await {
        Ok(Ok(h)) => h,
        _ => {
            conn.close(quinn::VarInt::from_u32(2), b"no hello");
            return;
        }
    };
    let snap = shared.snapshot.load_full();
    let inst = snap.instances.iter().find(|i| i.cfg.id == hello.instance);
    // Compare against something even for an unknown instance, so timing says nothing.
    let expected = inst
        .and_then(|i| i.cfg.connector_secret.as_ref())
        .map(|s| s.expose().as_bytes().to_vec());
    let good = ct_eq(
        expected.as_deref().unwrap_or(b"\0never-a-secret\0"),
        hello.secret.as_bytes(),
    ) && expected.is_some()
        && hello.version == 1;
    let max = snap
        .config()
        .node
        .tunnel
        .as_ref()
        .map_or(0, |t| t.max_connectors);
    let refuse = if !good {
        Some("unknown instance or bad secret")
    } else if shared.tunnels.count(&hello.instance) >= max {
        Some("too many connectors for this instance")
    } else {
        None
    };
    if let Some(reason) = refuse {
        tracing::warn!(target: "rpaas::tunnel", event = "connector_refused", instance = %hello.instance, peer = %remote, reason, "connector refused");
        crate::metrics::inc(&shared.metrics.tunnel_refused, &[reason]);
        let _ = write_msg(
            &mut send,
            &Welcome {
                ok: false,
                error: Some(reason.into()),
            },
        )
        .await;
        let _ = send.finish();
        // Let the refusal reach the connector before closing.
        tokio::time::sleep(Duration::from_millis(200)).await;
        conn.close(quinn::VarInt::from_u32(1), b"refused");
        return;
    }
    if write_msg(
        &mut send,
        &Welcome {
            ok: true,
            error: None,
        },
    )
    .await
    .is_err()
    {
        return;
    }
    let _ = send.finish();
    drop(snap);
    let instance = hello.instance.clone();
    let id = shared.tunnels.add(&instance, conn.clone());
    crate::metrics::set(
        &shared.metrics.tunnel_connectors,
        &[&instance],
        shared.tunnels.count(&instance) as i64,
    );
    tracing::info!(target: "rpaas::tunnel", event = "connector_connected", instance = %instance, peer = %remote, "connector connected");
    while let Ok(bytes) = conn.read_datagram().await {
        let Some(d) = ConnectorDatagram::decode(&bytes) else {
            continue;
        };
        match shared.tunnels.reply_target(d.flow) {
            Some((socket, agent, inst)) => {
                if socket.send_to(d.payload, agent).await.is_ok() {
                    crate::metrics::inc(&shared.metrics.udp_datagrams, &[&inst, "to_agent"]);
                    crate::metrics::inc_by(
                        &shared.metrics.udp_bytes,
                        &[&inst, "to_agent"],
                        d.payload.len() as u64,
                    );
                }
            }
            None => crate::metrics::inc(&shared.metrics.udp_drops, &[&instance, "unknown_flow"]),
        }
    }
    shared.tunnels.remove(&instance, id);
    crate::metrics::set(
        &shared.metrics.tunnel_connectors,
        &[&instance],
        shared.tunnels.count(&instance) as i64,
    );
    tracing::warn!(target: "rpaas::tunnel", event = "connector_disconnected", instance = %instance, peer = %remote, reason = %conn.close_reason().map(|r| r.to_string()).unwrap_or_default(), "connector disconnected");
}
