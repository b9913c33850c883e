//! [`admit`]: the decision for a request head, and [`judge_body`] for the body the IPS holds.

use std::net::IpAddr;
use std::time::Instant;

use rpaas_config::BanAction;
use rpaas_geoip::CountryCode;
use rpaas_ips::{inspect, Mode, Outcome, RequestData, Scope};
use rpaas_policy::{Facts, TrafficClass, Verdict as PolicyVerdict, Why};

use crate::facts::{client_ip, normalize_host, Conn, Gates, Head};
use crate::{Policy, Reason};

/// Login endpoints (canonical paths), rate limited per client (CVE-2020-15027 and password
/// guessing). POST only, except the SOAP Control Center which takes any method.
const LOGIN_PATHS: &[&str] = &[
    "/cwa/api/v1/apitoken",
    "/wcc2/home/login",
    "/automate/login",
    "/automate/api/login",
];

/// What happens to the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Forward it (the body, if held, is judged before it goes on).
    Forward,
    /// Answer it ourselves with `reason.status()`.
    Refuse(Reason),
    /// Close the connection without an answer (a ban with `ban_action = "close"`).
    Close(Reason),
}

/// Which check decided (for `rpaas explain`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Listener,
    Host,
    Method,
    Target,
    Ban,
    Policy(Why),
    Rate,
    Ips,
}

/// A request body the IPS reads before it is forwarded.
#[derive(Debug, Clone)]
pub struct BodyPlan {
    /// Bytes judged (held back until judged).
    pub limit: usize,
    pub content_type: String,
    /// The request as the IPS read its head; the body is added to it.
    pub data: RequestData,
    /// The request as CRS read its head, when the instance runs CRS.
    pub crs: Option<rpaas_crs::RequestInput>,
    /// What CRS found with the body (set by [`judge_body`]).
    pub finding: Option<crate::crs::CrsFinding>,
}

/// The decision about one request head.
#[derive(Debug, Clone)]
pub struct Decision {
    pub verdict: Verdict,
    pub step: Step,
    /// Index of the instance in the policy's config.
    pub instance: Option<usize>,
    /// The client address the decision is about (after the listener's `client_ip` rule).
    pub client: IpAddr,
    /// The host asked for (lowercase) and the port named with it.
    pub host: Option<String>,
    pub port: Option<u16>,
    pub trusted: bool,
    pub class: Option<TrafficClass>,
    pub country: Option<CountryCode>,
    pub canonical_path: Option<String>,
    /// A cookie to set on the response (`name`, `value`).
    pub set_cookie: Option<(String, String)>,
    /// The IPS's findings on the head.
    pub ips: Option<Outcome>,
    /// What CRS found (head, then head and body), when the instance runs it.
    pub crs: Option<crate::crs::CrsFinding>,
    /// Set when the body must be judged before it is forwarded.
    pub body: Option<BodyPlan>,
    /// What the gates could not tell (an offline explain): `"bans"`, `"rate limits"`.
    pub unknown: Vec<&'static str>,
}

impl Decision {
    /// The refusal reason, if refused.
    pub fn reason(&self) -> Option<&Reason> {
        match &self.verdict {
            Verdict::Forward => None,
            Verdict::Refuse(r) | Verdict::Close(r) => Some(r),
        }
    }

    /// Whether this refusal counts toward a ban (trusted networks are never banned).
    pub fn strike(&self) -> bool {
        !self.trusted && self.reason().is_some_and(Reason::is_strike)
    }

    fn refuse(mut self, r: Reason, step: Step) -> Self {
        self.verdict = Verdict::Refuse(r);
        self.step = step;
        self
    }
}

fn inspectable(content_type: &str) -> bool {
    let ct = content_type.to_ascii_lowercase();
    ct.starts_with("application/x-www-form-urlencoded")
        || ct.starts_with("multipart/form-data")
        || ct.contains("json")
        || ct.contains("xml")
        || ct.starts_with("text/")
}

