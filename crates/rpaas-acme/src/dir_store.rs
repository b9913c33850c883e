//! [`AcmeStore`] on a directory, for a node without a control store. Every record is one JSON
//! file written to a temporary file and renamed into place (a reader sees the old or the new
//! record, never half of one); files are 0600 and directories 0700 since records hold private
//! keys.
//!
//! ```text
//! DIR/accounts/<sha256(directory url)[..16]>.json
//! DIR/certs/<name>.<ecdsa|rsa>.json
//! DIR/state/<name>.json
//! DIR/challenges/<slot>.<hex(key)>.json
//! DIR/locks/<name>.json
//! ```
//!
//! The lock is good between processes on one host; a fleet shares a database store instead.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::store::{
    AcmeStore, CertName, ChallengeRecord, ChallengeSlot, IssueState, KeyKind, StoreError,
    StoredCert,
};

/// A directory of JSON records.
#[derive(Debug, Clone)]
pub struct DirStore {
    root: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct LockRecord {
    holder: String,
    expires: u64,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StoreError {
    let what = what.into();
    move |source| StoreError::Io { what, source }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl DirStore {
    /// Opens (and creates, 0700) the directory.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        for sub in ["", "accounts", "certs", "state", "challenges", "locks"] {
            let d = root.join(sub);
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&d)
                .map_err(io(format!("cannot create {}", d.display())))?;
        }
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn account_path(&self, directory: &str) -> PathBuf {
        let digest = openssl::sha::sha256(directory.as_bytes());
        self.root
            .join("accounts")
            .join(format!("{}.json", hex(&digest[..8])))
    }

    fn cert_path(&self, name: &CertName, kind: KeyKind) -> PathBuf {
        self.root
            .join("certs")
            .join(format!("{name}.{}.json", kind.as_str()))
    }

    fn state_path(&self, name: &CertName) -> PathBuf {
        self.root.join("state").join(format!("{name}.json"))
    }

    fn challenge_path(&self, slot: ChallengeSlot, key: &str) -> PathBuf {
        self.root
            .join("challenges")
            .join(format!("{}.{}.json", slot.as_str(), hex(key.as_bytes())))
    }

    fn lock_path(&self, name: &CertName) -> PathBuf {
        self.root.join("locks").join(format!("{name}.json"))
    }

    /// Writes `bytes` to `path` through a 0600 temporary file in the same directory.
    fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(
            ".{file_name}.{}.{:x}.tmp",
            std::process::id(),
            fastrand::u64(..)
        ));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(format!("cannot write {}", path.display()))(e)
        })
    }

    fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(value).map_err(|e| StoreError::Corrupt {
            what: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::write_atomic(path, &bytes)
    }

    fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, StoreError> {
        match std::fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| StoreError::Corrupt {
                        what: path.display().to_string(),
                        reason: e.to_string(),
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(format!("cannot read {}", path.display()))(e)),
        }
    }

    fn remove(path: &Path) -> Result<(), StoreError> {
        match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(format!("cannot remove {}", path.display()))(e)),
        }
    }
}

#[async_trait]
impl AcmeStore for DirStore {
    async fn account(&self, directory: &str) -> Result<Option<String>, StoreError> {
        let v: Option<serde_json::Value> = Self::read_json(&self.account_path(directory))?;
        Ok(v.map(|v| v.to_string()))
    }

    async fn put_account(&self, directory: &str, credentials_json: &str) -> Result<(), StoreError> {
        Self::write_atomic(&self.account_path(directory), credentials_json.as_bytes())
    }

    async fn cert(&self, name: &CertName, kind: KeyKind) -> Result<Option<StoredCert>, StoreError> {
        Self::read_json(&self.cert_path(name, kind))
    }

    async fn put_cert(
        &self,
        name: &CertName,
        kind: KeyKind,
        cert: &StoredCert,
    ) -> Result<(), StoreError> {
        Self::write_json(&self.cert_path(name, kind), cert)
    }

    async fn issue_state(&self, name: &CertName) -> Result<Option<IssueState>, StoreError> {
        Self::read_json(&self.state_path(name))
    }

    async fn put_issue_state(&self, name: &CertName, state: &IssueState) -> Result<(), StoreError> {
        Self::write_json(&self.state_path(name), state)
    }

    async fn put_challenge(&self, record: &ChallengeRecord) -> Result<(), StoreError> {
        Self::write_json(&self.challenge_path(record.slot, &record.key), record)
    }

    async fn challenge(
        &self,
        slot: ChallengeSlot,
        key: &str,
    ) -> Result<Option<ChallengeRecord>, StoreError> {
        let r: Option<ChallengeRecord> = Self::read_json(&self.challenge_path(slot, key))?;
        Ok(r.filter(|r| r.expires > now_secs() && r.slot == slot && r.key == key))
    }

    async fn delete_challenge(&self, slot: ChallengeSlot, key: &str) -> Result<(), StoreError> {
        Self::remove(&self.challenge_path(slot, key))
    }

