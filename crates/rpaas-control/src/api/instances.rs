//! `/v1/instances`: provision, read, change and delete instances, and their partner-editable
//! ACL. Every write is validated against the whole node config before it is stored, carries
//! the instance's revision (`ETag`, `If-Match`), is audited, and is applied at once.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rpaas_spec::{AclSpec, Files, InstanceSpec, ACL_FIELDS, OPERATOR_FIELDS};
use serde::Serialize;

use super::{etag, if_match, shape, validate, Auth};
use crate::error::{ApiError, ErrorBody, FieldError};
use crate::store::{Change, StoredInstance};
use crate::Control;

/// An instance as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InstanceView {
    /// 16 hex digits for provisioned instances; the file's id for `source = "file"`.
    pub id: String,
    pub partner: Option<String>,
    /// `api` (in the store, writable) or `file` (from the node's TOML files, read-only).
    pub source: &'static str,
    pub revision: i64,
    pub hostnames: Vec<String>,
    /// `self-signed`, `files`, or `acme (self-signed until issued)`.
    pub certificate: String,
    /// The instance spec (docs/config.md `[[instance]]`); secrets of the operator are shown
    /// as `***`.
    #[schema(value_type = Object)]
    pub spec: InstanceSpec,
}

fn certificate(spec: &InstanceSpec) -> String {
    match &spec.cert {
        None => "self-signed".into(),
        Some(Files::One(c)) if c == "acme" => "acme (self-signed until issued)".into(),
        Some(_) => "files".into(),
    }
}

/// The spec with operator secrets replaced (for partners, the audit and responses).
pub(crate) fn redacted(spec: &InstanceSpec) -> InstanceSpec {
    let mut s = spec.clone();
    if s.connector_secret.is_some() {
        s.connector_secret = Some("***".into());
    }
    for r in &mut s.restrict {
        if r.secret.is_some() {
            r.secret = Some("***".into());
        }
    }
    s
}

fn view(i: &StoredInstance) -> InstanceView {
    InstanceView {
        id: i.id.clone(),
        partner: Some(i.partner.clone()),
        source: "api",
        revision: i.revision,
        hostnames: i.spec.hostnames.clone(),
        certificate: certificate(&i.spec),
        spec: redacted(&i.spec),
    }
}

fn with_etag(status: StatusCode, revision: i64, body: impl Serialize) -> Response {
    let mut r = (status, Json(body)).into_response();
    r.headers_mut().insert("etag", etag(revision));
    r
}

/// The instance `id` as `who` may see it: a partner sees only its own (anything else is 404,
/// file instances included).
pub(crate) async fn visible(
    c: &Control,
    who: &Auth,
    id: &str,
) -> Result<Result<StoredInstance, InstanceSpec>, ApiError> {
    if let Some(i) = c.store.instance(id).await? {
        if who.0.sees(Some(&i.partner)) {
            return Ok(Ok(i));
        }
        return Err(ApiError::not_found("instance"));
    }
    if who.0.is_operator() {
        if let Ok(doc) = c.node.base() {
            if let Some(f) = doc
                .instances
                .into_iter()
                .find(|s| s.spec.id.as_deref() == Some(id))
            {
                return Ok(Err(f.spec));
            }
        }
    }
    Err(ApiError::not_found("instance"))
}

fn file_view(spec: &InstanceSpec) -> InstanceView {
    InstanceView {
        id: spec.id.clone().unwrap_or_default(),
        partner: None,
        source: "file",
        revision: 0,
        hostnames: spec.hostnames.clone(),
        certificate: certificate(spec),
        spec: redacted(spec),
    }
}

fn read_only() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "-",
        "this instance comes from the node's config files: change it there",
    )
}

#[utoipa::path(get, path = "/v1/instances", tag = "instances",
    responses((status = 200, body = [InstanceView]), (status = 401, body = ErrorBody)),
    security(("key" = [])))]
pub async fn list(
    State(c): State<Arc<Control>>,
    who: Auth,
) -> Result<Json<Vec<InstanceView>>, ApiError> {
    let mut out: Vec<InstanceView> = c
        .store
        .instances()
        .await?
        .iter()
        .filter(|i| who.0.sees(Some(&i.partner)))
        .map(view)
        .collect();
    if who.0.is_operator() {
        if let Ok(doc) = c.node.base() {
            out.extend(doc.instances.iter().map(|s| file_view(&s.spec)));
        }
    }
    Ok(Json(out))
}

