//! The IPS in the request path: bans and rate limits (process-wide state that survives
//! reloads), head inspection in `request_filter`, bounded body inspection that holds the
//! first bytes back until they are judged, and leakage inspection of error responses.

use std::net::IpAddr;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use pingora::http::{RequestHeader, ResponseHeader};
use rpaas_config::BanAction;
use rpaas_ips::{inspect, inspect_response, Mode, Outcome, RequestData, Scope, Verdict};
use rpaas_policy::TrafficClass;

use crate::snapshot::{InstanceRt, Snapshot};
use crate::Shared;

/// What the client gets when a gate refuses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    Pass,
    Refuse(u16, String),
    /// Close the connection without an answer (banned, `ban_action = "close"`).
    Close,
}

/// Login endpoints (canonical paths), rate limited per client (CVE-2020-15027 and password
/// guessing). POST only, except the SOAP Control Center which takes any method.
const LOGIN_PATHS: &[&str] = &[
    "/cwa/api/v1/apitoken",
    "/wcc2/home/login",
    "/automate/login",
    "/automate/api/login",
];

/// Per-request IPS state.
#[derive(Default)]
pub struct IpsState {
    pub outcome: Option<Outcome>,
    data: Option<RequestData>,
    body: Option<Held>,
    response: Option<Held>,
}

struct Held {
    buf: BytesMut,
    limit: usize,
    content_type: String,
    done: bool,
}

impl IpsState {
    /// Rule ids that matched, for the log line.
    pub fn rule_ids(&self) -> String {
        self.outcome
            .as_ref()
            .map(|o| {
                o.matches
                    .iter()
                    .map(|m| m.id.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    }

    pub fn score(&self) -> u32 {
        self.outcome.as_ref().map_or(0, |o| o.score)
    }
}

/// Refuses banned clients. Trusted networks are never banned.
pub fn check_ban(
    shared: &Shared,
    snap: &Snapshot,
    client: IpAddr,
    trusted: bool,
    now: Instant,
) -> Gate {
    if trusted || shared.bans.banned(client, now).is_none() {
        return Gate::Pass;
    }
    match snap.config.node.limits.ban_action {
        BanAction::Forbidden => Gate::Refuse(403, "ban".into()),
        BanAction::Close => Gate::Close,
    }
}

/// Counts a blocked request towards a ban.
pub fn strike(
    shared: &Shared,
    snap: &Snapshot,
    inst: &InstanceRt,
    client: IpAddr,
    trusted: bool,
    now: Instant,
) {
    let Some(policy) = snap.config.node.limits.ban else {
        return;
    };
    if trusted {
        return;
    }
    if shared.bans.strike(client, &policy, now) {
        crate::metrics::inc(&shared.metrics.bans, &[inst.cfg.id.as_str()]);
        tracing::warn!(
            target: "rpaas::ips",
            event = "banned",
            instance = %inst.cfg.id,
            client_ip = %client,
            seconds = policy.duration.as_secs(),
            "client banned after repeated blocked requests"
        );
    }
}

/// Token buckets: login endpoints, then the class's own rate, if configured.
#[allow(clippy::too_many_arguments)]
pub fn check_rate(
    shared: &Shared,
    snap: &Snapshot,
    inst: &InstanceRt,
    client: IpAddr,
    trusted: bool,
    class: TrafficClass,
    path: &str,
    method: &str,
    now: Instant,
) -> Gate {
    if trusted {
        return Gate::Pass;
    }
    let limits = &snap.config.node.limits;
    let login = (method == "POST" && LOGIN_PATHS.contains(&path))
        || (class == TrafficClass::ControlCenter
            && path.starts_with("/labtech/controlcenter.asmx"));
    if login {
        if let Some(rate) = limits.login {
            if !shared.limiter.allow(client, "login", rate, now) {
                crate::metrics::inc(
                    &shared.metrics.rate_limited,
                    &[inst.cfg.id.as_str(), "login"],
                );
                return Gate::Refuse(429, "rate:login".into());
            }
        }
    }
    if let Some((_, rate)) = limits.classes.iter().find(|(c, _)| *c == class) {
        if !shared.limiter.allow(client, class.as_str(), *rate, now) {
            crate::metrics::inc(
                &shared.metrics.rate_limited,
                &[inst.cfg.id.as_str(), class.as_str()],
            );
            return Gate::Refuse(429, format!("rate:{class}"));
        }
    }
    Gate::Pass
}

fn inspectable(content_type: &str) -> bool {
    let ct = content_type.to_ascii_lowercase();
    ct.starts_with("application/x-www-form-urlencoded")
        || ct.starts_with("multipart/form-data")
        || ct.contains("json")
        || ct.contains("xml")
        || ct.starts_with("text/")
}

fn record(shared: &Shared, inst: &InstanceRt, o: &Outcome) {
    let action = match o.verdict {
        Verdict::Block => "block",
        Verdict::Detected => "detect",
        Verdict::Pass => "log",
    };
    for m in &o.matches {
        crate::metrics::inc(
            &shared.metrics.ips_matches,
            &[inst.cfg.id.as_str(), &m.id.to_string(), action],
        );
    }
}

fn verdict_gate(o: &Outcome) -> Gate {
    match (o.verdict, o.rule) {
        (Verdict::Block, Some(id)) => Gate::Refuse(403, format!("ips:{id}")),
        _ => Gate::Pass,
    }
}

/// Inspects the request head; arms body inspection for classes whose bodies are read.
#[allow(clippy::too_many_arguments)]
pub fn inspect_head(
    shared: &Shared,
    snap: &Snapshot,
    inst: &InstanceRt,
    state: &mut IpsState,
    req: &RequestHeader,
    target: &str,
    path: &str,
    class: TrafficClass,
) -> Gate {
    if inst.cfg.ips.mode == Mode::Off {
        return Gate::Pass;
    }
    let headers = req
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)));
    let data = RequestData::new(req.method.as_str(), path, target, headers, class);
    let o = inspect(&snap.ips, &inst.cfg.ips, &data, Scope::Head);
    record(shared, inst, &o);
    let gate = verdict_gate(&o);
    let opaque = matches!(class, TrafficClass::Agent | TrafficClass::Deployment);
    let content_type = data.header("content-type").unwrap_or("").to_string();
    let limit = snap.config.node.ips.body_limit;
    if gate == Gate::Pass && !opaque && limit > 0 && inspectable(&content_type) {
        state.body = Some(Held {
            buf: BytesMut::new(),
            limit,
            content_type,
            done: false,
        });
        state.data = Some(data);
    }
    state.outcome = Some(o);
    gate
}

