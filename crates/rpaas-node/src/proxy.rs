//! The Pingora phases for one listener: pick the instance by Host (checked against the SNI),
//! work out the client address, refuse what never reaches an origin, forward with our own
//! `X-Forwarded-*` headers, harden the response, log one line.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::{HttpPeer, ProxyHttp, Session};
use pingora::proxy::FailToProxy;
use pingora::{Error, ErrorSource, ErrorType, Result};
use rpaas_config::{canonical_ip, ClientIpSource, Listener};

use std::borrow::Cow;

use rpaas_geoip::CountryCode;
use rpaas_policy::{Headers, RequestView, TrafficClass, Verdict};

use crate::accept::ConnInfo;
use crate::harden::{harden_response, reason_phrase, write_own, OwnResponse};
use crate::ips::{Gate, IpsState};
use crate::snapshot::{InstanceRt, Snapshot};
use crate::Shared;

/// Request headers a client must not be able to set for the origin: forwarding information
/// (we set our own) and the IIS/ASP.NET URL-rewrite and method-override headers that would
/// make the origin route a different URL or method than the one we checked.
const DROP_REQUEST_HEADERS: &[&str] = &[
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-server",
    "x-real-ip",
    "forwarded",
    "x-original-url",
    "x-rewrite-url",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-request-id",
];

/// Per-request state.
pub struct Ctx {
    snap: Arc<Snapshot>,
    instance: Option<Arc<InstanceRt>>,
    client_ip: Option<IpAddr>,
    public_host: String,
    public_authority: String,
    request_id: String,
    start: Instant,
    own_status: Option<u16>,
    reason: Option<Cow<'static, str>>,
    class: Option<TrafficClass>,
    country: Option<CountryCode>,
    set_cookie: Option<(String, String)>,
    canonical_path: String,
    ips: IpsState,
}

/// The proxy logic of one listener.
pub struct Proxy {
    pub shared: Arc<Shared>,
    pub listener: usize,
}

impl Proxy {
    fn listener_cfg<'a>(&self, snap: &'a Snapshot) -> Option<&'a Listener> {
        snap.config.listeners.get(self.listener)
    }

    async fn refuse(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        status: u16,
        reason: impl Into<Cow<'static, str>>,
        extra: &'static [(&'static str, &'static str)],
    ) -> Result<bool> {
        let hsts = ctx
            .instance
            .as_ref()
            .map_or(ctx.snap.hsts.as_ref(), |i| i.hsts.as_ref());
        let body = format!(
            "{status} {}\nrequest id: {}\n",
            reason_phrase(status),
            ctx.request_id
        );
        ctx.reason = Some(reason.into());
        ctx.own_status = write_own(
            session,
            OwnResponse {
                status,
                body,
                request_id: &ctx.request_id,
                hsts,
                extra,
            },
        )
        .await;
        Ok(true)
    }
}

/// Request headers for the policy.
struct ReqHeaders<'a>(&'a RequestHeader);

impl Headers for ReqHeaders<'_> {
    fn get(&self, name: &str) -> Option<&[u8]> {
        self.0.headers.get(name).map(|v| v.as_bytes())
    }
    fn get_all(&self, name: &str) -> Vec<&[u8]> {
        self.0
            .headers
            .get_all(name)
            .iter()
            .map(|v| v.as_bytes())
            .collect()
    }
}

impl Proxy {
    /// Answers a refusing gate: a refusal page, or a closed connection.
    async fn gate(&self, session: &mut Session, ctx: &mut Ctx, gate: Gate) -> Result<bool> {
        match gate {
            Gate::Pass => Ok(false),
            Gate::Refuse(status, reason) => self.refuse(session, ctx, status, reason, &[]).await,
            Gate::Close => {
                ctx.reason = Some("ban".into());
                let mut e = Error::new(ErrorType::ConnectionClosed);
                e.as_down();
                Err(e)
            }
        }
    }
}

fn conn_info(session: &Session) -> Option<&ConnInfo> {
    session
        .digest()?
        .ssl_digest
        .as_ref()?
        .extension
        .get::<ConnInfo>()
}

