//! A fleet of nodes on one store: each node's heartbeat (id, version, the revision it serves),
//! the bans every node shares (a client banned on one node is refused by all, the way a
//! decision stream works), and on PostgreSQL the `LISTEN/NOTIFY` channel that tells every node
//! a change was committed (the payload is only the revision number; a periodic poll covers a
//! missed notification or a reconnect).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use sqlx::Row;
use tokio::sync::mpsc;

use crate::api::Auth;
use crate::error::{ApiError, ErrorBody, StoreError};
use crate::store::{now_ms, Backend, Store, REVISION_CHANNEL};
use crate::Control;

/// A node as the store last heard from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct NodeRow {
    pub id: String,
    pub version: String,
    /// The store revision the node serves.
    pub applied_revision: i64,
    /// Milliseconds since the epoch.
    pub started: i64,
    pub last_heartbeat: i64,
}

/// A ban one node decided, for every node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanRow {
    pub id: i64,
    pub ip: IpAddr,
    /// Milliseconds since the epoch.
    pub until: i64,
    pub node: String,
}

impl Store {
    /// Records that node `id` is alive and serves `revision`.
    pub async fn heartbeat(
        &self,
        id: &str,
        version: &str,
        revision: i64,
        started: i64,
    ) -> Result<(), StoreError> {
        self.ready().await?;
        sqlx::query(
            "INSERT INTO nodes (id, version, revision, started, heartbeat) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO UPDATE SET version = excluded.version, revision = excluded.revision, \
             started = excluded.started, heartbeat = excluded.heartbeat",
        )
        .bind(id)
        .bind(version)
        .bind(revision)
        .bind(started)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every node that ever sent a heartbeat.
    pub async fn nodes(&self) -> Result<Vec<NodeRow>, StoreError> {
        self.ready().await?;
        Ok(
            sqlx::query("SELECT id, version, revision, started, heartbeat FROM nodes ORDER BY id")
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| NodeRow {
                    id: r.get(0),
                    version: r.get(1),
                    applied_revision: r.get(2),
                    started: r.get(3),
                    last_heartbeat: r.get(4),
                })
                .collect(),
        )
    }

    /// Shares a ban with every node.
    pub async fn add_ban(&self, ip: IpAddr, until: i64, node: &str) -> Result<(), StoreError> {
        self.ready().await?;
        sqlx::query("INSERT INTO bans (ip, until, node, time) VALUES ($1, $2, $3, $4)")
            .bind(ip.to_string())
            .bind(until)
            .bind(node)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Bans recorded after `after` (an id) that have not expired, oldest first, at most
    /// `limit`.
    pub async fn bans_since(&self, after: i64, limit: i64) -> Result<Vec<BanRow>, StoreError> {
        self.ready().await?;
        let rows = sqlx::query(
            "SELECT id, ip, until, node FROM bans WHERE id > $1 AND until > $2 ORDER BY id LIMIT $3",
        )
        .bind(after)
        .bind(now_ms())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(BanRow {
                    id: r.get(0),
                    ip: r.get::<String, _>(1).parse().ok()?,
                    until: r.get(2),
                    node: r.get(3),
                })
            })
            .collect())
    }

    /// The newest ban id (a node starting up reads the live bans, then follows from here).
    pub async fn last_ban_id(&self) -> Result<i64, StoreError> {
        self.ready().await?;
        let r = sqlx::query("SELECT COALESCE(MAX(id), 0) FROM bans")
            .fetch_one(&self.pool)
            .await?;
        Ok(r.get(0))
    }

    /// Drops expired bans.
    pub async fn trim_bans(&self) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM bans WHERE until < $1")
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Sends every revision committed by any node, as PostgreSQL announces it, until the receiver
/// is dropped; after a reconnect it sends `None` (a notification may have been missed: read
/// the store). Returns at once on SQLite (one node per file: the API applies its own
/// changes, the poll covers `rpaas` commands run beside it).
pub async fn watch(store: Store, tx: mpsc::Sender<Option<i64>>) {
    if store.backend != Backend::Postgres {
        return;
    }
    let mut backoff = Duration::from_millis(200);
    loop {
        match sqlx::postgres::PgListener::connect(&store.url).await {
            Ok(mut l) => match l.listen(REVISION_CHANNEL).await {
                Ok(()) => {
                    backoff = Duration::from_millis(200);
                    tracing::info!(target: "rpaas::control", event = "listening_for_changes", "following the store's changes");
                    if tx.send(None).await.is_err() {
                        return;
                    }
                    loop {
                        match l.try_recv().await {
                            Ok(Some(n)) => {
                                if tx.send(n.payload().parse().ok()).await.is_err() {
                                    return;
                                }
                            }
                            // The connection was lost (sqlx reconnects on the next call).
                            Ok(None) => {
                                if tx.send(None).await.is_err() {
                                    return;
                                }
                            }
                            Err(e) => {
                                tracing::warn!(target: "rpaas::control", error = %e, "lost the store's change channel");
                                break;
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(target: "rpaas::control", error = %e, "cannot listen for the store's changes")
                }
            },
            Err(e) => {
                tracing::debug!(target: "rpaas::control", error = %e, "cannot reach the store for its changes")
            }
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// `GET /v1/nodes`: a node and whether it serves what the store holds.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NodeView {
    pub id: String,
    pub version: String,
    pub applied_revision: i64,
    /// Milliseconds since the epoch.
    pub started: i64,
    pub last_heartbeat: i64,
    /// Revisions behind the store (0: in step).
    pub drift: i64,
    pub in_step: bool,
    /// A heartbeat within the last 5 s.
    pub alive: bool,
}

/// How old a heartbeat may be for the node to count as alive.
pub const ALIVE_WITHIN_MS: i64 = 5_000;

#[utoipa::path(get, path = "/v1/nodes", tag = "fleet",
    responses((status = 200, body = [NodeView]), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("key" = [])))]
pub async fn list_nodes(
    State(c): State<Arc<Control>>,
    who: Auth,
) -> Result<Json<Vec<NodeView>>, ApiError> {
    who.operator_only()?;
    let revision = c.store.revision().await?;
    let now = now_ms();
    Ok(Json(
        c.store
            .nodes()
            .await?
            .into_iter()
            .map(|n| NodeView {
                drift: (revision - n.applied_revision).max(0),
                in_step: n.applied_revision == revision,
                alive: now - n.last_heartbeat <= ALIVE_WITHIN_MS,
                id: n.id,
                version: n.version,
                applied_revision: n.applied_revision,
                started: n.started,
                last_heartbeat: n.last_heartbeat,
            })
            .collect(),
    ))
}
