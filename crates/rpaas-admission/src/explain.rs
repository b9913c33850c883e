//! `rpaas explain`: what the node does with one request from one address, and why — the
//! same [`admit`] the node runs, with its findings written out for a human.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::admit::{admit, judge_body, Step, Verdict};
use crate::facts::{Conn, Gates, Head};
use crate::{Policy, Reason};

/// The answer, printable as text or JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Explanation {
    /// "ALLOW" or "DENY".
    pub verdict: String,
    /// Stable reason code when denied.
    pub reason: Option<String>,
    /// The HTTP status the client would get from the node (`None`: forwarded).
    pub status: Option<u16>,
    /// The connection is closed without an answer (a ban with `ban_action = "close"`).
    pub close: bool,
    pub instance: Option<String>,
    pub deployment: Option<String>,
    pub client_ip: String,
    pub trusted: bool,
    pub method: String,
    pub target: String,
    pub canonical_path: Option<String>,
    pub class: Option<String>,
    pub access: Option<String>,
    pub country: Option<String>,
    /// Which check decided, in words.
    pub rule: String,
    pub set_cookie: Option<String>,
    /// IPS rules that matched: `id (score, action) target[name]: msg`.
    pub ips_matches: Vec<String>,
    pub ips_score: u32,
    pub ips_mode: Option<String>,
    /// OWASP CRS rules that matched: `id VARIABLE:name: msg` (empty without CRS).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crs_matches: Vec<String>,
    /// CRS's inbound anomaly score, when the instance runs CRS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crs_score: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crs_paranoia: Option<u8>,
    /// What this answer could not take into account (an explain without a running node):
    /// `"bans"`, `"rate limits"`.
    pub unknown: Vec<String>,
}

impl Explanation {
    pub fn text(&self) -> String {
        let mut s = match &self.reason {
            Some(r) => format!("DENY {r}\n"),
            None => "ALLOW\n".to_string(),
        };
        let mut line = |k: &str, v: &str| s.push_str(&format!("  {k:<10} {v}\n"));
        line(
            "instance",
            &match (&self.instance, &self.deployment) {
                (Some(i), Some(d)) => format!("{i} ({d})"),
                (Some(i), None) => i.clone(),
                _ => "-".into(),
            },
        );
        line(
            "client",
            &format!(
                "{} ({})",
                self.client_ip,
                if self.trusted {
                    "trusted network"
                } else {
                    "not in a trusted network"
                }
            ),
        );
        line("request", &format!("{} {}", self.method, self.target));
        line("canonical", self.canonical_path.as_deref().unwrap_or("-"));
        line(
            "class",
            &match (&self.class, &self.access) {
                (Some(c), Some(a)) => format!("{c} (access: {a})"),
                (Some(c), None) => c.clone(),
                _ => "-".into(),
            },
        );
        line("country", self.country.as_deref().unwrap_or("--"));
        line("rule", &self.rule);
        line(
            "result",
            &match (self.status, self.close) {
                (_, true) => "connection closed by the node; not forwarded".into(),
                (Some(st), _) => format!("{st} from the node; not forwarded"),
                (None, _) => "forwarded to the upstream".into(),
            },
        );
        if let Some(c) = &self.set_cookie {
            line("cookie", &format!("sets {c}"));
        }
        if let Some(mode) = &self.ips_mode {
            line("ips", &format!("mode {mode}, score {}", self.ips_score));
            for m in &self.ips_matches {
                line("", &format!("matched {m}"));
            }
        }
        if let (Some(score), Some(pl)) = (self.crs_score, self.crs_paranoia) {
            line(
                "crs",
                &format!("paranoia level {pl}, anomaly score {score}"),
            );
            for m in &self.crs_matches {
                line("", &format!("matched {m}"));
            }
        }
        if !self.unknown.is_empty() {
            line(
                "note",
                &format!(
                    "{} not known without a running node (ask one with --admin)",
                    self.unknown.join(" and ")
                ),
            );
        }
        s
    }
}

/// Adds the `Content-Length` a client sends with `body` when the caller of an explain gave a
/// body but no length (CRS refuses a POST without one, as it should for a real client).
pub fn add_body_length(headers: &mut Vec<(String, String)>, body: Option<&[u8]>) {
    let Some(body) = body else { return };
    let has = |n: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    if !has("content-length") && !has("transfer-encoding") {
        headers.push(("content-length".into(), body.len().to_string()));
    }
}

