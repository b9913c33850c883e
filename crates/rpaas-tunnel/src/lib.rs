//! The tunnel between a node and `rpaas-connector` on an Automate server. The connector dials
//! out (the server needs no inbound port); the node is the QUIC server.
//!
//! * ALPN [`ALPN`] carries the protocol version.
//! * The connector opens the first bidirectional stream and sends a [`Hello`] (instance id and
//!   secret); the node answers a [`Welcome`]. Nothing else is accepted before that.
//! * UDP: QUIC datagrams. Node → connector: [`NodeDatagram`] (flow id, target, payload);
//!   connector → node: [`ConnectorDatagram`] (flow id, payload). One flow per agent address, so
//!   the server's replies find their way back.
//! * TCP: the node opens a bidirectional stream per relayed connection and writes the target;
//!   the connector answers one [`StreamStatus`] byte, then bytes flow both ways.
//!
//! This crate depends on neither Pingora nor OpenSSL, so the connector builds for Windows.
#![forbid(unsafe_code)]

pub mod tls;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

pub use quinn;
pub use rustls;

/// Protocol name and version, negotiated by ALPN.
pub const ALPN: &[u8] = b"rpaas-tunnel/1";

/// Largest UDP payload relayed (an Automate heartbeat is far smaller).
pub const MAX_DATAGRAM: usize = 1200;

pub use wire::{ConnectorDatagram, Hello, NodeDatagram, StreamStatus, Welcome};

/// Transport settings both sides use: keep-alives well inside the idle timeout, so a NAT
/// between the server and the node keeps the mapping and a dead peer is noticed in seconds.
pub fn transport() -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(Some(Duration::from_secs(5)));
    // 20 s always fits the VarInt range.
    if let Ok(idle) = quinn::IdleTimeout::try_from(Duration::from_secs(20)) {
        t.max_idle_timeout(Some(idle));
    }
    t.datagram_receive_buffer_size(Some(4 << 20));
    t.datagram_send_buffer_size(4 << 20);
    t.max_concurrent_bidi_streams(quinn::VarInt::from_u32(4096));
    t.max_concurrent_uni_streams(quinn::VarInt::from_u32(0));
    Arc::new(t)
}
