//! TLS session resumption that never crosses instances.
//!
//! A listener serves many instances; OpenSSL creates a connection's session before the SNI
//! callback picks the instance, so with its defaults a session (ticket or cache entry) carries
//! the listener's context and resumes on any hostname of the listener. [`enable`] scopes every
//! session to the instance its ClientHello names, *before* OpenSSL looks for a session:
//!
//! - a ClientHello callback reads the SNI (with OpenSSL's own rules: one `host_name` entry),
//!   asks the caller for the connection's [`Scope`] (listener + instance) and sets it as the
//!   connection's session id context, which OpenSSL stores in every session it issues and
//!   compares on every resumption (tickets and the cache alike);
//! - ticket keys are derived per scope and per epoch from a [`Secret`] (HMAC-SHA256), so a
//!   ticket of one instance does not even decrypt under another's keys; the secret is shared by
//!   a fleet's nodes (through the control store), so a ticket from one node resumes on the
//!   others and survives restarts and reloads;
//! - keys rotate every [`Resumption::rotation`]: a ticket of the current epoch resumes, one of
//!   the previous epoch resumes and is renewed, older ones fall back to a full handshake;
//! - a bounded server-side cache ([`CACHE_SIZE`] per listener) for TLS 1.2 clients without
//!   ticket support (old Windows agents resume by session id).
//!
//! The caller's SNI callback must check with [`scope`] that the instance it picked is the one
//! the session was scoped to (the two parses of the SNI agree by construction; the check makes
//! a disagreement a failed handshake rather than a cross-instance session).
//!
//! OpenSSL's own record buffers need nothing here: the `openssl` crate's acceptor sets
//! `SSL_MODE_RELEASE_BUFFERS`, so they are freed after every record. [`trim_allocator`]
//! returns the memory idle connections free to the system.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use openssl::error::ErrorStack;
use openssl::ex_data::Index;
use openssl::ssl::{ClientHelloResponse, Ssl, SslContextBuilder, SslRef, SslSessionCacheMode};

mod ffi;
mod keys;

pub use ffi::trim_allocator;
pub use keys::{EpochKeys, Scope, Secret};

/// Sessions kept per listener for clients that resume by session id (TLS 1.2 without tickets).
pub const CACHE_SIZE: i32 = 20_000;

/// How long ticket keys are used for new tickets.
pub const DEFAULT_ROTATION: Duration = Duration::from_secs(12 * 3600);

/// The keys and their rotation, shared by every listener of a node.
pub struct Resumption {
    secret: ArcSwap<Secret>,
    rotation: Duration,
    clock: Box<dyn Fn() -> u64 + Send + Sync>,
}

impl std::fmt::Debug for Resumption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resumption")
            .field("rotation", &self.rotation)
            .finish_non_exhaustive()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Resumption {
    /// Keys from `secret`, rotated every `rotation` (at least a minute) by the system clock.
    pub fn new(secret: Secret, rotation: Duration) -> Self {
        Self::with_clock(secret, rotation, unix_now)
    }

    /// As [`Resumption::new`] with the seconds since the epoch from `clock` (for tests).
    pub fn with_clock(
        secret: Secret,
        rotation: Duration,
        clock: impl Fn() -> u64 + Send + Sync + 'static,
    ) -> Self {
        Self {
            secret: ArcSwap::from_pointee(secret),
            rotation: rotation.max(Duration::from_secs(60)),
            clock: Box::new(clock),
        }
    }

    /// Replaces the secret (a fleet's shared one arrived): tickets issued under the old one
    /// fall back to a full handshake once.
    pub fn set_secret(&self, secret: Secret) {
        self.secret.store(Arc::new(secret));
    }

    /// How long a key set is used for new tickets; a ticket is accepted for up to twice that.
    pub fn rotation(&self) -> Duration {
        self.rotation
    }

    /// The current epoch: which key set new tickets get.
    pub fn epoch(&self) -> u64 {
        (self.clock)() / self.rotation.as_secs()
    }

    /// The keys for `scope` in `epoch`.
    pub fn keys(&self, scope: &Scope, epoch: u64) -> EpochKeys {
        EpochKeys::derive(&self.secret.load(), scope, epoch)
    }
}

