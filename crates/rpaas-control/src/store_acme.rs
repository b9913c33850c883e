//! The control store as rpaas-acme's [`AcmeStore`]: with one PostgreSQL behind a fleet, the
//! account, the certificates, the backoff state and the pending challenge responses are the
//! same for every node, so any node answers the CA's validation and every node serves the
//! pair one of them obtained. The issuer lock is a lease row taken with one conditional
//! upsert (free, expired, or already ours), so two nodes never order the same name at once and
//! a crashed holder's lease frees itself.

use std::time::Duration;

use async_trait::async_trait;
use rpaas_acme::store::{AcmeStore, CertName, ChallengeRecord, ChallengeSlot, KeyKind};
use rpaas_acme::{IssueState, StoreError as AcmeStoreError, StoredCert};
use sqlx::Row;

use crate::store::{now_ms, Store};

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> AcmeStoreError {
    AcmeStoreError::Backend(Box::new(e))
}

fn corrupt(what: &str, e: serde_json::Error) -> AcmeStoreError {
    AcmeStoreError::Corrupt {
        what: what.to_string(),
        reason: e.to_string(),
    }
}

fn to_json<T: serde::Serialize>(what: &str, v: &T) -> Result<String, AcmeStoreError> {
    serde_json::to_string(v).map_err(|e| corrupt(what, e))
}

impl Store {
    async fn acme_ready(&self) -> Result<(), AcmeStoreError> {
        self.ready().await.map_err(backend)
    }
}

#[async_trait]
impl AcmeStore for Store {
    async fn account(&self, directory: &str) -> Result<Option<String>, AcmeStoreError> {
        self.acme_ready().await?;
        let row = sqlx::query("SELECT credentials FROM acme_accounts WHERE directory = $1")
            .bind(directory)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn put_account(
        &self,
        directory: &str,
        credentials_json: &str,
    ) -> Result<(), AcmeStoreError> {
        self.acme_ready().await?;
        sqlx::query(
            "INSERT INTO acme_accounts (directory, credentials) VALUES ($1, $2) \
             ON CONFLICT (directory) DO UPDATE SET credentials = excluded.credentials",
        )
        .bind(directory)
        .bind(credentials_json)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn cert(
        &self,
        name: &CertName,
        kind: KeyKind,
    ) -> Result<Option<StoredCert>, AcmeStoreError> {
        self.acme_ready().await?;
        let row = sqlx::query("SELECT data FROM acme_certs WHERE name = $1 AND kind = $2")
            .bind(name.as_str())
            .bind(kind.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|r| {
            serde_json::from_str(&r.get::<String, _>(0))
                .map_err(|e| corrupt(&format!("certificate {name}/{}", kind.as_str()), e))
        })
        .transpose()
    }

    async fn put_cert(
        &self,
        name: &CertName,
        kind: KeyKind,
        cert: &StoredCert,
    ) -> Result<(), AcmeStoreError> {
        self.acme_ready().await?;
        sqlx::query(
            "INSERT INTO acme_certs (name, kind, data) VALUES ($1, $2, $3) \
             ON CONFLICT (name, kind) DO UPDATE SET data = excluded.data",
        )
        .bind(name.as_str())
        .bind(kind.as_str())
        .bind(to_json("certificate", cert)?)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn issue_state(&self, name: &CertName) -> Result<Option<IssueState>, AcmeStoreError> {
        self.acme_ready().await?;
        let row = sqlx::query("SELECT data FROM acme_issue WHERE name = $1")
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|r| {
            serde_json::from_str(&r.get::<String, _>(0))
                .map_err(|e| corrupt(&format!("issue state {name}"), e))
        })
        .transpose()
    }

    async fn put_issue_state(
        &self,
        name: &CertName,
        state: &IssueState,
    ) -> Result<(), AcmeStoreError> {
        self.acme_ready().await?;
        sqlx::query(
            "INSERT INTO acme_issue (name, data) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET data = excluded.data",
        )
        .bind(name.as_str())
        .bind(to_json("issue state", state)?)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn put_challenge(&self, record: &ChallengeRecord) -> Result<(), AcmeStoreError> {
        self.acme_ready().await?;
        let expires = i64::try_from(record.expires).unwrap_or(i64::MAX);
        // Old responses go first: the table holds only what a CA may still ask for.
        sqlx::query("DELETE FROM acme_challenges WHERE expires < $1")
            .bind(now_ms() / 1000)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        sqlx::query(
            "INSERT INTO acme_challenges (slot, key, data, expires) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (slot, key) DO UPDATE SET data = excluded.data, expires = excluded.expires",
        )
        .bind(record.slot.as_str())
        .bind(&record.key)
        .bind(to_json("challenge", record)?)
        .bind(expires)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn challenge(
        &self,
        slot: ChallengeSlot,
        key: &str,
    ) -> Result<Option<ChallengeRecord>, AcmeStoreError> {
        self.acme_ready().await?;
        let row = sqlx::query(
            "SELECT data FROM acme_challenges WHERE slot = $1 AND key = $2 AND expires >= $3",
        )
        .bind(slot.as_str())
        .bind(key)
        .bind(now_ms() / 1000)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.map(|r| {
            serde_json::from_str(&r.get::<String, _>(0)).map_err(|e| corrupt("challenge", e))
        })
        .transpose()
    }

    async fn delete_challenge(&self, slot: ChallengeSlot, key: &str) -> Result<(), AcmeStoreError> {
        self.acme_ready().await?;
        sqlx::query("DELETE FROM acme_challenges WHERE slot = $1 AND key = $2")
            .bind(slot.as_str())
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn try_lock(
        &self,
        name: &CertName,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, AcmeStoreError> {
        self.acme_ready().await?;
        let now = now_ms();
        let expires = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        // One statement: insert, or take over a lease that is ours or has run out. A lease
        // held by someone else and still running is left alone (the WHERE fails).
        sqlx::query(
            "INSERT INTO acme_locks (name, holder, expires) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires = excluded.expires \
             WHERE acme_locks.holder = excluded.holder OR acme_locks.expires < $4",
        )
        .bind(name.as_str())
        .bind(holder)
        .bind(expires)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        let row = sqlx::query("SELECT holder FROM acme_locks WHERE name = $1")
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        Ok(row.is_some_and(|r| r.get::<String, _>(0) == holder))
    }

    async fn unlock(&self, name: &CertName, holder: &str) -> Result<(), AcmeStoreError> {
        self.acme_ready().await?;
        sqlx::query("DELETE FROM acme_locks WHERE name = $1 AND holder = $2")
            .bind(name.as_str())
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}
