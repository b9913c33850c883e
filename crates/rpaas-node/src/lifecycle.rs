//! A node's life: start (bind everything first, so a busy port is reported at once), run the
//! listeners, reload on SIGHUP (validate everything, bind what is new, then swap; a bad config
//! keeps the old one serving), drain on SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use openssl::ssl::SslAcceptor;
use pingora::apps::http_app::HttpServer;
use pingora::apps::{HttpServerOptions, ServerApp};
use pingora::server::configuration::ServerConf;
use rpaas_config::{Config, ConfigError, ConfigErrors};
use tokio::sync::{watch, Mutex, Notify};

use crate::certs::CertStore;
use crate::control::Source;
use crate::metrics::Metrics;
use crate::relay::RelaySet;
use crate::snapshot::Snapshot;
use crate::state::Shared;

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
    #[error("{0}")]
    Logging(#[from] crate::logging::LogInitError),
    #[error("cannot start: {what}: {source}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("listener[{listener}] TLS: {source}")]
    Tls {
        listener: usize,
        source: openssl::error::ErrorStack,
    },
    #[error("cannot start: metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> StartError {
    move |source| StartError::Io { what, source }
}

/// What `rpaas check` reports about a valid config.
#[derive(Debug)]
pub struct CheckSummary {
    pub listeners: usize,
    pub instances: usize,
    pub self_signed: Vec<String>,
}

fn cert_errors(config: &Config, errs: Vec<crate::certs::CertProblem>) -> ConfigErrors {
    ConfigErrors(
        errs.into_iter()
            .map(|(i, field, reason)| match config.instances.get(i) {
                Some(inst) => ConfigError::new(&inst.source, inst.key(&field), reason),
                None => ConfigError::new(&config.source, field, reason),
            })
            .collect(),
    )
}

