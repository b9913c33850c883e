//! The client stream as Pingora sees it, with two additions:
//!
//! * a write-side filter that removes `Server: Pingora` from the error responses Pingora writes
//!   by itself (requests it cannot parse, e.g. an authority-form `CONNECT`), which never pass
//!   through our phases;
//! * writes gathered until Pingora flushes (at most 16 KiB), so that one TLS record carries a
//!   response head and its small body (each record costs OpenSSL a fixed few thousand
//!   instructions);
//! * a deadline for the first request head on HTTP/1 connections (slowloris): Pingora's
//!   timeouts are per read, so a client sending a byte every few seconds would hold the
//!   connection forever. Once the head's blank line has arrived, the deadline is dropped;
//! * buffers released while a connection idles: once nothing has been read or written for
//!   [`IDLE_RELEASE`] and the client is waited for, the buffers under TLS
//!   ([`crate::conn::bufio`], 8 KiB and more) and the gathered-write buffer are freed; they
//!   come back with the next request (OpenSSL's own record buffers are freed after every
//!   record already: `SSL_MODE_RELEASE_BUFFERS`). Agents hold a connection open between check-ins,
//!   so this is most of what an idle agent costs. One timer per connection, re-armed at most
//!   once per period whatever the request rate (activity is counted, not timed);
//! * parking between HTTP/1 requests ([`Scrubbed::poll_park`]): the accept loop waits for the
//!   next request's first byte itself, outside Pingora's session, so an idle connection holds
//!   no session (its future, its header buffer); the byte read while parked is handed to the
//!   next read.
//!
//! Only a write that begins an HTTP/1.x response head *and* carries the exact header line is
//! changed: responses that went through `response_filter` have no `Server` header left, so the
//! line can only come from Pingora's own error path.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora::protocols::{Peek, Shutdown};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::conn::bufio::BufIo;

/// The client connection under the wrappers: TLS over the buffered TCP stream.
pub type TlsClient = pingora::protocols::tls::SslStream<BufIo>;

/// How long a connection must be idle before its buffers are released.
pub const IDLE_RELEASE: Duration = Duration::from_secs(5);

/// Connections that released their buffers since the allocator was last trimmed.
static RELEASED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Every [`IDLE_RELEASE`], if connections released buffers, hands the freed pages back to the
/// system (they sit between live allocations, where `free` alone keeps them resident). Runs
/// for the node's lifetime.
pub async fn trim_released_memory() {
    let mut every = tokio::time::interval(IDLE_RELEASE);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let released = RELEASED.swap(0, std::sync::atomic::Ordering::Relaxed);
        if released > 0 {
            tracing::debug!(target: "rpaas::idle", released, "idle connections released their buffers");
            let _ = tokio::task::spawn_blocking(rpaas_tls_session::trim_allocator).await;
        }
    }
}

const NEEDLE: &[u8] = b"\r\nServer: Pingora\r\n";

/// Returns the head with the `Server: Pingora` line removed, if `buf` is such a head.
pub fn scrub(buf: &[u8]) -> Option<Vec<u8>> {
    if !buf.starts_with(b"HTTP/1.") {
        return None;
    }
    let head_end = memchr::memmem::find(buf, b"\r\n\r\n").map_or(buf.len(), |p| p + 4);
    let head = &buf[..head_end];
    let at = memchr::memmem::find(head, NEEDLE)?;
    let mut out = Vec::with_capacity(buf.len());
    out.extend_from_slice(&buf[..at + 2]);
    out.extend_from_slice(&buf[at + NEEDLE.len()..]);
    Some(out)
}

/// Watches the first request head.
struct HeadWatch {
    sleep: Pin<Box<tokio::time::Sleep>>,
    /// Last bytes seen, to find `\r\n\r\n` across reads.
    tail: [u8; 3],
    seen: usize,
}

impl std::fmt::Debug for HeadWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HeadWatch")
    }
}

