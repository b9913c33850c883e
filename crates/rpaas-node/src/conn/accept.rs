//! Our own accept loop in front of Pingora's HTTP engine. Pingora has no PROXY protocol and
//! cannot tell us which address a `:0` listener got, nor what a client offered when its TLS
//! handshake fails; owning the loop gives us all three. Per connection:
//!
//! 1. accept; read the PROXY header if the listener expects one *and* the peer is trusted;
//! 2. read the first TLS record and parse the ClientHello (SNI, offered versions) for logs;
//! 3. hand the bytes read to the buffered stream under TLS (`bufio.rs`) and run the OpenSSL
//!    handshake;
//! 4. hand the TLS stream to Pingora's `HttpProxy` for as many requests as it carries; on
//!    HTTP/1, the connection is parked between requests (no session, see [`serve_http1`]).

use std::any::Any;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use openssl::ssl::{NameType, SslAcceptor};
use pingora::apps::HttpPersistentSettings;
use pingora::apps::{HttpServerApp, ServerApp};
use pingora::listeners::TlsAccept;
use pingora::protocols::http::ServerSession;
use pingora::protocols::l4::socket::SocketAddr as PSocketAddr;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::tls::TlsRef;
use pingora::protocols::{GetSocketDigest, SocketDigest};
use pingora::server::ShutdownWatch;
use rpaas_config::{ClientIpSource, TlsProfile};
use rpaas_wire::client_hello::{self, ClientHelloInfo, Peeked};
use rpaas_wire::proxy::{self, ProxyHeader};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

use crate::conn::bufio::BufIo;
use crate::conn::scrub::Scrubbed;
use crate::state::Shared;

/// What the accept loop learned about a connection, carried to every request on it through
/// the TLS digest's extension slot.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The SNI the client sent (lowercase).
    pub sni: Option<String>,
    /// The TCP peer (the load balancer when a PROXY header was used).
    pub tcp_peer: SocketAddr,
    /// The client address after the PROXY header, if any.
    pub client: SocketAddr,
    pub listener: usize,
}

/// Why the prelude (PROXY header + ClientHello) could not be read.
#[derive(Debug, thiserror::Error)]
enum PreludeError {
    #[error("{0}")]
    Proxy(#[from] proxy::ProxyError),
    #[error("connection closed before the handshake")]
    Closed,
    #[error("read error: {0}")]
    Io(#[from] std::io::Error),
}

struct Prelude {
    proxied: Option<SocketAddr>,
    hello: Option<ClientHelloInfo>,
    not_tls: bool,
    /// What was read after the PROXY header: the handshake reads it first.
    read_ahead: Vec<u8>,
}

/// Reads the PROXY header (when `want_proxy`) and the first TLS record; what follows the
/// PROXY header is kept for the handshake.
async fn read_prelude(
    stream: &mut tokio::net::TcpStream,
    want_proxy: bool,
) -> Result<Prelude, PreludeError> {
    let mut buf: Vec<u8> = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    let mut proxied = None;
    let mut offset = 0usize;
    if want_proxy {
        loop {
            match proxy::parse(&buf)? {
                proxy::Parsed::Done { header, len } => {
                    if let ProxyHeader::Proxied { source, .. } = header {
                        proxied = Some(source);
                    }
                    offset = len;
                    break;
                }
                proxy::Parsed::Incomplete => {
                    let n = stream.read(&mut chunk).await?;
                    if n == 0 {
                        return Err(PreludeError::Closed);
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
            }
        }
    }
    let (hello, not_tls) = loop {
        match client_hello::peek(&buf[offset..]) {
            Peeked::NeedBytes(_) => {
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    return Err(PreludeError::Closed);
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            Peeked::Hello(h) => break (Some(h), false),
            Peeked::Malformed => break (None, false),
            Peeked::NotTls => break (None, true),
        }
    };
    buf.drain(..offset);
    Ok(Prelude {
        proxied,
        hello,
        not_tls,
        read_ahead: buf,
    })
}

/// Decrements the open-connection count when a connection ends, however it ends.
struct ConnGuard(Arc<Shared>);

impl ConnGuard {
    fn new(shared: Arc<Shared>) -> Self {
        shared.metrics.connections.inc();
        shared
            .active
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Self(shared)
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.metrics.connections.dec();
        if self
            .0
            .active
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel)
            == 1
        {
            self.0.idle.notify_waiters();
        }
    }
}

struct HandshakeCallbacks(ConnInfo);

#[async_trait]
impl TlsAccept for HandshakeCallbacks {
    async fn handshake_complete_callback(
        &self,
        ssl: &TlsRef,
    ) -> Option<Arc<dyn Any + Send + Sync>> {
        let mut info = self.0.clone();
        info.sni = ssl
            .servername(NameType::HOST_NAME)
            .map(|s| s.trim_end_matches('.').to_ascii_lowercase())
            .filter(|s| s.parse::<std::net::IpAddr>().is_err());
        Some(Arc::new(info))
    }
}

/// Accepts TLS connections on one listener until shutdown.
pub async fn serve_tls<A>(
    shared: Arc<Shared>,
    index: usize,
    listener: TcpListener,
    acceptor: Arc<ArcSwap<SslAcceptor>>,
    app: Arc<A>,
    mut shutdown: ShutdownWatch,
) where
    A: HttpServerApp + Send + Sync + 'static,
{
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => {
                if *shutdown.borrow() { break; }
                continue;
            }
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(target: "rpaas::accept", error = %e, "accept failed");
                // Out of file descriptors: back off instead of spinning.
                if e.raw_os_error() == Some(libc::EMFILE) || e.raw_os_error() == Some(libc::ENFILE)
                {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                continue;
            }
        };
        let shared = shared.clone();
        // The acceptor of the current config: a reload that changes the listener's TLS
        // profile applies to the next connection.
        let acceptor = acceptor.load_full();
        let app = app.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _guard = ConnGuard::new(shared.clone());
            handle_tls(shared, index, tcp, peer, &acceptor, app, shutdown).await;
        });
    }
}

