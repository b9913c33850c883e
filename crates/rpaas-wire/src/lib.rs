//! Pure parsers for what a TCP connection opens with, before any TLS or HTTP:
//!
//! * [`proxy`]: the HAProxy PROXY protocol, v1 (text) and v2 (binary), that a load balancer
//!   puts in front of the stream to tell us the real client address;
//! * [`client_hello`]: the fields of a TLS ClientHello an operator needs when a handshake
//!   fails (SNI, offered protocol versions), read without OpenSSL.
//!
//! This crate owns no sockets and no clocks: it is fed byte slices and says either "here is the
//! value and how many bytes it used", "need more bytes", or "this is malformed". The node's
//! accept loop does the reading.
#![forbid(unsafe_code)]

pub mod client_hello;
pub mod proxy;
