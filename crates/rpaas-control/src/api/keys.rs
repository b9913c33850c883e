//! `/v1/partners` and `/v1/keys`: partners (operator keys), and API keys — operators manage
//! every key, a partner key lists, creates and revokes its own partner's keys.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::Auth;
use crate::auth::{new_key, Scope};
use crate::error::{ApiError, ErrorBody, FieldError};
use crate::store::{now_ms, Partner, StoredKey};
use crate::Control;

/// `POST /v1/partners`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPartner {
    /// 1-64 characters of `[a-z0-9_-]`.
    pub id: String,
    pub name: String,
}

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

#[utoipa::path(get, path = "/v1/partners", tag = "partners",
    responses((status = 200, body = [Partner]), (status = 403, body = ErrorBody)),
    security(("key" = [])))]
pub async fn list_partners(
    State(c): State<Arc<Control>>,
    who: Auth,
) -> Result<Json<Vec<Partner>>, ApiError> {
    who.operator_only()?;
    Ok(Json(c.store.partners().await?))
}

#[utoipa::path(post, path = "/v1/partners", tag = "partners", request_body = NewPartner,
    responses((status = 201, body = Partner), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("key" = [])))]
pub async fn create_partner(
    State(c): State<Arc<Control>>,
    who: Auth,
    Json(body): Json<serde_json::Value>,
) -> Result<Response, ApiError> {
    who.operator_only()?;
    let p: NewPartner = rpaas_spec::from_value(body).map_err(|e| super::shape("", e))?;
    let mut errors = Vec::new();
    if !is_id(&p.id) {
        errors.push(FieldError {
            field: "id".into(),
            reason: "1-64 characters of a-z, 0-9, '-' and '_'".into(),
        });
    }
    if p.name.trim().is_empty() || p.name.len() > 200 {
        errors.push(FieldError {
            field: "name".into(),
            reason: "1-200 characters".into(),
        });
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let partner = c.store.create_partner(&p.id, &p.name).await?;
    c.store
        .audit_event(
            &who.actor(),
            "partner.create",
            Some(&p.id),
            serde_json::to_value(&partner).ok(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(partner)).into_response())
}

/// A key as listed (never the key itself).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyView {
    pub id: String,
    pub name: String,
    /// `operator` or `partner`.
    pub scope: String,
    pub partner: Option<String>,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    /// Milliseconds since the epoch.
    pub created: i64,
    pub expires: Option<i64>,
    pub last_used: Option<i64>,
    pub revoked: Option<i64>,
}

impl From<&StoredKey> for KeyView {
    fn from(k: &StoredKey) -> Self {
        Self {
            id: k.id.clone(),
            name: k.name.clone(),
            scope: k.scope.clone(),
            partner: k.partner.clone(),
            prefix: k.prefix.clone(),
            created: k.created,
            expires: k.expires,
            last_used: k.last_used,
            revoked: k.revoked,
        }
    }
}

/// `POST /v1/keys`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    pub name: String,
    /// `operator` or `partner` (a partner key may create only `partner`).
    pub scope: String,
    /// Required for `partner` keys (a partner key: its own partner).
    pub partner: Option<String>,
    /// How long the key is valid, e.g. `"90d"`; none: until revoked.
    pub expires: Option<String>,
}

/// A new key: shown once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    /// The key. It is not stored and cannot be shown again.
    pub key: String,
    #[serde(flatten)]
    pub info: KeyView,
}

#[utoipa::path(get, path = "/v1/keys", tag = "keys",
    responses((status = 200, body = [KeyView])), security(("key" = [])))]
pub async fn list_keys(
    State(c): State<Arc<Control>>,
    who: Auth,
) -> Result<Json<Vec<KeyView>>, ApiError> {
    let keys = c.store.keys(who.0.scope.partner()).await?;
    Ok(Json(keys.iter().map(KeyView::from).collect()))
}

/// Validates a key request into (name, scope, expiry).
pub fn key_request(
    who: Option<&Scope>,
    k: &NewKey,
    partner_exists: bool,
) -> Result<(Scope, Option<i64>), ApiError> {
    let mut errors = Vec::new();
    if k.name.trim().is_empty() || k.name.len() > 100 {
        errors.push(FieldError {
            field: "name".into(),
            reason: "1-100 characters".into(),
        });
    }
    let scope = match (k.scope.as_str(), &k.partner) {
        ("operator", None) => Some(Scope::Operator),
        ("operator", Some(_)) => {
            errors.push(FieldError {
                field: "partner".into(),
                reason: "an operator key belongs to no partner".into(),
            });
            None
        }
        ("partner", Some(p)) => Some(Scope::Partner(p.clone())),
        ("partner", None) => {
            errors.push(FieldError {
                field: "partner".into(),
                reason: "a partner key needs its partner".into(),
            });
            None
        }
        (other, _) => {
            errors.push(FieldError {
                field: "scope".into(),
                reason: format!("{other:?}: use \"operator\" or \"partner\""),
            });
            None
        }
    };
    if matches!(scope, Some(Scope::Partner(_))) && !partner_exists {
        errors.push(FieldError {
            field: "partner".into(),
            reason: "no such partner".into(),
        });
    }
    let expires = match &k.expires {
        None => None,
        Some(t) => match humantime::parse_duration(t) {
            Ok(d) if !d.is_zero() => Some(now_ms() + d.as_millis() as i64),
            _ => {
                errors.push(FieldError {
                    field: "expires".into(),
                    reason: format!("{t:?} is not a duration like \"90d\""),
                });
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let scope = scope.unwrap_or(Scope::Operator);
    // A partner key creates only its own partner's keys: it must never mint anything wider.
    if let Some(Scope::Partner(mine)) = who {
        if scope != Scope::Partner(mine.clone()) {
            return Err(ApiError::forbidden(
                "scope",
                "a partner key may create only keys of its own partner",
            ));
        }
    }
    Ok((scope, expires))
}

#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = NewKey,
    responses((status = 201, body = CreatedKey), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("key" = [])))]
pub async fn create_key(
    State(c): State<Arc<Control>>,
    who: Auth,
    Json(body): Json<serde_json::Value>,
) -> Result<Response, ApiError> {
    let k: NewKey = rpaas_spec::from_value(body).map_err(|e| super::shape("", e))?;
    let exists = match &k.partner {
        Some(p) => c.store.partner(p).await?.is_some(),
        None => false,
    };
    let (scope, expires) = key_request(Some(&who.0.scope), &k, exists)?;
    let (text, stored) = new_key(&k.name, &scope, expires)?;
    c.store.insert_key(&stored).await?;
    let info = KeyView::from(&stored);
    c.store
        .audit_event(
            &who.actor(),
            "key.create",
            scope.partner(),
            serde_json::to_value(&info).ok(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(CreatedKey { key: text, info })).into_response())
}

#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "keys", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("key" = [])))]
pub async fn revoke_key(
    State(c): State<Arc<Control>>,
    who: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let Some(k) = c.store.key(&id).await? else {
        return Err(ApiError::not_found("key"));
    };
    if !who.0.sees(k.partner.as_deref()) || (!who.0.is_operator() && k.partner.is_none()) {
        return Err(ApiError::not_found("key"));
    }
    if !c.store.revoke_key(&id).await? {
        return Err(ApiError::not_found("key"));
    }
    c.store
        .audit_event(
            &who.actor(),
            "key.revoke",
            k.partner.as_deref(),
            serde_json::to_value(KeyView::from(&k)).ok(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
