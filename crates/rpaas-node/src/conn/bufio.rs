//! Buffering under TLS. Pingora's own listeners give each TCP stream a read buffer and a small
//! write buffer; a stream built from a bare `TcpStream` (as our accept loop must) has neither,
//! so OpenSSL would make two `recv` calls per TLS record (header, then body) and one `send`
//! per record. This wrapper restores the buffers; Pingora flushes where it needs the bytes out
//! (end of header without body, end of body, every chunk of chunked and close-delimited bodies).
//!
//! It sits on the bare `TcpStream` rather than Pingora's `l4::Stream` (376 bytes of state for
//! a rewind buffer, digests and timers we answer ourselves): the bytes the accept loop read
//! before the handshake (PROXY header, ClientHello) are handed over as the first buffered read,
//! and the socket digest and the connection's start are kept here for Pingora's traits.

use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::SystemTime;

use async_trait::async_trait;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl,
    TimingDigest, UniqueID, UniqueIDType,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// Fits a typical request in one record; larger records are read in more than one go.
const READ_CAP: usize = 8 * 1024;
const WRITE_CAP: usize = 16 * 1024 + 512;

#[derive(Debug)]
pub struct BufIo {
    inner: TcpStream,
    digest: Option<Arc<SocketDigest>>,
    established: SystemTime,
    /// Allocated at the first read (or holding the bytes read before the handshake).
    rbuf: Option<Box<[u8]>>,
    rpos: usize,
    rlen: usize,
    wbuf: Vec<u8>,
}

impl BufIo {
    /// `read_ahead`: bytes already read from the socket, served before anything else.
    pub fn new(inner: TcpStream, digest: SocketDigest, read_ahead: Vec<u8>) -> Self {
        let rlen = read_ahead.len();
        Self {
            inner,
            digest: Some(Arc::new(digest)),
            established: SystemTime::now(),
            rbuf: (rlen > 0).then(|| read_ahead.into_boxed_slice()),
            rpos: 0,
            rlen,
            wbuf: Vec::new(),
        }
    }

    /// Frees the buffers while the connection idles (nothing unread, nothing unsent); they
    /// are allocated again by the next read or write.
    pub fn release_idle(&mut self) {
        if self.rpos == self.rlen {
            self.rbuf = None;
            self.rpos = 0;
            self.rlen = 0;
        }
        if self.wbuf.is_empty() {
            self.wbuf = Vec::new();
        }
    }

    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        super::poll_write_out(&mut self.inner, &mut self.wbuf, cx)
    }
}

impl AsyncRead for BufIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.rpos == this.rlen {
            // Large reads bypass the buffer.
            if buf.remaining() >= READ_CAP {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            let rbuf = match &mut this.rbuf {
                Some(b) if b.len() == READ_CAP => b,
                // None yet, released while idle, or the read-ahead's.
                slot => slot.insert(vec![0u8; READ_CAP].into_boxed_slice()),
            };
            let mut rb = ReadBuf::new(rbuf);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            this.rlen = rb.filled().len();
            this.rpos = 0;
            if this.rlen == 0 {
                return Poll::Ready(Ok(()));
            }
        }
        let Some(rbuf) = this.rbuf.as_ref() else {
            return Poll::Ready(Ok(()));
        };
        let n = (this.rlen - this.rpos).min(buf.remaining());
        buf.put_slice(&rbuf[this.rpos..this.rpos + n]);
        this.rpos += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for BufIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if !this.wbuf.is_empty() && this.wbuf.len() + buf.len() > WRITE_CAP {
            ready!(this.poll_drain(cx))?;
        }
        if buf.len() >= WRITE_CAP {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        }
        this.wbuf.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[async_trait]
impl Shutdown for BufIo {
    async fn shutdown(&mut self) {
        let _ = std::future::poll_fn(|cx| self.poll_drain(cx)).await;
        let _ = AsyncWriteExt::shutdown(&mut self.inner).await;
    }
}

impl UniqueID for BufIo {
    fn id(&self) -> UniqueIDType {
        self.inner.as_raw_fd()
    }
}

/// Not TLS itself: the TLS stream above answers.
impl Ssl for BufIo {}

impl GetTimingDigest for BufIo {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        let mut layers = Vec::with_capacity(2);
        layers.push(Some(TimingDigest {
            established_ts: self.established,
            ..TimingDigest::default()
        }));
        layers
    }
}

impl GetProxyDigest for BufIo {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        None
    }
}

impl GetSocketDigest for BufIo {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.digest.clone()
    }
    fn set_socket_digest(&mut self, d: SocketDigest) {
        self.digest = Some(Arc::new(d));
    }
}

#[async_trait]
impl Peek for BufIo {
    async fn try_peek(&mut self, _buf: &mut [u8]) -> io::Result<bool> {
        // Bytes may already sit in our buffer: peeking the socket would lie.
        Ok(false)
    }
}
