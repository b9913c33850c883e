//! What a partner sees of its instance: status (traffic and refusals of the last hour, agents,
//! TLS versions), recent refusals, the live node's explain, and the audit trail.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::instances::visible;
use super::Auth;
use crate::error::{ApiError, ErrorBody};
use crate::store::{now_ms, AuditRow, DecisionRow};
use crate::{Control, ExplainQuery};

/// `GET /v1/instances/{id}/status`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Status {
    pub id: String,
    /// The instance's revision, and the store revision the answering node serves.
    pub revision: i64,
    pub applied_revision: i64,
    /// The answering node.
    pub node: String,
    /// The last hour (or `?hours=N`), every node together.
    pub last_hour: Hour,
    /// Distinct agent addresses the answering node saw in the last hour.
    pub agents_seen: u64,
    /// Requests by TLS version in the last hour (how many legacy clients remain).
    pub tls_versions: BTreeMap<String, i64>,
    /// The certificate the answering node serves: `source` (acme, file, self-signed),
    /// `state` (pending, valid, renewing, failed), `not_after`, `last_error`, `next_attempt`.
    #[schema(value_type = Object)]
    pub cert: Option<serde_json::Value>,
}

/// Traffic of one hour.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Hour {
    pub requests: i64,
    pub refusals: i64,
    pub refusals_by_reason: BTreeMap<String, i64>,
    pub refusals_by_class: BTreeMap<String, i64>,
    pub refusals_by_country: BTreeMap<String, i64>,
    /// Per minute: (minute since the epoch, requests, refusals).
    pub per_minute: Vec<(i64, i64, i64)>,
}

/// Traffic of an instance since `since_minute`.
pub async fn traffic(c: &Control, id: &str, since_minute: i64) -> Result<Hour, ApiError> {
    let per_minute = c.store.traffic(id, since_minute).await?;
    let counts = |kind: &'static str| async move {
        c.store
            .traffic_counts(id, kind, since_minute)
            .await
            .map(|v| v.into_iter().collect::<BTreeMap<_, _>>())
    };
    Ok(Hour {
        requests: per_minute.iter().map(|m| m.1).sum(),
        refusals: per_minute.iter().map(|m| m.2).sum(),
        refusals_by_reason: counts("reason").await?,
        refusals_by_class: counts("class").await?,
        refusals_by_country: counts("country").await?,
        per_minute,
    })
}

#[utoipa::path(get, path = "/v1/instances/{id}/status", tag = "observe", params(("id" = String, Path), Window),
    responses((status = 200, body = Status), (status = 404, body = ErrorBody)), security(("key" = [])))]
pub async fn status(
    State(c): State<Arc<Control>>,
    who: Auth,
    Path(id): Path<String>,
    Query(w): Query<Window>,
) -> Result<Json<Status>, ApiError> {
    let revision = match visible(&c, &who, &id).await? {
        Ok(i) => i.revision,
        Err(_) => 0,
    };
    let since = now_ms() / 60_000 - 60 * w.hours.unwrap_or(1).clamp(1, 168);
    Ok(Json(Status {
        id: id.clone(),
        revision,
        applied_revision: c.node.applied_revision(),
        node: c.node.node_id(),
        last_hour: traffic(&c, &id, since).await?,
        agents_seen: c.node.agents_seen(&id),
        tls_versions: c
            .store
            .traffic_counts(&id, "tls", since)
            .await?
            .into_iter()
            .collect(),
        cert: c.node.cert(&id),
    }))
}

/// `GET /v1/instances/{id}/status?hours=N`: the window (1 to 168 hours, default 1).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub hours: Option<i64>,
}

/// `GET /v1/instances/{id}/decisions` filters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DecisionFilter {
    /// Only this client address.
    pub ip: Option<String>,
    /// Only this reason code (e.g. `acl:web_control_center`).
    pub reason: Option<String>,
    /// Milliseconds since the epoch (default: 24 hours ago).
    pub since: Option<i64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/v1/instances/{id}/decisions", tag = "observe",
    params(("id" = String, Path), DecisionFilter),
    responses((status = 200, body = [DecisionRow]), (status = 404, body = ErrorBody)), security(("key" = [])))]
pub async fn decisions(
    State(c): State<Arc<Control>>,
    who: Auth,
    Path(id): Path<String>,
    Query(f): Query<DecisionFilter>,
) -> Result<Json<Vec<DecisionRow>>, ApiError> {
    let _visible = visible(&c, &who, &id).await?;
    let since = f.since.unwrap_or_else(|| now_ms() - 24 * 3_600_000);
    let limit = f.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(
        c.store
            .decisions(&id, f.ip.as_deref(), f.reason.as_deref(), since, limit)
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/instances/{id}/explain", tag = "observe",
    params(("id" = String, Path)), request_body = ExplainQuery,
    responses((status = 200, body = Object, description = "the live node's answer, as `rpaas explain --json`"), (status = 404, body = ErrorBody)),
    security(("key" = [])))]
pub async fn explain(
    State(c): State<Arc<Control>>,
    who: Auth,
    Path(id): Path<String>,
    Json(body): Json<serde_json::Value>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let _visible = visible(&c, &who, &id).await?;
    let q: ExplainQuery = rpaas_spec::from_value(body).map_err(|e| super::shape("", e))?;
    c.node
        .explain(&id, &q)
        .map(Json)
        .ok_or_else(|| ApiError::not_found("instance on this node"))
}

/// Audit filters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditFilter {
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/v1/instances/{id}/audit", tag = "observe",
    params(("id" = String, Path), AuditFilter),
    responses((status = 200, body = [AuditRow]), (status = 404, body = ErrorBody)), security(("key" = [])))]
pub async fn instance_audit(
    State(c): State<Arc<Control>>,
    who: Auth,
    Path(id): Path<String>,
    Query(f): Query<AuditFilter>,
) -> Result<Json<Vec<AuditRow>>, ApiError> {
    let _visible = visible(&c, &who, &id).await?;
    let limit = f.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(c.store.audit(Some(&id), None, limit).await?))
}

#[utoipa::path(get, path = "/v1/audit", tag = "observe", params(AuditFilter),
    responses((status = 200, body = [AuditRow])), security(("key" = [])))]
pub async fn audit(
    State(c): State<Arc<Control>>,
    who: Auth,
    Query(f): Query<AuditFilter>,
) -> Result<Json<Vec<AuditRow>>, ApiError> {
    let limit = f.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(
        c.store.audit(None, who.0.scope.partner(), limit).await?,
    ))
}
