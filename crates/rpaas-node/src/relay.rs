//! The node's UDP and TCP relays. A relay socket is bound at start for an instance's
//! `[[instance.udp]]`/`[[instance.tcp]]` entry; what it does with traffic (targets, policy,
//! secrets) comes from the current snapshot, so reloads apply to new flows and connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rpaas_config::Via;
use rpaas_policy::TrafficClass;
use rpaas_tunnel::wire::put_addr;
use rpaas_tunnel::{NodeDatagram, StreamStatus, MAX_DATAGRAM};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use crate::tunnel::FlowLookup;
use crate::Shared;

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
                    snap.geo.as_deref(),
                    agent.ip(),
                    TrafficClass::Agent,
                    access,
                ) {
                    drop(&format!("policy:{}", reason.code()));
                    continue;
                }
                let max = snap.config.node.tunnel.as_ref().map_or(0, |t| t.max_flows);
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
                Ok(()) => "ok",
                Err(r) => r.as_str(),
            };
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
) -> Result<(), String> {
    let (relay, admit) = {
        let snap = shared.snapshot.load();
        let inst = snap
            .instances
            .iter()
            .find(|i| i.cfg.id == instance)
            .ok_or("no_instance")?;
        let relay = inst.cfg.tcp.get(index).cloned().ok_or("no_relay")?;
        let admit = rpaas_policy::admit_ip(
            &inst.cfg.policy,
            snap.geo.as_deref(),
            peer.ip(),
            TrafficClass::Other,
            relay.access,
        );
        (relay, admit)
    };
    if let Err(r) = admit {
        return Err(format!("policy:{}", r.code()));
    }
    let _ = tcp.set_nodelay(true);
    match relay.via {
        Via::Direct => {
            let mut up =
                tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(relay.target))
                    .await
                    .map_err(|_| "connect_timeout".to_string())?
                    .map_err(|_| "connect_failed".to_string())?;
            let _ = tokio::io::copy_bidirectional(&mut tcp, &mut up).await;
            Ok(())
        }
        Via::Tunnel => {
            let conn = shared.tunnels.pick(instance).ok_or("no_connector")?;
            let (mut send, mut recv) = conn
                .open_bi()
                .await
                .map_err(|_| "stream_failed".to_string())?;
            let mut head = Vec::with_capacity(19);
            put_addr(&mut head, relay.target);
            send.write_all(&head)
                .await
                .map_err(|_| "stream_failed".to_string())?;
            let mut status = [0u8; 1];
            tokio::time::timeout(
                Duration::from_secs(15),
                AsyncReadExt::read_exact(&mut recv, &mut status),
            )
            .await
            .map_err(|_| "connector_timeout".to_string())?
            .map_err(|_| "stream_failed".to_string())?;
            match StreamStatus::from_byte(status[0]) {
                Some(StreamStatus::Connected) => {}
                Some(StreamStatus::NotAllowed) => return Err("connector_not_allowed".into()),
                _ => return Err("target_failed".into()),
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
