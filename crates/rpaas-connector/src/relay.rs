//! The two relays on the connector side.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rpaas_tunnel::quinn;
use rpaas_tunnel::wire::get_addr;
use rpaas_tunnel::{ConnectorDatagram, NodeDatagram, StreamStatus, MAX_DATAGRAM};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::Config;

struct Flow {
    socket: Arc<UdpSocket>,
    last: Instant,
    reader: tokio::task::JoinHandle<()>,
}

/// Datagrams from the node to local UDP targets, one local socket per flow.
pub(crate) async fn datagrams(conn: quinn::Connection, cfg: Arc<Config>) {
    let mut flows: HashMap<u32, Flow> = HashMap::new();
    let mut sweep = tokio::time::interval(Duration::from_secs(5));
    let mut refused_logged = std::collections::HashSet::new();
    loop {
        let d = tokio::select! {
            d = conn.read_datagram() => d,
            _ = sweep.tick() => {
                let now = Instant::now();
                flows.retain(|_, f| {
                    let keep = now.duration_since(f.last) < cfg.flow_idle;
                    if !keep {
                        f.reader.abort();
                    }
                    keep
                });
                continue;
            }
        };
        let Ok(bytes) = d else {
            break;
        };
        let Some(d) = NodeDatagram::decode(&bytes) else {
            continue;
        };
        if !cfg.allow.contains(&d.target) {
            if refused_logged.insert(d.target) {
                tracing::warn!(target_addr = %d.target, "the node asked for a target that is not allowed; dropped");
            }
            continue;
        }
        let flow = match flows.get_mut(&d.flow) {
            Some(f) => f,
            None => match open_flow(&conn, d.flow, d.target).await {
                Some(f) => flows.entry(d.flow).or_insert(f),
                None => continue,
            },
        };
        flow.last = Instant::now();
        let _ = flow.socket.send(d.payload).await;
    }
    for f in flows.values() {
        f.reader.abort();
    }
}

async fn open_flow(conn: &quinn::Connection, id: u32, target: SocketAddr) -> Option<Flow> {
    let bind: SocketAddr = if target.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let socket = Arc::new(UdpSocket::bind(bind).await.ok()?);
    socket.connect(target).await.ok()?;
    let reader = {
        let socket = socket.clone();
        let conn = conn.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            loop {
                let Ok(n) = socket.recv(&mut buf).await else {
                    // ICMP unreachable and the like: keep the flow, the target may come back.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                if n > MAX_DATAGRAM {
                    continue;
                }
                let out = ConnectorDatagram {
                    flow: id,
                    payload: &buf[..n],
                }
                .encode();
                if conn.send_datagram(out.into()).is_err() {
                    break;
                }
            }
        })
    };
    Some(Flow {
        socket,
        last: Instant::now(),
        reader,
    })
}

/// TCP streams opened by the node.
pub(crate) async fn streams(conn: quinn::Connection, cfg: Arc<Config>) {
    while let Ok((send, recv)) = conn.accept_bi().await {
        let cfg = cfg.clone();
        tokio::spawn(async move {
            let _ = stream(send, recv, &cfg).await;
        });
    }
}

async fn stream(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    cfg: &Config,
) -> std::io::Result<()> {
    let mut head = [0u8; 19];
    AsyncReadExt::read_exact(&mut recv, &mut head[..1]).await?;
    let len = match head[0] {
        4 => 7,
        6 => 19,
        _ => return Ok(()),
    };
    AsyncReadExt::read_exact(&mut recv, &mut head[1..len]).await?;
    let Some((target, _)) = get_addr(&head[..len]) else {
        return Ok(());
    };
    if !cfg.allow.contains(&target) {
        tracing::warn!(target_addr = %target, "the node asked for a TCP target that is not allowed; refused");
        send.write_all(&[StreamStatus::NotAllowed as u8]).await?;
        let _ = send.finish();
        return Ok(());
    }
    let tcp = match tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(target)).await
    {
        Ok(Ok(s)) => s,
        _ => {
            send.write_all(&[StreamStatus::Failed as u8]).await?;
            let _ = send.finish();
            return Ok(());
        }
    };
    let _ = tcp.set_nodelay(true);
    send.write_all(&[StreamStatus::Connected as u8]).await?;
    let mut quic = tokio::io::join(recv, send);
    let mut tcp = tcp;
    let _ = tokio::io::copy_bidirectional(&mut quic, &mut tcp).await;
    let (_, mut send) = quic.into_inner();
    let _ = send.finish();
    let _ = tcp.shutdown().await;
    Ok(())
}
