//! The rpaas proxy node. Owns the process side of the product: binding listeners, TLS
//! (profiles, SNI certificate choice), the PROXY protocol, handing connections to Pingora's HTTP
//! engine, the proxy phases (instance selection, client address, forwarding headers, response
//! hardening), the admin endpoint (`/healthz`, `/metrics`), JSON logs, SIGHUP reload and
//! SIGTERM drain.
//!
//! Decisions that need no I/O live in other crates (`rpaas-config`, `rpaas-harden`,
//! `rpaas-wire`); this crate is the glue that feeds them.

mod accept;
mod admin;
mod bufio;
mod explain;
mod harden;
mod iodelegate;
mod ips;
mod logging;
mod metrics;
mod proxy;
mod relay;
mod scrub;
mod snapshot;
mod tls;
mod tunnel;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use pingora::apps::http_app::HttpServer;
use pingora::apps::{HttpServerOptions, ServerApp};
use pingora::server::configuration::ServerConf;
use rpaas_config::{Config, ConfigErrors};
use tokio::sync::{watch, Mutex, Notify};

pub use accept::ConnInfo;
pub use explain::{explain, geoip_lookup, Explanation, Question};
pub use metrics::Metrics;
pub use snapshot::Snapshot;

/// State shared by every task of a running node.
pub struct Shared {
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    pub metrics: Metrics,
    /// Open client connections (for the drain on SIGTERM).
    pub active: AtomicUsize,
    pub idle: Notify,
    /// Rate buckets and bans: process-wide, so they survive reloads.
    pub limiter: rpaas_ips::limits::Limiter,
    pub bans: rpaas_ips::limits::Bans,
    /// Live connectors and UDP flows.
    pub tunnels: tunnel::Tunnels,
    config_path: PathBuf,
    reload_lock: Mutex<()>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config_path", &self.config_path)
            .finish_non_exhaustive()
    }
}

/// What `rpaas check` reports about a valid config.
#[derive(Debug)]
pub struct CheckSummary {
    pub listeners: usize,
    pub instances: usize,
    pub self_signed: Vec<String>,
}

/// Validates a config completely: syntax, values, certificate files and keys, upstream CA
/// files, and that every listener's TLS profile can be built.
pub fn check(path: &Path) -> Result<CheckSummary, ConfigErrors> {
    let config = rpaas_config::load(path)?;
    let shared = Arc::new(ArcSwap::from_pointee(Snapshot::build(config, 0, None)?));
    let snap = shared.load_full();
    for (i, l) in snap.config.listeners.iter().enumerate() {
        tls::acceptor(l, i, shared.clone()).map_err(|e| {
            rpaas_config::ConfigError::new(path, format!("listener[{i}].tls"), e.to_string())
        })?;
    }
    if let Some(t) = &snap.config.node.tunnel {
        tunnel_server_config(path, t).map_err(|e| match e {
            StartError::Config(c) => c,
            other => rpaas_config::ConfigError::new(path, "node.tunnel", other.to_string()).into(),
        })?;
    }
    Ok(CheckSummary {
        listeners: snap.config.listeners.len(),
        instances: snap.instances.len(),
        self_signed: snap
            .instances
            .iter()
            .filter(|i| i.cert.self_signed)
            .map(|i| i.cfg.id.clone())
            .collect(),
    })
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    #[error("{file}: {key}: cannot listen on {addr}: {source}")]
    Bind {
        file: PathBuf,
        key: String,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start: {0}")]
    Internal(String),
}

/// Runs a node until SIGTERM/SIGINT, then drains.
pub fn serve(path: &Path) -> Result<(), StartError> {
    let config = rpaas_config::load(path)?;
    logging::init(&config.node.log).map_err(StartError::Internal)?;
    let snap = Snapshot::build(config, 1, None)?;
    let threads = snap.config.node.threads;

    // Bind before starting anything so that a busy port is reported clearly and at once.
    let mut listeners = Vec::new();
    for (i, l) in snap.config.listeners.iter().enumerate() {
        let std_l = bind(l.address).map_err(|source| StartError::Bind {
            file: path.to_path_buf(),
            key: format!("listener[{i}].address"),
            addr: l.address,
            source,
        })?;
        listeners.push(std_l);
    }
    let admin = match snap.config.node.admin {
        Some(a) => Some(bind(a).map_err(|source| StartError::Bind {
            file: path.to_path_buf(),
            key: "node.admin".into(),
            addr: a,
            source,
        })?),
        None => None,
    };

    let relays = bind_relays(path, &snap)?;
    let tunnel = match &snap.config.node.tunnel {
        Some(t) => {
            let server = tunnel_server_config(path, t)?;
            let sock = std::net::UdpSocket::bind(t.address).map_err(|source| StartError::Bind {
                file: path.to_path_buf(),
                key: "node.tunnel".into(),
                addr: t.address,
                source,
            })?;
            Some((sock, server))
        }
        None => None,
    };

    let metrics = Metrics::new().map_err(|e| StartError::Internal(e.to_string()))?;
    let tracked = snap.config.node.limits.max_tracked;
    let shared = Arc::new(Shared {
        limiter: rpaas_ips::limits::Limiter::new(tracked),
        tunnels: tunnel::Tunnels::default(),
        bans: rpaas_ips::limits::Bans::new(tracked),
        snapshot: Arc::new(ArcSwap::from_pointee(snap)),
        metrics,
        active: AtomicUsize::new(0),
        idle: Notify::new(),
        config_path: path.to_path_buf(),
        reload_lock: Mutex::new(()),
    });
    publish_config_metrics(&shared);

    // One worker: a current-thread runtime has no work-stealing bookkeeping to pay for.
    let rt = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("rpaas-worker")
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .thread_name("rpaas-worker")
            .build()
    }
    .map_err(|e| StartError::Internal(e.to_string()))?;
    rt.block_on(run(shared, listeners, admin, relays, tunnel))
}

