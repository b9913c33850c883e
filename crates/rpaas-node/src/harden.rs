//! Applies the hardening rules of `rpaas-harden` to Pingora response headers, and writes the
//! node's own responses (errors, refusals) with the same treatment: Pingora's `respond_error`
//! would bypass `response_filter` and add `Server: Pingora`, so it is never used.

use bytes::Bytes;
use http::HeaderValue;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use rpaas_harden::LocationRewrite;

use crate::snapshot::InstanceRt;

const REWRITTEN: [&str; 2] = ["location", "content-location"];

/// Removes fingerprinting headers, rewrites leaking redirects, adds HSTS.
pub fn harden_response(
    resp: &mut ResponseHeader,
    strip: &[String],
    hsts: Option<&HeaderValue>,
    rewrite: Option<(&InstanceRt, &str)>,
) {
    for name in names_in(&resp.headers, |k| {
        strip.iter().any(|s| s.eq_ignore_ascii_case(k))
    }) {
        resp.remove_header(&name);
    }
    if let Some((inst, public_host)) = rewrite {
        let rw = LocationRewrite {
            internal_hosts: &inst.internal_hosts,
            public_host,
        };
        for name in REWRITTEN {
            let new = resp
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| rw.rewrite_url(v));
            if let Some(new) = new {
                set(resp, name, &new);
            } else if resp.headers.get(name).is_some_and(|v| v.to_str().is_err()) {
                // A value we cannot read cannot be shown to be safe.
                resp.remove_header(name);
            }
        }
        let refresh = resp
            .headers
            .get("refresh")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| rw.rewrite_refresh(v));
        if let Some(new) = refresh {
            set(resp, "refresh", &new);
        }
    }
    if let Some(h) = hsts {
        let _ = resp.insert_header("strict-transport-security", h.clone());
    }
}

/// The names of `headers` that `pick` chooses (names are lower case): one pass over the names
/// a message has, instead of a lookup (name parsed, hashed, in two maps) for every name on a
/// list that a message mostly does not carry.
pub(crate) fn names_in(
    headers: &http::HeaderMap,
    pick: impl Fn(&str) -> bool,
) -> Vec<http::HeaderName> {
    headers
        .keys()
        .filter(|k| pick(k.as_str()))
        .cloned()
        .collect()
}

fn set(resp: &mut ResponseHeader, name: &'static str, value: &str) {
    match HeaderValue::from_str(value) {
        Ok(v) => {
            let _ = resp.insert_header(name, v);
        }
        Err(_) => {
            resp.remove_header(name);
        }
    }
}

/// A response the node makes itself.
pub struct OwnResponse<'a> {
    pub status: u16,
    pub body: String,
    pub request_id: &'a str,
    pub hsts: Option<&'a HeaderValue>,
    pub extra: &'a [(&'static str, &'static str)],
}

/// Writes an [`OwnResponse`] and marks the connection not reusable. Returns the status, or
/// `None` if the client was already gone.
pub async fn write_own(session: &mut Session, r: OwnResponse<'_>) -> Option<u16> {
    let body = Bytes::from(r.body);
    let mut resp = ResponseHeader::build(r.status, Some(6)).ok()?;
    resp.insert_header("content-type", "text/plain; charset=utf-8")
        .ok()?;
    resp.insert_header("content-length", body.len().to_string())
        .ok()?;
    resp.insert_header("cache-control", "no-store").ok()?;
    resp.insert_header("x-request-id", r.request_id).ok()?;
    resp.insert_header("connection", "close").ok()?;
    for (k, v) in r.extra {
        resp.insert_header(*k, *v).ok()?;
    }
    if let Some(h) = r.hsts {
        resp.insert_header("strict-transport-security", h.clone())
            .ok()?;
    }
    session.set_keepalive(None);
    let head_only = session.req_header().method == http::Method::HEAD;
    session
        .write_response_header(Box::new(resp), head_only)
        .await
        .ok()?;
    if !head_only {
        session.write_response_body(Some(body), true).await.ok()?;
    }
    Some(r.status)
}

/// The short reason phrase used in the node's own response bodies.
pub fn reason_phrase(status: u16) -> &'static str {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error")
}