/// Longest first request head we wait for before giving up on finding its end (Pingora
/// refuses larger heads anyway).
const MAX_HEAD: usize = 1 << 20;

/// Writes are gathered up to this size (or the next flush) and handed to TLS together: a
/// response head and a small body become one TLS record instead of two. Pingora flushes
/// where the bytes must go out (end of a head without body, end of a body, every chunk), and
/// the buffer under TLS ([`crate::conn::bufio`]) already waits for those flushes.
const GATHER: usize = 16 * 1024;

/// When to release an idle connection's buffers (see the module header).
#[derive(Default)]
struct IdleRelease {
    /// Allocated at the first wait for the client.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Reads and writes that moved bytes.
    activity: u64,
    /// `activity` when the timer was last armed.
    armed_at: u64,
    /// Released and nothing has happened since.
    released: bool,
}

impl std::fmt::Debug for IdleRelease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdleRelease")
            .field("activity", &self.activity)
            .field("released", &self.released)
            .finish_non_exhaustive()
    }
}

impl IdleRelease {
    fn active(&mut self) {
        self.activity = self.activity.wrapping_add(1);
        self.released = false;
    }

    /// Called when a read waits for the client: true once the connection has been idle for
    /// a whole period (the caller releases), else the timer is (re)armed and polled.
    fn idle_now(&mut self, cx: &mut Context<'_>) -> bool {
        if self.released {
            return false;
        }
        let activity = self.activity;
        if self.timer.is_none() {
            self.armed_at = activity;
            self.timer = Some(Box::pin(tokio::time::sleep(IDLE_RELEASE)));
        }
        let Some(timer) = self.timer.as_mut() else {
            return false;
        };
        while timer.as_mut().poll(cx).is_ready() {
            if self.armed_at == activity {
                self.released = true;
                return true;
            }
            self.armed_at = activity;
            timer
                .as_mut()
                .reset(tokio::time::Instant::now() + IDLE_RELEASE);
        }
        false
    }
}

#[derive(Debug)]
pub struct Scrubbed {
    inner: TlsClient,
    pending: Vec<u8>,
    head: Option<HeadWatch>,
    idle: IdleRelease,
    /// The first byte of the next request, read while parked.
    stash: Option<u8>,
}

impl Scrubbed {
    pub fn new(inner: TlsClient) -> Self {
        Self {
            inner,
            pending: Vec::new(),
            head: None,
            idle: IdleRelease::default(),
            stash: None,
        }
    }

    /// Waits for the client's next byte without an HTTP session: `Ready(Ok(true))` once one
    /// has arrived (it is kept for the next read), `Ready(Ok(false))` if the client closed.
    /// The first-request-head deadline and the idle release apply as to any read.
    pub fn poll_park(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        if self.stash.is_some() {
            return Poll::Ready(Ok(true));
        }
        let mut one = [0u8; 1];
        let mut rb = ReadBuf::new(&mut one);
        ready!(Pin::new(&mut *self).poll_read(cx, &mut rb))?;
        match rb.filled().first() {
            Some(&b) => {
                self.stash = Some(b);
                Poll::Ready(Ok(true))
            }
            None => Poll::Ready(Ok(false)),
        }
    }

    /// Frees what an idle connection does not need until its next request.
    fn release_buffers(&mut self) {
        if self.pending.is_empty() {
            self.pending = Vec::new();
        }
        // OpenSSL's record buffers are already released after every record
        // (`SSL_MODE_RELEASE_BUFFERS`, set by the openssl crate's acceptor).
        self.inner.get_mut().release_idle();
        RELEASED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Arms the first-request-head deadline (HTTP/1 only).
    pub fn with_head_deadline(mut self, timeout: Duration) -> Self {
        self.head = Some(HeadWatch {
            sleep: Box::pin(tokio::time::sleep(timeout)),
            tail: [0; 3],
            seen: 0,
        });
        self
    }

    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        super::poll_write_out(&mut self.inner, &mut self.pending, cx)
    }
}