/// The host the client asked for (`Host`, or the HTTP/2 `:authority`; lowercase, without
/// trailing dot) and the port it named, if any. `None` if absent, empty or not a plausible
/// hostname.
fn request_authority(req: &RequestHeader) -> Option<(String, Option<u16>)> {
    let raw = match req.headers.get(http::header::HOST) {
        Some(v) => v.to_str().ok()?.to_string(),
        None => req.uri.authority()?.as_str().to_string(),
    };
    let raw = raw.trim();
    let (host, port) = if let Some(rest) = raw.strip_prefix('[') {
        let (h, tail) = rest.split_once(']')?;
        (
            format!("[{h}]"),
            tail.strip_prefix(':').and_then(|p| p.parse().ok()),
        )
    } else {
        match raw.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => {
                (h.to_string(), p.parse().ok())
            }
            _ => (raw.to_string(), None),
        }
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.[]:_".contains(&b))
    {
        return None;
    }
    Some((host, port))
}

/// The client address per the listener's `client_ip` rule. `X-Forwarded-For` is read only from
/// a trusted peer, right to left, skipping trusted hops.
fn client_ip(listener: &Listener, peer: IpAddr, req: &RequestHeader) -> IpAddr {
    let peer = canonical_ip(peer);
    if listener.client_ip != ClientIpSource::XForwardedFor || !listener.trusts(peer) {
        return peer;
    }
    let mut hops: Vec<&str> = Vec::new();
    for v in req.headers.get_all("x-forwarded-for") {
        match v.to_str() {
            Ok(s) => hops.extend(s.split(',').map(str::trim).filter(|s| !s.is_empty())),
            Err(_) => return peer,
        }
    }
    let mut chosen = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            return chosen;
        };
        chosen = canonical_ip(ip);
        if !listener.trusts(chosen) {
            return chosen;
        }
    }
    chosen
}

fn parse_hop(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    s.parse::<SocketAddr>().ok().map(|sa| sa.ip())
}

fn new_request_id() -> String {
    format!("{:016x}", fastrand::u64(..))
}

#[async_trait]
impl ProxyHttp for Proxy {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx {
            snap: self.shared.snapshot.load_full(),
            instance: None,
            client_ip: None,
            public_host: String::new(),
            public_authority: String::new(),
            request_id: new_request_id(),
            start: Instant::now(),
            own_status: None,
            reason: None,
            class: None,
            country: None,
            set_cookie: None,
            canonical_path: String::new(),
            ips: IpsState::default(),
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let snap = ctx.snap.clone();
        let Some(lcfg) = self.listener_cfg(&snap) else {
            return self.refuse(session, ctx, 503, "listener_gone", &[]).await;
        };
        session.set_keepalive(Some(snap.config.node.keepalive_timeout.as_secs()));
        session.set_read_timeout(Some(snap.config.node.body_read_timeout));
        let peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        if let Some(peer) = peer {
            ctx.client_ip = Some(client_ip(lcfg, peer, session.req_header()));
        }

        let Some((host, port)) = request_authority(session.req_header()) else {
            // Never fall back to a default: IIS answers an empty Host with its own address.
            return self.refuse(session, ctx, 400, "no_host", &[]).await;
        };
        let Some(inst) = snap.instance_for_host(&host).cloned() else {
            return self.refuse(session, ctx, 421, "unknown_host", &[]).await;
        };
        // One TLS connection serves one instance: a Host naming another tenant than the SNI
        // did is refused rather than routed across tenants.
        if let Some(sni) = conn_info(session).and_then(|c| c.sni.as_deref()) {
            let same = snap
                .instance_for_host(sni)
                .is_some_and(|i| Arc::ptr_eq(i, &inst));
            if !same {
                return self.refuse(session, ctx, 421, "sni_mismatch", &[]).await;
            }
        }
        ctx.instance = Some(inst);
        // Redirects keep a non-default port the client used (e.g. a legacy listener on 8443).
        ctx.public_authority = match port {
            Some(p) if p != 443 => format!("{host}:{p}"),
            _ => host.clone(),
        };
        ctx.public_host = host;

        let method = session.req_header().method.as_str().to_string();
        if rpaas_harden::is_denied_method(&method, &snap.config.node.deny_methods) {
            return self
                .refuse(
                    session,
                    ctx,
                    405,
                    "method",
                    &[("allow", "GET, HEAD, POST, PUT, PATCH, DELETE")],
                )
                .await;
        }
        let path_ok = session
            .req_header()
            .uri
            .path_and_query()
            .is_some_and(|p| p.as_str().starts_with('/'));
        if !path_ok {
            return self.refuse(session, ctx, 400, "bad_target", &[]).await;
        }

