//! The control store: partners, instances (their spec as JSON, with revisions), API keys
//! (hashes only), the audit trail, recent refusals and traffic counters. One query layer over
//! SQLite (the embedded default) and PostgreSQL (a fleet): `sqlx`'s `Any` driver with runtime
//! queries, so builds never need a live database. Schema migrations are versioned files in
//! `migrations/<backend>/`, applied once at open (under an advisory lock on PostgreSQL, so
//! nodes starting together do not race).

use std::time::{SystemTime, UNIX_EPOCH};

use rpaas_spec::InstanceSpec;
use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use sqlx::Row;

use crate::error::StoreError;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

const SQLITE_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../migrations/sqlite/0002_fleet.sql")),
    (3, include_str!("../migrations/sqlite/0003_users.sql")),
    (4, include_str!("../migrations/sqlite/0004_acme.sql")),
    (5, include_str!("../migrations/sqlite/0005_secrets.sql")),
];
const POSTGRES_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_init.sql")),
    (2, include_str!("../migrations/postgres/0002_fleet.sql")),
    (3, include_str!("../migrations/postgres/0003_users.sql")),
    (4, include_str!("../migrations/postgres/0004_acme.sql")),
    (5, include_str!("../migrations/postgres/0005_secrets.sql")),
];

/// The PostgreSQL channel that carries a committed revision (the payload is only the number).
pub const REVISION_CHANNEL: &str = "rpaas_revision";

/// An advisory lock id for migrations (any constant shared by all nodes).
const MIGRATION_LOCK: i64 = 0x7270_6161_7300;

/// The store.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    pub backend: Backend,
    /// The URL it was opened with (for a PostgreSQL listener).
    pub(crate) url: String,
    migrated: std::sync::Arc<tokio::sync::OnceCell<()>>,
    /// What was last read, for reads while the database is unreachable.
    pub(crate) last: crate::last_good::LastGood,
}

/// A partner (an MSP).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Partner {
    pub id: String,
    pub name: String,
    /// Milliseconds since the epoch.
    pub created: i64,
}

/// An instance as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredInstance {
    pub id: String,
    pub partner: String,
    pub spec: InstanceSpec,
    pub revision: i64,
    pub created: i64,
    pub updated: i64,
}

/// An API key as stored (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub id: String,
    pub name: String,
    pub scope: String,
    pub partner: Option<String>,
    pub prefix: String,
    pub hash: String,
    pub created: i64,
    pub expires: Option<i64>,
    pub revoked: Option<i64>,
    pub last_used: Option<i64>,
}

/// One audit row.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct AuditRow {
    pub id: i64,
    /// Milliseconds since the epoch.
    pub time: i64,
    /// The key (or user) name that made the change.
    pub actor: String,
    pub source_ip: String,
    pub action: String,
    pub instance: Option<String>,
    pub partner: Option<String>,
    #[schema(value_type = Object)]
    pub before: Option<serde_json::Value>,
    #[schema(value_type = Object)]
    pub after: Option<serde_json::Value>,
    pub revision: i64,
}

/// A refusal the node made.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct DecisionRow {
    /// Milliseconds since the epoch.
    pub time: i64,
    pub instance: String,
    pub node: String,
    pub ip: String,
    pub country: String,
    pub method: String,
    pub path: String,
    pub class: String,
    pub reason: String,
    pub status: i64,
    pub request_id: String,
}

/// Traffic of one instance on one node in one minute, with counts by kind (`reason`, `class`,
/// `country`, `tls`) of bounded keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrafficRow {
    pub instance: String,
    pub node: String,
    /// Minutes since the epoch.
    pub minute: i64,
    pub requests: i64,
    pub refusals: i64,
    pub counts: Vec<(String, String, i64)>,
}

/// A change to the instances, written with its audit row in one transaction.
#[derive(Debug, Clone)]
pub enum Change {
    Put {
        id: String,
        partner: String,
        spec: Box<InstanceSpec>,
        /// The instance's revision the writer saw (`If-Match`); `None`: create or don't care.
        if_match: Option<i64>,
        create: bool,
    },
    Delete {
        id: String,
        if_match: Option<i64>,
    },
}