/// Relay sockets bound at start: (instance id, index, socket).
struct Relays {
    udp: Vec<(String, usize, std::net::UdpSocket)>,
    tcp: Vec<(String, usize, std::net::TcpListener)>,
}

fn bind_relays(path: &Path, snap: &Snapshot) -> Result<Relays, StartError> {
    let mut r = Relays {
        udp: Vec::new(),
        tcp: Vec::new(),
    };
    for inst in &snap.instances {
        for (i, u) in inst.cfg.udp.iter().enumerate() {
            let s = std::net::UdpSocket::bind(u.listen)
                .and_then(|s| s.set_nonblocking(true).map(|_| s))
                .map_err(|source| StartError::Bind {
                    file: inst.cfg.source.clone(),
                    key: inst.cfg.key(&format!("udp[{i}].listen")),
                    addr: u.listen,
                    source,
                })?;
            r.udp.push((inst.cfg.id.clone(), i, s));
        }
        for (i, t) in inst.cfg.tcp.iter().enumerate() {
            let l = bind(t.listen).map_err(|source| StartError::Bind {
                file: inst.cfg.source.clone(),
                key: inst.cfg.key(&format!("tcp[{i}].listen")),
                addr: t.listen,
                source,
            })?;
            r.tcp.push((inst.cfg.id.clone(), i, l));
        }
    }
    let _ = path;
    Ok(r)
}

fn tunnel_server_config(
    path: &Path,
    t: &rpaas_config::TunnelNode,
) -> Result<rpaas_tunnel::quinn::ServerConfig, StartError> {
    let err = |key: &str, reason: String| {
        StartError::Config(rpaas_config::ConfigError::new(path, key, reason).into())
    };
    let chain = rpaas_tunnel::tls::load_certs(&t.cert)
        .map_err(|e| err("node.tunnel_cert", e.to_string()))?;
    let key =
        rpaas_tunnel::tls::load_key(&t.key).map_err(|e| err("node.tunnel_key", e.to_string()))?;
    rpaas_tunnel::tls::server_config(chain, key).map_err(|e| err("node.tunnel_cert", e.to_string()))
}

fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let l = std::net::TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    Ok(l)
}

