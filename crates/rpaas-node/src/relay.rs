//! The node's UDP and TCP relays. A relay socket is bound for each `[[instance.udp]]` /
//! `[[instance.tcp]]` entry, at start and on every reload that adds one ([`RelaySet`]: new
//! sockets are bound before the new config is swapped in, so a reload whose relay cannot bind
//! is refused; removed relays stop after the swap). What a relay does with traffic (targets,
//! policy, secrets) comes from the current snapshot, so reloads apply to new flows.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rpaas_config::{Config, ConfigError, ConfigErrors};
use tokio::task::JoinHandle;

use rpaas_config::Via;
use rpaas_policy::TrafficClass;
use rpaas_tunnel::wire::put_addr;
use rpaas_tunnel::{NodeDatagram, StreamStatus, MAX_DATAGRAM};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use crate::state::Shared;
use crate::tunnel::FlowLookup;

/// One `[[instance.udp]]` relay.
pub async fn serve_udp(
    shared: Arc<Shared>,
    instance: String,
    index: usize,
    key: usize,
    socket: Arc<UdpSocket>,
) {
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, agent)) = socket.recv_from(&mut buf).await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let drop =
            |reason: &str| crate::metrics::inc(&shared.metrics.udp_drops, &[&instance, reason]);
        if n > MAX_DATAGRAM {
            drop("too_large");
            continue;
        }
        let snap = shared.snapshot.load();
        let Some(inst) = snap.instances.iter().find(|i| i.cfg.id == instance) else {
            drop("no_instance");
            continue;
        };
        let Some(relay) = inst.cfg.udp.get(index) else {
            drop("no_relay");
            continue;
        };
        let flow = match shared.tunnels.flow(key, agent) {
            FlowLookup::Known(id) => id,
            FlowLookup::New => {
                let access = inst.cfg.policy.class_policy(TrafficClass::Agent).access;
                if let Err(reason) = rpaas_policy::admit_ip(
                    &inst.cfg.policy,
                    snap.policy.geo.as_deref(),
                    agent.ip(),
                    TrafficClass::Agent,
                    access,
                ) {
                    drop(&format!("policy:{}", reason.code()));
                    continue;
                }
                let max = snap
                    .config()
                    .node
                    .tunnel
                    .as_ref()
                    .map_or(0, |t| t.max_flows);
                match shared
                    .tunnels
                    .open_flow(key, &instance, socket.clone(), agent, max)
                {
                    Some(id) => id,
                    None => {
                        drop("flow_table_full");
                        continue;
                    }
                }
            }
        };
        let Some(conn) = shared.tunnels.pick(&instance) else {
            drop("no_connector");
            continue;
        };
        let d = NodeDatagram {
            flow,
            target: relay.target,
            payload: &buf[..n],
        };
        if conn.send_datagram(d.encode().into()).is_ok() {
            crate::metrics::inc(&shared.metrics.udp_datagrams, &[&instance, "to_server"]);
            crate::metrics::inc_by(
                &shared.metrics.udp_bytes,
                &[&instance, "to_server"],
                n as u64,
            );
        } else {
            drop("send_failed");
        }
    }
}

/// Why a TCP relay ended without carrying the connection; [`RelayError::code`] is the
/// bounded `outcome` of the log line and the metric.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RelayError {
    NoInstance,
    NoRelay,
    /// Refused by the instance's policy (the reason's stable code).
    Policy(rpaas_policy::Reason),
    ConnectTimeout,
    ConnectFailed,
    NoConnector,
    StreamFailed,
    ConnectorTimeout,
    ConnectorNotAllowed,
    TargetFailed,
}

impl RelayError {
    fn code(&self) -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed(match self {
            Self::Policy(r) => return format!("policy:{}", r.code()).into(),
            Self::NoInstance => "no_instance",
            Self::NoRelay => "no_relay",
            Self::ConnectTimeout => "connect_timeout",
            Self::ConnectFailed => "connect_failed",
            Self::NoConnector => "no_connector",
            Self::StreamFailed => "stream_failed",
            Self::ConnectorTimeout => "connector_timeout",
            Self::ConnectorNotAllowed => "connector_not_allowed",
            Self::TargetFailed => "target_failed",
        })
    }
}

