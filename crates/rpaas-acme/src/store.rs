//! What the manager keeps between runs and shares across a fleet, behind one trait: the
//! account, the certificates (one per name and key type), the issuance state (failures,
//! backoff), pending challenge responses, and an advisory issuer lock per name.
//!
//! [`DirStore`](crate::DirStore) implements it on a directory; the control plane implements it
//! on its database. Implementations hold data only; every decision stays in the manager.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// The name certificates are stored and reported under: an instance id, or
/// `wildcard.<base_domain>`. 1-128 characters of `[A-Za-z0-9._-]`, not starting with `.`, so it
/// is safe as a file name and a database key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CertName(String);

impl CertName {
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidName> {
        let name = name.into();
        let ok = !name.is_empty()
            && name.len() <= 128
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if ok {
            Ok(Self(name))
        } else {
            Err(InvalidName(name))
        }
    }

    /// The name of the one wildcard certificate for `base_domain`.
    pub fn wildcard(base_domain: &str) -> Result<Self, InvalidName> {
        Self::new(format!("wildcard.{}", base_domain.trim_end_matches('.')))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CertName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for CertName {
    type Error = InvalidName;
    fn try_from(s: String) -> Result<Self, InvalidName> {
        Self::new(s)
    }
}

impl From<CertName> for String {
    fn from(n: CertName) -> Self {
        n.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid certificate name {0:?}: 1-128 characters of A-Z a-z 0-9 . _ -, not starting with ."
)]
pub struct InvalidName(pub String);

/// The two certificates every subject gets: ECDSA for current clients, RSA for the old ones
/// (Windows agents whose TLS stack cannot do ECDSA, Mozilla's `old` profile).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyKind {
    /// ECDSA P-256.
    Ecdsa,
    /// RSA 2048.
    Rsa,
}

impl KeyKind {
    pub const ALL: [KeyKind; 2] = [KeyKind::Ecdsa, KeyKind::Rsa];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ecdsa => "ecdsa",
            Self::Rsa => "rsa",
        }
    }
}

/// One issued certificate.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCert {
    /// PEM chain, leaf first, as the CA sent it.
    pub chain_pem: String,
    /// PKCS#8 PEM private key. Secret.
    pub key_pem: String,
    /// The leaf's `notAfter`, seconds since the Unix epoch.
    pub not_after: u64,
    /// The leaf's `notBefore`, seconds since the Unix epoch.
    pub not_before: u64,
    /// The names the certificate was ordered for, sorted.
    pub names: Vec<String>,
}

impl fmt::Debug for StoredCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredCert")
            .field("not_after", &self.not_after)
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

/// How issuance for a name has been going; persisted so that a restart keeps the backoff.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueState {
    /// Failed attempts in a row.
    pub failures: u32,
    pub last_error: Option<String>,
    /// Seconds since the epoch of the last attempt, success or not.
    pub last_attempt: Option<u64>,
    /// No attempt before this time (seconds since the epoch).
    pub next_attempt: Option<u64>,
}

/// Which challenge a pending response answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChallengeSlot {
    /// Keyed by the DNS name being validated.
    TlsAlpn01,
    /// Keyed by the token in the URL.
    Http01,
}

impl ChallengeSlot {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TlsAlpn01 => "tls-alpn-01",
            Self::Http01 => "http-01",
        }
    }
}

/// A challenge response any node may serve while the CA validates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeRecord {
    pub slot: ChallengeSlot,
    /// The name (tls-alpn-01) or token (http-01).
    pub key: String,
    /// `token.thumbprint` (RFC 8555 §8.1).
    pub key_authorization: String,
    /// Seconds since the epoch after which the record is ignored.
    pub expires: u64,
}

/// A failure of the backend, with what was being done.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} is corrupt: {reason}")]
    Corrupt { what: String, reason: String },
    #[error("store: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Persistence for the manager. Every method is one small read or write; the manager calls
/// them from its own task, never from a handshake.
#[async_trait]
pub trait AcmeStore: Send + Sync + 'static {
    /// The account credentials (instant-acme's JSON) for `directory`.
    async fn account(&self, directory: &str) -> Result<Option<String>, StoreError>;
    async fn put_account(&self, directory: &str, credentials_json: &str) -> Result<(), StoreError>;

    async fn cert(&self, name: &CertName, kind: KeyKind) -> Result<Option<StoredCert>, StoreError>;
    async fn put_cert(
        &self,
        name: &CertName,
        kind: KeyKind,
        cert: &StoredCert,
    ) -> Result<(), StoreError>;

    async fn issue_state(&self, name: &CertName) -> Result<Option<IssueState>, StoreError>;
    async fn put_issue_state(&self, name: &CertName, state: &IssueState) -> Result<(), StoreError>;

    async fn put_challenge(&self, record: &ChallengeRecord) -> Result<(), StoreError>;
    async fn challenge(
        &self,
        slot: ChallengeSlot,
        key: &str,
    ) -> Result<Option<ChallengeRecord>, StoreError>;
    async fn delete_challenge(&self, slot: ChallengeSlot, key: &str) -> Result<(), StoreError>;

    /// Takes the issuer lock for `name` if it is free, expired, or already `holder`'s; `true`
    /// when `holder` has it afterwards. A lock left by a crashed node frees itself after `ttl`.
    async fn try_lock(
        &self,
        name: &CertName,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError>;
    /// Releases the lock if `holder` has it.
    async fn unlock(&self, name: &CertName, holder: &str) -> Result<(), StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_keys() {
        assert!(CertName::new("052d3c3287c38201").is_ok());
        assert_eq!(
            CertName::wildcard("example.net.").unwrap().as_str(),
            "wildcard.example.net"
        );
        for bad in ["", ".hidden", "a/b", "../x", "a b", &"x".repeat(129)] {
            assert!(CertName::new(bad).is_err(), "{bad:?}");
        }
        let n: Result<CertName, _> = serde_json::from_str("\"../etc\"");
        assert!(n.is_err());
    }
}