    async fn try_lock(
        &self,
        name: &CertName,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let path = self.lock_path(name);
        let now = now_secs();
        let record = LockRecord {
            holder: holder.to_string(),
            expires: now + ttl.as_secs().max(1),
        };
        let bytes = serde_json::to_vec(&record).map_err(|e| StoreError::Corrupt {
            what: path.display().to_string(),
            reason: e.to_string(),
        })?;
        // Fast path: nobody holds it. The record is written to a temporary file and linked
        // into place, so a competing taker never reads a lock file without its holder.
        let tmp = path.with_extension(format!(
            "{}.{:x}.tmp",
            std::process::id(),
            fastrand::u64(..)
        ));
        Self::write_atomic(&tmp, &bytes)?;
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => return Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(format!("cannot create {}", path.display()))(e)),
        }
        let current: Option<LockRecord> = match Self::read_json(&path) {
            Ok(c) => c,
            // Unreadable: held, unless it is older than any lock may live.
            Err(_) => {
                let old = std::fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|m| m.elapsed().ok())
                    .is_some_and(|age| age > ttl);
                if !old {
                    return Ok(false);
                }
                None
            }
        };
        let free = current
            .as_ref()
            .is_none_or(|c| c.holder == holder || c.expires <= now);
        if !free {
            return Ok(false);
        }
        Self::write_atomic(&path, &bytes)?;
        // Two takers of an expired lock both rename; the one whose record stayed has it.
        let after: Option<LockRecord> = Self::read_json(&path)?;
        Ok(after.is_some_and(|a| a.holder == holder))
    }

    async fn unlock(&self, name: &CertName, holder: &str) -> Result<(), StoreError> {
        let path = self.lock_path(name);
        let current: Option<LockRecord> = Self::read_json(&path).unwrap_or(None);
        if current.is_some_and(|c| c.holder == holder) {
            Self::remove(&path)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn cert() -> StoredCert {
        StoredCert {
            chain_pem: "chain".into(),
            key_pem: "secret".into(),
            not_after: 2_000_000_000,
            not_before: 1_900_000_000,
            names: vec!["a.example.net".into()],
        }
    }

    #[tokio::test]
    async fn records_round_trip_with_private_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let s = DirStore::open(dir.path().join("acme")).unwrap();
        let n = CertName::new("a").unwrap();
        assert!(s.cert(&n, KeyKind::Rsa).await.unwrap().is_none());
        s.put_cert(&n, KeyKind::Rsa, &cert()).await.unwrap();
        assert_eq!(s.cert(&n, KeyKind::Rsa).await.unwrap(), Some(cert()));
        assert!(s.cert(&n, KeyKind::Ecdsa).await.unwrap().is_none());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&s.cert_path(&n, KeyKind::Rsa)), 0o600);
        assert_eq!(mode(s.root()), 0o700);
        // No temporary files are left behind.
        let leftovers: Vec<_> = std::fs::read_dir(s.root().join("certs"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());

        s.put_account("https://ca/dir", r#"{"id":"x"}"#)
            .await
            .unwrap();
        assert_eq!(
            s.account("https://ca/dir").await.unwrap().as_deref(),
            Some(r#"{"id":"x"}"#)
        );
        assert!(s.account("https://other/dir").await.unwrap().is_none());

        let st = IssueState {
            failures: 3,
            last_error: Some("boom".into()),
            last_attempt: Some(5),
            next_attempt: Some(10),
        };
        s.put_issue_state(&n, &st).await.unwrap();
        assert_eq!(s.issue_state(&n).await.unwrap(), Some(st));
    }

    #[tokio::test]
    async fn corrupt_records_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let s = DirStore::open(dir.path()).unwrap();
        let n = CertName::new("a").unwrap();
        std::fs::write(s.cert_path(&n, KeyKind::Ecdsa), "{").unwrap();
        let e = s.cert(&n, KeyKind::Ecdsa).await.unwrap_err();
        assert!(e.to_string().contains("is corrupt"), "{e}");
    }

    #[tokio::test]
    async fn challenges_expire_and_keys_are_escaped() {
        let dir = tempfile::tempdir().unwrap();
        let s = DirStore::open(dir.path()).unwrap();
        let r = ChallengeRecord {
            slot: ChallengeSlot::Http01,
            key: "../../etc/passwd".into(),
            key_authorization: "t.k".into(),
            expires: now_secs() + 60,
        };
        s.put_challenge(&r).await.unwrap();
        assert_eq!(
            s.challenge(ChallengeSlot::Http01, &r.key).await.unwrap(),
            Some(r.clone())
        );
        assert!(s
            .challenge(ChallengeSlot::TlsAlpn01, &r.key)
            .await
            .unwrap()
            .is_none());
        let stale = ChallengeRecord {
            key: "old".into(),
            expires: now_secs() - 1,
            ..r.clone()
        };
        s.put_challenge(&stale).await.unwrap();
        assert!(s
            .challenge(ChallengeSlot::Http01, "old")
            .await
            .unwrap()
            .is_none());
        s.delete_challenge(ChallengeSlot::Http01, &r.key)
            .await
            .unwrap();
        assert!(s
            .challenge(ChallengeSlot::Http01, &r.key)
            .await
            .unwrap()
            .is_none());
        // Deleting what is not there is fine.
        s.delete_challenge(ChallengeSlot::Http01, "nope")
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn one_holder_at_a_time_and_expired_locks_free_themselves() {
        let dir = tempfile::tempdir().unwrap();
        let s = DirStore::open(dir.path()).unwrap();
        let n = CertName::new("a").unwrap();
        let ttl = Duration::from_secs(600);
        assert!(s.try_lock(&n, "node1", ttl).await.unwrap());
        assert!(!s.try_lock(&n, "node2", ttl).await.unwrap());
        assert!(s.try_lock(&n, "node1", ttl).await.unwrap(), "re-entrant");
        s.unlock(&n, "node2").await.unwrap();
        assert!(!s.try_lock(&n, "node2", ttl).await.unwrap(), "not node2's");
        s.unlock(&n, "node1").await.unwrap();
        assert!(s.try_lock(&n, "node2", ttl).await.unwrap());
        // A crashed holder's lock: expired, so another node takes it.
        let expired = LockRecord {
            holder: "node2".into(),
            expires: now_secs() - 1,
        };
        DirStore::write_json(&s.lock_path(&n), &expired).unwrap();
        assert!(s.try_lock(&n, "node3", ttl).await.unwrap());
        assert!(!s.try_lock(&n, "node2", ttl).await.unwrap());
    }
}
