//! The Pingora phases for one listener. `request_filter` asks the admission core
//! (`rpaas-admission`, the same function `rpaas explain` calls) and acts on its decision:
//! forward, refuse with a hardened page, or close. The other phases forward with our own
//! `X-Forwarded-*` headers, hold inspected bodies back until judged, harden the response and
//! log one line.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::{HttpPeer, ProxyHttp, Session};
use pingora::proxy::FailToProxy;
use pingora::{Error, ErrorSource, ErrorType, Result};
use rpaas_admission::{admit, Conn, Head, HeaderList, Reason, Verdict};
use rpaas_geoip::CountryCode;
use rpaas_policy::TrafficClass;

use crate::conn::accept::ConnInfo;
use crate::harden::{harden_response, reason_phrase, write_own, OwnResponse};
use crate::ips::IpsState;
use crate::snapshot::{InstanceRt, Snapshot};
use crate::state::Shared;

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
    instance_index: Option<usize>,
    client_ip: Option<IpAddr>,
    public_host: String,
    public_authority: String,
    request_id: String,
    start: Instant,
    own_status: Option<u16>,
    reason: Option<Reason>,
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

/// Request headers for the admission core.
struct ReqHeaders<'a>(&'a http::HeaderMap);

impl rpaas_policy::Headers for ReqHeaders<'_> {
    fn get(&self, name: &str) -> Option<&[u8]> {
        self.0.get(name).map(|v| v.as_bytes())
    }
    fn get_all(&self, name: &str) -> Vec<&[u8]> {
        self.0.get_all(name).iter().map(|v| v.as_bytes()).collect()
    }
}

impl HeaderList for ReqHeaders<'_> {
    fn each<'s>(&'s self, f: &mut dyn FnMut(&'s str, &'s [u8])) {
        for (k, v) in self.0 {
            f(k.as_str(), v.as_bytes());
        }
    }
}