/// One request body chunk. Holds bytes back until `limit` bytes or the end have arrived,
/// then judges them; the held bytes are released only if they pass.
pub fn body_chunk(
    shared: &Shared,
    snap: &Snapshot,
    inst: &InstanceRt,
    state: &mut IpsState,
    body: &mut Option<Bytes>,
    end_of_stream: bool,
) -> Gate {
    let Some(held) = state.body.as_mut() else {
        return Gate::Pass;
    };
    if held.done {
        return Gate::Pass;
    }
    if let Some(b) = body.take() {
        held.buf.extend_from_slice(&b);
    }
    if held.buf.len() < held.limit && !end_of_stream {
        // Hold back with an empty chunk: Pingora reads a `None` body as the end of the
        // request body and would finish the upstream request early.
        *body = Some(Bytes::new());
        return Gate::Pass;
    }
    held.done = true;
    let buf = std::mem::take(&mut held.buf).freeze();
    let judged = buf.slice(..buf.len().min(held.limit));
    let mut gate = Gate::Pass;
    if let Some(data) = state.data.as_mut() {
        data.set_body(&held.content_type, &judged);
        let o = inspect(&snap.ips, &inst.cfg.ips, data, Scope::Body);
        let mut all = state.outcome.take().unwrap_or_else(Outcome::pass);
        all.merge(o, &inst.cfg.ips);
        record(shared, inst, &all);
        gate = verdict_gate(&all);
        state.outcome = Some(all);
    }
    state.data = None;
    if gate == Gate::Pass {
        *body = Some(buf);
    }
    gate
}

/// Arms leakage inspection for an error response with a text body. Its length is dropped so
/// the body can be replaced.
pub fn response_start(
    snap: &Snapshot,
    inst: &InstanceRt,
    state: &mut IpsState,
    resp: &mut ResponseHeader,
) {
    let limit = snap.config.node.ips.response_limit;
    if inst.cfg.ips.mode == Mode::Off || limit == 0 || resp.status.as_u16() < 400 {
        return;
    }
    let ct = resp
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let encoded = resp.headers.get("content-encoding").is_some();
    if encoded || !(ct.starts_with("text/") || ct.contains("json") || ct.contains("xml")) {
        return;
    }
    resp.remove_header("content-length");
    state.response = Some(Held {
        buf: BytesMut::new(),
        limit,
        content_type: ct,
        done: false,
    });
}

/// One response body chunk: held until judged, then released or replaced.
#[allow(clippy::too_many_arguments)]
pub fn response_chunk(
    shared: &Shared,
    snap: &Snapshot,
    inst: &InstanceRt,
    state: &mut IpsState,
    class: TrafficClass,
    method: &str,
    path: &str,
    request_id: &str,
    body: &mut Option<Bytes>,
    end_of_stream: bool,
) -> Option<String> {
    let held = state.response.as_mut()?;
    if held.done {
        return None;
    }
    if let Some(b) = body.take() {
        held.buf.extend_from_slice(&b);
    }
    if held.buf.len() < held.limit && !end_of_stream {
        return None;
    }
    held.done = true;
    let buf = std::mem::take(&mut held.buf).freeze();
    let text = String::from_utf8_lossy(&buf[..buf.len().min(held.limit)]).into_owned();
    let headers = vec![("content-type".to_string(), held.content_type.clone())];
    let o = inspect_response(
        &snap.ips,
        &inst.cfg.ips,
        class,
        method,
        path,
        &headers,
        &text,
    );
    record(shared, inst, &o);
    let blocked = match (o.verdict, o.rule) {
        (Verdict::Block, Some(id)) => Some(format!("ips:{id}")),
        _ => None,
    };
    match &blocked {
        Some(_) => {
            *body = Some(Bytes::from(format!(
                "The server could not complete this request.\nrequest id: {request_id}\n"
            )));
        }
        None => *body = Some(buf),
    }
    blocked
}
