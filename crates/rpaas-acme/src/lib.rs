//! ACME certificates for rpaas instances: every subject (an instance's hostnames, or one
//! `*.base_domain` wildcard) gets an ECDSA P-256 and an RSA 2048 certificate from the CA, kept
//! renewed in the background, and handed to the node to swap in live.
//!
//! What it owns:
//! - the `[acme]` config table and its validation ([`AcmeConfig`]);
//! - the decision of what to do for a subject, as pure functions ([`plan`]);
//! - orders through `instant-acme` (rustls on ring; no aws-lc), with TLS-ALPN-01, HTTP-01 and
//!   DNS-01 (an operator's hook) challenges, exponential capped backoff and CA rate limits
//!   reported as such ([`Manager`]);
//! - the challenge responses listeners answer from ([`Challenges`], [`AlpnCert`]);
//! - persistence behind one trait ([`AcmeStore`]) and its directory implementation
//!   ([`DirStore`]): account, certificates, backoff state, fleet challenges, issuer locks;
//! - what status readers see ([`CertStatus`]).
//!
//! What it must not do: depend on the node, Pingora or a listener; serve traffic itself; read
//! the node's config files. The node feeds it subjects and answers challenges from
//! [`Challenges`]; certificates reach the node only through the [`UpdateSink`] callback.
#![forbid(unsafe_code)]

mod challenge;
mod client;
pub mod config;
mod dir_store;
pub mod dns;
mod error;
mod manager;
mod order;
pub mod plan;
mod revoke;
mod status;
pub mod store;
mod subject;

pub use challenge::{AlpnCert, Challenges, ACME_TLS_ALPN, HTTP01_PREFIX};
pub use config::{AcmeConfig, ChallengeKind, ConfigDuration, FieldError};
pub use dir_store::DirStore;
pub use error::AcmeError;
pub use manager::{CertUpdate, Manager, Options, PemPair, UpdateSink};
pub use plan::{Backoff, Decision, Need};
pub use status::{CertSource, CertState, CertStatus};
pub use store::{
    AcmeStore, CertName, ChallengeRecord, ChallengeSlot, IssueState, KeyKind, StoreError,
    StoredCert,
};
pub use subject::Subject;
