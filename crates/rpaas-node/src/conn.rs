//! Client connections below HTTP: the accept loop (PROXY protocol, ClientHello, TLS
//! handshake, hand-over to Pingora) and the stream wrappers it puts around a connection (a
//! read buffer with write coalescing; the scrubber of Pingora's own error responses with the
//! slowloris deadline).

pub mod accept;
pub mod bufio;
mod iodelegate;
pub mod scrub;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;

/// Writes all of `pending` to `inner`. What was written is removed even when the write
/// stops early (error or not ready); once everything is out the memory is given back, so a
/// connection between responses holds no write buffer.
fn poll_write_out<W: AsyncWrite + Unpin + ?Sized>(
    inner: &mut W,
    pending: &mut Vec<u8>,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    let mut off = 0;
    while off < pending.len() {
        let r = match Pin::new(&mut *inner).poll_write(cx, &pending[off..]) {
            Poll::Ready(Ok(0)) => Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            Poll::Ready(Ok(n)) => {
                off += n;
                continue;
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        };
        pending.drain(..off);
        return r;
    }
    *pending = Vec::new();
    Poll::Ready(Ok(()))
}