async fn run(
    shared: Arc<Shared>,
    listeners: Vec<std::net::TcpListener>,
    admin: Option<std::net::TcpListener>,
    relays: Relays,
    tunnel: Option<(std::net::UdpSocket, rpaas_tunnel::quinn::ServerConfig)>,
) -> Result<(), StartError> {
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let snap = shared.snapshot.load_full();
    let conf = Arc::new(ServerConf {
        threads: snap.config.node.threads,
        ..Default::default()
    });

    let mut apps: Vec<Arc<pingora::proxy::HttpProxy<proxy::Proxy>>> = Vec::new();
    let mut tasks = Vec::new();
    for (i, std_l) in listeners.into_iter().enumerate() {
        let Some(lcfg) = snap.config.listeners.get(i) else {
            continue;
        };
        let acceptor = tls::acceptor(lcfg, i, shared.snapshot.clone())
            .map_err(|e| StartError::Internal(format!("listener[{i}] TLS: {e}")))?;
        let mut proxy = pingora::proxy::http_proxy(
            &conf,
            proxy::Proxy {
                shared: shared.clone(),
                listener: i,
            },
        );
        let mut opts = HttpServerOptions::default();
        // Let CONNECT reach our request filter, which refuses it with a hardened 405;
        // Pingora's own refusal would carry `Server: Pingora`.
        opts.allow_connect_method_proxying = true;
        proxy.server_options = Some(opts);
        let app = Arc::new(proxy);
        apps.push(app.clone());
        let l = tokio::net::TcpListener::from_std(std_l)
            .map_err(|e| StartError::Internal(e.to_string()))?;
        let local = l
            .local_addr()
            .map_err(|e| StartError::Internal(e.to_string()))?;
        tracing::info!(
            target: "rpaas::node",
            event = "listening",
            listener = i,
            address = %local,
            tls = lcfg.tls.as_str(),
            "listening"
        );
        tasks.push(tokio::spawn(accept::serve_tls(
            shared.clone(),
            i,
            l,
            Arc::new(acceptor),
            app,
            shutdown_rx.clone(),
        )));
    }
    if let Some(std_l) = admin {
        let l = tokio::net::TcpListener::from_std(std_l)
            .map_err(|e| StartError::Internal(e.to_string()))?;
        let local = l
            .local_addr()
            .map_err(|e| StartError::Internal(e.to_string()))?;
        tracing::info!(target: "rpaas::node", event = "listening", listener = "admin", address = %local, "admin listening");
        let app = Arc::new(HttpServer::new_app(admin::Admin {
            shared: shared.clone(),
        }));
        tasks.push(tokio::spawn(accept::serve_plain(
            l,
            app,
            shutdown_rx.clone(),
        )));
    }
    let mut endpoint = None;
    if let Some((sock, server)) = tunnel {
        let runtime = Arc::new(rpaas_tunnel::quinn::TokioRuntime);
        let ep =
            rpaas_tunnel::quinn::Endpoint::new(Default::default(), Some(server), sock, runtime)
                .map_err(|e| StartError::Internal(format!("tunnel: {e}")))?;
        let local = ep
            .local_addr()
            .map_err(|e| StartError::Internal(e.to_string()))?;
        tracing::info!(target: "rpaas::node", event = "listening", listener = "tunnel", address = %local, "tunnel listening");
        tasks.push(tokio::spawn(tunnel::serve(shared.clone(), ep.clone())));
        endpoint = Some(ep);
    }
    for (key, (instance, index, sock)) in relays.udp.into_iter().enumerate() {
        let sock = tokio::net::UdpSocket::from_std(sock)
            .map_err(|e| StartError::Internal(e.to_string()))?;
        let local = sock
            .local_addr()
            .map_err(|e| StartError::Internal(e.to_string()))?;
        tracing::info!(target: "rpaas::node", event = "listening", listener = "udp", instance = %instance, index, address = %local, "udp relay listening");
        tasks.push(tokio::spawn(relay::serve_udp(
            shared.clone(),
            instance,
            index,
            key,
            Arc::new(sock),
        )));
    }
    for (instance, index, l) in relays.tcp {
        let l = tokio::net::TcpListener::from_std(l)
            .map_err(|e| StartError::Internal(e.to_string()))?;
        let local = l
            .local_addr()
            .map_err(|e| StartError::Internal(e.to_string()))?;
        tracing::info!(target: "rpaas::node", event = "listening", listener = "tcp", instance = %instance, index, address = %local, "tcp relay listening");
        tasks.push(tokio::spawn(relay::serve_tcp(
            shared.clone(),
            instance,
            index,
            l,
        )));
    }
    {
        let shared = shared.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                tick.tick().await;
                let idle = shared
                    .snapshot
                    .load()
                    .config
                    .node
                    .tunnel
                    .as_ref()
                    .map_or(std::time::Duration::from_secs(120), |t| t.flow_idle);
                let per = shared.tunnels.sweep(idle);
                let snap = shared.snapshot.load();
                for i in &snap.instances {
                    let n = per.get(&i.cfg.id).copied().unwrap_or(0);
                    crate::metrics::set(&shared.metrics.udp_flows, &[i.cfg.id.as_str()], n as i64);
                }
            }
        }));
    }
    tracing::info!(
        target: "rpaas::node",
        event = "started",
        generation = snap.generation,
        instances = snap.instances.len(),
        "node started"
    );
    drop(snap);

    wait_for_signals(&shared).await;

    // Drain: stop accepting, let keep-alive connections close after their current request,
    // wake idle ones, and wait (bounded) for requests in flight.
    let drain = shared.snapshot.load().config.node.drain_timeout;
    tracing::info!(target: "rpaas::node", event = "draining", open = shared.active.load(Ordering::Acquire), "draining");
    let _ = shutdown_tx.send(true);
    for app in &apps {
        app.cleanup().await;
    }
    let waited = tokio::time::timeout(drain, async {
        loop {
            let notified = shared.idle.notified();
            if shared.active.load(Ordering::Acquire) == 0 {
                break;
            }
            notified.await;
        }
    })
    .await;
    if let Some(ep) = endpoint {
        ep.close(rpaas_tunnel::quinn::VarInt::from_u32(0), b"node stopping");
    }
    for t in tasks {
        t.abort();
    }
    tracing::info!(
        target: "rpaas::node",
        event = "stopped",
        clean = waited.is_ok(),
        open = shared.active.load(Ordering::Acquire),
        "node stopped"
    );
    logging::drain();
    Ok(())
}

