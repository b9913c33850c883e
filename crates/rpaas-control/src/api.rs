//! The `/v1` API: routes, authentication, the listener (HTTPS when `[control] cert`/`key`
//! are set), and the one validation path every change goes through.

pub(crate) mod instances;
pub(crate) mod keys;
pub(crate) mod observe;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod};
use rpaas_config::{ConfigErrors, Document, Sourced};
use rpaas_spec::InstanceSpec;
use tower::ServiceExt;

use crate::auth::{self, Principal};
use crate::error::{ApiError, FieldError};
use crate::Control;

/// The client address of a request (set per connection).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

/// A dashboard user's principal, set on in-process requests only.
#[derive(Debug, Clone)]
pub struct SessionPrincipal(pub Principal);

/// An authenticated caller.
pub struct Auth(pub Principal, pub IpAddr);

impl FromRequestParts<Arc<Control>> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        c: &Arc<Control>,
    ) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ClientAddr>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.0);
        // The dashboard calls this API in process for a signed-in user (an extension no
        // network request can carry): same handlers, same checks.
        if let Some(SessionPrincipal(p)) = parts.extensions.get::<SessionPrincipal>() {
            let reads = parts.method == axum::http::Method::GET
                || (parts.method == axum::http::Method::POST
                    && parts.uri.path().ends_with("/explain"));
            if p.read_only && !reads {
                return Err(ApiError::forbidden("-", "this user may only read"));
            }
            return Ok(Auth(p.clone(), ip));
        }
        if c.failures.locked(ip) {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "-",
                "too many failed authentications from this address; wait a minute",
            ));
        }
        let presented = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or(v.strip_prefix("bearer ")))
            .or_else(|| parts.headers.get("x-api-key").and_then(|v| v.to_str().ok()));
        let Some(presented) = presented else {
            return Err(ApiError::unauthorized());
        };
        match auth::check(&c.store, presented).await? {
            Ok(p) => {
                if let Err(e) = c.store.touch_key(&p.key_id).await {
                    tracing::warn!(target: "rpaas::control", error = %e, "cannot record a key's use");
                }
                Ok(Auth(p, ip))
            }
            Err(why) => {
                c.failures.fail(ip);
                tracing::warn!(target: "rpaas::control", event = "auth_failed", client_ip = %ip, reason = why.as_str(), "API authentication failed");
                Err(ApiError::unauthorized())
            }
        }
    }
}

impl Auth {
    pub fn actor(&self) -> crate::Actor {
        crate::Actor {
            name: self.0.name.clone(),
            source_ip: self.1.to_string(),
        }
    }
    pub fn operator_only(&self) -> Result<(), ApiError> {
        if self.0.is_operator() {
            Ok(())
        } else {
            Err(ApiError::forbidden("-", "this needs an operator key"))
        }
    }
}

/// `"<revision>"` for an `ETag`.
pub fn etag(revision: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{revision}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// The revision an `If-Match` names; an unreadable one is a 412 (it cannot match).
pub fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(v) = headers.get("if-match") else {
        return Ok(None);
    };
    let s = v.to_str().unwrap_or("").trim();
    if s == "*" {
        return Ok(None);
    }
    s.trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .map(Some)
        .map_err(|_| {
            ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "If-Match",
                format!("{s:?} is not a revision of this resource"),
            )
        })
}

/// Compiles the node's config as it would be with `target` written (or `removed` gone), with
/// the same compile step `rpaas check` runs. Errors of the target are returned by field path
/// relative to it, prefixed by `prefix` (e.g. `acl.`).
pub(crate) async fn validate(
    c: &Control,
    target: Option<&InstanceSpec>,
    target_id: &str,
    prefix: &str,
) -> Result<(), ApiError> {
    let mut doc: Document = c.node.base().map_err(|e| config_errors(&e, "", ""))?;
    let stored = c.store.instances().await?;
    for (position, s) in stored.into_iter().filter(|s| s.id != target_id).enumerate() {
        doc.instances.push(Sourced {
            source: "store".into(),
            position,
            spec: s.spec,
        });
    }
    if let Some(t) = target {
        doc.instances.push(Sourced {
            source: "api".into(),
            position: 0,
            spec: t.clone(),
        });
    }
    match rpaas_config::compile(&doc) {
        Ok(_) => Ok(()),
        Err(e) => Err(config_errors(&e, "api", prefix)),
    }
}

fn config_errors(e: &ConfigErrors, label: &str, prefix: &str) -> ApiError {
    ApiError::invalid(
        e.0.iter()
            .map(|e| {
                let field = if e.file == Path::new(label) {
                    let k = e.key.strip_prefix("instance[0]").unwrap_or(&e.key);
                    format!("{prefix}{}", k.trim_start_matches('.'))
                } else {
                    format!("{}: {}", e.file.display(), e.key)
                };
                FieldError {
                    field: if field.is_empty() {
                        "-".into()
                    } else {
                        field.trim_end_matches('.').to_string()
                    },
                    reason: e.reason.clone(),
                }
            })
            .collect(),
    )
}

