//! The admin endpoint: `/healthz` (JSON) and `/metrics` (Prometheus text). Plain HTTP, meant
//! for loopback or a management network.

use std::sync::Arc;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::Shared;

pub struct Admin {
    pub shared: Arc<Shared>,
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let path = session.req_header().uri.path().to_string();
        let (status, ctype, body) = match path.as_str() {
            "/healthz" => {
                let snap = self.shared.snapshot.load();
                let body = serde_json::json!({
                    "status": "ok",
                    "generation": snap.generation,
                    "instances": snap.instances.iter().map(|i| i.cfg.id.clone()).collect::<Vec<_>>(),
                    "open_connections": crate::open_connections(&self.shared),
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
            "/metrics" => {
                let banned = self.shared.bans.banned_count(std::time::Instant::now());
                self.shared.metrics.banned_clients.set(banned as i64);
                (
                    200,
                    "text/plain; version=0.0.4",
                    self.shared.metrics.render(),
                )
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