/// Everything a node would check before serving `config`: certificate files and keys,
/// upstream CA files and names, every listener's TLS profile, the tunnel's certificate.
pub fn verify(config: Config) -> Result<CheckSummary, ConfigErrors> {
    let certs = Arc::new(CertStore::default());
    let prepared = certs
        .prepare(&config.instances)
        .map_err(|e| cert_errors(&config, e))?;
    let self_signed = config
        .instances
        .iter()
        .filter(|i| i.cert == rpaas_config::CertSource::SelfSigned)
        .map(|i| i.id.clone())
        .collect();
    certs.commit(prepared);
    let mut errors = Vec::new();
    for inst in &config.instances {
        if inst.upstream.literal().is_none() {
            if let Err(reason) =
                crate::upstream::resolve_blocking(&inst.upstream.host, inst.upstream.port)
            {
                errors.push(ConfigError::new(
                    &inst.source,
                    inst.key("upstream"),
                    reason.to_string(),
                ));
            }
        }
    }
    if let Err((key, reason)) = crate::acme::check(&config) {
        errors.push(ConfigError::new(&config.source, key, reason));
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    let path = config.source.clone();
    let snapshot = Arc::new(ArcSwap::from_pointee(Snapshot::build(config, 0, None)?));
    let snap = snapshot.load_full();
    // The check builds the acceptors as a start would, with keys of its own.
    let resumption = Arc::new(rpaas_tls_session::Resumption::new(
        rpaas_tls_session::Secret::random()
            .map_err(|e| ConfigError::new(&path, "node", e.to_string()))?,
        rpaas_tls_session::DEFAULT_ROTATION,
    ));
    for (i, l) in snap.config().listeners.iter().enumerate() {
        crate::tls::acceptor(l, i, snapshot.clone(), certs.clone(), resumption.clone())
            .map_err(|e| ConfigError::new(&path, format!("listener[{i}].tls"), e.to_string()))?;
    }
    if let Some(t) = &snap.config().node.tunnel {
        tunnel_server_config(&path, t)?;
    }
    Ok(CheckSummary {
        listeners: snap.config().listeners.len(),
        instances: snap.instances.len(),
        self_signed,
    })
}

/// A running node: shared state plus what only reloads touch.
pub(crate) struct Node {
    pub(crate) shared: Arc<Shared>,
    pub(crate) source: Source,
    relays: RelaySet,
    /// Per listener, its acceptor (rebuilt when a reload changes the TLS profile).
    acceptors: Vec<Arc<ArcSwap<SslAcceptor>>>,
}

/// Runs a node until SIGTERM/SIGINT, then drains.
pub fn serve(path: &Path) -> Result<(), StartError> {
    // The files alone first: they say where the logs go, how many workers, and the store.
    let file_config = rpaas_config::load(path)?;
    crate::logging::init(&file_config.node.log)?;
    let threads = file_config.node.threads;
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
    .map_err(io("runtime"))?;
    rt.block_on(async move {
        let store = match &file_config.control {
            // A PostgreSQL that is down does not stop the node: it serves its cached snapshot.
            Some(c) => Some(
                rpaas_control::Store::open_lazy(&c.store)
                    .await
                    .map_err(|e| {
                        StartError::Config(
                            ConfigError::new(path, "control.store", e.to_string()).into(),
                        )
                    })?,
            ),
            None => None,
        };
        let source = Source {
            path: path.to_path_buf(),
            store,
            cache: file_config.control.as_ref().and_then(|c| c.cache.clone()),
        };
        let (config, revision) = source.load().await?;
        boot(config, revision, source).await
    })
}

/// Binds everything for `config` (so a busy port is reported at once), then runs.
async fn boot(config: Config, revision: i64, source: Source) -> Result<(), StartError> {
    let path = source.path.clone();
    let path = path.as_path();
    let certs = Arc::new(CertStore::default());
    let prepared = certs
        .prepare(&config.instances)
        .map_err(|e| cert_errors(&config, e))?;
    certs.commit(prepared);
    crate::acme::check(&config)
        .map_err(|(key, reason)| StartError::Config(ConfigError::new(path, key, reason).into()))?;
    let acme = crate::acme::Acme::new(&config, certs.clone(), source.store.clone())
        .map_err(|(key, reason)| StartError::Config(ConfigError::new(path, key, reason).into()))?
        .map(Arc::new);
    let relays = RelaySet::default();
    let relay_sockets = relays.prepare(&config)?;
    let snap = Snapshot::build(config, 1, None)?;
    let node_cfg = &snap.config().node;
    if let Some(crs) = &node_cfg.ips.crs {
        for (pl, report) in crs.reports() {
            let not_run: Vec<String> = report
                .unsupported
                .iter()
                .map(|u| format!("{} ({})", u.rule_id, u.reason))
                .collect();
            tracing::info!(target: "rpaas::ips", event = "crs_loaded", dir = %crs.dir.display(), paranoia = pl, not_run = %not_run.join("; "), response_phase_not_run = report.response_phase.len(), "OWASP CRS loaded");
        }
    }

    let mut listeners = Vec::new();
    for (i, l) in snap.config().listeners.iter().enumerate() {
        listeners.push(bind(path, &format!("listener[{i}].address"), l.address)?);
    }
    let admin = match node_cfg.admin {
        Some(a) => Some(bind(path, "node.admin", a)?),
        None => None,
    };
    let mut http = Vec::new();
    for (i, l) in snap.config().http_listeners.iter().enumerate() {
        http.push(bind(
            path,
            &format!("listener[{i}].address (tls = \"none\")"),
            l.address,
        )?);
    }
    let plain = Plain { admin, http };
    let api = match &snap.config().control {
        Some(c) => Some(
            rpaas_control::ApiServer::bind(
                c.listen,
                c.cert.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
            )
            .map_err(|reason| {
                StartError::Config(
                    ConfigError::new(path, "control.listen", reason.to_string()).into(),
                )
            })?,
        ),
        None => None,
    };
    if let Some(api) = &api {
        // Bound (connections queue) before `started`, so whoever waits for it can connect.
        tracing::info!(target: "rpaas::node", event = "listening", listener = "control", address = %api.local, "control API listening");
    }
    let tunnel = match &node_cfg.tunnel {
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

    let metrics = Metrics::new()?;
    let tracked = node_cfg.limits.max_tracked;
    let (telemetry, events) = match (&source.store, &snap.config().control) {
        (Some(store), Some(c)) => {
            let (t, rx) = crate::telemetry::Telemetry::new();
            (
                Some(t),
                Some((
                    rx,
                    store.clone(),
                    c.node_id.clone(),
                    (c.retention, c.audit_retention),
                )),
            )
        }
        _ => (None, None),
    };
    let resumption = crate::tickets::resumption(
        snap.config().spec.node.data_dir.as_deref(),
        source.store.as_ref(),
    )
    .await;
    let shared = Arc::new(Shared {
        limiter: rpaas_ips::limits::Limiter::new(tracked),
        tunnels: crate::tunnel::Tunnels::default(),
        bans: rpaas_ips::limits::Bans::new(tracked),
        snapshot: Arc::new(ArcSwap::from_pointee(snap)),
        certs,
        metrics,
        active: AtomicUsize::new(0),
        idle: Notify::new(),
        resolve_now: Notify::new(),
        config_path: path.to_path_buf(),
        reload_lock: Mutex::new(()),
        applied_revision: std::sync::atomic::AtomicI64::new(revision),
        telemetry,
        ban_outbox: Default::default(),
        acme,
        resumption,
    });
    if let Some(a) = &shared.acme {
        a.sync(shared.snapshot.load().config());
        a.manager.start();
    }
    publish_config_metrics(&shared);
    if let Some((rx, store, node_id, retention)) = events {
        tokio::spawn(crate::telemetry::run(rx, store, node_id, retention));
    }
    run(
        shared,
        source,
        listeners,
        plain,
        api,
        relays,
        relay_sockets,
        tunnel,
    )
    .await
}

fn tunnel_server_config(
    path: &Path,
    t: &rpaas_config::TunnelNode,
) -> Result<rpaas_tunnel::quinn::ServerConfig, ConfigErrors> {
    let err = |key: &str, reason: String| ConfigErrors::from(ConfigError::new(path, key, reason));
    let chain = rpaas_tunnel::tls::load_certs(&t.cert)
        .map_err(|e| err("node.tunnel_cert", e.to_string()))?;
    let key =
        rpaas_tunnel::tls::load_key(&t.key).map_err(|e| err("node.tunnel_key", e.to_string()))?;
    rpaas_tunnel::tls::server_config(chain, key).map_err(|e| err("node.tunnel_cert", e.to_string()))
}

fn bind(path: &Path, key: &str, addr: SocketAddr) -> Result<std::net::TcpListener, StartError> {
    let l = std::net::TcpListener::bind(addr)
        .and_then(|l| l.set_nonblocking(true).map(|_| l))
        .map_err(|source| StartError::Bind {
            file: path.to_path_buf(),
            key: key.to_string(),
            addr,
            source,
        })?;
    Ok(l)
}

/// Logs where a socket listens (tests read the bound `:0` ports from these lines).
fn listening(
    std_l: std::net::TcpListener,
    what: &str,
) -> Result<tokio::net::TcpListener, StartError> {
    let l = tokio::net::TcpListener::from_std(std_l).map_err(io("listener"))?;
    let local = l.local_addr().map_err(io("local address"))?;
    tracing::info!(target: "rpaas::node", event = "listening", listener = what, address = %local, "listening");
    Ok(l)
}

/// The plain-HTTP listeners: the admin endpoint and the `tls = "none"` ones.
struct Plain {
    admin: Option<std::net::TcpListener>,
    http: Vec<std::net::TcpListener>,
}

#[allow(clippy::too_many_arguments)]
async fn run(
    shared: Arc<Shared>,
    source: Source,
    listeners: Vec<std::net::TcpListener>,
    plain: Plain,
    api: Option<rpaas_control::ApiServer>,
    relays: RelaySet,
    relay_sockets: crate::relay::Prepared,
    tunnel: Option<(std::net::UdpSocket, rpaas_tunnel::quinn::ServerConfig)>,
) -> Result<(), StartError> {
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let snap = shared.snapshot.load_full();
    let conf = Arc::new(ServerConf {
        threads: snap.config().node.threads,
        ..Default::default()
    });

    let mut apps: Vec<Arc<pingora::proxy::HttpProxy<crate::proxy::Proxy>>> = Vec::new();
    let mut acceptors = Vec::new();
    let mut tasks = Vec::new();
    for (i, std_l) in listeners.into_iter().enumerate() {
        let Some(lcfg) = snap.config().listeners.get(i) else {
            continue;
        };
        let acceptor = crate::tls::acceptor(
            lcfg,
            i,
            shared.snapshot.clone(),
            shared.certs.clone(),
            shared.resumption.clone(),
        )
        .map_err(|source| StartError::Tls {
            listener: i,
            source,
        })?;
        let acceptor = Arc::new(ArcSwap::from_pointee(acceptor));
        acceptors.push(acceptor.clone());
        let mut proxy = pingora::proxy::http_proxy(
            &conf,
            crate::proxy::Proxy {
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
        let l = tokio::net::TcpListener::from_std(std_l).map_err(io("listener"))?;
        let local = l.local_addr().map_err(io("local address"))?;
        tracing::info!(
            target: "rpaas::node",
            event = "listening",
            listener = i,
            address = %local,
            tls = lcfg.tls.as_str(),
            "listening"
        );
        tasks.push(tokio::spawn(crate::conn::accept::serve_tls(
            shared.clone(),
            i,
            l,
            acceptor,
            app,
            shutdown_rx.clone(),
        )));
    }
    for std_l in plain.http {
        let l = listening(std_l, "http")?;
        let app = Arc::new(HttpServer::new_app(crate::http01::Http01 {
            shared: shared.clone(),
        }));
        tasks.push(tokio::spawn(crate::conn::accept::serve_plain(
            l,
            app,
            shutdown_rx.clone(),
        )));
    }
    if let Some(std_l) = plain.admin {
        let l = listening(std_l, "admin")?;
        let app = Arc::new(HttpServer::new_app(crate::admin::Admin {
            shared: shared.clone(),
        }));
        tasks.push(tokio::spawn(crate::conn::accept::serve_plain(
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
                .map_err(io("tunnel"))?;
        let local = ep.local_addr().map_err(io("local address"))?;
        tracing::info!(target: "rpaas::node", event = "listening", listener = "tunnel", address = %local, "tunnel listening");
        tasks.push(tokio::spawn(crate::tunnel::serve(
            shared.clone(),
            ep.clone(),
        )));
        endpoint = Some(ep);
    }
    relays.commit(&shared, relay_sockets);
    tasks.push(tokio::spawn(sweep_flows(shared.clone())));
    tasks.push(tokio::spawn(resolve_upstreams(shared.clone())));
    tasks.push(tokio::spawn(crate::conn::scrub::trim_released_memory()));
    tracing::info!(
        target: "rpaas::node",
        event = "started",
        generation = snap.generation,
        instances = snap.instances.len(),
        "node started"
    );
    drop(snap);

    let store = source.store.clone();
    let node = Arc::new(Node {
        shared: shared.clone(),
        source,
        relays,
        acceptors,
    });
    if let Some(store) = &store {
        tasks.push(tokio::spawn(crate::fleet::run(node.clone(), store.clone())));
    }
    if let (Some(api), Some(store)) = (api, store) {
        let settings = {
            let snap = shared.snapshot.load();
            let c = snap.config().control.as_ref();
            rpaas_control::Settings {
                base_domain: c.and_then(|c| c.base_domain.clone()),
                acme: snap.config().spec.acme.is_some(),
                retention: c.map_or(Duration::from_secs(7 * 86_400), |c| c.retention),
            }
        };
        let control = rpaas_control::Control::new(
            store,
            Arc::new(crate::control::Hooks { node: node.clone() }),
            settings,
        );
        let secure = shared
            .snapshot
            .load()
            .config()
            .control
            .as_ref()
            .is_some_and(|c| c.cert.is_some());
        let v1 = rpaas_control::router(control.clone());
        let app = v1
            .clone()
            .merge(rpaas_dashboard::router(control, v1, secure));
        tasks.push(tokio::spawn(rpaas_control::serve(api, app)));
        tasks.push(tokio::spawn(poll_store(node.clone())));
    }
    wait_for_signals(&node).await;

    // Drain: stop accepting, let keep-alive connections close after their current request,
    // wake idle ones, and wait (bounded) for requests in flight.
    let drain = shared.snapshot.load().config().node.drain_timeout;
    tracing::info!(target: "rpaas::node", event = "draining", open = shared.open_connections(), "draining");
    let _ = shutdown_tx.send(true);
    for app in &apps {
        app.cleanup().await;
    }
    let waited = tokio::time::timeout(drain, async {
        loop {
            let notified = shared.idle.notified();
            if shared.open_connections() == 0 {
                break;
            }
            notified.await;
        }
    })
    .await;
    if let Some(ep) = endpoint {
        ep.close(rpaas_tunnel::quinn::VarInt::from_u32(0), b"node stopping");
    }
    node.relays.stop_all();
    for t in tasks {
        t.abort();
    }
    tracing::info!(
        target: "rpaas::node",
        event = "stopped",
        clean = waited.is_ok(),
        open = shared.open_connections(),
        "node stopped"
    );
    crate::logging::drain();
    Ok(())
}

/// Forgets idle UDP flows and publishes the flow counts.
async fn sweep_flows(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        let idle = shared
            .snapshot
            .load()
            .config()
            .node
            .tunnel
            .as_ref()
            .map_or(Duration::from_secs(120), |t| t.flow_idle);
        let per = shared.tunnels.sweep(idle);
        let snap = shared.snapshot.load();
        for i in &snap.instances {
            let n = per.get(&i.cfg.id).copied().unwrap_or(0);
            crate::metrics::set(&shared.metrics.udp_flows, &[i.cfg.id.as_str()], n as i64);
        }
    }
}

/// Resolves upstream names again every `resolve_interval`, and soon after a failed connect.
async fn resolve_upstreams(shared: Arc<Shared>) {
    loop {
        let every = shared.snapshot.load().config().node.resolve_interval;
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shared.resolve_now.notified() => {
                // Several failures in a burst: one lookup.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        let snap = shared.snapshot.load_full();
        for inst in &snap.instances {
            match inst.upstream.refresh().await {
                Ok(Some(addr)) => tracing::info!(
                    target: "rpaas::upstream",
                    event = "upstream_resolved",
                    instance = %inst.cfg.id,
                    address = %addr,
                    "upstream address changed"
                ),
                Ok(None) => {}
                Err(reason) => tracing::warn!(
                    target: "rpaas::upstream",
                    event = "upstream_unresolved",
                    instance = %inst.cfg.id,
                    reason = %reason,
                    "upstream name does not resolve; keeping the last address"
                ),
            }
        }
    }
}

async fn wait_for_signals(node: &Arc<Node>) {
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
                let node = node.clone();
                // Certificates are parsed and DNS may be consulted: keep it off the workers.
                let _ = tokio::task::spawn(async move { node.reload().await }).await;
            }
            _ = term.recv() => return,
            _ = int.recv() => return,
        }
    }
}

/// Why a reload was refused (the running config keeps serving).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The new config (files and store) does not compile, or its certificates, relays or
    /// upstreams do not load; every error has its field.
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    /// The change touches something only a restart can change.
    #[error("{}: {field}: {what} needs a restart", file.display())]
    NeedsRestart {
        file: std::path::PathBuf,
        field: &'static str,
        what: &'static str,
    },
    /// The staging task died (a bug, reported rather than swallowed).
    #[error("the reload task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A config checked and bound, not yet swapped in.
struct Staged {
    snap: Snapshot,
    certs: std::collections::HashMap<String, crate::certs::CertEntry>,
    relays: crate::relay::Prepared,
    revision: i64,
}

impl Node {
    /// Re-reads the config (files and store) and swaps it in, or logs why not and keeps the
    /// old one.
    pub(crate) async fn reload(self: &Arc<Self>) -> Result<u64, ReloadError> {
        let shared = &self.shared;
        let _guard = shared.reload_lock.lock().await;
        let current = shared.snapshot.load_full();
        let next_gen = current.generation + 1;
        let loaded = self.source.load().await.map_err(ReloadError::from);
        let me = self.clone();
        let staged = match loaded {
            Err(e) => Err(e),
            Ok((config, revision)) => {
                tokio::task::spawn_blocking(move || -> Result<Staged, ReloadError> {
                    restart_only_unchanged(current.config(), &config)?;
                    let certs = me
                        .shared
                        .certs
                        .prepare(&config.instances)
                        .map_err(|e| cert_errors(&config, e))?;
                    let relays = me.relays.prepare(&config)?;
                    let snap = Snapshot::build(config, next_gen, Some(&current))?;
                    Ok(Staged {
                        snap,
                        certs,
                        relays,
                        revision,
                    })
                })
                .await
                .map_err(ReloadError::from)
                .and_then(|r| r)
            }
        };
        match staged {
            Ok(s) => {
                let generation = s.snap.generation;
                let instances = s.snap.instances.len();
                // Certificates first: a handshake that sees the new snapshot finds them.
                shared.certs.commit(s.certs);
                let old = shared.snapshot.swap(Arc::new(s.snap));
                self.relays.commit(shared, s.relays);
                self.rebuild_acceptors(&old);
                if let Some(a) = &shared.acme {
                    a.sync(shared.snapshot.load().config());
                }
                shared
                    .applied_revision
                    .store(s.revision, std::sync::atomic::Ordering::Release);
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

    /// Listeners whose TLS profile or HTTP/2 setting changed get a new acceptor; connections
    /// already open keep theirs.
    fn rebuild_acceptors(&self, old: &Snapshot) {
        let snap = self.shared.snapshot.load_full();
        for (i, l) in snap.config().listeners.iter().enumerate() {
            let same = old
                .config()
                .listeners
                .get(i)
                .is_some_and(|o| o.tls == l.tls && o.http2 == l.http2);
            let Some(slot) = self.acceptors.get(i) else {
                continue;
            };
            if same {
                continue;
            }
            match crate::tls::acceptor(
                l,
                i,
                self.shared.snapshot.clone(),
                self.shared.certs.clone(),
                self.shared.resumption.clone(),
            ) {
                Ok(a) => slot.store(Arc::new(a)),
                Err(e) => {
                    tracing::error!(target: "rpaas::node", listener = i, error = %e, "cannot build the new TLS profile; the old one stays")
                }
            }
        }
    }
}

/// Reloads when the store holds a revision this node does not serve (a change made through
/// another node, a missed notification, or the store coming back).
async fn poll_store(node: Arc<Node>) {
    loop {
        let every = node
            .shared
            .snapshot
            .load()
            .config()
            .control
            .as_ref()
            .map_or(Duration::from_secs(5), |c| c.poll_interval);
        tokio::time::sleep(every).await;
        let Some(store) = &node.source.store else {
            return;
        };
        match store.revision().await {
            Ok(r)
                if r != node
                    .shared
                    .applied_revision
                    .load(std::sync::atomic::Ordering::Acquire) =>
            {
                let _ = node.reload().await;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(target: "rpaas::control", error = %e, "the control store is unavailable; serving the last config")
            }
        }
    }
}

/// What only a restart can change: the listeners' addresses, the admin endpoint, the log
/// target and the tunnel's address. TLS profiles, HTTP/2, client address rules, instances,
/// relays, certificates and everything else reload.
fn restart_only_unchanged(old: &Config, new: &Config) -> Result<(), ReloadError> {
    let restart = |field, what| ReloadError::NeedsRestart {
        file: new.source.clone(),
        field,
        what,
    };
    let addrs = |c: &Config| c.listeners.iter().map(|l| l.address).collect::<Vec<_>>();
    if addrs(old) != addrs(new) {
        return Err(restart("listener", "adding, removing or moving a listener"));
    }
    if old.http_listeners != new.http_listeners {
        return Err(restart(
            "listener",
            "adding, removing or moving a tls = \"none\" listener",
        ));
    }
    let tunnel_addr = |c: &Config| c.node.tunnel.as_ref().map(|t| t.address);
    if tunnel_addr(old) != tunnel_addr(new) {
        return Err(restart("node.tunnel", "changing the tunnel's address"));
    }
    if old.node.admin != new.node.admin || old.node.log != new.node.log {
        return Err(restart("node.admin/node.log", "changing these"));
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