/// The shape error of a body, as a 422 naming the field.
pub(crate) fn shape(prefix: &str, e: rpaas_spec::ShapeError) -> ApiError {
    let field = if e.path == "-" {
        if prefix.is_empty() {
            "-".to_string()
        } else {
            prefix.trim_end_matches('.').to_string()
        }
    } else {
        format!("{prefix}{}", e.path)
    };
    ApiError::invalid(vec![FieldError {
        field,
        reason: e.reason,
    }])
}

/// The API's routes.
pub fn router(c: Arc<Control>) -> Router {
    Router::new()
        .route(
            "/v1/partners",
            get(keys::list_partners).post(keys::create_partner),
        )
        .route(
            "/v1/instances",
            get(instances::list).post(instances::create),
        )
        .route(
            "/v1/instances/{id}",
            get(instances::get_one)
                .patch(instances::patch)
                .delete(instances::delete),
        )
        .route(
            "/v1/instances/{id}/acl",
            get(instances::get_acl).put(instances::put_acl),
        )
        .route("/v1/instances/{id}/status", get(observe::status))
        .route("/v1/instances/{id}/decisions", get(observe::decisions))
        .route("/v1/instances/{id}/explain", post(observe::explain))
        .route("/v1/instances/{id}/audit", get(observe::instance_audit))
        .route("/v1/audit", get(observe::audit))
        .route("/v1/keys", get(keys::list_keys).post(keys::create_key))
        .route("/v1/keys/{id}", axum::routing::delete(keys::revoke_key))
        .route("/v1/nodes", get(crate::fleet::list_nodes))
        .route(
            "/v1/instances/{id}/acl/preview",
            post(instances::preview_acl),
        )
        .route("/v1/openapi.json", get(crate::openapi::document))
        .fallback(|| async { ApiError::not_found("route") })
        .with_state(c)
}

/// A bound API listener.
pub struct ApiServer {
    listener: tokio::net::TcpListener,
    tls: Option<Arc<SslAcceptor>>,
    pub local: SocketAddr,
}

impl std::fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServer")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("{}: {error}", file.display())]
    Tls {
        file: std::path::PathBuf,
        error: openssl::error::ErrorStack,
    },
    #[error("the key does not match the certificate: {0}")]
    KeyMismatch(openssl::error::ErrorStack),
    #[error("cannot set up TLS: {0}")]
    Openssl(openssl::error::ErrorStack),
}

impl ApiServer {
    /// Binds `addr`; with `cert` and `key`, serves HTTPS (Mozilla intermediate).
    pub fn bind(
        addr: SocketAddr,
        cert_key: Option<(&Path, &Path)>,
    ) -> Result<ApiServer, BindError> {
        let listen = |e| BindError::Listen(addr, e);
        let std_l = std::net::TcpListener::bind(addr)
            .and_then(|l| l.set_nonblocking(true).map(|_| l))
            .map_err(listen)?;
        let listener = tokio::net::TcpListener::from_std(std_l).map_err(listen)?;
        let local = listener.local_addr().map_err(listen)?;
        let tls = match cert_key {
            None => None,
            Some((cert, key)) => {
                let file = |p: &Path| {
                    let p = p.to_path_buf();
                    move |error| BindError::Tls { file: p, error }
                };
                let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
                    .map_err(BindError::Openssl)?;
                b.set_certificate_chain_file(cert).map_err(file(cert))?;
                b.set_private_key_file(key, SslFiletype::PEM)
                    .map_err(file(key))?;
                b.check_private_key().map_err(BindError::KeyMismatch)?;
                Some(Arc::new(b.build()))
            }
        };
        Ok(ApiServer {
            listener,
            tls,
            local,
        })
    }
}

/// Serves `router` on `server` until the task is dropped.
pub async fn serve(server: ApiServer, router: Router) {
    loop {
        let Ok((tcp, peer)) = server.listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let app = router.clone();
        let tls = server.tls.clone();
        tokio::spawn(async move {
            let client = ClientAddr(peer.ip());
            let svc = tower::service_fn(move |req: Request<hyper::body::Incoming>| {
                let mut req = req.map(axum::body::Body::new);
                req.extensions_mut().insert(client);
                app.clone().oneshot(req)
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            match tls {
                None => {
                    let _ = builder
                        .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(svc))
                        .await;
                }
                Some(acc) => {
                    let Ok(ssl) = openssl::ssl::Ssl::new(acc.context()) else {
                        return;
                    };
                    let Ok(mut s) = tokio_openssl::SslStream::new(ssl, tcp) else {
                        return;
                    };
                    let hs = tokio::time::timeout(
                        std::time::Duration::from_secs(10),
                        std::pin::Pin::new(&mut s).accept(),
                    )
                    .await;
                    if !matches!(hs, Ok(Ok(()))) {
                        return;
                    }
                    let _ = builder
                        .serve_connection(TokioIo::new(s), TowerToHyperService::new(svc))
                        .await;
                }
            }
        });
    }
}