/// What one connection's ticket callback needs: its scope, and its keys once derived.
struct ConnState {
    scope: Scope,
    epoch: u64,
    resumption: Arc<Resumption>,
    current: OnceLock<EpochKeys>,
    previous: OnceLock<EpochKeys>,
}

impl ConnState {
    fn current(&self) -> &EpochKeys {
        self.current
            .get_or_init(|| self.resumption.keys(&self.scope, self.epoch))
    }

    fn previous(&self) -> &EpochKeys {
        self.previous.get_or_init(|| {
            self.resumption
                .keys(&self.scope, self.epoch.saturating_sub(1))
        })
    }

    /// For a ticket named `name`: its keys, and whether to renew it (an older epoch's).
    fn for_ticket(&self, name: &[u8; 16]) -> Option<(&EpochKeys, bool)> {
        if self.current().name == *name {
            return Some((self.current(), false));
        }
        if self.epoch > 0 && self.previous().name == *name {
            return Some((self.previous(), true));
        }
        None
    }
}

fn state_index() -> Result<Index<Ssl, ConnState>, ErrorStack> {
    static INDEX: OnceLock<Index<Ssl, ConnState>> = OnceLock::new();
    if let Some(i) = INDEX.get() {
        return Ok(*i);
    }
    let i = Ssl::new_ex_index::<ConnState>()?;
    Ok(*INDEX.get_or_init(|| i))
}

/// The scope the connection's sessions were bound to, if [`enable`]'s callback found one.
pub fn scope(ssl: &SslRef) -> Option<Scope> {
    let idx = state_index().ok()?;
    ssl.ex_data(idx).map(|s| s.scope)
}

/// Turns on resumption for the connections of `builder`: tickets (TLS 1.2 and 1.3) under keys
/// from `resumption`, and a bounded cache, all scoped by `scope_of(sni)` (the SNI as the
/// ClientHello carries it, `None` without one). A connection `scope_of` has no scope for gets
/// no resumption (and no ticket).
pub fn enable<F>(
    builder: &mut SslContextBuilder,
    resumption: Arc<Resumption>,
    scope_of: F,
) -> Result<(), ErrorStack>
where
    F: Fn(Option<&str>) -> Option<Scope> + Send + Sync + 'static,
{
    let idx = state_index()?;
    builder.clear_options(openssl::ssl::SslOptions::NO_TICKET);
    builder.set_session_cache_mode(SslSessionCacheMode::SERVER);
    builder.set_session_cache_size(CACHE_SIZE);
    // A session outlives its epoch by at most one rotation: the previous epoch's keys are the
    // last that decrypt it.
    ffi::set_timeout(builder, resumption.rotation.as_secs());
    ffi::set_ticket_key_callback(builder, idx);
    builder.set_client_hello_callback(move |ssl, _alert| {
        let sni = ffi::client_hello_sni(ssl);
        let name = sni.as_deref().and_then(keys::sni_host_name);
        let name = name.and_then(|n| std::str::from_utf8(n).ok());
        let Some(scope) = scope_of(name) else {
            // No instance (the handshake fails in the SNI callback) or an unscoped listener:
            // a context of its own, so whatever session it gets never resumes anywhere.
            ffi::set_session_id_context(ssl, &Scope::unique()?)?;
            return Ok(ClientHelloResponse::SUCCESS);
        };
        {
            ffi::set_session_id_context(ssl, &scope)?;
            let epoch = resumption.epoch();
            ssl.set_ex_data(
                idx,
                ConnState {
                    scope,
                    epoch,
                    resumption: resumption.clone(),
                    current: OnceLock::new(),
                    previous: OnceLock::new(),
                },
            );
        }
        Ok(ClientHelloResponse::SUCCESS)
    });
    Ok(())
}

#[cfg(test)]
mod tests;
