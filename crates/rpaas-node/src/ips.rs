//! The IPS glue in the request path: the body the admission core asked to judge is held back
//! until its first `body_limit` bytes (or the end) arrived, then judged by
//! [`rpaas_admission::judge_body`] and released only if it passes; error responses are held
//! and checked for leakage.

use bytes::{Bytes, BytesMut};
use pingora::http::ResponseHeader;
use rpaas_admission::{judge_body, BodyPlan, Reason};
use rpaas_ips::{inspect_response, Mode, Outcome, Verdict};
use rpaas_policy::TrafficClass;

use crate::snapshot::{InstanceRt, Snapshot};
use crate::state::Shared;

/// Per-request IPS state.
#[derive(Default)]
pub struct IpsState {
    /// What the IPS found so far (head, then body).
    pub outcome: Option<Outcome>,
    /// What CRS found (head, then head and body).
    pub crs: Option<rpaas_admission::CrsFinding>,
    body: Option<HeldBody>,
    response: Option<Held>,
}

struct HeldBody {
    plan: BodyPlan,
    buf: BytesMut,
    done: bool,
}

struct Held {
    buf: BytesMut,
    limit: usize,
    content_type: String,
    done: bool,
}

impl IpsState {
    /// From the admission decision: the head's findings and the body to judge, if any.
    pub fn new(outcome: Option<Outcome>, plan: Option<BodyPlan>) -> Self {
        Self {
            outcome,
            crs: None,
            body: plan.map(|plan| HeldBody {
                plan,
                buf: BytesMut::new(),
                done: false,
            }),
            response: None,
        }
    }

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

    /// CRS rule ids that matched, for the log line.
    pub fn crs_rule_ids(&self) -> String {
        self.crs
            .as_ref()
            .map(|f| {
                f.matches
                    .iter()
                    .map(|(id, _, _)| id.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    }

    pub fn crs_score(&self) -> i64 {
        self.crs.as_ref().map_or(0, |f| f.score)
    }
}

/// Counts CRS matches by rule and action, like [`record`] (rule ids come from the loaded CRS,
/// a bounded set; `crs` is the rule label's prefix so they never mix with the shipped ids).
/// Matches already in `counted` (the head's, when the body is judged) are not counted again.
pub fn record_crs(
    shared: &Shared,
    inst: &InstanceRt,
    f: &rpaas_admission::CrsFinding,
    counted: Option<&rpaas_admission::CrsFinding>,
) {
    let action = match (f.blocked, inst.cfg.ips.mode) {
        (Some(_), Mode::Block) => "block",
        (Some(_), _) => "detect",
        (None, _) => "log",
    };
    for (id, _, _) in &f.matches {
        if counted.is_some_and(|c| c.matches.iter().any(|(h, _, _)| h == id)) {
            continue;
        }
        crate::metrics::inc(
            &shared.metrics.ips_matches,
            &[inst.cfg.id.as_str(), &format!("crs:{id}"), action],
        );
    }
}

/// Counts the matches of an outcome by rule and action (rule ids come from the loaded rules:
/// a bounded set).
pub fn record(shared: &Shared, inst: &InstanceRt, o: &Outcome) {
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

/// One request body chunk. Holds bytes back until `limit` bytes or the end have arrived,
/// then judges them; the held bytes are released only if they pass.
pub fn body_chunk(
    shared: &Shared,
    snap: &Snapshot,
    instance: usize,
    state: &mut IpsState,
    body: &mut Option<Bytes>,
    end_of_stream: bool,
) -> Option<Reason> {
    let held = state.body.as_mut()?;
    if held.done {
        return None;
    }
    if let Some(b) = body.take() {
        held.buf.extend_from_slice(&b);
    }
    if held.buf.len() < held.plan.limit && !end_of_stream {
        // Hold back with an empty chunk: Pingora reads a `None` body as the end of the
        // request body and would finish the upstream request early.
        *body = Some(Bytes::new());
        return None;
    }
    held.done = true;
    let buf = std::mem::take(&mut held.buf).freeze();
    let mut all = state.outcome.take().unwrap_or_else(Outcome::pass);
    let refused = judge_body(&snap.policy, instance, &mut held.plan, &mut all, &buf);
    if let Some(inst) = snap.instances.get(instance) {
        record(shared, inst, &all);
        if let Some(f) = held.plan.finding.take() {
            record_crs(shared, inst, &f, state.crs.as_ref());
            state.crs = Some(f);
        }
    }
    state.outcome = Some(all);
    if refused.is_none() {
        *body = Some(buf);
    }
    refused
}

/// Arms leakage inspection for an error response with a text body. Its length is dropped so
/// the body can be replaced.
pub fn response_start(
    snap: &Snapshot,
    inst: &InstanceRt,
    state: &mut IpsState,
    resp: &mut ResponseHeader,
) {
    let limit = snap.config().node.ips.response_limit;
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
) -> Option<Reason> {
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
        &snap.policy.ips,
        &inst.cfg.ips,
        class,
        method,
        path,
        &headers,
        &text,
    );
    record(shared, inst, &o);
    let blocked = match (o.verdict, o.rule) {
        (Verdict::Block, Some(id)) => Some(Reason::Ips(id)),
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
