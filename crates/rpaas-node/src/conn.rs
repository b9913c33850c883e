//! Client connections below HTTP: the accept loop (PROXY protocol, ClientHello, TLS
//! handshake, hand-over to Pingora) and the stream wrappers it puts around a connection (a
//! read buffer with write coalescing; the scrubber of Pingora's own error responses with the
//! slowloris deadline).

pub mod accept;
pub mod bufio;
mod iodelegate;
pub mod scrub;