#[utoipa::path(get, path = "/v1/instances/{id}", tag = "instances",
    params(("id" = String, Path)),
    responses((status = 200, body = InstanceView), (status = 404, body = ErrorBody)),
    security(("key" = [])))]
pub async fn get_one(
    State(c): State<Arc<Control>>,
    who: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(match visible(&c, &who, &id).await? {
        Ok(i) => with_etag(StatusCode::OK, i.revision, view(&i)),
        Err(spec) => with_etag(StatusCode::OK, 0, file_view(&spec)),
    })
}

fn object(body: serde_json::Value) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    match body {
        serde_json::Value::Object(m) => Ok(m),
        _ => Err(ApiError::field("-", "the body must be a JSON object")),
    }
}

/// Unused ids: 16 random hex digits not taken by a stored or a file instance.
async fn new_id(c: &Control) -> Result<String, ApiError> {
    let taken: Vec<String> = c
        .node
        .base()
        .map(|d| {
            d.instances
                .iter()
                .filter_map(|s| s.spec.id.clone())
                .collect()
        })
        .unwrap_or_default();
    for _ in 0..16 {
        let id = crate::auth::random_hex(8)?;
        if !taken.contains(&id) && c.store.instance(&id).await?.is_none() {
            return Ok(id);
        }
    }
    Err(ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "-",
        "cannot find a free instance id",
    ))
}

async fn apply(c: &Control) {
    if let Err(e) = c.node.apply().await {
        tracing::error!(target: "rpaas::control", error = %e, "a committed change did not apply");
    }
}

/// `POST /v1/instances` body: `partner`, `upstream` and any instance spec field.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct CreateInstance {
    /// The partner that owns the instance.
    pub partner: String,
    /// `https://host[:port]` of the Automate server.
    pub upstream: String,
}

#[utoipa::path(post, path = "/v1/instances", tag = "instances",
    request_body(content = Object, description = "`partner`, `upstream` and any `[[instance]]` field (docs/config.md)"),
    responses((status = 201, body = InstanceView), (status = 422, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("key" = [])))]
pub async fn create(
    State(c): State<Arc<Control>>,
    who: Auth,
    Json(body): Json<serde_json::Value>,
) -> Result<Response, ApiError> {
    who.operator_only()?;
    let mut body = object(body)?;
    let partner = match body.remove("partner") {
        Some(serde_json::Value::String(p)) => p,
        _ => {
            return Err(ApiError::field(
                "partner",
                "is required: the id of the partner that owns the instance",
            ))
        }
    };
    if body.contains_key("id") {
        return Err(ApiError::field("id", "is assigned by the service"));
    }
    let mut spec: InstanceSpec =
        rpaas_spec::from_value(serde_json::Value::Object(body)).map_err(|e| shape("", e))?;
    if c.store.partner(&partner).await?.is_none() {
        return Err(ApiError::invalid(vec![FieldError {
            field: "partner".into(),
            reason: format!("no partner {partner:?} (POST /v1/partners first)"),
        }]));
    }
    let _guard = c.write.lock().await;
    let id = new_id(&c).await?;
    let mut hostnames = Vec::new();
    match &c.settings.base_domain {
        Some(d) => hostnames.push(format!("{id}.{d}")),
        None if spec.hostnames.is_empty() => {
            return Err(ApiError::field(
                "hostnames",
                "[control] base_domain is not set: give the hostnames",
            ))
        }
        None => {}
    }
    hostnames.append(&mut spec.hostnames);
    spec.hostnames = hostnames;
    spec.id = Some(id.clone());
    if spec.cert.is_none() && spec.key.is_none() && c.settings.acme {
        spec.cert = Some(Files::One("acme".into()));
    }
    validate(&c, Some(&spec), &id, "").await?;
    let change = Change::Put {
        id: id.clone(),
        partner: partner.clone(),
        spec: Box::new(spec.clone()),
        if_match: None,
        create: true,
    };
    let after = serde_json::to_value(redacted(&spec)).ok();
    let revision = c
        .store
        .write(&change, &who.actor(), "instance.create", None, after)
        .await?;
    apply(&c).await;
    let stored = StoredInstance {
        id: id.clone(),
        partner,
        spec,
        revision,
        created: 0,
        updated: 0,
    };
    let mut r = with_etag(StatusCode::CREATED, revision, view(&stored));
    if let Ok(loc) = format!("/v1/instances/{id}").parse() {
        r.headers_mut().insert("location", loc);
    }
    Ok(r)
}

