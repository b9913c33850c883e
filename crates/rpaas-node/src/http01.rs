//! `tls = "none"` listeners: plain HTTP that answers ACME HTTP-01 challenges
//! (`/.well-known/acme-challenge/<token>`, from this node or, with a shared store, any node)
//! and redirects every other request for a served hostname to HTTPS. Nothing is proxied over
//! plain HTTP; a hostname the node does not serve gets 404 (no open redirect).

use std::sync::Arc;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::state::Shared;

pub struct Http01 {
    pub shared: Arc<Shared>,
}

fn answer(status: u16, headers: &[(&str, &str)], body: Vec<u8>) -> Response<Vec<u8>> {
    let mut b = Response::builder()
        .status(status)
        .header("content-length", body.len())
        .header("cache-control", "no-store");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(body).unwrap_or_else(|_| Response::new(Vec::new()))
}

#[async_trait]
impl ServeHttp for Http01 {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let path = req.uri.path().to_string();
        if path.starts_with(rpaas_acme::HTTP01_PREFIX) {
            let token = rpaas_acme::Challenges::http01_token(&path);
            if let (Some(acme), Some(token)) = (&self.shared.acme, token) {
                if let Some(ka) = acme.challenges.http01_shared(token).await {
                    tracing::info!(target: "rpaas::acme", event = "http01_validation", "HTTP-01 validation answered");
                    return answer(
                        200,
                        &[("content-type", "application/octet-stream")],
                        ka.as_bytes().to_vec(),
                    );
                }
            }
            return answer(
                404,
                &[("content-type", "text/plain")],
                b"no such challenge\n".to_vec(),
            );
        }
        let host = req
            .headers
            .get("host")
            .and_then(|v| v.to_str().ok())
            .and_then(rpaas_admission::normalize_host)
            .map(|(h, _)| h);
        let snap = self.shared.snapshot.load();
        let served = host
            .as_deref()
            .is_some_and(|h| snap.policy.instance_for_host(h).is_some());
        match host.filter(|_| served) {
            Some(h) => {
                let target = req
                    .uri
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_string();
                let location = format!("https://{h}{target}");
                answer(
                    301,
                    &[
                        ("location", location.as_str()),
                        ("content-type", "text/plain"),
                    ],
                    b"use https\n".to_vec(),
                )
            }
            None => answer(
                404,
                &[("content-type", "text/plain")],
                b"not found\n".to_vec(),
            ),
        }
    }
}
