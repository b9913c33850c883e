//! API keys: 32 random bytes shown once, stored as a SHA-256 hash with a short prefix for the
//! lookup; compared in constant time; expiry and revocation take effect at once; failed
//! authentications are rate limited per client address and logged (never the key).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::store::{now_ms, Store, StoredKey};
use crate::StoreError;

/// What a key may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Operator,
    Partner(String),
}

impl Scope {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Partner(_) => "partner",
        }
    }
    pub fn partner(&self) -> Option<&str> {
        match self {
            Self::Operator => None,
            Self::Partner(p) => Some(p),
        }
    }
}

/// The caller of a request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub key_id: String,
    pub name: String,
    pub scope: Scope,
    /// A viewer (a dashboard user with the partner-viewer role): reads only.
    pub read_only: bool,
}

impl Principal {
    pub fn is_operator(&self) -> bool {
        self.scope == Scope::Operator
    }
    /// May this caller see a partner's things?
    pub fn sees(&self, partner: Option<&str>) -> bool {
        match &self.scope {
            Scope::Operator => true,
            Scope::Partner(p) => partner == Some(p.as_str()),
        }
    }
}

const PREFIX: &str = "rpk_";
/// Characters of the key (after `rpk_`) kept in clear for the lookup.
const LOOKUP: usize = 8;

fn hash(key: &str) -> String {
    let d = Sha256::digest(key.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Constant-time equality of two secrets (the length is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Random hex of `bytes` bytes, from the operating system's generator.
pub fn random_hex(bytes: usize) -> Result<String, StoreError> {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).map_err(|e| StoreError::Open(format!("no randomness: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// A new key: the text (shown once) and what is stored.
pub fn new_key(
    name: &str,
    scope: &Scope,
    expires: Option<i64>,
) -> Result<(String, StoredKey), StoreError> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| StoreError::Open(format!("no randomness: {e}")))?;
    let text = format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    );
    let stored = StoredKey {
        id: random_hex(8)?,
        name: name.into(),
        scope: scope.name().into(),
        partner: scope.partner().map(str::to_string),
        prefix: text[..PREFIX.len() + LOOKUP].to_string(),
        hash: hash(&text),
        created: now_ms(),
        expires,
        revoked: None,
        last_used: None,
    };
    Ok((text, stored))
}

/// Failed authentications per client address in the current minute.
#[derive(Debug, Default)]
pub struct Failures {
    map: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

/// Failures a client may have in a minute before it is told to wait.
const MAX_FAILURES: u32 = 10;
const MAX_TRACKED: usize = 10_000;

impl Failures {
    /// Whether `ip` is locked out now.
    pub fn locked(&self, ip: IpAddr) -> bool {
        let Ok(m) = self.map.lock() else {
            return false;
        };
        m.get(&ip).is_some_and(|(since, n)| {
            since.elapsed() < Duration::from_secs(60) && *n >= MAX_FAILURES
        })
    }

    pub fn fail(&self, ip: IpAddr) {
        let Ok(mut m) = self.map.lock() else {
            return;
        };
        if m.len() >= MAX_TRACKED && !m.contains_key(&ip) {
            m.retain(|_, (since, _)| since.elapsed() < Duration::from_secs(60));
            if m.len() >= MAX_TRACKED {
                return;
            }
        }
        let e = m.entry(ip).or_insert((Instant::now(), 0));
        if e.0.elapsed() >= Duration::from_secs(60) {
            *e = (Instant::now(), 0);
        }
        e.1 += 1;
    }
}

/// Why a key was refused (for the log; the client only learns "401").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Malformed,
    Unknown,
    Revoked,
    Expired,
}

impl Refused {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Unknown => "unknown",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }
}

/// Checks a presented key.
pub async fn check(
    store: &Store,
    presented: &str,
) -> Result<Result<Principal, Refused>, StoreError> {
    let presented = presented.trim();
    if !presented.starts_with(PREFIX) || presented.len() < PREFIX.len() + LOOKUP + 8 {
        return Ok(Err(Refused::Malformed));
    }
    let prefix = &presented[..PREFIX.len() + LOOKUP];
    let Some(k) = store.key_by_prefix(prefix).await? else {
        // Compare anyway, so timing says nothing about which prefixes exist.
        let _ = ct_eq(hash(presented).as_bytes(), hash("").as_bytes());
        return Ok(Err(Refused::Unknown));
    };
    if !ct_eq(hash(presented).as_bytes(), k.hash.as_bytes()) {
        return Ok(Err(Refused::Unknown));
    }
    if k.revoked.is_some() {
        return Ok(Err(Refused::Revoked));
    }
    if k.expires.is_some_and(|e| e <= now_ms()) {
        return Ok(Err(Refused::Expired));
    }
    let scope = match (k.scope.as_str(), &k.partner) {
        ("partner", Some(p)) => Scope::Partner(p.clone()),
        _ => Scope::Operator,
    };
    Ok(Ok(Principal {
        key_id: k.id,
        name: k.name,
        scope,
        read_only: false,
    }))
}