impl AsyncRead for Scrubbed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(h) = this.head.as_mut() {
            if h.sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "request head not received in time",
                )));
            }
        }
        let stashed = match this.stash.take() {
            Some(b) if buf.remaining() > 0 => {
                buf.put_slice(&[b]);
                true
            }
            Some(b) => {
                this.stash = Some(b);
                return Poll::Ready(Ok(()));
            }
            None => false,
        };
        let before = buf.filled().len();
        if stashed {
            // The rest of what has arrived, if any, without waiting: the stashed byte was
            // already seen by the head watch and the idle count.
            if buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            match Pin::new(&mut this.inner).poll_read(cx, buf) {
                Poll::Ready(Ok(())) => {}
                // Reported by the next read, which meets it again.
                Poll::Ready(Err(_)) | Poll::Pending => return Poll::Ready(Ok(())),
            }
        } else if Pin::new(&mut this.inner).poll_read(cx, buf)?.is_pending() {
            if this.idle.idle_now(cx) {
                this.release_buffers();
            }
            return Poll::Pending;
        }
        this.idle.active();
        if let Some(h) = this.head.as_mut() {
            let new = &buf.filled()[before..];
            if head_complete(h, new) {
                this.head = None;
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// Feeds newly read bytes; true once `\r\n\r\n` (or the size cap) has been reached.
fn head_complete(h: &mut HeadWatch, new: &[u8]) -> bool {
    // The end may straddle the previous read: look at the last 3 bytes seen and the first 3
    // new ones, then inside the new bytes.
    let k = new.len().min(3);
    let mut joint = [0u8; 6];
    joint[..3].copy_from_slice(&h.tail);
    joint[3..3 + k].copy_from_slice(&new[..k]);
    let found = joint[..3 + k].windows(4).any(|w| w == b"\r\n\r\n")
        || memchr::memmem::find(new, b"\r\n\r\n").is_some();
    h.seen += new.len();
    if new.len() >= 3 {
        h.tail.copy_from_slice(&new[new.len() - 3..]);
    } else {
        let all = &joint[..3 + k];
        h.tail.copy_from_slice(&all[all.len() - 3..]);
    }
    found || h.seen >= MAX_HEAD
}

impl AsyncWrite for Scrubbed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.idle.active();
        if !self.pending.is_empty() && self.pending.len() + buf.len() > GATHER {
            ready!(self.poll_pending(cx))?;
        }
        let clean = scrub(buf);
        let bytes = clean.as_deref().unwrap_or(buf);
        if self.pending.is_empty() && bytes.len() >= GATHER {
            if clean.is_none() {
                return Pin::new(&mut self.inner).poll_write(cx, buf);
            }
            // A scrubbed head: take the whole original buffer; what TLS does not accept now
            // is written before anything else.
            self.pending = bytes.to_vec();
            let _ = self.poll_pending(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        self.pending.extend_from_slice(bytes);
        Poll::Ready(Ok(buf.len()))
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

crate::conn::iodelegate::delegate_digests!(Scrubbed);

#[async_trait]
impl Peek for Scrubbed {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

#[cfg(test)]
mod tests {
    use super::{head_complete, scrub, HeadWatch};

    #[tokio::test]
    async fn head_end_is_found_across_reads() {
        let mut h = HeadWatch {
            sleep: Box::pin(tokio::time::sleep(std::time::Duration::from_secs(1))),
            tail: [0; 3],
            seen: 0,
        };
        assert!(!head_complete(&mut h, b"GET / HTTP/1.1\r\nHost: x\r"));
        assert!(!head_complete(&mut h, b"\n"));
        assert!(!head_complete(&mut h, b"\r"));
        assert!(head_complete(&mut h, b"\nbody"));
    }

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