/// Applies an RFC 7396 merge patch.
fn merge(target: &mut serde_json::Value, patch: &serde_json::Value) {
    if let serde_json::Value::Object(p) = patch {
        if !target.is_object() {
            *target = serde_json::Value::Object(Default::default());
        }
        if let serde_json::Value::Object(t) = target {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(serde_json::Value::Null), v);
                }
            }
        }
    } else {
        *target = patch.clone();
    }
}

/// A partner may touch only ACL fields.
fn partner_fields(who: &Auth, keys: impl Iterator<Item = String>) -> Result<(), ApiError> {
    if who.0.is_operator() {
        return Ok(());
    }
    let denied: Vec<FieldError> = keys
        .filter(|k| !ACL_FIELDS.contains(&k.as_str()))
        .map(|k| FieldError {
            field: k,
            reason: "only the operator may change this (partner keys change ACL fields)".into(),
        })
        .collect();
    if denied.is_empty() {
        Ok(())
    } else {
        Err(ApiError {
            status: StatusCode::FORBIDDEN,
            errors: denied,
        })
    }
}

#[utoipa::path(patch, path = "/v1/instances/{id}", tag = "instances",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    request_body(content = Object, description = "a JSON merge patch (RFC 7396) of the instance spec; operators may also move it to another `partner`"),
    responses((status = 200, body = InstanceView), (status = 412, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("key" = [])))]
pub async fn patch(
    State(c): State<Arc<Control>>,
    who: Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Result<Response, ApiError> {
    let want = if_match(&headers)?;
    // Existence first: another partner's instance is 404 whatever the body says.
    let current = visible(&c, &who, &id).await?.map_err(|_| read_only())?;
    let mut body = object(body)?;
    partner_fields(&who, body.keys().cloned())?;
    let new_partner = match body.remove("partner") {
        None => current.partner.clone(),
        Some(serde_json::Value::String(p)) if c.store.partner(&p).await?.is_some() => p,
        Some(_) => return Err(ApiError::field("partner", "no such partner")),
    };
    if body.contains_key("id") {
        return Err(ApiError::field("id", "an instance's id cannot change"));
    }
    let mut value = serde_json::to_value(&current.spec)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "-", e.to_string()))?;
    merge(&mut value, &serde_json::Value::Object(body));
    let mut spec: InstanceSpec = rpaas_spec::from_value(value).map_err(|e| shape("", e))?;
    spec.id = Some(id.clone());
    write_spec(
        &c,
        &who,
        current,
        new_partner,
        spec,
        want,
        "instance.update",
        "",
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn write_spec(
    c: &Control,
    who: &Auth,
    current: StoredInstance,
    partner: String,
    spec: InstanceSpec,
    want: Option<i64>,
    action: &str,
    prefix: &str,
) -> Result<Response, ApiError> {
    let _guard = c.write.lock().await;
    if let Some(w) = want {
        if w != current.revision {
            return Err(crate::StoreError::Stale {
                expected: w,
                current: current.revision,
            }
            .into());
        }
    }
    validate(c, Some(&spec), &current.id, prefix).await?;
    let change = Change::Put {
        id: current.id.clone(),
        partner: partner.clone(),
        spec: Box::new(spec.clone()),
        if_match: Some(want.unwrap_or(current.revision)),
        create: false,
    };
    let before = serde_json::to_value(redacted(&current.spec)).ok();
    let after = serde_json::to_value(redacted(&spec)).ok();
    let revision = c
        .store
        .write(&change, &who.actor(), action, before, after)
        .await?;
    apply(c).await;
    let stored = StoredInstance {
        revision,
        partner,
        spec,
        ..current
    };
    Ok(with_etag(StatusCode::OK, revision, view(&stored)))
}

#[utoipa::path(delete, path = "/v1/instances/{id}", tag = "instances",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("key" = [])))]
pub async fn delete(
    State(c): State<Arc<Control>>,
    who: Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let want = if_match(&headers)?;
    let current = visible(&c, &who, &id).await?.map_err(|_| read_only())?;
    who.operator_only()?;
    let _guard = c.write.lock().await;
    validate(&c, None, &id, "").await?;
    let before = serde_json::to_value(redacted(&current.spec)).ok();
    c.store
        .write(
            &Change::Delete {
                id: id.clone(),
                if_match: Some(want.unwrap_or(current.revision)),
            },
            &who.actor(),
            "instance.delete",
            before,
            None,
        )
        .await?;
    apply(&c).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(get, path = "/v1/instances/{id}/acl", tag = "acl",
    params(("id" = String, Path)),
    responses((status = 200, body = Object, description = "the ACL: deployment, trusted, deny, countries, class, restrict, ips"), (status = 404, body = ErrorBody)),
    security(("key" = [])))]
pub async fn get_acl(
    State(c): State<Arc<Control>>,
    who: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(match visible(&c, &who, &id).await? {
        Ok(i) => with_etag(StatusCode::OK, i.revision, i.spec.acl()),
        Err(spec) => with_etag(StatusCode::OK, 0, spec.acl()),
    })
}

#[utoipa::path(put, path = "/v1/instances/{id}/acl", tag = "acl",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    request_body(content = Object, description = "the whole ACL; fields left out take their defaults"),
    responses((status = 200, body = InstanceView), (status = 403, body = ErrorBody), (status = 412, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("key" = [])))]
