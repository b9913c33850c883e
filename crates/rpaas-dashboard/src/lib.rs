//! The web console at `/ui/` on the control listener, for partners (their instances only) and
//! the operator. Server-rendered HTML (maud), readable without JavaScript; htmx (vendored from
//! npm as one file) only makes the "what if" and preview forms answer in place.
//!
//! It owns sessions, CSRF and the pages. It owns no rules: every read and every change is a
//! request to the `/v1` API, made in process with the signed-in user's principal (an extension
//! no network request can carry), so the dashboard is held to exactly the API's authorisation
//! and validation. Sessions: argon2 passwords, a random token of which the store keeps a hash,
//! a cookie that is `HttpOnly`, `SameSite=Strict` and `Secure` over TLS, a CSRF token in every
//! form, login attempts rate limited per client address.

mod acl;
mod pages;
mod view;

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use rpaas_control::users::Session;
use rpaas_control::{ClientAddr, Control, SessionPrincipal};
use tower::ServiceExt;

/// The session cookie.
pub const COOKIE: &str = "rpaas_session";
/// The cookie that carries the login form's CSRF token (before there is a session).
const LOGIN_CSRF: &str = "rpaas_login_csrf";

/// What the pages share.
pub struct Dash {
    pub control: Arc<Control>,
    /// The `/v1` router, called in process.
    api: Router,
    /// Cookies get `Secure` (the control listener speaks TLS).
    secure: bool,
}

/// The dashboard's routes (to merge into the control listener's router). `api` is the `/v1`
/// router the pages call.
pub fn router(control: Arc<Control>, api: Router, secure: bool) -> Router {
    let d = Arc::new(Dash {
        control,
        api,
        secure,
    });
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/instances") }))
        .route("/ui/", get(|| async { Redirect::to("/ui/instances") }))
        .route("/ui/assets/htmx.min.js", get(htmx))
        .route("/ui/assets/style.css", get(style))
        .route("/ui/login", get(pages::login_form).post(pages::login))
        .route("/ui/logout", post(pages::logout))
        .route("/ui/instances", get(pages::instances))
        .route("/ui/instances/{id}", get(pages::instance))
        .route("/ui/instances/{id}/decisions", get(pages::decisions))
        .route("/ui/instances/{id}/explain", post(pages::what_if))
        .route(
            "/ui/instances/{id}/acl",
            get(acl::acl_form).post(acl::acl_save),
        )
        .route("/ui/instances/{id}/acl/preview", post(acl::acl_preview))
        .route("/ui/audit", get(pages::audit))
        .route("/ui/keys", get(pages::keys).post(pages::key_create))
        .route("/ui/keys/{id}/revoke", post(pages::key_revoke))
        .with_state(d)
        .layer(axum::middleware::map_response(harden))
}

/// Headers on every page: no framing, no caching, scripts and styles only from here.
async fn harden(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

async fn htmx() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript"),
            (header::CACHE_CONTROL, "max-age=86400"),
        ],
        include_str!("../assets/htmx.min.js"),
    )
        .into_response()
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css"),
            (header::CACHE_CONTROL, "max-age=86400"),
        ],
        include_str!("../assets/style.css"),
    )
        .into_response()
}

/// The value of cookie `name`.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn client_ip(parts: &Parts) -> IpAddr {
    client_ip_of(&parts.extensions)
}

/// The client address the control listener recorded for the connection.
fn client_ip_of(ext: &axum::http::Extensions) -> IpAddr {
    ext.get::<ClientAddr>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.0)
}

/// Constant-time comparison of two tokens.
fn same(a: &str, b: &str) -> bool {
    rpaas_control::ct_eq(a.as_bytes(), b.as_bytes())
}

/// A signed-in user; pages without one redirect to the login form.
pub struct User {
    pub session: Session,
    pub ip: IpAddr,
}

impl FromRequestParts<Arc<Dash>> for User {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, d: &Arc<Dash>) -> Result<Self, Response> {
        let ip = client_ip(parts);
        let Some(token) = cookie(&parts.headers, COOKIE) else {
            return Err(Redirect::to("/ui/login").into_response());
        };
        match d.control.store.session(token).await {
            Ok(Some(session)) => Ok(User { session, ip }),
            Ok(None) => Err(Redirect::to("/ui/login").into_response()),
            Err(e) => Err(view::error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                &e.to_string(),
            )),
        }
    }
}

impl User {
    /// The refusal of a form whose CSRF token is not this session's (`None`: it is).
    pub fn csrf_refusal(&self, token: &str) -> Option<Response> {
        (!same(token, &self.session.csrf)).then(|| {
            view::error_page(
                StatusCode::FORBIDDEN,
                "the form's CSRF token is missing or wrong: reload the page and try again",
            )
        })
    }
    pub fn can_write(&self) -> bool {
        !self.session.user.principal().read_only
    }
    pub fn is_operator(&self) -> bool {
        self.session.user.principal().is_operator()
    }
}

/// An answer of the `/v1` API.
pub struct Answer {
    pub status: StatusCode,
    pub json: serde_json::Value,
    pub etag: Option<String>,
}

impl Answer {
    pub fn ok(&self) -> bool {
        self.status.is_success()
    }
    /// `{"errors": [...]}` as (field, reason) pairs.
    pub fn errors(&self) -> Vec<(String, String)> {
        self.json["errors"]
            .as_array()
            .map(|l| {
                l.iter()
                    .map(|e| {
                        (
                            e["field"].as_str().unwrap_or("-").to_string(),
                            e["reason"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
    /// The error page for a failed read (404 stays 404: another partner's instance).
    pub fn fail_page(&self) -> Response {
        let why = self
            .errors()
            .into_iter()
            .map(|(f, r)| if f == "-" { r } else { format!("{f}: {r}") })
            .collect::<Vec<_>>()
            .join("; ");
        view::error_page(self.status, &why)
    }
}

impl Dash {
    /// Calls the API as `user`.
    pub async fn call(
        &self,
        user: &User,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        if_match: Option<&str>,
    ) -> Answer {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json")
            .extension(SessionPrincipal(user.session.user.principal()))
            .extension(ClientAddr(user.ip));
        if let Some(m) = if_match {
            b = b.header(header::IF_MATCH, m);
        }
        let body = body.map(|v| v.to_string()).unwrap_or_default();
        let req = match b.body(Body::from(body)) {
            Ok(r) => r,
            Err(e) => return internal(&e.to_string()),
        };
        let resp = match self.api.clone().oneshot(req).await {
            Ok(r) => r,
            Err(e) => return internal(&e.to_string()),
        };
        let status = resp.status();
        let etag = resp
            .headers()
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = axum::body::to_bytes(resp.into_body(), 8 << 20)
            .await
            .unwrap_or_default();
        Answer {
            status,
            json: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
            etag,
        }
    }

    pub async fn get(&self, user: &User, path: &str) -> Answer {
        self.call(user, Method::GET, path, None, None).await
    }

    fn cookie(&self, name: &str, value: &str, max_age: i64) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{name}={value}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
        ))
        .unwrap_or(HeaderValue::from_static(""))
    }
}

fn internal(why: &str) -> Answer {
    Answer {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        json: serde_json::json!({"errors": [{"field": "-", "reason": why}]}),
        etag: None,
    }
}

/// Percent-encodes a query value.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
