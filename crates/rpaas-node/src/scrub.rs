//! A write-side filter on client connections that removes `Server: Pingora` from the error
//! responses Pingora writes by itself (requests it cannot parse, e.g. an authority-form
//! `CONNECT`), which never pass through our phases. Everything else passes untouched.
//!
//! Only a write that begins an HTTP/1.x response head *and* carries the exact header line is
//! changed: responses that went through `response_filter` have no `Server` header left, so the
//! line can only come from Pingora's own error path.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::tls::{SslDigest, TlsRef};
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, Ssl, Stream, UniqueID,
    UniqueIDType, ALPN,
};
use pingora::protocols::{SocketDigest, TimingDigest};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const NEEDLE: &[u8] = b"\r\nServer: Pingora\r\n";

/// Returns the head with the `Server: Pingora` line removed, if `buf` is such a head.
pub fn scrub(buf: &[u8]) -> Option<Vec<u8>> {
    if !buf.starts_with(b"HTTP/1.") {
        return None;
    }
    let head_end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(buf.len(), |p| p + 4);
    let head = &buf[..head_end];
    let at = head.windows(NEEDLE.len()).position(|w| w == NEEDLE)?;
    let mut out = Vec::with_capacity(buf.len());
    out.extend_from_slice(&buf[..at + 2]);
    out.extend_from_slice(&buf[at + NEEDLE.len()..]);
    Some(out)
}

#[derive(Debug)]
pub struct Scrubbed {
    inner: Stream,
    pending: Vec<u8>,
}

impl Scrubbed {
    pub fn new(inner: Stream) -> Self {
        Self {
            inner,
            pending: Vec::new(),
        }
    }

    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending.drain(..n);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for Scrubbed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Scrubbed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        match scrub(buf) {
            None => Pin::new(&mut self.inner).poll_write(cx, buf),
            Some(clean) => {
                // Take the whole original buffer; what the socket does not accept now is
                // written before anything else.
                self.pending = clean;
                let _ = self.poll_pending(cx)?;
                Poll::Ready(Ok(buf.len()))
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[async_trait]
impl Shutdown for Scrubbed {
    async fn shutdown(&mut self) {
        let _ = std::future::poll_fn(|cx| self.poll_pending(cx)).await;
        self.inner.shutdown().await
    }
}

impl UniqueID for Scrubbed {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for Scrubbed {
    fn get_ssl(&self) -> Option<&TlsRef> {
        self.inner.get_ssl()
    }
    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        self.inner.get_ssl_digest()
    }
    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for Scrubbed {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }
    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }
    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for Scrubbed {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }
}

impl GetSocketDigest for Scrubbed {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }
}

#[async_trait]
impl Peek for Scrubbed {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn removes_only_pingoras_own_server_line() {
        let head =
            b"HTTP/1.1 400 Bad Request\r\nServer: Pingora\r\nDate: x\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            scrub(head).as_deref(),
            Some(&b"HTTP/1.1 400 Bad Request\r\nDate: x\r\nContent-Length: 0\r\n\r\n"[..])
        );
        assert_eq!(
            scrub(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
            None
        );
        // Body bytes are never touched, even if they contain the line.
        assert_eq!(
            scrub(b"HTTP/1.1 200 OK\r\nContent-Length: 19\r\n\r\n\r\nServer: Pingora\r\n"),
            None
        );
        assert_eq!(scrub(b"\r\nServer: Pingora\r\n"), None);
    }
}