impl Proxy {
    async fn refuse(&self, session: &mut Session, ctx: &mut Ctx, reason: Reason) -> Result<bool> {
        let status = reason.status();
        let hsts = ctx
            .instance
            .as_ref()
            .map_or(ctx.snap.hsts.as_ref(), |i| i.hsts.as_ref());
        let body = format!(
            "{status} {}\nrequest id: {}\n",
            reason_phrase(status),
            ctx.request_id
        );
        let extra: &[(&str, &str)] = if status == 405 {
            &[("allow", "GET, HEAD, POST, PUT, PATCH, DELETE")]
        } else {
            &[]
        };
        ctx.reason = Some(reason);
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

    fn strike(&self, ctx: &Ctx) {
        if let (Some(inst), Some(client)) = (&ctx.instance, ctx.client_ip) {
            crate::gates::strike(&self.shared, &inst.cfg.id, client, Instant::now());
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
            instance_index: None,
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
        let node = &snap.config().node;
        session.set_keepalive(Some(node.keepalive_timeout.as_secs()));
        session.set_read_timeout(Some(node.body_read_timeout));
        let peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |a| a.ip());
        let sni = conn_info(session).and_then(|c| c.sni.clone());
        let d = {
            let req = session.req_header();
            let headers = ReqHeaders(&req.headers);
            let authority = match req.headers.get(http::header::HOST) {
                Some(v) => v.to_str().ok(),
                None => req.uri.authority().map(|a| a.as_str()),
            };
            admit(
                &snap.policy,
                &Conn {
                    listener: self.listener,
                    peer,
                    sni: sni.as_deref(),
                },
                &Head {
                    method: req.method.as_str(),
                    target: req.raw_path(),
                    authority,
                    headers: &headers,
                    protocol: match req.version {
                        http::Version::HTTP_10 => "HTTP/1.0",
                        http::Version::HTTP_2 => "HTTP/2.0",
                        _ => "HTTP/1.1",
                    },
                },
                &crate::gates::Live(&self.shared),
                Instant::now(),
            )
        };
        ctx.client_ip = Some(d.client);
        ctx.class = d.class;
        ctx.country = d.country;
        ctx.instance_index = d.instance;
        ctx.instance = d.instance.and_then(|i| snap.instances.get(i).cloned());
        if let Some(host) = &d.host {
            // Redirects keep a non-default port the client used (e.g. a legacy listener).
            ctx.public_authority = match d.port {
                Some(p) if p != 443 => format!("{host}:{p}"),
                _ => host.clone(),
            };
            ctx.public_host = host.clone();
        }
        ctx.canonical_path = d.canonical_path.clone().unwrap_or_default();
        if let (Some(inst), Some(o)) = (&ctx.instance, &d.ips) {
            crate::ips::record(&self.shared, inst, o);
        }
        if let (Some(inst), Some(f)) = (&ctx.instance, &d.crs) {
            crate::ips::record_crs(&self.shared, inst, f, None);
        }
        if let (Some(Reason::Rate(bucket)), Some(inst)) = (d.reason(), &ctx.instance) {
            crate::metrics::inc(
                &self.shared.metrics.rate_limited,
                &[inst.cfg.id.as_str(), bucket],
            );
        }
        if d.strike() {
            self.strike(ctx);
        }
        match d.verdict {
            Verdict::Forward => {
                ctx.set_cookie = d.set_cookie;
                ctx.ips = IpsState::new(d.ips, d.body);
                ctx.ips.crs = d.crs;
                Ok(false)
            }
            Verdict::Refuse(r) => {
                ctx.ips = IpsState::new(d.ips, None);
                ctx.ips.crs = d.crs;
                self.refuse(session, ctx, r).await
            }
            Verdict::Close(r) => {
                ctx.reason = Some(r);
                let mut e = Error::new(ErrorType::ConnectionClosed);
                e.as_down();
                Err(e)
            }
        }
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let Some(i) = ctx.instance_index else {
            return Ok(());
        };
        let snap = ctx.snap.clone();
        if let Some(reason) =
            crate::ips::body_chunk(&self.shared, &snap, i, &mut ctx.ips, body, end_of_stream)
        {
            if ctx.client_ip.is_some_and(|ip| {
                ctx.instance
                    .as_ref()
                    .is_some_and(|inst| !inst.cfg.policy.is_trusted(ip))
            }) {
                self.strike(ctx);
            }
            let status = reason.status();
            ctx.reason = Some(reason);
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
            ctx.reason = Some(reason);
        }
        Ok(None)
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let peer = ctx.instance.as_ref().and_then(|i| i.upstream.peer());
        match peer {
            Some(p) => Ok(Box::new(p)),
            None => {
                self.shared.resolve_now.notify_one();
                let mut e = Error::explain(ErrorType::ConnectNoRoute, "upstream does not resolve");
                e.esource = ErrorSource::Upstream;
                Err(e)
            }
        }
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        req: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        // Most requests carry none of them.
        for h in crate::harden::names_in(&req.headers, |k| DROP_REQUEST_HEADERS.contains(&k)) {
            req.remove_header(&h);
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
                &ctx.snap.config().node.strip_headers,
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
                    &[inst.cfg.id.as_str(), crate::metrics::error_kind(e.etype())],
                );
                if matches!(
                    e.etype(),
                    ErrorType::ConnectError | ErrorType::ConnectRefused | ErrorType::ConnectNoRoute
                ) {
                    self.shared.resolve_now.notify_one();
                }
            }
        }
        if code > 0 && session.response_written().is_none() {
            // A filter that refused with an HTTP status has already said why.
            let reason = match (e.etype(), ctx.reason.take()) {
                (ErrorType::HTTPStatus(_), Some(r)) => r,
                _ => Reason::Upstream,
            };
            let status = code;
            ctx.reason = Some(reason.clone());
            let hsts = ctx
                .instance
                .as_ref()
                .map_or(ctx.snap.hsts.as_ref(), |i| i.hsts.as_ref());
            let body = format!(
                "{status} {}\nrequest id: {}\n",
                reason_phrase(status),
                ctx.request_id
            );
            ctx.own_status = write_own(
                session,
                OwnResponse {
                    status,
                    body,
                    request_id: &ctx.request_id,
                    hsts,
                    extra: &[],
                },
            )
            .await;
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
        let class = ctx.class.map_or("-", |c| c.as_str());
        let country = ctx.country.map(|c| c.to_string());
        let status_label = crate::metrics::status_label(status);
        crate::metrics::inc(&m.requests, &[instance, class, status_label]);
        let elapsed = ctx.start.elapsed();
        crate::metrics::observe(&m.duration, &[instance], elapsed.as_secs_f64());
        let reason = ctx.reason.as_ref().map(|r| r.code());
        if let Some(r) = ctx.reason.as_ref().filter(|r| **r != Reason::Upstream) {
            let cc = country.as_deref().unwrap_or("--");
            crate::metrics::inc(&m.denials, &[instance, class, cc, &r.code()]);
        }
        let req = session.req_header();
        let tls_version = session
            .digest()
            .and_then(|d| d.ssl_digest.as_ref())
            .map(|s| s.version.to_string())
            .unwrap_or_default();
        if let (Some(t), Some(inst)) = (&self.shared.telemetry, &ctx.instance) {
            t.record(crate::telemetry::Event {
                time_ms: rpaas_control::store::now_ms(),
                instance: inst.cfg.id.clone(),
                ip: ctx
                    .client_ip
                    .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into()),
                country: country.clone().unwrap_or_default(),
                method: req.method.as_str().to_string(),
                path: req.uri.path().to_string(),
                target: req
                    .uri
                    .path_and_query()
                    .map_or_else(|| req.uri.path().to_string(), |p| p.as_str().to_string()),
                host: ctx.public_host.clone(),
                class,
                // An upstream failure is not a refusal.
                reason: ctx
                    .reason
                    .as_ref()
                    .filter(|r| **r != Reason::Upstream)
                    .map(|r| r.code().into_owned())
                    .unwrap_or_default(),
                status,
                request_id: ctx.request_id.clone(),
                tls: tls_version.clone(),
            });
        }
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
                .str("reason", reason.as_deref().unwrap_or(""))
                .str("ips_rules", &ctx.ips.rule_ids())
                .num("ips_score", ctx.ips.score())
                .str("crs_rules", &ctx.ips.crs_rule_ids())
                .num("crs_score", ctx.ips.crs_score())
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
