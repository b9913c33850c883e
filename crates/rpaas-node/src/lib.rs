//! The rpaas proxy node: the process side of the product. Binding listeners, TLS (profiles,
//! SNI certificate choice from the certificate store), the PROXY protocol, handing connections
//! to Pingora's HTTP engine, the proxy phases (acting on the admission core's decision,
//! forwarding headers, holding inspected bodies, response hardening), upstream resolution,
//! relays and the connector tunnel, the admin endpoint (`/healthz`, `/metrics`, `/explain`),
//! JSON logs, SIGHUP reload and SIGTERM drain.
//!
//! Decisions live in other crates (`rpaas-admission`, `rpaas-policy`, `rpaas-ips`,
//! `rpaas-harden`, `rpaas-wire`); the config is compiled by `rpaas-config`. This crate is the
//! glue that feeds them; it holds no offline tool (`check`, `explain` and `geoip` are composed
//! by the `rpaas` binary from the library crates and [`verify`]).
//!
//! Modules, by concern: [`conn`] (accept loop and stream wrappers), `tls`, `proxy` (phases),
//! `ips` (body and response inspection glue), `gates` (bans and rate limits for the core),
//! `snapshot`, `certs`, `upstream`, `relay`, `tunnel`, `admin`, `metrics`, `logging`,
//! `lifecycle` (start, reload, drain) and `state` (what every task shares).

mod acme;
mod admin;
mod certs;
pub mod conn;
mod control;
mod fleet;
mod gates;
mod harden;
mod http01;
mod ips;
mod lifecycle;
mod logging;
mod metrics;
mod proxy;
mod relay;
mod snapshot;
mod state;
mod telemetry;
mod tickets;
mod tls;
mod tunnel;
mod upstream;

pub use admin::ExplainRequest;
pub use conn::accept::ConnInfo;
pub use lifecycle::{serve, verify, CheckSummary, StartError};
pub use metrics::Metrics;
pub use snapshot::Snapshot;
