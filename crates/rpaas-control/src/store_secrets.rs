//! Secrets a fleet's nodes share (the TLS ticket-key secret): one row per name, created by
//! the first node that asks and read by every other, so all of them derive the same keys.

use sqlx::Row;

use crate::error::StoreError;
use crate::store::{now_ms, Store};

impl Store {
    /// The secret called `name`: the stored one, or `fresh` if there was none (stored, unless
    /// another node stored its own first, which then wins for everybody).
    pub async fn shared_secret(&self, name: &str, fresh: &str) -> Result<String, StoreError> {
        self.ready().await?;
        sqlx::query(
            "INSERT INTO node_secrets (name, value, created) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(fresh)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        let row = sqlx::query("SELECT value FROM node_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.get(0))
    }
}
