//! The one admission decision of rpaas. Given a config snapshot ([`Policy`]), the connection
//! facts ([`Conn`]: listener, peer, SNI) and a request head ([`Head`]), [`admit`] returns one
//! [`Decision`] with one bounded [`Reason`] whose string form is the stable code used in logs,
//! metrics, refusal pages and `rpaas explain`. `serve` and `explain` both call it; bans and
//! rate limits are inputs ([`Gates`]): a running node answers them, an offline explain says it
//! cannot.
//!
//! Order: Host (present, known, the same instance as the SNI) → the node's denied methods →
//! an origin-form target → bans → the instance's access policy (`rpaas-policy`) → rate limits
//! → the IPS on the head (`rpaas-ips`); request bodies are judged later by [`judge_body`].
//!
//! Pure: no sockets, no clock (the caller passes `now`), nothing formatted for humans unless
//! [`explain`] is asked. Per request the instance is looked up once, the host normalised once,
//! `trusted` computed once, the query and cookies parsed once (shared by policy and IPS).
#![forbid(unsafe_code)]

mod admit;
mod crs;
mod explain;
mod facts;
mod reason;
mod snapshot;

pub use admit::{admit, judge_body, BodyPlan, Decision, Step, Verdict};
pub use crs::CrsFinding;
pub use explain::{add_body_length, explain, Explanation};
pub use facts::{client_ip, normalize_host, Conn, Gates, Head, HeaderList, Offline};
pub use reason::Reason;
pub use snapshot::Policy;

#[cfg(test)]
mod tests;