/// Explains one request. `body` is judged as the node would judge it (with its
/// `Content-Type` header from `head`).
pub fn explain(
    policy: &Policy,
    conn: &Conn<'_>,
    head: &Head<'_>,
    gates: &dyn Gates,
    body: Option<&[u8]>,
    now: Instant,
) -> Explanation {
    let mut d = admit(policy, conn, head, gates, now);
    if let (Verdict::Forward, Some(plan), Some(body), Some(i)) =
        (&d.verdict, d.body.as_mut(), body, d.instance)
    {
        let mut o = d.ips.take().unwrap_or_else(rpaas_ips::Outcome::pass);
        if let Some(r) = judge_body(policy, i, plan, &mut o, body) {
            d.verdict = Verdict::Refuse(r);
            d.step = Step::Ips;
        }
        d.ips = Some(o);
        if let Some(f) = plan.finding.take() {
            d.crs = Some(f);
        }
    }
    let inst = d.instance.and_then(|i| policy.instance(i));
    let target = String::from_utf8_lossy(head.target).into_owned();
    let host = d.host.clone().unwrap_or_default();
    let rule = match &d.step {
        Step::Listener => format!("listener {} is not in the config", conn.listener),
        Step::Host => match d.reason() {
            Some(Reason::HostMissing) => "no Host header (or not a hostname)".to_string(),
            Some(Reason::HostMismatch) => format!(
                "{host:?} belongs to another instance than the TLS name {:?}",
                conn.sni.unwrap_or("")
            ),
            _ => format!("no instance serves {host:?}"),
        },
        Step::Method => format!("[node] deny_methods refuses {}", head.method),
        Step::Target => "the request target is not origin-form (/path?query)".into(),
        Step::Ban => format!("{} is banned (repeated blocked requests)", d.client),
        Step::Policy(why) => inst.map_or_else(String::new, |i| why.describe(&i.policy, d.client)),
        Step::Rate => match d.reason() {
            Some(Reason::Rate(b)) => format!("over the {b} rate limit for {}", d.client),
            _ => "rate limits".into(),
        },
        Step::Ips if matches!(d.reason(), Some(Reason::Crs(_))) => {
            let (score, threshold, pl) = d
                .crs
                .as_ref()
                .map_or((0, 0, 0), |f| (f.score, f.threshold, f.paranoia));
            format!(
                "OWASP CRS at paranoia level {pl}: anomaly score {score} (threshold {threshold})"
            )
        }
        Step::Ips => {
            let (score, threshold) = (
                d.ips.as_ref().map_or(0, |o| o.score),
                inst.map_or(0, |i| i.ips.threshold),
            );
            format!("IPS: score {score} (threshold {threshold})")
        }
    };
    // Show the country even when the decision did not need it (trusted, no restriction).
    let country = d
        .country
        .or_else(|| policy.geo.as_ref().and_then(|g| g.country(d.client)));
    let ips = d.ips.as_ref();
    let (verdict, reason, status, close) = match &d.verdict {
        Verdict::Forward => ("ALLOW", None, None, false),
        Verdict::Refuse(r) => ("DENY", Some(r.code().into_owned()), Some(r.status()), false),
        Verdict::Close(r) => ("DENY", Some(r.code().into_owned()), None, true),
    };
    Explanation {
        verdict: verdict.to_string(),
        reason,
        status,
        close,
        instance: inst.map(|i| i.id.clone()),
        deployment: inst.map(|i| i.policy.deployment.as_str().to_string()),
        client_ip: d.client.to_string(),
        trusted: d.trusted,
        method: head.method.to_string(),
        target,
        canonical_path: d.canonical_path.clone(),
        class: d.class.map(|c| c.to_string()),
        access: match (d.class, inst) {
            (Some(c), Some(i)) => Some(i.policy.class_policy(c).access.as_str().to_string()),
            _ => None,
        },
        country: country.map(|c| c.to_string()),
        rule,
        set_cookie: d.set_cookie.as_ref().map(|(n, _)| n.clone()),
        ips_matches: ips
            .map(|o| {
                o.matches
                    .iter()
                    .map(|m| {
                        let msg = policy.ips.rule(m.id).map(|r| r.msg.as_str()).unwrap_or("");
                        let name = m
                            .name
                            .as_deref()
                            .map(|n| format!("[{n}]"))
                            .unwrap_or_default();
                        format!(
                            "{} ({}, {}) {}{name}: {msg}",
                            m.id,
                            m.score,
                            m.action.as_str(),
                            m.target
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        ips_score: ips.map_or(0, |o| o.score),
        ips_mode: ips.and(inst).map(|i| {
            match i.ips.mode {
                rpaas_ips::Mode::Block => "block",
                rpaas_ips::Mode::Detect => "detect",
                rpaas_ips::Mode::Off => "off",
            }
            .to_string()
        }),
        crs_matches: d
            .crs
            .as_ref()
            .map(|f| {
                f.matches
                    .iter()
                    .map(|(id, msg, var)| format!("{id} {var}: {msg}"))
                    .collect()
            })
            .unwrap_or_default(),
        crs_score: d.crs.as_ref().map(|f| f.score),
        crs_paranoia: d.crs.as_ref().map(|f| f.paranoia),
        unknown: d.unknown.iter().map(|u| u.to_string()).collect(),
    }
}
