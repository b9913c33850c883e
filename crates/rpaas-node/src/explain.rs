//! `rpaas explain`: what the node would do with one request from one address, and why. Uses
//! the same config loading, instance selection and decision function as `serve`.

use std::net::IpAddr;
use std::path::Path;

use rpaas_config::ConfigErrors;
use rpaas_policy::{RequestView, Verdict};
use serde::Serialize;

use crate::snapshot::Snapshot;

/// The question.
#[derive(Debug)]
pub struct Question<'a> {
    pub host: &'a str,
    pub ip: IpAddr,
    pub method: &'a str,
    pub headers: Vec<(String, String)>,
    pub target: &'a str,
    /// A request body to inspect (with its `Content-Type` header).
    pub body: Option<&'a [u8]>,
}

/// The answer, printable as text or JSON.
#[derive(Debug, Serialize)]
pub struct Explanation {
    /// "ALLOW" or "DENY".
    pub verdict: &'static str,
    /// Stable reason code when denied.
    pub reason: Option<String>,
    /// The HTTP status the client would get from the node (`None`: forwarded).
    pub status: Option<u16>,
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
    pub rule: String,
    pub set_cookie: Option<String>,
    /// IPS rules that matched: `id (score, action) target[name]: msg`.
    pub ips_matches: Vec<String>,
    pub ips_score: u32,
    pub ips_mode: Option<String>,
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
            &match self.status {
                Some(st) => format!("{st} from the node; not forwarded"),
                None => "forwarded to the upstream".into(),
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
        s
    }
}

/// Answers `q` against the config at `path`.
pub fn explain(path: &Path, q: &Question<'_>) -> Result<Explanation, ConfigErrors> {
    let config = rpaas_config::load(path)?;
    let snap = Snapshot::build(config, 0, None)?;
    let host = q.host.trim_end_matches('.').to_ascii_lowercase();
    let mut e = Explanation {
        verdict: "DENY",
        reason: None,
        status: None,
        instance: None,
        deployment: None,
        client_ip: q.ip.to_string(),
        trusted: false,
        method: q.method.to_string(),
        target: q.target.to_string(),
        canonical_path: None,
        class: None,
        access: None,
        country: None,
        rule: String::new(),
        set_cookie: None,
        ips_matches: Vec::new(),
        ips_score: 0,
        ips_mode: None,
    };
    let Some(inst) = snap.instance_for_host(&host) else {
        e.reason = Some("host:unknown".into());
        e.status = Some(421);
        e.rule = format!("no instance serves {host:?}");
        return Ok(e);
    };
    e.instance = Some(inst.cfg.id.clone());
    e.deployment = Some(inst.cfg.policy.deployment.as_str().to_string());
    e.trusted = inst.cfg.policy.is_trusted(q.ip);
    if rpaas_harden::is_denied_method(q.method, &snap.config.node.deny_methods) {
        e.reason = Some(format!("method:{}", q.method));
        e.status = Some(405);
        e.rule = format!("[node] deny_methods refuses {}", q.method);
        return Ok(e);
    }
    let d = rpaas_policy::decide(
        &inst.cfg.policy,
        snap.geo.as_deref(),
        &RequestView {
            ip: q.ip,
            method: q.method,
            target: q.target,
            headers: &q.headers,
        },
    );
    e.canonical_path = d.canonical_path.clone();
    e.class = d.class.map(|c| c.to_string());
    e.access = d
        .class
        .map(|c| inst.cfg.policy.class_policy(c).access.as_str().to_string());
    // Show the country even when the decision did not need it (trusted, no restriction).
    e.country = d
        .country
        .or_else(|| snap.geo.as_ref().and_then(|g| g.country(q.ip)))
        .map(|c| c.to_string());
    e.rule = d.rule.clone();
    e.set_cookie = d.set_cookie.as_ref().map(|(n, _)| n.clone());
    match d.verdict {
        Verdict::Allow => e.verdict = "ALLOW",
        Verdict::Deny(r) => {
            e.status = Some(r.status());
            e.reason = Some(r.code());
            return Ok(e);
        }
    }
    // The IPS, as the node runs it: head, then the body for classes whose bodies are read.
    let settings = &inst.cfg.ips;
    e.ips_mode = Some(
        match settings.mode {
            rpaas_ips::Mode::Block => "block",
            rpaas_ips::Mode::Detect => "detect",
            rpaas_ips::Mode::Off => "off",
        }
        .into(),
    );
    let class = d.class.unwrap_or(rpaas_policy::TrafficClass::Other);
    let path = d.canonical_path.clone().unwrap_or_default();
    let mut data = rpaas_ips::RequestData::new(
        q.method,
        &path,
        q.target,
        q.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        class,
    );
    let mut out = rpaas_ips::inspect(&snap.ips, settings, &data, rpaas_ips::Scope::Head);
    let opaque = matches!(
        class,
        rpaas_policy::TrafficClass::Agent | rpaas_policy::TrafficClass::Deployment
    );
    if let (Some(body), false) = (q.body, opaque) {
        let ct = data.header("content-type").unwrap_or("").to_string();
        let limit = snap.config.node.ips.body_limit;
        data.set_body(&ct, &body[..body.len().min(limit)]);
        out.merge(
            rpaas_ips::inspect(&snap.ips, settings, &data, rpaas_ips::Scope::Body),
            settings,
        );
    }
    e.ips_score = out.score;
    e.ips_matches = out
        .matches
        .iter()
        .map(|m| {
            let msg = snap.ips.rule(m.id).map(|r| r.msg.as_str()).unwrap_or("");
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
        .collect();
    if out.verdict == rpaas_ips::Verdict::Block {
        if let Some(id) = out.rule {
            e.verdict = "DENY";
            e.reason = Some(format!("ips:{id}"));
            e.status = Some(403);
            e.rule = format!(
                "IPS: score {} (threshold {})",
                out.score, settings.threshold
            );
        }
    }
    Ok(e)
}

/// `rpaas geoip`: the country of each address, from a database file or a config's `geoip_db`.
pub fn geoip_lookup(db: &Path, ips: &[String]) -> Result<Vec<(String, Option<String>)>, String> {
    let db = rpaas_geoip::GeoDb::open(db).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for s in ips {
        let ip: IpAddr = s
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address"))?;
        out.push((s.clone(), db.country(ip).map(|c| c.to_string())));
    }
    Ok(out)
}