/// One `[[instance.tcp]]` relay.
pub async fn serve_tcp(shared: Arc<Shared>, instance: String, index: usize, listener: TcpListener) {
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let shared = shared.clone();
        let instance = instance.clone();
        tokio::spawn(async move {
            let result = relay_tcp(&shared, &instance, index, tcp, peer).await;
            let outcome = match &result {
                Ok(()) => std::borrow::Cow::Borrowed("ok"),
                Err(r) => r.code(),
            };
            let outcome = outcome.as_ref();
            crate::metrics::inc(&shared.metrics.tcp_relays, &[&instance, outcome]);
            tracing::info!(target: "rpaas::relay", event = "tcp_relay", instance = %instance, client_ip = %peer.ip(), outcome, "tcp relay");
        });
    }
}

async fn relay_tcp(
    shared: &Shared,
    instance: &str,
    index: usize,
    mut tcp: TcpStream,
    peer: SocketAddr,
) -> Result<(), RelayError> {
    let (relay, admit) = {
        let snap = shared.snapshot.load();
        let inst = snap
            .instances
            .iter()
            .find(|i| i.cfg.id == instance)
            .ok_or(RelayError::NoInstance)?;
        let relay = inst
            .cfg
            .tcp
            .get(index)
            .cloned()
            .ok_or(RelayError::NoRelay)?;
        let admit = rpaas_policy::admit_ip(
            &inst.cfg.policy,
            snap.policy.geo.as_deref(),
            peer.ip(),
            TrafficClass::Other,
            relay.access,
        );
        (relay, admit)
    };
    if let Err(r) = admit {
        return Err(RelayError::Policy(r));
    }
    let _ = tcp.set_nodelay(true);
    match relay.via {
        Via::Direct => {
            let mut up =
                tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(relay.target))
                    .await
                    .map_err(|_| RelayError::ConnectTimeout)?
                    .map_err(|_| RelayError::ConnectFailed)?;
            let _ = tokio::io::copy_bidirectional(&mut tcp, &mut up).await;
            Ok(())
        }
        Via::Tunnel => {
            let conn = shared
                .tunnels
                .pick(instance)
                .ok_or(RelayError::NoConnector)?;
            let (mut send, mut recv) =
                conn.open_bi().await.map_err(|_| RelayError::StreamFailed)?;
            let mut head = Vec::with_capacity(19);
            put_addr(&mut head, relay.target);
            send.write_all(&head)
                .await
                .map_err(|_| RelayError::StreamFailed)?;
            let mut status = [0u8; 1];
            tokio::time::timeout(
                Duration::from_secs(15),
                AsyncReadExt::read_exact(&mut recv, &mut status),
            )
            .await
            .map_err(|_| RelayError::ConnectorTimeout)?
            .map_err(|_| RelayError::StreamFailed)?;
            match StreamStatus::from_byte(status[0]) {
                Some(StreamStatus::Connected) => {}
                Some(StreamStatus::NotAllowed) => return Err(RelayError::ConnectorNotAllowed),
                _ => return Err(RelayError::TargetFailed),
            }
            let mut quic = tokio::io::join(recv, send);
            let _ = tokio::io::copy_bidirectional(&mut tcp, &mut quic).await;
            let (_, mut send) = quic.into_inner();
            let _ = send.finish();
            let _ = tcp.shutdown().await;
            Ok(())
        }
    }
}

/// One relay as configured.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RelayKey {
    instance: String,
    udp: bool,
    index: usize,
    listen: SocketAddr,
}

enum Bound {
    Udp(std::net::UdpSocket),
    Tcp(std::net::TcpListener),
}

struct Running {
    task: JoinHandle<()>,
}

/// Sockets bound for a config that is not swapped in yet, and the relays it drops.
pub struct Prepared {
    add: Vec<(RelayKey, Bound)>,
    remove: Vec<RelayKey>,
}

/// The relays running now.
#[derive(Default)]
pub struct RelaySet {
    running: Mutex<HashMap<RelayKey, Running>>,
    next_key: AtomicUsize,
}

impl std::fmt::Debug for RelaySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RelaySet")
    }
}

