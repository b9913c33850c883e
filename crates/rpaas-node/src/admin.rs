//! The admin endpoint: `/healthz` (JSON), `/metrics` (Prometheus text) and `POST /explain`
//! (the live node's answer for a request: the admission core with this node's bans and rate
//! limits, nothing consumed). Plain HTTP, meant for loopback or a management network.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde::Deserialize;

use crate::state::Shared;

pub struct Admin {
    pub shared: Arc<Shared>,
}

/// `POST /explain` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainRequest {
    /// The FQDN asked for (Host and, unless `sni` says otherwise, SNI); `""` sends no Host.
    pub host: String,
    pub ip: IpAddr,
    #[serde(default = "get")]
    pub method: String,
    pub target: String,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The TLS name, when it differs from `host` (`""`: none).
    #[serde(default)]
    pub sni: Option<String>,
    #[serde(default)]
    pub listener: usize,
    /// A request body to judge (its type in `headers`).
    #[serde(default)]
    pub body: Option<String>,
}

fn get() -> String {
    "GET".into()
}

/// Answers an explain request against the running node.
pub fn explain_live(shared: &Shared, q: &ExplainRequest) -> rpaas_admission::Explanation {
    let snap = shared.snapshot.load_full();
    let mut headers: Vec<(String, String)> = q
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    rpaas_admission::add_body_length(&mut headers, q.body.as_deref().map(str::as_bytes));
    if !q.host.is_empty() && !headers.iter().any(|(k, _)| k == "host") {
        headers.push(("host".into(), q.host.clone()));
    }
    let sni = match &q.sni {
        Some(s) if s.is_empty() => None,
        Some(s) => Some(s.to_ascii_lowercase()),
        None if q.host.is_empty() => None,
        None => Some(q.host.trim_end_matches('.').to_ascii_lowercase()),
    };
    let authority = headers
        .iter()
        .find(|(k, _)| k == "host")
        .map(|(_, v)| v.clone());
    rpaas_admission::explain(
        &snap.policy,
        &rpaas_admission::Conn {
            listener: q.listener,
            peer: q.ip,
            sni: sni.as_deref(),
        },
        &rpaas_admission::Head {
            method: &q.method,
            target: q.target.as_bytes(),
            authority: authority.as_deref(),
            headers: &headers,
            protocol: "HTTP/1.1",
        },
        &crate::gates::Peek(shared),
        q.body.as_deref().map(str::as_bytes),
        Instant::now(),
    )
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let path = session.req_header().uri.path().to_string();
        let method = session.req_header().method.clone();
        let (status, ctype, body) = match (method.as_str(), path.as_str()) {
            (_, "/healthz") => {
                let snap = self.shared.snapshot.load();
                let body = serde_json::json!({
                    "status": "ok",
                    "generation": snap.generation,
                    "instances": snap.instances.iter().map(|i| i.cfg.id.clone()).collect::<Vec<_>>(),
                    "open_connections": self.shared.open_connections(),
                    "tunnels": snap
                        .instances
                        .iter()
                        .filter(|i| i.cfg.connector_secret.is_some())
                        .map(|i| {
                            let n = self.shared.tunnels.count(&i.cfg.id);
                            (i.cfg.id.clone(), serde_json::json!({"connectors": n, "up": n > 0}))
                        })
                        .collect::<serde_json::Map<_, _>>(),
                });
                (200, "application/json", body.to_string().into_bytes())
            }
            (_, "/certs") => {
                let snap = self.shared.snapshot.load();
                let body: serde_json::Map<String, serde_json::Value> = snap
                    .instances
                    .iter()
                    .filter_map(|i| {
                        crate::acme::cert_status(&self.shared, &i.cfg.id)
                            .map(|s| (i.cfg.id.clone(), s))
                    })
                    .collect();
                (
                    200,
                    "application/json",
                    serde_json::to_vec(&body).unwrap_or_default(),
                )
            }
            (_, "/metrics") => {
                crate::acme::publish_expiry(&self.shared);
                let banned = self.shared.bans.banned_count(Instant::now());
                self.shared.metrics.banned_clients.set(banned as i64);
                (
                    200,
                    "text/plain; version=0.0.4",
                    self.shared.metrics.render(),
                )
            }
            ("POST", p) if p.starts_with("/certs/") && p.ends_with("/renew") => {
                let id = &p["/certs/".len()..p.len() - "/renew".len()];
                let forced = self.shared.acme.as_ref().is_some_and(|a| a.force_renew(id));
                if forced {
                    tracing::info!(target: "rpaas::acme", event = "renewal_forced", instance = %id, "certificate renewal forced");
                    (202, "application/json", br#"{"renewing":true}"#.to_vec())
                } else {
                    (404, "application/json", br#"{"errors":[{"field":"-","reason":"no ACME certificate for this instance"}]}"#.to_vec())
                }
            }
            ("POST", p) if p.starts_with("/certs/") && p.ends_with("/revoke") => {
                let id = &p["/certs/".len()..p.len() - "/revoke".len()];
                match &self.shared.acme {
                    None => (
                        404,
                        "application/json",
                        br#"{"errors":[{"field":"-","reason":"no [acme] on this node"}]}"#.to_vec(),
                    ),
                    Some(acme) => match acme.revoke(id).await {
                        Ok(n) => {
                            tracing::warn!(target: "rpaas::acme", event = "certificate_revoked", instance = %id, revoked = n, "certificates revoked at the CA; replacements ordered");
                            (
                                202,
                                "application/json",
                                serde_json::to_vec(
                                    &serde_json::json!({"revoked": n, "renewing": true}),
                                )
                                .unwrap_or_default(),
                            )
                        }
                        Err(reason) => (
                            409,
                            "application/json",
                            serde_json::to_vec(
                                &serde_json::json!({"errors": [{"field": "-", "reason": reason}]}),
                            )
                            .unwrap_or_default(),
                        ),
                    },
                }
            }
            ("POST", "/explain") => {
                let mut raw = Vec::new();
                while let Ok(Some(chunk)) = session.read_request_body().await {
                    raw.extend_from_slice(&chunk);
                    if raw.len() > 1 << 20 {
                        break;
                    }
                }
                match serde_json::from_slice::<ExplainRequest>(&raw) {
                    Ok(q) => {
                        let e = explain_live(&self.shared, &q);
                        let body = serde_json::to_vec(&e).unwrap_or_default();
                        (200, "application/json", body)
                    }
                    Err(e) => (
                        400,
                        "application/json",
                        serde_json::json!({"errors": [{"field": "-", "reason": e.to_string()}]})
                            .to_string()
                            .into_bytes(),
                    ),
                }
            }
            _ => (404, "text/plain", b"not found\n".to_vec()),
        };
        let len = body.len();
        Response::builder()
            .status(status)
            .header("content-type", ctype)
            .header("content-length", len)
            .header("cache-control", "no-store")
            .body(body)
            .unwrap_or_else(|_| Response::new(Vec::new()))
    }
}
