//! The I/O: one request per fresh connection (TLS via OpenSSL, certificate not verified: this
//! is an inspection, not a trust decision), restricted handshakes, connect-only port probes
//! and one small UDP datagram. Every operation has a timeout and a byte limit; nothing here
//! follows redirects, retries, or sends a body.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

use crate::error::ProbeError;
use crate::judge::{Outcome, Response};
use crate::ports::{PortState, UdpState};
use crate::tls::Handshake;

/// Body bytes kept per response; the rest is not read.
pub const BODY_LIMIT: usize = 64 * 1024;
/// Largest response head accepted.
const HEAD_LIMIT: u64 = 32 * 1024;
/// Concurrent port connects.
const PORT_CONCURRENCY: usize = 8;
pub const USER_AGENT: &str = concat!("rpaas-audit/", env!("CARGO_PKG_VERSION"));
/// The UDP datagram: short, printable, meaningless to any protocol.
const UDP_PING: &[u8] = b"rpaas-audit probe\n";

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Versions and suites a connection offers.
#[derive(Debug, Clone, Copy)]
pub struct Offer {
    pub min: SslVersion,
    pub max: Option<SslVersion>,
    pub ciphers: &'static str,
}

/// What the HTTP probes offer: anything the server might speak, so that an old server can
/// still be audited.
pub const ANY: Offer = Offer {
    min: SslVersion::TLS1,
    max: None,
    ciphers: "DEFAULT:@SECLEVEL=0",
};

/// Connections to one server.
#[derive(Debug, Clone)]
pub struct Prober {
    pub addr: SocketAddr,
    /// SNI (omitted for an IP literal, as RFC 6066 asks).
    pub sni: String,
    pub tls: bool,
    pub timeout: Duration,
    pub deadline: Instant,
}

fn connector(offer: &Offer) -> Result<SslConnector, ProbeError> {
    let local = |e: openssl::error::ErrorStack| ProbeError::LocalTls(first_reason(&e));
    let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(local)?;
    b.set_verify(SslVerifyMode::NONE);
    // Old versions and weak suites need the lowest security level in OpenSSL 3.
    b.set_cipher_list(offer.ciphers).map_err(local)?;
    b.clear_options(openssl::ssl::SslOptions::NO_TLSV1 | openssl::ssl::SslOptions::NO_TLSV1_1);
    b.set_min_proto_version(Some(offer.min)).map_err(local)?;
    b.set_max_proto_version(offer.max).map_err(local)?;
    b.set_alpn_protos(b"\x08http/1.1").map_err(local)?;
    Ok(b.build())
}

fn first_reason(e: &openssl::error::ErrorStack) -> String {
    e.errors()
        .first()
        .and_then(|x| x.reason())
        .unwrap_or("OpenSSL error")
        .to_string()
}

fn tls_error(e: &openssl::ssl::Error) -> ProbeError {
    if let Some(io) = e.io_error() {
        return ProbeError::from_io(io);
    }
    match e.ssl_error() {
        Some(stack) => ProbeError::Tls(first_reason(stack)),
        None if e.code() == openssl::ssl::ErrorCode::SYSCALL => ProbeError::Closed,
        None => ProbeError::Tls(e.to_string()),
    }
}

