//! The API keys' table: hashes and prefixes only (docs/api.md). Key lookups fall back to the
//! keys checked recently while the database is unreachable (`last_good`).

use sqlx::Row;

use crate::error::StoreError;
use crate::store::{now_ms, Store, StoredKey};

impl Store {
    pub async fn insert_key(&self, k: &StoredKey) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_keys (id, name, scope, partner, prefix, hash, created, expires, revoked, last_used) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL)",
        )
        .bind(k.id.as_str())
        .bind(k.name.as_str())
        .bind(k.scope.as_str())
        .bind(k.partner.clone())
        .bind(k.prefix.as_str())
        .bind(k.hash.as_str())
        .bind(k.created)
        .bind(k.expires)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    fn key_of(r: &sqlx::any::AnyRow) -> StoredKey {
        StoredKey {
            id: r.get(0),
            name: r.get(1),
            scope: r.get(2),
            partner: r.get(3),
            prefix: r.get(4),
            hash: r.get(5),
            created: r.get(6),
            expires: r.get(7),
            revoked: r.get(8),
            last_used: r.get(9),
        }
    }

    /// Keys, of one partner or all.
    pub async fn keys(&self, partner: Option<&str>) -> Result<Vec<StoredKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, scope, partner, prefix, hash, created, expires, revoked, last_used \
             FROM api_keys WHERE ($1 = '' OR partner = $1) ORDER BY created",
        )
        .bind(partner.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(Self::key_of).collect())
    }

    /// The key with this prefix; while the database is unreachable, one checked against it
    /// in the last minutes (`last_good::KEY_GRACE_MS`).
    pub async fn key_by_prefix(&self, prefix: &str) -> Result<Option<StoredKey>, StoreError> {
        if self.last.down() {
            if let Some(k) = self.last.key(prefix) {
                return Ok(Some(k));
            }
        }
        let row = sqlx::query(
            "SELECT id, name, scope, partner, prefix, hash, created, expires, revoked, last_used \
             FROM api_keys WHERE prefix = $1",
        )
        .bind(prefix)
        .fetch_optional(&self.pool)
        .await;
        match row {
            Ok(row) => {
                let k = row.as_ref().map(Self::key_of);
                if let Some(k) = &k {
                    self.last.set_key(k);
                }
                Ok(k)
            }
            Err(e) => {
                let e = StoreError::from(e);
                self.last.saw(&e);
                if crate::last_good::unreachable(&e) {
                    if let Some(k) = self.last.key(prefix) {
                        return Ok(Some(k));
                    }
                }
                Err(e)
            }
        }
    }

    pub async fn key(&self, id: &str) -> Result<Option<StoredKey>, StoreError> {
        let row = sqlx::query(
            "SELECT id, name, scope, partner, prefix, hash, created, expires, revoked, last_used \
             FROM api_keys WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(Self::key_of))
    }

    /// Revokes a key now; `false` if there is no such key (or it was revoked already).
    pub async fn revoke_key(&self, id: &str) -> Result<bool, StoreError> {
        let n = sqlx::query("UPDATE api_keys SET revoked = $1 WHERE id = $2 AND revoked IS NULL")
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    pub async fn touch_key(&self, id: &str) -> Result<(), StoreError> {
        if self.last.down() {
            return Ok(());
        }
        let r = sqlx::query("UPDATE api_keys SET last_used = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await;
        if let Err(e) = r {
            let e = StoreError::from(e);
            self.last.saw(&e);
            return Err(e);
        }
        Ok(())
    }
}