        // The access policy: canonical path, class, networks, GeoIP, restrictions.
        let Some(inst) = ctx.instance.clone() else {
            return Ok(false);
        };
        let client = ctx
            .client_ip
            .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
        let now = Instant::now();
        let trusted = inst.cfg.policy.is_trusted(client);
        let gate = crate::ips::check_ban(&self.shared, &snap, client, trusted, now);
        if gate != Gate::Pass {
            return self.gate(session, ctx, gate).await;
        }
        let decision = {
            let req = session.req_header();
            let Ok(target) = std::str::from_utf8(req.raw_path()) else {
                return self.refuse(session, ctx, 400, "path:invalid", &[]).await;
            };
            let headers = ReqHeaders(req);
            rpaas_policy::decide(
                &inst.cfg.policy,
                snap.geo.as_deref(),
                &RequestView {
                    ip: client,
                    method: &method,
                    target,
                    headers: &headers,
                },
            )
        };
        ctx.class = decision.class;
        ctx.country = decision.country;
        if let Verdict::Deny(reason) = decision.verdict {
            if reason == rpaas_policy::Reason::PathInvalid {
                crate::ips::strike(&self.shared, &snap, &inst, client, trusted, now);
            }
            return self
                .refuse(session, ctx, reason.status(), reason.code(), &[])
                .await;
        }
        ctx.set_cookie = decision.set_cookie;
        let class = decision.class.unwrap_or(TrafficClass::Other);
        ctx.canonical_path = decision.canonical_path.unwrap_or_default();

        let gate = crate::ips::check_rate(
            &self.shared,
            &snap,
            &inst,
            client,
            trusted,
            class,
            &ctx.canonical_path,
            &method,
            now,
        );
        let gate = if gate == Gate::Pass {
            let req = session.req_header();
            let target = std::str::from_utf8(req.raw_path()).unwrap_or("/");
            crate::ips::inspect_head(
                &self.shared,
                &snap,
                &inst,
                &mut ctx.ips,
                req,
                target,
                &ctx.canonical_path,
                class,
            )
        } else {
            gate
        };
        if gate != Gate::Pass {
            crate::ips::strike(&self.shared, &snap, &inst, client, trusted, now);
            return self.gate(session, ctx, gate).await;
        }
        Ok(false)
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let Some(inst) = ctx.instance.clone() else {
            return Ok(());
        };
        let snap = ctx.snap.clone();
        let gate = crate::ips::body_chunk(
            &self.shared,
            &snap,
            &inst,
            &mut ctx.ips,
            body,
            end_of_stream,
        );
        if let Gate::Refuse(status, reason) = gate {
            if let Some(client) = ctx.client_ip {
                let trusted = inst.cfg.policy.is_trusted(client);
                crate::ips::strike(&self.shared, &snap, &inst, client, trusted, Instant::now());
            }
            ctx.reason = Some(reason.into());
            return Error::e_explain(
                ErrorType::HTTPStatus(status),
                "blocked by the IPS (request body)",
            );
        }
        Ok(())
    }