async fn handle_tls<A>(
    shared: Arc<Shared>,
    index: usize,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: &SslAcceptor,
    app: Arc<A>,
    shutdown: ShutdownWatch,
) where
    A: HttpServerApp + Send + Sync + 'static,
{
    // The setup runs boxed, freed once the handshake is done: its futures (the prelude's 4 KiB
    // read chunk, OpenSSL's handshake state, the ACME store lookup) would otherwise size the
    // connection's task for as long as it lives, idle or not.
    let Some(Established {
        client,
        h2,
        header_timeout,
        keepalive,
    }) = Box::pin(establish(&shared, index, tcp, peer, acceptor)).await
    else {
        return;
    };
    if h2 {
        let stream: pingora::protocols::Stream = Box::new(client);
        let _ = app.process_new(stream, &shutdown).await;
        return;
    }
    let client = Box::new(client.with_head_deadline(header_timeout));
    serve_http1(&shared, &app, client, keepalive, shutdown).await;
}

/// A connection past its TLS handshake.
struct Established {
    client: Scrubbed,
    h2: bool,
    header_timeout: Duration,
    keepalive: Duration,
}

/// Steps 1-3: the PROXY header, the ClientHello and the handshake (or the answer to an ACME
/// validation); `None` when the connection ends there.
async fn establish(
    shared: &Shared,
    index: usize,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: &SslAcceptor,
) -> Option<Established> {
    let snap = shared.snapshot.load_full();
    let lcfg = snap.config().listeners.get(index)?;
    let profile = lcfg.tls;
    let want_proxy = lcfg.client_ip == ClientIpSource::ProxyProtocol && lcfg.trusts(peer.ip());
    let timeout = snap.config().node.handshake_timeout;
    let header_timeout = snap.config().node.header_timeout;
    let keepalive = snap.config().node.keepalive_timeout;
    drop(snap);

    let _ = tcp.set_nodelay(true);
    let fd = tcp.as_raw_fd();
    let local = tcp.local_addr().ok();
    let mut tcp = tcp;

    let mut prelude = match tokio::time::timeout(timeout, read_prelude(&mut tcp, want_proxy)).await
    {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            handshake_failed(shared, profile, peer, peer, None, "prelude", &e.to_string());
            return None;
        }
        Err(_) => {
            handshake_failed(
                shared,
                profile,
                peer,
                peer,
                None,
                "timeout",
                "no ClientHello in time",
            );
            return None;
        }
    };
    let client = prelude.proxied.unwrap_or(peer);
    let digest = SocketDigest::from_raw_fd(fd);
    let _ = digest.peer_addr.set(Some(PSocketAddr::Inet(client)));
    let _ = digest.local_addr.set(local.map(PSocketAddr::Inet));
    let stream = BufIo::new(tcp, digest, std::mem::take(&mut prelude.read_ahead));

    if prelude.not_tls {
        handshake_failed(
            shared,
            profile,
            client,
            peer,
            None,
            "not_tls",
            "the client did not start a TLS handshake",
        );
        return None;
    }
    // An ACME TLS-ALPN-01 validation: answered with the challenge certificate, then closed
    // (RFC 8737: nothing is served on such a connection).
    if let (Some(acme), Some(hello)) = (&shared.acme, &prelude.hello) {
        if hello.offers_alpn(crate::tls::ACME_TLS_ALPN) {
            answer_tls_alpn01(acme, hello, stream, timeout).await;
            return None;
        }
    }
    let callbacks = HandshakeCallbacks(ConnInfo {
        sni: None,
        tcp_peer: peer,
        client,
        listener: index,
    });
    let hs = tokio::time::timeout(
        timeout,
        pingora::protocols::tls::server::handshake_with_callback(acceptor, stream, &callbacks),
    )
    .await;
    let tls = match hs {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let reason = e
                .root_cause()
                .to_string()
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            handshake_failed(
                shared,
                profile,
                client,
                peer,
                prelude.hello.as_ref(),
                "handshake",
                &reason,
            );
            return None;
        }
        Err(_) => {
            handshake_failed(
                shared,
                profile,
                client,
                peer,
                prelude.hello.as_ref(),
                "timeout",
                "handshake took too long",
            );
            return None;
        }
    };
    crate::metrics::inc(
        &shared.metrics.tls_handshakes,
        &[profile.as_str(), tls.ssl().version_str()],
    );
    if tls.ssl().session_reused() {
        crate::metrics::inc(
            &shared.metrics.tls_resumptions,
            &[profile.as_str(), tls.ssl().version_str()],
        );
    }
    let h2 = tls.ssl().selected_alpn_protocol() == Some(b"h2");
    Some(Established {
        client: Scrubbed::new(tls),
        h2,
        header_timeout,
        keepalive,
    })
}

