//! Builders shared by the rpaas integration tests and the demo: certificates made at run time
//! ([`certs`]), a stand-in Automate origin ([`upstream`]), a blocking TLS/HTTP client with full
//! control of the bytes sent ([`client`]), and a handle on a real `rpaas serve` process
//! ([`node`]). Nothing here is used by the product itself.

pub mod api;
pub mod certs;
pub mod client;
pub mod h2client;
pub mod node;
pub mod postgres;
pub mod upstream;