    fn response_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<Option<std::time::Duration>> {
        let Some(inst) = ctx.instance.clone() else {
            return Ok(None);
        };
        let class = ctx.class.unwrap_or(TrafficClass::Other);
        if let Some(reason) = crate::ips::response_chunk(
            &self.shared,
            &ctx.snap,
            &inst,
            &mut ctx.ips,
            class,
            session.req_header().method.as_str(),
            &ctx.canonical_path,
            &ctx.request_id,
            body,
            end_of_stream,
        ) {
            ctx.reason = Some(reason.into());
        }
        Ok(None)
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        match &ctx.instance {
            Some(i) => Ok(Box::new(i.peer.clone())),
            None => Error::e_explain(ErrorType::InternalError, "no instance selected"),
        }
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        req: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        for h in DROP_REQUEST_HEADERS {
            req.remove_header(*h);
        }
        if let Some(ip) = ctx.client_ip {
            let ip = ip.to_string();
            req.insert_header("x-forwarded-for", &ip)?;
            req.insert_header("x-real-ip", &ip)?;
        }
        req.insert_header("x-forwarded-proto", "https")?;
        req.insert_header("x-forwarded-host", &ctx.public_host)?;
        req.insert_header("x-request-id", &ctx.request_id)?;
        if let Some(inst) = &ctx.instance {
            if let Some(h) = &inst.cfg.upstream_host {
                req.insert_header(http::header::HOST, h)?;
            }
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        if let Some(inst) = ctx.instance.clone() {
            crate::ips::response_start(&ctx.snap, &inst, &mut ctx.ips, resp);
            harden_response(
                resp,
                &inst.strip,
                inst.hsts.as_ref(),
                Some((&inst, &ctx.public_authority)),
            );
        } else {
            harden_response(
                resp,
                &ctx.snap.config.node.strip_headers,
                ctx.snap.hsts.as_ref(),
                None,
            );
        }
        resp.insert_header("x-request-id", &ctx.request_id)?;
        if let Some((name, value)) = &ctx.set_cookie {
            resp.append_header(
                "set-cookie",
                format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax"),
            )?;
        }
        Ok(())
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
        let code = match e.etype() {
            ErrorType::HTTPStatus(code) => *code,
            _ => match e.esource() {
                ErrorSource::Upstream => match e.etype() {
                    ErrorType::ConnectTimedout
                    | ErrorType::ReadTimedout
                    | ErrorType::WriteTimedout => 504,
                    _ => 502,
                },
                ErrorSource::Downstream => match e.etype() {
                    ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                    ErrorType::ReadTimedout | ErrorType::WriteTimedout => 0,
                    _ => 400,
                },
                ErrorSource::Internal | ErrorSource::Unset => 500,
            },
        };
        if let Some(inst) = &ctx.instance {
            if matches!(e.esource(), ErrorSource::Upstream) {
                crate::metrics::inc(
                    &self.shared.metrics.upstream_errors,
                    &[
                        inst.cfg.id.as_str(),
                        &e.etype().as_str().to_ascii_lowercase(),
                    ],
                );
            }
        }
        if code > 0 && session.response_written().is_none() {
            // A filter that refused with an HTTP status has already said why.
            let reason: Cow<'static, str> = match (e.etype(), ctx.reason.take()) {
                (ErrorType::HTTPStatus(_), Some(r)) => r,
                _ => "proxy_error".into(),
            };
            let _ = self.refuse(session, ctx, code, reason, &[]).await;
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Ctx) {
        let status = session
            .response_written()
            .map(|r| r.status.as_u16())
            .or(ctx.own_status)
            .unwrap_or(0);
        let instance = ctx.instance.as_ref().map_or("-", |i| i.cfg.id.as_str());
        let m = &self.shared.metrics;
        let status_s = status.to_string();
        let class = ctx.class.map_or("-", |c| c.as_str());
        let country = ctx.country.map(|c| c.to_string());
        crate::metrics::inc(&m.requests, &[instance, class, &status_s]);
        let elapsed = ctx.start.elapsed();
        crate::metrics::observe(&m.duration, &[instance], elapsed.as_secs_f64());
        if let Some(r) = ctx.reason.as_deref() {
            if r != "proxy_error" {
                let cc = country.as_deref().unwrap_or("--");
                crate::metrics::inc(&m.denials, &[instance, class, cc, r]);
            }
        }
        let req = session.req_header();
        let tls_version = session
            .digest()
            .and_then(|d| d.ssl_digest.as_ref())
            .map(|s| s.version.to_string())
            .unwrap_or_default();
        if let Some(mut line) = crate::logging::AccessLine::new() {
            let error = e.map(|e| e.to_string()).unwrap_or_default();
            let client = ctx.client_ip.map(|i| i.to_string()).unwrap_or_default();
            line.str("request_id", &ctx.request_id)
                .str("instance", instance)
                .str("host", &ctx.public_host)
                .str("client_ip", &client)
                .str("method", req.method.as_str())
                .str("path", req.uri.path())
                .num("status", status)
                .num("bytes_sent", session.body_bytes_sent())
                .num("bytes_received", session.body_bytes_read())
                .num(
                    "duration_ms",
                    format_args!("{:.3}", elapsed.as_secs_f64() * 1000.0),
                )
                .str("tls", &tls_version)
                .bool("http2", session.is_http2())
                .str("class", class)
                .str("country", country.as_deref().unwrap_or(""))
                .str("reason", ctx.reason.as_deref().unwrap_or(""))
                .str("ips_rules", &ctx.ips.rule_ids())
                .num("ips_score", ctx.ips.score())
                .str("error", &error)
                .num("generation", ctx.snap.generation);
            line.send();
        }
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &Ctx, _error: &Error) -> bool {
        // Our access line carries the error; Pingora's own error line would repeat it.
        true
    }
}

#[cfg(test)]
mod tests;