/// Answers an ACME TLS-ALPN-01 validation connection.
async fn answer_tls_alpn01(
    acme: &crate::acme::Acme,
    hello: &ClientHelloInfo,
    stream: BufIo,
    timeout: Duration,
) {
    // A challenge another node of the fleet placed: fetched from the store into this
    // node's table, where the handshake callback finds it (bounded lookups).
    if let Some(sni) = &hello.sni {
        let _ = acme.challenges.tls_alpn01_shared(sni).await;
    }
    let done = tokio::time::timeout(
        timeout,
        pingora::protocols::tls::server::handshake(&acme.acceptor, stream),
    )
    .await;
    let ok = matches!(done, Ok(Ok(_)));
    tracing::info!(target: "rpaas::acme", event = "tls_alpn_validation", sni = %hello.sni.as_deref().unwrap_or(""), answered = ok, "TLS-ALPN-01 validation");
}

/// Serves an HTTP/1 connection request after request, parked between them: Pingora's own
/// loop (`ServerApp::process_new`) keeps a session waiting for the next request head, its
/// future (~12 KiB) and header buffer (4 KiB) held for as long as an agent's connection idles;
/// here the connection waits for the next request's first byte with nothing but its TLS state,
/// and a session is made when the byte arrives. The first request's wait is bounded by the
/// head deadline ([`Scrubbed::with_head_deadline`]), later ones by `node.keepalive_timeout`
/// (the timeout the proxy gives Pingora); shutdown closes parked connections at once. The
/// rest is Pingora's loop: the same keep-alive and reuse settings carried from session to
/// session (pipelining stays off, so no request bytes are left in a finished session).
async fn serve_http1<A>(
    shared: &Shared,
    app: &Arc<A>,
    mut client: Box<Scrubbed>,
    keepalive: Duration,
    mut shutdown: ShutdownWatch,
) where
    A: HttpServerApp + Send + Sync + 'static,
{
    let mut settings = None;
    let mut wait = None;
    loop {
        let counted = Counted::new(&shared.metrics.idle_connections);
        let parked = park(&mut client, wait, &mut shutdown).await;
        drop(counted);
        if !parked {
            return;
        }
        let Some((c, next)) = Box::pin(serve_one(app, client, settings.take(), &shutdown)).await
        else {
            return;
        };
        client = c;
        settings = next;
        wait = Some(keepalive);
    }
}