pub async fn put_acl(
    State(c): State<Arc<Control>>,
    who: Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Result<Response, ApiError> {
    let want = if_match(&headers)?;
    let (current, spec) = acl_change(&c, &who, &id, body).await?;
    let partner = current.partner.clone();
    write_spec(&c, &who, current, partner, spec, want, "acl.update", "acl.").await
}

/// The instance as `body` (a whole ACL) would make it, after the same checks as `PUT`.
async fn acl_change(
    c: &Control,
    who: &Auth,
    id: &str,
    body: serde_json::Value,
) -> Result<(StoredInstance, InstanceSpec), ApiError> {
    let current = visible(c, who, id).await?.map_err(|_| read_only())?;
    let body = object(body)?;
    let operator: Vec<String> = body
        .keys()
        .filter(|k| OPERATOR_FIELDS.contains(&k.as_str()))
        .cloned()
        .collect();
    if !operator.is_empty() {
        let status = if who.0.is_operator() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::FORBIDDEN
        };
        return Err(ApiError {
            status,
            errors: operator
                .into_iter()
                .map(|k| FieldError {
                    field: format!("acl.{k}"),
                    reason: if who.0.is_operator() {
                        "not an ACL field: change it with PATCH /v1/instances/{id}".into()
                    } else {
                        "only the operator may change this (partner keys change ACL fields)".into()
                    },
                })
                .collect(),
        });
    }
    let acl: AclSpec =
        rpaas_spec::from_value(serde_json::Value::Object(body)).map_err(|e| shape("acl.", e))?;
    let mut spec = current.spec.clone();
    spec.set_acl(acl);
    Ok((current, spec))
}

/// `POST /v1/instances/{id}/acl/preview`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Preview {
    /// Recent requests to the instance this node kept as a sample (the last hour, bounded).
    pub requests: u64,
    /// Of those, refused under the ACL in force.
    pub refused_now: u64,
    /// Of those, refused under the proposed ACL.
    pub would_refuse: u64,
}

#[utoipa::path(post, path = "/v1/instances/{id}/acl/preview", tag = "acl",
    params(("id" = String, Path)),
    request_body(content = Object, description = "a whole ACL, as for PUT"),
    responses((status = 200, body = Preview), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("key" = [])))]
pub async fn preview_acl(
    State(c): State<Arc<Control>>,
    who: Auth,
    Path(id): Path<String>,
    Json(body): Json<serde_json::Value>,
) -> Result<Json<Preview>, ApiError> {
    let (current, spec) = acl_change(&c, &who, &id, body).await?;
    validate(&c, Some(&spec), &current.id, "acl.").await?;
    let (requests, refused_now, would_refuse) = c
        .node
        .preview(&current.id, &spec)
        .await
        .map_err(|e| ApiError::field("acl", e.to_string()))?;
    Ok(Json(Preview {
        requests,
        refused_now,
        would_refuse,
    }))
}