fn wanted(config: &Config) -> Vec<(RelayKey, std::path::PathBuf, String)> {
    let mut v = Vec::new();
    for inst in &config.instances {
        for (index, u) in inst.udp.iter().enumerate() {
            v.push((
                RelayKey {
                    instance: inst.id.clone(),
                    udp: true,
                    index,
                    listen: u.listen,
                },
                inst.source.clone(),
                inst.key(&format!("udp[{index}].listen")),
            ));
        }
        for (index, t) in inst.tcp.iter().enumerate() {
            v.push((
                RelayKey {
                    instance: inst.id.clone(),
                    udp: false,
                    index,
                    listen: t.listen,
                },
                inst.source.clone(),
                inst.key(&format!("tcp[{index}].listen")),
            ));
        }
    }
    v
}

impl RelaySet {
    /// Binds the sockets of the relays `config` adds. Nothing changes until
    /// [`RelaySet::commit`]; dropping the result releases the sockets.
    pub fn prepare(&self, config: &Config) -> Result<Prepared, ConfigErrors> {
        let running = self.running.lock().map_err(|_| {
            ConfigErrors(vec![ConfigError::new(
                &config.source,
                "-",
                "relay state is poisoned",
            )])
        })?;
        let want = wanted(config);
        let mut add = Vec::new();
        let mut errors = Vec::new();
        for (key, source, field) in &want {
            if running.contains_key(key) {
                continue;
            }
            let bound = if key.udp {
                std::net::UdpSocket::bind(key.listen)
                    .and_then(|s| s.set_nonblocking(true).map(|_| s))
                    .map(Bound::Udp)
            } else {
                std::net::TcpListener::bind(key.listen)
                    .and_then(|l| l.set_nonblocking(true).map(|_| l))
                    .map(Bound::Tcp)
            };
            match bound {
                Ok(b) => add.push((key.clone(), b)),
                Err(e) => errors.push(ConfigError::new(
                    source,
                    field.clone(),
                    format!("cannot listen on {}: {e}", key.listen),
                )),
            }
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        let remove = running
            .keys()
            .filter(|k| !want.iter().any(|(w, _, _)| w == *k))
            .cloned()
            .collect();
        Ok(Prepared { add, remove })
    }

    /// Starts the prepared relays and stops the removed ones (call after the config that
    /// wants them is the current one).
    pub fn commit(&self, shared: &Arc<Shared>, p: Prepared) {
        let Ok(mut running) = self.running.lock() else {
            return;
        };
        for k in p.remove {
            if let Some(r) = running.remove(&k) {
                r.task.abort();
                tracing::info!(target: "rpaas::node", event = "relay_stopped", instance = %k.instance, index = k.index, kind = if k.udp { "udp" } else { "tcp" }, "relay stopped");
            }
        }
        for (key, bound) in p.add {
            let task = match bound {
                Bound::Udp(s) => match tokio::net::UdpSocket::from_std(s) {
                    Ok(sock) => {
                        let local = sock.local_addr().ok();
                        tracing::info!(target: "rpaas::node", event = "listening", listener = "udp", instance = %key.instance, index = key.index, address = %local.map(|a| a.to_string()).unwrap_or_default(), "udp relay listening");
                        let flow_key = self.next_key.fetch_add(1, Ordering::Relaxed);
                        tokio::spawn(serve_udp(
                            shared.clone(),
                            key.instance.clone(),
                            key.index,
                            flow_key,
                            Arc::new(sock),
                        ))
                    }
                    Err(e) => {
                        tracing::error!(target: "rpaas::node", instance = %key.instance, error = %e, "cannot start a udp relay");
                        continue;
                    }
                },
                Bound::Tcp(l) => match tokio::net::TcpListener::from_std(l) {
                    Ok(l) => {
                        let local = l.local_addr().ok();
                        tracing::info!(target: "rpaas::node", event = "listening", listener = "tcp", instance = %key.instance, index = key.index, address = %local.map(|a| a.to_string()).unwrap_or_default(), "tcp relay listening");
                        tokio::spawn(serve_tcp(
                            shared.clone(),
                            key.instance.clone(),
                            key.index,
                            l,
                        ))
                    }
                    Err(e) => {
                        tracing::error!(target: "rpaas::node", instance = %key.instance, error = %e, "cannot start a tcp relay");
                        continue;
                    }
                },
            };
            running.insert(key, Running { task });
        }
    }

    /// Stops every relay.
    pub fn stop_all(&self) {
        if let Ok(mut running) = self.running.lock() {
            for (_, r) in running.drain() {
                r.task.abort();
            }
        }
    }
}