/// One request in a new session; the connection and its settings back if it stays open.
/// Boxed by the caller: the session (~700 bytes) would otherwise stay in the connection's
/// task while it is parked.
async fn serve_one<A>(
    app: &Arc<A>,
    client: Box<Scrubbed>,
    settings: Option<HttpPersistentSettings>,
    shutdown: &ShutdownWatch,
) -> Option<(Box<Scrubbed>, Option<HttpPersistentSettings>)>
where
    A: HttpServerApp + Send + Sync + 'static,
{
    let limit = app.server_options().and_then(|o| o.keepalive_request_limit);
    let reused = app
        .process_new_http(new_session(client, settings, limit), shutdown)
        .await?;
    let (stream, next) = reused.consume();
    let client = stream.into_any().downcast::<Scrubbed>().ok()?;
    Some((client, next))
}

/// The session for the next request on a connection.
fn new_session(
    client: Box<Scrubbed>,
    settings: Option<HttpPersistentSettings>,
    reuse_limit: Option<u32>,
) -> ServerSession {
    let mut session = ServerSession::new_http1(client);
    match settings {
        Some(s) => s.apply_to_session(&mut session),
        None => {
            // As Pingora's loop starts a connection (the proxy sets the configured keep-alive
            // on every response).
            session.set_keepalive(Some(60));
            session.set_keepalive_reuses_remaining(reuse_limit);
        }
    }
    session
}

/// Counts itself in a gauge for as long as it lives (whether the future holding it completes
/// or is dropped).
struct Counted<'a>(&'a prometheus::IntGauge);

impl<'a> Counted<'a> {
    fn new(gauge: &'a prometheus::IntGauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Waits for the client's next byte: false if it closed, failed, timed out (`wait`, positive:
/// the config refuses a zero timeout) or the node is shutting down.
async fn park(client: &mut Scrubbed, wait: Option<Duration>, shutdown: &mut ShutdownWatch) -> bool {
    if *shutdown.borrow() {
        return false;
    }
    let byte = std::future::poll_fn(|cx| client.poll_park(cx));
    let limit = async {
        match wait {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        r = byte => matches!(r, Ok(true)),
        _ = limit => false,
        _ = shutdown.changed() => false,
    }
}

fn handshake_failed(
    shared: &Shared,
    profile: TlsProfile,
    client: SocketAddr,
    peer: SocketAddr,
    hello: Option<&ClientHelloInfo>,
    stage: &'static str,
    reason: &str,
) {
    let reason_label = classify_failure(stage, hello, profile, reason);
    crate::metrics::inc(
        &shared.metrics.tls_failures,
        &[profile.as_str(), reason_label],
    );
    let offered = hello
        .map(|h| h.version_names().join(","))
        .unwrap_or_default();
    let sni = hello.and_then(|h| h.sni.clone()).unwrap_or_default();
    tracing::warn!(
        target: "rpaas::tls",
        event = "tls_handshake_failed",
        client_ip = %client.ip(),
        peer = %peer,
        sni = %sni,
        offered = %offered,
        profile = profile.as_str(),
        reason = reason_label,
        detail = %reason,
        "TLS handshake failed"
    );
}

/// A stable label for the metrics: an old agent refused by version is the case operators
/// look for, so it gets its own reason.
fn classify_failure(
    stage: &'static str,
    hello: Option<&ClientHelloInfo>,
    profile: TlsProfile,
    detail: &str,
) -> &'static str {
    if stage != "handshake" {
        return stage;
    }
    if let Some(h) = hello {
        let best = h.versions.iter().copied().max().unwrap_or(0);
        let min = match profile {
            TlsProfile::Modern => 0x0304,
            TlsProfile::Intermediate => 0x0303,
            TlsProfile::Legacy => 0x0301,
        };
        if best < min {
            return "protocol_version";
        }
    }
    if detail.contains("unrecognized name") || detail.contains("callback failed") {
        return "unknown_sni";
    }
    "handshake"
}

/// Serves plain HTTP (the admin endpoint) until shutdown.
pub async fn serve_plain<A>(listener: TcpListener, app: Arc<A>, mut shutdown: ShutdownWatch)
where
    A: ServerApp + Send + Sync + 'static,
{
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => {
                if *shutdown.borrow() { break; }
                continue;
            }
        };
        let Ok((tcp, peer)) = accepted else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let app = app.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let fd = tcp.as_raw_fd();
            let local = tcp.local_addr().ok();
            let mut stream = L4Stream::from(tcp);
            let digest = SocketDigest::from_raw_fd(fd);
            let _ = digest.peer_addr.set(Some(PSocketAddr::Inet(peer)));
            let _ = digest.local_addr.set(local.map(PSocketAddr::Inet));
            stream.set_socket_digest(digest);
            let mut next = app.process_new(Box::new(stream), &shutdown).await;
            while let Some(s) = next {
                next = app.process_new(s, &shutdown).await;
            }
        });
    }
}
