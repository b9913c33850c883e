//! Sends one request's bytes to the node over a raw TCP or TLS socket and reads back the
//! status line: an HTTP library would repair the malformed requests the tests send.
//! Only loopback targets are accepted.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};

/// The bound on connecting, writing and waiting for the response, per request.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The most this reads looking for a status line.
const READ_MAX: usize = 64 * 1024;

/// Why a target or a connection was refused before any test ran.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    #[error("{0} is not a loopback address (only 127.0.0.0/8 and ::1 may be replayed against)")]
    NotLoopback(SocketAddr),
    #[error("{0:?} is not an address:port")]
    Addr(String),
    #[error("TLS setup: {0}")]
    Tls(#[from] openssl::error::ErrorStack),
}

/// Parses `--addr` and refuses anything but loopback.
pub fn loopback_addr(s: &str) -> Result<SocketAddr, TargetError> {
    let addr: SocketAddr = s.parse().map_err(|_| TargetError::Addr(s.to_string()))?;
    match addr.ip() {
        IpAddr::V4(v4) if v4.is_loopback() => Ok(addr),
        IpAddr::V6(v6) if v6.is_loopback() => Ok(addr),
        _ => Err(TargetError::NotLoopback(addr)),
    }
}

/// What came back for one request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum Outcome {
    /// The final (non-1xx) status code.
    Status(u16),
    /// The node closed or reset the connection without a status line.
    Closed,
    /// No status line within [`TIMEOUT`].
    Timeout,
    /// The TCP connection or the TLS handshake failed.
    Connect(String),
    /// Bytes came back that are not an HTTP status line.
    Garbage,
}

/// Where and how to send.
pub struct Target {
    addr: SocketAddr,
    host: String,
    tls: Option<SslConnector>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("addr", &self.addr)
            .field("host", &self.host)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Target {
    /// A plain-TCP target. `addr` must come from [`loopback_addr`].
    pub fn plain(addr: SocketAddr, host: &str) -> Self {
        Self {
            addr,
            host: host.to_string(),
            tls: None,
        }
    }

    /// A TLS target whose certificate is not verified: the node under test is on loopback
    /// with a test certificate. `host` is sent as SNI.
    pub fn dangerous_tls_unverified(addr: SocketAddr, host: &str) -> Result<Self, TargetError> {
        let mut b = SslConnector::builder(SslMethod::tls_client())?;
        b.set_verify(SslVerifyMode::NONE);
        Ok(Self {
            addr,
            host: host.to_string(),
            tls: Some(b.build()),
        })
    }

    /// Sends `bytes` on a new connection and reads the status line.
    pub fn send(&self, bytes: &[u8]) -> Outcome {
        let tcp = match TcpStream::connect_timeout(&self.addr, TIMEOUT) {
            Ok(s) => s,
            Err(e) => return Outcome::Connect(e.to_string()),
        };
        if let Err(e) = tcp
            .set_read_timeout(Some(TIMEOUT))
            .and_then(|()| tcp.set_write_timeout(Some(TIMEOUT)))
        {
            return Outcome::Connect(e.to_string());
        }
        match &self.tls {
            None => exchange(tcp, bytes),
            Some(c) => {
                let mut cfg = match c.configure() {
                    Ok(cfg) => cfg,
                    Err(e) => return Outcome::Connect(e.to_string()),
                };
                cfg.set_verify_hostname(false);
                match cfg.connect(&self.host, tcp) {
                    Ok(s) => exchange(s, bytes),
                    Err(e) => Outcome::Connect(format!("TLS handshake: {e}")),
                }
            }
        }
    }
}

fn exchange<S: Read + Write>(mut s: S, bytes: &[u8]) -> Outcome {
    // A node that refuses a malformed request may answer and close before reading it all: a
    // failed write is not the outcome, what can still be read is.
    let _ = s.write_all(bytes).and_then(|()| s.flush());
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(outcome) = status_of(&buf) {
            return outcome;
        }
        if buf.len() >= READ_MAX {
            return Outcome::Garbage;
        }
        match s.read(&mut chunk) {
            Ok(0) => {
                return if buf.is_empty() {
                    Outcome::Closed
                } else {
                    Outcome::Garbage
                }
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Outcome::Timeout
            }
            Err(_) if buf.is_empty() => return Outcome::Closed,
            Err(_) => return Outcome::Garbage,
        }
    }
}

/// The final status in `buf` once it is there: 1xx interim responses (and their headers)
/// are skipped. `None` while more bytes are needed.
pub fn status_of(buf: &[u8]) -> Option<Outcome> {
    let mut rest = buf;
    loop {
        let eol = rest.iter().position(|&b| b == b'\n')?;
        let line = rest[..eol].strip_suffix(b"\r").unwrap_or(&rest[..eol]);
        let code = parse_status_line(line)?;
        let Some(code) = code else {
            return Some(Outcome::Garbage);
        };
        if !(100..200).contains(&code) {
            return Some(Outcome::Status(code));
        }
        // Skip the interim response's head.
        let end = find(rest, b"\r\n\r\n")
            .map(|i| i + 4)
            .or(find(rest, b"\n\n").map(|i| i + 2))?;
        rest = &rest[end..];
    }
}

/// `Some(Some(code))` for `HTTP/x.y NNN ...`, `Some(None)` for anything else.
fn parse_status_line(line: &[u8]) -> Option<Option<u16>> {
    let mut parts = line.splitn(3, |&b| b == b' ');
    let version = parts.next()?;
    let code = parts.next().unwrap_or(b"");
    let ok =
        version.starts_with(b"HTTP/") && code.len() == 3 && code.iter().all(u8::is_ascii_digit);
    Some(
        ok.then(|| std::str::from_utf8(code).ok()?.parse().ok())
            .flatten(),
    )
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests;
