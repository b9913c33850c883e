//! Buffering under TLS. Pingora's own listeners give each TCP stream a read buffer and a small
//! write buffer; a stream built from a bare `TcpStream` (as our accept loop must) has neither,
//! so OpenSSL would make two `recv` calls per TLS record (header, then body) and one `send`
//! per record. This wrapper restores the buffers; Pingora flushes where it needs the bytes out
//! (end of header without body, end of body, every chunk of chunked and close-delimited bodies).

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use async_trait::async_trait;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::{Peek, Shutdown};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Fits a typical request in one record; larger records are read in more than one go.
const READ_CAP: usize = 8 * 1024;
const WRITE_CAP: usize = 16 * 1024 + 512;

#[derive(Debug)]
pub struct BufIo {
    inner: L4Stream,
    /// Allocated at the first read.
    rbuf: Option<Box<[u8]>>,
    rpos: usize,
    rlen: usize,
    wbuf: Vec<u8>,
}

impl BufIo {
    pub fn new(inner: L4Stream) -> Self {
        Self {
            inner,
            rbuf: None,
            rpos: 0,
            rlen: 0,
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
            let rbuf = this
                .rbuf
                .get_or_insert_with(|| vec![0u8; READ_CAP].into_boxed_slice());
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
        self.inner.shutdown().await
    }
}

crate::conn::iodelegate::delegate_digests!(BufIo);

#[async_trait]
impl Peek for BufIo {
    async fn try_peek(&mut self, _buf: &mut [u8]) -> io::Result<bool> {
        // Bytes may already sit in our buffer: peeking the socket would lie.
        Ok(false)
    }
}