async fn wait_for_signals(shared: &Arc<Shared>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut hup), Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!(target: "rpaas::node", "cannot install signal handlers");
        return;
    };
    loop {
        tokio::select! {
            _ = hup.recv() => {
                let shared = shared.clone();
                // Certificates are parsed and DNS may be consulted: keep it off the workers.
                let _ = tokio::task::spawn(async move { reload(&shared).await }).await;
            }
            _ = term.recv() => return,
            _ = int.recv() => return,
        }
    }
}

/// Re-reads the config and swaps it in, or logs why not and keeps the old one.
pub async fn reload(shared: &Arc<Shared>) -> Result<u64, String> {
    let _guard = shared.reload_lock.lock().await;
    let path = shared.config_path.clone();
    let current = shared.snapshot.load_full();
    let next_gen = current.generation + 1;
    let built = tokio::task::spawn_blocking(move || -> Result<Snapshot, String> {
        let config = rpaas_config::load(&path).map_err(|e| e.to_string())?;
        listeners_unchanged(&current.config, &config)?;
        Snapshot::build(config, next_gen, Some(&current)).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    match built {
        Ok(snap) => {
            let generation = snap.generation;
            let instances = snap.instances.len();
            shared.snapshot.store(Arc::new(snap));
            crate::metrics::inc(&shared.metrics.reloads, &["ok"]);
            publish_config_metrics(shared);
            tracing::info!(target: "rpaas::node", event = "reloaded", generation, instances, "config reloaded");
            Ok(generation)
        }
        Err(reason) => {
            crate::metrics::inc(&shared.metrics.reloads, &["rejected"]);
            tracing::error!(target: "rpaas::node", event = "reload_rejected", reason = %reason, "config reload rejected; the previous config keeps serving");
            Err(reason)
        }
    }
}

/// Listener sockets and TLS profiles are fixed for the life of the process; the client address
/// rules and trusted proxies of a listener may change.
fn listeners_unchanged(old: &Config, new: &Config) -> Result<(), String> {
    let shape = |c: &Config| {
        c.listeners
            .iter()
            .map(|l| (l.address, l.tls, l.http2))
            .collect::<Vec<_>>()
    };
    if shape(old) != shape(new) {
        return Err(format!(
            "{}: listener: adding, removing or changing a listener's address, tls or http2 needs a restart",
            new.source.display()
        ));
    }
    let relays = |c: &Config| {
        let mut v: Vec<(String, bool, std::net::SocketAddr)> = Vec::new();
        for i in &c.instances {
            v.extend(i.udp.iter().map(|u| (i.id.clone(), true, u.listen)));
            v.extend(i.tcp.iter().map(|t| (i.id.clone(), false, t.listen)));
        }
        (c.node.tunnel.clone(), v)
    };
    if relays(old) != relays(new) {
        return Err(format!(
            "{}: node.tunnel/instance udp/tcp: changing the tunnel or a relay's listen address needs a restart",
            new.source.display()
        ));
    }
    if old.node.admin != new.node.admin || old.node.log != new.node.log {
        return Err(format!(
            "{}: node.admin/node.log: changing these needs a restart",
            new.source.display()
        ));
    }
    Ok(())
}

fn publish_config_metrics(shared: &Shared) {
    let snap = shared.snapshot.load();
    shared.metrics.config_generation.set(snap.generation as i64);
    shared.metrics.instance_info.reset();
    for i in &snap.instances {
        crate::metrics::set(&shared.metrics.instance_info, &[i.cfg.id.as_str()], 1);
    }
}

/// Give tests and the admin endpoint a way to wait for idle.
pub fn open_connections(shared: &Shared) -> usize {
    shared.active.load(Ordering::Acquire)
}