/// The decision for one request head.
pub fn admit(
    policy: &Policy,
    conn: &Conn<'_>,
    head: &Head<'_>,
    gates: &dyn Gates,
    now: Instant,
) -> Decision {
    let mut d = Decision {
        verdict: Verdict::Forward,
        step: Step::Ips,
        instance: None,
        client: conn.peer,
        host: None,
        port: None,
        trusted: false,
        class: None,
        country: None,
        canonical_path: None,
        set_cookie: None,
        ips: None,
        crs: None,
        body: None,
        unknown: Vec::new(),
    };
    let config = &policy.config;
    let Some(listener) = config.listeners.get(conn.listener) else {
        return d.refuse(Reason::ListenerGone, Step::Listener);
    };
    d.client = client_ip(listener, conn.peer, head.headers);

    // Never fall back to a default host: IIS answers an empty Host with its own address.
    let Some((host, port)) = head.authority.and_then(normalize_host) else {
        return d.refuse(Reason::HostMissing, Step::Host);
    };
    let found = policy.instance_for_host(&host);
    d.host = Some(host);
    d.port = port;
    let (Some(idx), Some(inst)) = (found, found.and_then(|i| policy.instance(i))) else {
        return d.refuse(Reason::HostUnknown, Step::Host);
    };
    // One TLS connection serves one instance: a Host naming another tenant than the SNI did
    // is refused rather than routed across tenants.
    if let Some(sni) = conn.sni {
        if policy.instance_for_host(sni) != Some(idx) {
            return d.refuse(Reason::HostMismatch, Step::Host);
        }
    }
    d.instance = Some(idx);

    if let Some(m) = config
        .node
        .deny_methods
        .iter()
        .find(|m| m.eq_ignore_ascii_case(head.method))
    {
        let label = rpaas_policy::method_label(m);
        return d.refuse(Reason::DeniedMethod(label), Step::Method);
    }
    if !head.target.starts_with(b"/") {
        return d.refuse(Reason::TargetInvalid, Step::Target);
    }

    let client = d.client;
    d.trusted = inst.policy.is_trusted(client);
    if !d.trusted {
        match gates.banned(client, now) {
            Some(true) => {
                d.step = Step::Ban;
                d.verdict = match config.node.limits.ban_action {
                    BanAction::Forbidden => Verdict::Refuse(Reason::Ban),
                    BanAction::Close => Verdict::Close(Reason::Ban),
                };
                return d;
            }
            Some(false) => {}
            None => d.unknown.push("bans"),
        }
    }

    let path_invalid = |d: Decision, e| {
        d.refuse(
            Reason::Policy(rpaas_policy::Reason::PathInvalid),
            Step::Policy(Why::Path(e)),
        )
    };
    let Ok(target) = std::str::from_utf8(head.target) else {
        return path_invalid(d, rpaas_path::PathError::BadUtf8);
    };
    let canon = match rpaas_path::canonicalize(target) {
        Ok(c) => c,
        Err(e) => return path_invalid(d, e),
    };
    let class = inst.policy.classify(&canon.path);
    d.class = Some(class);
    // The IPS and the policy share one parse of the query and cookies; with the IPS off,
    // they are parsed only if a restriction reads them.
    let ips_on = inst.ips.mode != Mode::Off;
    let data = ips_on.then(|| {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        head.headers.each(&mut |k, v| {
            if let Ok(v) = std::str::from_utf8(v) {
                pairs.push((k, v));
            }
        });
        RequestData::new(head.method, &canon.path, target, pairs, class)
    });
    type Pair = (String, String);
    let parsed;
    let (query, cookies): (&[Pair], &[Pair]) = match &data {
        Some(data) => (&data.query_args, &data.cookies),
        None if inst.policy.reads_query_or_cookies() => {
            parsed = (
                canon
                    .query
                    .as_deref()
                    .map(rpaas_policy::split_query)
                    .unwrap_or_default(),
                rpaas_policy::split_cookies(head.headers),
            );
            (&parsed.0, &parsed.1)
        }
        None => (&[], &[]),
    };
    let pd = rpaas_policy::decide_facts(
        &inst.policy,
        policy.geo.as_deref(),
        &Facts {
            ip: client,
            method: head.method,
            target,
            canon: &canon,
            class,
            query,
            cookies,
            headers: head.headers,
            trusted: d.trusted,
        },
    );
    d.country = pd.country;
    d.canonical_path = Some(canon.path);
    if let PolicyVerdict::Deny(r) = pd.verdict {
        return d.refuse(Reason::Policy(r), Step::Policy(pd.why));
    }
    d.set_cookie = pd.set_cookie;
    d.step = Step::Policy(pd.why);

    if !d.trusted {
        let limits = &config.node.limits;
        let path = d.canonical_path.as_deref().unwrap_or("");
        let login = (head.method == "POST" && LOGIN_PATHS.contains(&path))
            || (class == TrafficClass::ControlCenter
                && path.starts_with("/labtech/controlcenter.asmx"));
        let mut buckets: Vec<(&'static str, rpaas_ips::limits::Rate)> = Vec::new();
        if let (true, Some(rate)) = (login, limits.login) {
            buckets.push(("login", rate));
        }
        if let Some((_, rate)) = limits.classes.iter().find(|(c, _)| *c == class) {
            buckets.push((class.as_str(), *rate));
        }
        for (bucket, rate) in buckets {
            match gates.take(client, bucket, rate, now) {
                Some(false) => return d.refuse(Reason::Rate(bucket), Step::Rate),
                Some(true) => {}
                None => {
                    if !d.unknown.contains(&"rate limits") {
                        d.unknown.push("rate limits");
                    }
                }
            }
        }
    }

    let Some(data) = data else {
        return d;
    };
    let o = inspect(&policy.ips, &inst.ips, &data, Scope::Head);
    if let (rpaas_ips::Verdict::Block, Some(id)) = (o.verdict, o.rule) {
        d.ips = Some(o);
        return d.refuse(Reason::Ips(id), Step::Ips);
    }
    d.ips = Some(o);
    let crs = inst.crs.and_then(|pl| {
        let rules = config.node.ips.crs.as_ref()?.rules(pl)?;
        let req = crate::crs::input(head, target, client, class);
        Some((rules, pl, req))
    });
    if let Some((rules, pl, req)) = &crs {
        let f = crate::crs::judge(rules, req, *pl);
        let blocked = f.blocked.filter(|_| inst.ips.mode == Mode::Block);
        d.crs = Some(f);
        if let Some(id) = blocked {
            return d.refuse(Reason::Crs(id), Step::Ips);
        }
    }
    let opaque = matches!(class, TrafficClass::Agent | TrafficClass::Deployment);
    let content_type = data.header("content-type").unwrap_or("").to_string();
    let limit = config.node.ips.body_limit;
    if !opaque && limit > 0 && inspectable(&content_type) {
        d.body = Some(BodyPlan {
            limit,
            content_type,
            data,
            crs: crs.map(|(_, _, req)| req),
            finding: None,
        });
    }
    d
}

/// Judges the first `plan.limit` bytes of a request body together with the head's findings
/// (`head`, updated in place). `Some(reason)` when the IPS blocks it.
pub fn judge_body(
    policy: &Policy,
    instance: usize,
    plan: &mut BodyPlan,
    head: &mut Outcome,
    body: &[u8],
) -> Option<Reason> {
    let inst = policy.instance(instance)?;
    let judged = &body[..body.len().min(plan.limit)];
    plan.data.set_body(&plan.content_type, judged);
    let o = inspect(&policy.ips, &inst.ips, &plan.data, Scope::Body);
    head.merge(o, &inst.ips);
    if let (rpaas_ips::Verdict::Block, Some(id)) = (head.verdict, head.rule) {
        return Some(Reason::Ips(id));
    }
    let pl = inst.crs?;
    let rules = policy.config.node.ips.crs.as_ref()?.rules(pl)?;
    let req = plan.crs.as_mut()?;
    req.body = judged.to_vec();
    let f = crate::crs::judge(rules, req, pl);
    let blocked = f.blocked.filter(|_| inst.ips.mode == Mode::Block);
    plan.finding = Some(f);
    blocked.map(Reason::Crs)
}