/// Who made a change, for the audit trail.
#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    pub source_ip: String,
}

impl Store {
    /// Opens (creating if needed) the store at `url` (`sqlite:PATH` or `postgres://...`) and
    /// brings its schema up to date.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let store = Store::open_lazy(url).await?;
        store.ready().await?;
        Ok(store)
    }

    /// Like [`Store::open`], except that an unreachable PostgreSQL is not an error: the node
    /// starts from its cached snapshot, and the schema is brought up to date by the first
    /// query that reaches the database.
    pub async fn open_lazy(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let original = url.to_string();
        let (backend, url) = if let Some(path) = url.strip_prefix("sqlite:") {
            let path = path.trim_start_matches("//");
            if let Some(dir) = std::path::Path::new(path).parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StoreError::Open(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
            }
            (Backend::Sqlite, format!("sqlite:{path}?mode=rwc"))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            return Err(StoreError::Open(format!(
                "{url:?}: use sqlite:PATH or postgres://user:pass@host:port/db"
            )));
        };
        let mut opts = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            // A database that is down answers quickly with 503, not after a long wait.
            .acquire_timeout(std::time::Duration::from_secs(
                if backend == Backend::Sqlite { 5 } else { 2 },
            ));
        if backend == Backend::Sqlite {
            opts = opts.after_connect(|conn, _| {
                Box::pin(async move {
                    // Several writers (the node, `rpaas key create` while it runs) share one
                    // file: wait for each other instead of failing.
                    sqlx::query("PRAGMA busy_timeout = 5000")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA foreign_keys = ON")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            });
        }
        let pool = match backend {
            Backend::Sqlite => opts.connect(&url).await,
            Backend::Postgres => opts.connect_lazy(&url),
        }
        .map_err(|e| StoreError::Open(e.to_string()))?;
        let store = Store {
            pool,
            backend,
            url: original,
            migrated: Default::default(),
            last: Default::default(),
        };
        if backend == Backend::Sqlite {
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&store.pool)
                .await?;
        }
        Ok(store)
    }

    /// Brings the schema up to date once per process (a no-op after the first success).
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.migrated
            .get_or_try_init(|| self.migrate())
            .await
            .map(|_| ())
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(MIGRATION_LOCK)
                .execute(&mut *conn)
                .await?;
        }
        let result = async {
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied BIGINT NOT NULL)",
            )
            .execute(&mut *conn)
            .await?;
            let done: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|r| r.get::<i64, _>(0))
                .collect();
            let list = match self.backend {
                Backend::Sqlite => SQLITE_MIGRATIONS,
                Backend::Postgres => POSTGRES_MIGRATIONS,
            };
            for (version, sql) in list {
                if done.contains(version) {
                    continue;
                }
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                sqlx::raw_sql(*sql).execute(&mut *tx).await?;
                sqlx::query("INSERT INTO schema_migrations (version, applied) VALUES ($1, $2)")
                    .bind(*version)
                    .bind(now_ms())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
            Ok::<(), StoreError>(())
        }
        .await;
        if self.backend == Backend::Postgres {
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(MIGRATION_LOCK)
                .execute(&mut *conn)
                .await;
        }
        result
    }

    /// The store's revision: it grows by one with every committed change to instances.
    pub async fn revision(&self) -> Result<i64, StoreError> {
        self.ready().await?;
        let r = sqlx::query("SELECT value FROM meta WHERE key = 'revision'")
            .fetch_one(&self.pool)
            .await?;
        Ok(r.get(0))
    }

    pub async fn create_partner(&self, id: &str, name: &str) -> Result<Partner, StoreError> {
        let created = now_ms();
        let r = sqlx::query("INSERT INTO partners (id, name, created) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(name)
            .bind(created)
            .execute(&self.pool)
            .await;
        match r {
            Ok(_) => Ok(Partner {
                id: id.into(),
                name: name.into(),
                created,
            }),
            Err(e) if unique_violation(&e) => Err(StoreError::Conflict(format!(
                "partner {id:?} already exists"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn partners(&self) -> Result<Vec<Partner>, StoreError> {
        let rows = sqlx::query("SELECT id, name, created FROM partners ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| Partner {
                id: r.get(0),
                name: r.get(1),
                created: r.get(2),
            })
            .collect())
    }

    pub async fn partner(&self, id: &str) -> Result<Option<Partner>, StoreError> {
        Ok(self.partners().await?.into_iter().find(|p| p.id == id))
    }

    fn instance_of(r: &sqlx::any::AnyRow) -> Result<StoredInstance, StoreError> {
        let spec: String = r.get(2);
        Ok(StoredInstance {
            id: r.get(0),
            partner: r.get(1),
            spec: serde_json::from_str(&spec)
                .map_err(|e| StoreError::Corrupt(format!("instance spec: {e}")))?,
            revision: r.get(3),
            created: r.get(4),
            updated: r.get(5),
        })
    }

    /// Every stored instance, by id.
    /// Every instance; while the database is unreachable, the list last read.
    pub async fn instances(&self) -> Result<Vec<StoredInstance>, StoreError> {
        if self.last.down() {
            if let Some(v) = self.last.instances() {
                return Ok(v);
            }
        }
        let read = async {
            let rows = sqlx::query(
                "SELECT id, partner, spec, revision, created, updated FROM instances ORDER BY id",
            )
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(Self::instance_of)
                .collect::<Result<Vec<_>, _>>()
        };
        match read.await {
            Ok(v) => {
                self.last.set_instances(&v);
                Ok(v)
            }
            Err(e) if crate::last_good::unreachable(&e) => {
                self.last.saw(&e);
                self.last.instances().ok_or(e)
            }
            Err(e) => Err(e),
        }
    }

    /// One instance; while the database is unreachable, as last read.
    pub async fn instance(&self, id: &str) -> Result<Option<StoredInstance>, StoreError> {
        if self.last.down() {
            if let Some(v) = self.last.instance(id) {
                return Ok(v);
            }
        }
        let read = async {
            let row = sqlx::query(
                "SELECT id, partner, spec, revision, created, updated FROM instances WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
            row.as_ref().map(Self::instance_of).transpose()
        };
        match read.await {
            Err(e) if crate::last_good::unreachable(&e) => {
                self.last.saw(&e);
                self.last.instance(id).ok_or(e)
            }
            r => r,
        }
    }

    /// Commits `change` with its audit row and returns the new store revision. A stale
    /// `if_match` (or a create of an id that exists) is a conflict and writes nothing.
    pub async fn write(
        &self,
        change: &Change,
        actor: &Actor,
        action: &str,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> Result<i64, StoreError> {
        self.ready().await?;
        if self.last.down() {
            return Err(StoreError::Open(
                "the database is unreachable (checked moments ago); try again shortly".into(),
            ));
        }
        let mut tx = match self.pool.begin().await {
            Ok(tx) => tx,
            Err(e) => {
                let e = StoreError::from(e);
                self.last.saw(&e);
                return Err(e);
            }
        };
        let (id, if_match) = match change {
            Change::Put { id, if_match, .. } | Change::Delete { id, if_match } => (id, if_match),
        };
        // The revision row first: it serialises writers (a row lock on PostgreSQL), so two
        // writes with the same `If-Match` cannot both pass the check below.
        let revision: i64 =
            sqlx::query("UPDATE meta SET value = value + 1 WHERE key = 'revision' RETURNING value")
                .fetch_one(&mut *tx)
                .await?
                .get(0);
        let current: Option<(i64, String)> =
            sqlx::query("SELECT revision, partner FROM instances WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| (r.get(0), r.get(1)));
        if let (Some(want), Some((have, _))) = (if_match, &current) {
            if want != have {
                return Err(StoreError::Stale {
                    expected: *want,
                    current: *have,
                });
            }
        }
        if if_match.is_some() && current.is_none() {
            return Err(StoreError::NotFound(format!("instance {id:?}")));
        }
        let now = now_ms();
        let partner = match change {
            Change::Put {
                partner,
                spec,
                create,
                ..
            } => {
                let json =
                    serde_json::to_string(spec).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                if *create {
                    if current.is_some() {
                        return Err(StoreError::Conflict(format!("instance {id:?} exists")));
                    }
                    sqlx::query(
                        "INSERT INTO instances (id, partner, spec, revision, created, updated) VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(id.as_str())
                    .bind(partner.as_str())
                    .bind(json)
                    .bind(revision)
                    .bind(now)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                } else {
                    let n = sqlx::query(
                        "UPDATE instances SET spec = $1, revision = $2, updated = $3 WHERE id = $4",
                    )
                    .bind(json)
                    .bind(revision)
                    .bind(now)
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if n == 0 {
                        return Err(StoreError::NotFound(format!("instance {id:?}")));
                    }
                }
                Some(partner.clone())
            }
            Change::Delete { .. } => {
                let n = sqlx::query("DELETE FROM instances WHERE id = $1")
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n == 0 {
                    return Err(StoreError::NotFound(format!("instance {id:?}")));
                }
                current.map(|(_, p)| p)
            }
        };
        insert_audit(
            &mut tx,
            actor,
            action,
            Some(id),
            partner.as_deref(),
            before,
            after,
            revision,
        )
        .await?;
        if self.backend == Backend::Postgres {
            // Delivered to every listening node when the transaction commits.
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(REVISION_CHANNEL)
                .bind(revision.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(revision)
    }

    /// An audit row for a change that is not an instance's (keys, partners).
    pub async fn audit_event(
        &self,
        actor: &Actor,
        action: &str,
        partner: Option<&str>,
        after: Option<serde_json::Value>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let revision = self.revision().await?;
        insert_audit(&mut tx, actor, action, None, partner, None, after, revision).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Audit rows, newest first: of one instance, of one partner's instances and keys, or all.
    pub async fn audit(
        &self,
        instance: Option<&str>,
        partner: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, time, actor, source_ip, action, instance, partner, before, after, revision FROM audit \
             WHERE ($1 = '' OR instance = $1) AND ($2 = '' OR partner = $2) ORDER BY id DESC LIMIT $3",
        )
        .bind(instance.unwrap_or(""))
        .bind(partner.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let json = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
        Ok(rows
            .iter()
            .map(|r| AuditRow {
                id: r.get(0),
                time: r.get(1),
                actor: r.get(2),
                source_ip: r.get(3),
                action: r.get(4),
                instance: r.get(5),
                partner: r.get(6),
                before: json(r.get(7)),
                after: json(r.get(8)),
                revision: r.get(9),
            })
            .collect())
    }

    /// Appends refusals (the node batches them).
    pub async fn record_decisions(&self, rows: &[DecisionRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for d in rows {
            sqlx::query(
                "INSERT INTO decisions (time, instance, node, ip, country, method, path, class, reason, status, request_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(d.time)
            .bind(d.instance.as_str())
            .bind(d.node.as_str())
            .bind(d.ip.as_str())
            .bind(d.country.as_str())
            .bind(d.method.as_str())
            .bind(d.path.as_str())
            .bind(d.class.as_str())
            .bind(d.reason.as_str())
            .bind(d.status)
            .bind(d.request_id.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Recent refusals of an instance, newest first, filtered by IP, reason and time.
    pub async fn decisions(
        &self,
        instance: &str,
        ip: Option<&str>,
        reason: Option<&str>,
        since: i64,
        limit: i64,
    ) -> Result<Vec<DecisionRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT time, instance, node, ip, country, method, path, class, reason, status, request_id FROM decisions \
             WHERE instance = $1 AND ($2 = '' OR ip = $2) AND ($3 = '' OR reason = $3) AND time >= $4 \
             ORDER BY time DESC, id DESC LIMIT $5",
        )
        .bind(instance)
        .bind(ip.unwrap_or(""))
        .bind(reason.unwrap_or(""))
        .bind(since)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| DecisionRow {
                time: r.get(0),
                instance: r.get(1),
                node: r.get(2),
                ip: r.get(3),
                country: r.get(4),
                method: r.get(5),
                path: r.get(6),
                class: r.get(7),
                reason: r.get(8),
                status: r.get(9),
                request_id: r.get(10),
            })
            .collect())
    }

    /// Adds traffic counters (upserting per instance, node and minute).
    pub async fn add_traffic(&self, rows: &[TrafficRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for t in rows {
            sqlx::query(
                "INSERT INTO traffic (instance, node, minute, requests, refusals) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (instance, node, minute) DO UPDATE SET requests = traffic.requests + excluded.requests, \
                 refusals = traffic.refusals + excluded.refusals",
            )
            .bind(t.instance.as_str())
            .bind(t.node.as_str())
            .bind(t.minute)
            .bind(t.requests)
            .bind(t.refusals)
            .execute(&mut *tx)
            .await?;
            for (kind, key, n) in &t.counts {
                sqlx::query(
                    "INSERT INTO traffic_counts (instance, node, minute, kind, key, n) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (instance, node, minute, kind, key) DO UPDATE SET n = traffic_counts.n + excluded.n",
                )
                .bind(t.instance.as_str())
                .bind(t.node.as_str())
                .bind(t.minute)
                .bind(kind.as_str())
                .bind(key.as_str())
                .bind(*n)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Traffic of an instance since `since_minute`, every node summed, per minute.
    pub async fn traffic(
        &self,
        instance: &str,
        since_minute: i64,
    ) -> Result<Vec<(i64, i64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT minute, SUM(requests), SUM(refusals) FROM traffic WHERE instance = $1 AND minute >= $2 \
             GROUP BY minute ORDER BY minute",
        )
        .bind(instance)
        .bind(since_minute)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    /// Counts of one kind (`reason`, `class`, `country`, `tls`) since `since_minute`.
    pub async fn traffic_counts(
        &self,
        instance: &str,
        kind: &str,
        since_minute: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT key, SUM(n) FROM traffic_counts WHERE instance = $1 AND kind = $2 AND minute >= $3 \
             GROUP BY key ORDER BY SUM(n) DESC, key",
        )
        .bind(instance)
        .bind(kind)
        .bind(since_minute)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Drops refusals and traffic older than `before` (and refusals beyond the newest
    /// `max_decisions`), audit rows older than `audit_before`, and expired bans.
    pub async fn trim(
        &self,
        before: i64,
        max_decisions: i64,
        audit_before: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM audit WHERE time < $1")
            .bind(audit_before)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM decisions WHERE time < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "DELETE FROM decisions WHERE id <= (SELECT COALESCE(MAX(id), 0) - $1 FROM decisions)",
        )
        .bind(max_decisions)
        .execute(&self.pool)
        .await?;
        let minute = before / 60_000;
        sqlx::query("DELETE FROM traffic WHERE minute < $1")
            .bind(minute)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM traffic_counts WHERE minute < $1")
            .bind(minute)
            .execute(&self.pool)
            .await?;
        self.trim_bans().await
    }
}

#[allow(clippy::too_many_arguments)]
async fn insert_audit(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    actor: &Actor,
    action: &str,
    instance: Option<&str>,
    partner: Option<&str>,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
    revision: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit (time, actor, source_ip, action, instance, partner, before, after, revision) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(now_ms())
    .bind(actor.name.as_str())
    .bind(actor.source_ip.as_str())
    .bind(action)
    .bind(instance.map(str::to_string))
    .bind(partner.map(str::to_string))
    .bind(before.map(|v| v.to_string()))
    .bind(after.map(|v| v.to_string()))
    .bind(revision)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(crate) fn unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            d.is_unique_violation() || d.message().to_ascii_lowercase().contains("unique")
        }
        _ => false,
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