impl Prober {
    /// Time left for one operation: the per-connection timeout, cut by the overall deadline.
    fn budget(&self) -> Result<Duration, ProbeError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ProbeError::Deadline);
        }
        Ok(left.min(self.timeout))
    }

    async fn bounded<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T, ProbeError>>,
    ) -> Result<T, ProbeError> {
        let budget = self.budget()?;
        match tokio::time::timeout(budget, fut).await {
            Ok(r) => r,
            Err(_) if Instant::now() >= self.deadline => Err(ProbeError::Deadline),
            Err(_) => Err(ProbeError::Timeout(budget.as_millis())),
        }
    }

    async fn tcp(&self) -> Result<TcpStream, ProbeError> {
        TcpStream::connect(self.addr)
            .await
            .map_err(|e| ProbeError::from_io(&e))
    }

    async fn tls_stream(
        &self,
        offer: &Offer,
    ) -> Result<tokio_openssl::SslStream<TcpStream>, ProbeError> {
        let connector = connector(offer)?;
        let tcp = self.tcp().await?;
        let mut cfg = connector
            .configure()
            .map_err(|e| ProbeError::LocalTls(first_reason(&e)))?;
        cfg.set_verify_hostname(false);
        let ssl = cfg
            .into_ssl(&self.sni)
            .map_err(|e| ProbeError::LocalTls(first_reason(&e)))?;
        let mut s = tokio_openssl::SslStream::new(ssl, tcp)
            .map_err(|e| ProbeError::LocalTls(first_reason(&e)))?;
        Pin::new(&mut s)
            .connect()
            .await
            .map_err(|e| tls_error(&e))?;
        Ok(s)
    }

    /// One TLS handshake with `offer`; what was negotiated.
    pub async fn handshake(&self, offer: Offer) -> Handshake {
        let r = self
            .bounded(async {
                let s = self.tls_stream(&offer).await?;
                let ssl = s.ssl();
                Ok((
                    ssl.version_str().to_string(),
                    ssl.current_cipher().map_or("?", |c| c.name()).to_string(),
                ))
            })
            .await;
        match r {
            Ok((version, cipher)) => Handshake::Accepted { version, cipher },
            Err(e) => Handshake::Failed(e),
        }
    }

    /// Sends `raw` on a fresh connection and reads one response.
    pub async fn request(&self, raw: &[u8]) -> Outcome {
        let head = raw.starts_with(b"HEAD ");
        self.bounded(async {
            let mut io: Box<dyn Io> = if self.tls {
                Box::new(self.tls_stream(&ANY).await?)
            } else {
                Box::new(self.tcp().await?)
            };
            io.write_all(raw)
                .await
                .map_err(|e| ProbeError::from_io(&e))?;
            io.flush().await.map_err(|e| ProbeError::from_io(&e))?;
            read_response(io, head).await
        })
        .await
    }

    /// `GET`-like request with the usual headers; `extra` lines end in CRLF.
    pub async fn simple(&self, method: &str, path: &str, host: &str, extra: &str) -> Outcome {
        let raw = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\n\
             Accept: */*\r\n{extra}Connection: close\r\n\r\n"
        );
        self.request(raw.as_bytes()).await
    }
}

async fn read_response<R: AsyncRead + Unpin>(
    io: R,
    head_only: bool,
) -> Result<Response, ProbeError> {
    let io_err = |e: std::io::Error| ProbeError::from_io(&e);
    let mut r = BufReader::new(io);
    let mut lines: Vec<String> = Vec::new();
    {
        let mut limited = (&mut r).take(HEAD_LIMIT);
        loop {
            let mut line = Vec::new();
            let n = limited.read_until(b'\n', &mut line).await.map_err(io_err)?;
            if n == 0 {
                return Err(if lines.is_empty() {
                    ProbeError::Closed
                } else {
                    ProbeError::Http("the response head is cut short or too large")
                });
            }
            let text = String::from_utf8_lossy(&line)
                .trim_end_matches(['\r', '\n'])
                .to_string();
            if text.is_empty() {
                if lines.is_empty() {
                    continue;
                }
                break;
            }
            lines.push(text);
        }
    }
    let status_line = lines.first().map(String::as_str).unwrap_or("");
    if !status_line.starts_with("HTTP/") {
        return Err(ProbeError::Http("no HTTP status line"));
    }
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .filter(|s| (100..1000).contains(s))
        .ok_or(ProbeError::Http("bad status code"))?;
    let headers: Vec<(String, String)> = lines[1..]
        .iter()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut resp = Response {
        status,
        headers,
        body: Vec::new(),
    };
    if head_only || (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(resp);
    }
    let chunked = resp
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        while resp.body.len() < BODY_LIMIT {
            let mut size = Vec::new();
            (&mut r)
                .take(1024)
                .read_until(b'\n', &mut size)
                .await
                .map_err(io_err)?;
            let size = String::from_utf8_lossy(&size);
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| ProbeError::Http("bad chunk size"))?;
            if n == 0 {
                break;
            }
            let keep = n.min(BODY_LIMIT - resp.body.len());
            let mut chunk = vec![0u8; keep];
            r.read_exact(&mut chunk).await.map_err(io_err)?;
            resp.body.extend_from_slice(&chunk);
            if keep < n {
                break;
            }
            let mut crlf = Vec::new();
            (&mut r)
                .take(2)
                .read_to_end(&mut crlf)
                .await
                .map_err(io_err)?;
        }
    } else {
        let len = resp
            .header("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        let want = len.map_or(BODY_LIMIT as u64, |n| n.min(BODY_LIMIT as u64));
        // A short body (the server closed early) is kept as far as it went.
        let _ = (&mut r).take(want).read_to_end(&mut resp.body).await;
    }
    Ok(resp)
}

/// Connect-only: open a TCP connection and close it at once.
pub async fn tcp_port(addr: SocketAddr, timeout: Duration) -> PortState {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(_s)) => PortState::Open,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => PortState::Refused,
        Ok(Err(e)) => PortState::Error(e.to_string()),
        Err(_) => PortState::NoAnswer,
    }
}

/// Probes `ports` on `ip`, a few at a time; results in the order given.
pub async fn tcp_ports(
    ip: std::net::IpAddr,
    ports: &[u16],
    timeout: Duration,
    deadline: Instant,
) -> Vec<(u16, PortState)> {
    let sem = Arc::new(tokio::sync::Semaphore::new(PORT_CONCURRENCY));
    let mut set = tokio::task::JoinSet::new();
    for (i, &p) in ports.iter().enumerate() {
        let sem = sem.clone();
        set.spawn(async move {
            let Ok(_permit) = sem.acquire_owned().await else {
                return (i, PortState::Error("probe pool closed".into()));
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return (i, PortState::Late);
            }
            (i, tcp_port(SocketAddr::new(ip, p), timeout.min(left)).await)
        });
    }
    let mut out: Vec<Option<PortState>> = vec![None; ports.len()];
    while let Some(r) = set.join_next().await {
        if let Ok((i, s)) = r {
            if let Some(slot) = out.get_mut(i) {
                *slot = Some(s);
            }
        }
    }
    ports
        .iter()
        .zip(out)
        .map(|(p, s)| (*p, s.unwrap_or(PortState::Error("probe failed".into()))))
        .collect()
}

/// Sends one small datagram (twice, in case the first is lost) and waits for any reply.
pub async fn udp_port(addr: SocketAddr, wait: Duration) -> UdpState {
    let bind: SocketAddr = if addr.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let sock = match UdpSocket::bind(bind).await {
        Ok(s) => s,
        Err(e) => return UdpState::Error(e.to_string()),
    };
    if let Err(e) = sock.connect(addr).await {
        return UdpState::Error(e.to_string());
    }
    let mut buf = [0u8; 2048];
    for _ in 0..2 {
        match sock.send(UDP_PING).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return UdpState::Refused
            }
            Err(e) => return UdpState::Error(e.to_string()),
        }
        match tokio::time::timeout(wait / 2, sock.recv(&mut buf)).await {
            Ok(Ok(n)) => return UdpState::Answered(n),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return UdpState::Refused
            }
            Ok(Err(e)) => return UdpState::Error(e.to_string()),
            Err(_) => {}
        }
    }
    UdpState::NoAnswer
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(bytes: &'static [u8]) -> Result<Response, ProbeError> {
        read_response(bytes, false).await
    }

    #[tokio::test]
    async fn responses_are_read_within_limits() {
        let r = parse(b"HTTP/1.1 301 Moved\r\nLocation: http://10.20.30.40/x\r\nContent-Length: 3\r\n\r\nabcdef")
            .await
            .expect("response");
        assert_eq!(r.status, 301);
        assert_eq!(r.header("location"), Some("http://10.20.30.40/x"));
        assert_eq!(r.body, b"abc");
        let r = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n")
            .await
            .expect("chunked");
        assert_eq!(r.body, b"abcde");
        let r = parse(b"HTTP/1.0 200 OK\r\n\r\nuntil close")
            .await
            .expect("eof body");
        assert_eq!(r.body, b"until close");
        assert_eq!(parse(b"").await, Err(ProbeError::Closed));
        assert!(parse(b"SSH-2.0-OpenSSH\r\n\r\n").await.is_err());
        assert!(parse(b"HTTP/1.1 abc\r\n\r\n").await.is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\nX: y").await.is_err());
    }

    #[tokio::test]
    async fn a_huge_body_is_cut_at_the_limit() {
        let mut raw = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        raw.extend(std::iter::repeat_n(b'x', BODY_LIMIT * 2));
        let r = read_response(&raw[..], false).await.expect("response");
        assert_eq!(r.body.len(), BODY_LIMIT);
        let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
        head.extend(std::iter::repeat_n(b'h', HEAD_LIMIT as usize * 2));
        assert!(read_response(&head[..], false).await.is_err());
    }

    #[tokio::test]
    async fn weak_classes_this_openssl_lacks_are_local_errors() {
        // Debian 12's OpenSSL 3.0 has no export suites at any security level.
        let offer = Offer {
            min: SslVersion::TLS1,
            max: Some(SslVersion::TLS1_2),
            ciphers: crate::tls::Weak::Export.cipher_list(),
        };
        assert!(matches!(connector(&offer), Err(ProbeError::LocalTls(_))));
        assert!(connector(&ANY).is_ok());
    }
}
