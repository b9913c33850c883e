//! Pure verdicts over what the probes saw: no sockets, no clock. The probes ([`crate::probe`])
//! fill the `*Observed` structs; these functions turn them into [`Check`]s.

use std::sync::OnceLock;

use regex::Regex;

use crate::check::{ids, Check, Status};
use crate::error::ProbeError;

/// One HTTP response as read (the body capped at [`crate::probe::BODY_LIMIT`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub type Outcome = Result<Response, ProbeError>;

/// The administrative sites probed from the auditing address: (IIS app, path).
pub const ADMIN_PROBES: &[(&str, &str)] = &[
    ("automate", "/automate/"),
    ("cwa", "/cwa/"),
    ("LegacyCCASMX", "/LabTech/ControlCenter.asmx"),
];
pub const AGENT_PATH: &str = "/LabTech/Agent.aspx";
pub const WCC2_PATH: &str = "/WCC2/";
/// A header sent with TRACE/TRACK: finding it in the body proves the request was echoed.
pub const TRACE_MARKER: &str = "X-Rpaas-Audit: trace-probe";

/// The `/aspnet_client` requests and their labels.
pub const ASPNET_PROBES: &[&str] = &["HTTP/1.0, empty Host", "HTTP/1.0, no Host"];

/// What the HTTP probes saw.
#[derive(Debug, Clone)]
pub struct HttpObserved {
    /// The URL's host (lowercase, no brackets).
    pub host: String,
    /// `GET /`.
    pub root: Outcome,
    pub options: Outcome,
    pub trace: Outcome,
    pub track: Outcome,
    /// One per [`ASPNET_PROBES`], same order.
    pub aspnet: Vec<Outcome>,
    /// One per [`ADMIN_PROBES`], same order.
    pub admin: Vec<Outcome>,
    pub agent: Outcome,
    pub wcc2: Outcome,
}

impl HttpObserved {
    fn responses(&self) -> impl Iterator<Item = &Response> {
        [&self.root, &self.options, &self.trace, &self.track]
            .into_iter()
            .chain(self.aspnet.iter())
            .chain(self.admin.iter())
            .chain([&self.agent, &self.wcc2])
            .filter_map(|o| o.as_ref().ok())
    }
}

/// A server-chosen string made safe to print: control characters escaped, length capped.
pub fn shown(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn outcome_text(o: &Outcome) -> String {
    match o {
        Ok(r) => r.status.to_string(),
        Err(e) => e.to_string(),
    }
}

/// The header checks, methods, Location leak, admin sites and version leaks.
pub fn judge_http(o: &HttpObserved) -> Vec<Check> {
    vec![
        header_check(o, ids::SERVER_HEADER, &["server"]),
        header_check(o, ids::X_POWERED_BY, &["x-powered-by"]),
        header_check(
            o,
            ids::ASPNET_HEADERS,
            &["x-aspnet-version", "x-aspnetmvc-version"],
        ),
        method_check(ids::OPTIONS, &[("OPTIONS", &o.options)]),
        method_check(ids::TRACE, &[("TRACE", &o.trace), ("TRACK", &o.track)]),
        location_check(o),
        admin_check(o),
        wcc2_check(o),
        agent_check(o),
        screenconnect_check(o),
    ]
}

fn header_check(o: &HttpObserved, id: &'static str, names: &[&str]) -> Check {
    let total = o.responses().count();
    if total == 0 {
        return Check::skip(id, no_response(o));
    }
    let mut values: Vec<String> = Vec::new();
    let mut hits = 0;
    for r in o.responses() {
        let mut hit = false;
        for (k, v) in &r.headers {
            if names.iter().any(|n| k.eq_ignore_ascii_case(n)) {
                hit = true;
                let s = format!("{k}: {}", shown(v, 60));
                if !values.contains(&s) && values.len() < 4 {
                    values.push(s);
                }
            }
        }
        hits += usize::from(hit);
    }
    if hits == 0 {
        return Check::new(
            id,
            Status::Pass,
            format!("no {} on {total} response(s)", names.join("/")),
        );
    }
    Check::new(
        id,
        Status::Fail,
        format!("{} on {hits} of {total} response(s)", values.join(", ")),
    )
}

fn no_response(o: &HttpObserved) -> String {
    format!("no HTTP response: {}", outcome_text(&o.root))
}

/// OPTIONS/TRACE/TRACK: 2xx is a failure, a refusal (4xx, 501) a pass.
fn method_check(id: &'static str, probes: &[(&str, &Outcome)]) -> Check {
    let mut worst = Status::Pass;
    let mut parts = Vec::new();
    let mut answered = 0;
    for (m, o) in probes {
        match o {
            Ok(r) if (200..300).contains(&r.status) => {
                worst = Status::Fail;
                let mut s = format!("{m} answered {}", r.status);
                for h in ["Allow", "Public"] {
                    if let Some(v) = r.header(h) {
                        s.push_str(&format!(", {h}: {}", shown(v, 80)));
                    }
                }
                if *m != "OPTIONS" && contains(&r.body, TRACE_MARKER) {
                    s.push_str(", the request was echoed back");
                }
                parts.push(s);
                answered += 1;
            }
            Ok(r) if r.status >= 400 => {
                parts.push(format!("{m} refused ({})", r.status));
                answered += 1;
            }
            Ok(r) => {
                if worst != Status::Fail {
                    worst = Status::Warn;
                }
                parts.push(format!(
                    "{m} answered {}: neither served nor refused",
                    r.status
                ));
                answered += 1;
            }
            Err(e) if e.is_refusal() => parts.push(format!("{m}: {e}")),
            Err(e) => {
                if worst == Status::Pass {
                    worst = Status::Skip;
                }
                parts.push(format!("{m}: {e}"));
            }
        }
    }
    if answered == 0 && worst == Status::Skip {
        return Check::skip(id, parts.join("; "));
    }
    if worst == Status::Skip {
        worst = Status::Pass;
    }
    Check::new(id, worst, parts.join("; "))
}

fn contains(hay: &[u8], needle: &str) -> bool {
    let n = needle.as_bytes();
    hay.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// Host named by an absolute (or scheme-relative) URL; `None` for a relative one.
fn url_host(v: &str) -> Option<String> {
    let v = v.trim();
    let rest = if let Some(r) = v.strip_prefix("//") {
        r
    } else {
        let (scheme, r) = v.split_once("://")?;
        if !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            return None;
        }
        r
    };
    let auth = rest.split(['/', '?', '#']).next().unwrap_or("");
    let hostport = auth.rsplit('@').next().unwrap_or(auth);
    let host = if let Some(r) = hostport.strip_prefix('[') {
        r.split(']').next().unwrap_or("")
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => hostport,
        }
    };
    Some(host.trim_end_matches('.').to_ascii_lowercase())
}

/// Why a redirect target leaks, if it does.
pub fn location_leak(value: &str, public_host: &str) -> Option<String> {
    let host = url_host(value)?;
    if host.is_empty() || host == public_host {
        return None;
    }
    let same_ip = match (
        rpaas_harden::parse_ip_literal(&host),
        rpaas_harden::parse_ip_literal(public_host),
    ) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    };
    if same_ip {
        return None;
    }
    Some(match rpaas_harden::parse_ip_literal(&host) {
        Some(ip) => format!("names the IP address {ip}"),
        None => format!("names the host {}", shown(&host, 80)),
    })
}

fn location_check(o: &HttpObserved) -> Check {
    let mut parts = Vec::new();
    let mut leaked = false;
    let mut answered = 0;
    for (label, out) in ASPNET_PROBES.iter().zip(&o.aspnet) {
        let r = match out {
            Ok(r) => r,
            Err(e) => {
                parts.push(format!("{label}: {e}"));
                continue;
            }
        };
        answered += 1;
        // (header, why) for every header that leaks; grouped by why when printed.
        let mut leaks: Vec<(&str, String)> = Vec::new();
        for name in ["location", "content-location"] {
            if let Some(why) = r.header(name).and_then(|v| location_leak(v, &o.host)) {
                leaks.push((name, why));
            }
        }
        if let Some(v) = r.header("refresh") {
            let lower = v.to_ascii_lowercase();
            if let Some(i) = lower.find("url=") {
                let url = v[i + 4..].trim_matches(['\'', '"', ' ']);
                if let Some(why) = location_leak(url, &o.host) {
                    leaks.push(("refresh", why));
                }
            }
        }
        let loc = r
            .header("location")
            .map(|l| format!("Location: {}", shown(l, 80)))
            .unwrap_or_else(|| "no Location".to_string());
        if leaks.is_empty() {
            parts.push(format!("{label}: {}, {loc}", r.status));
            continue;
        }
        leaked = true;
        let mut whys: Vec<&str> = Vec::new();
        for (_, w) in &leaks {
            if !whys.contains(&w.as_str()) {
                whys.push(w);
            }
        }
        let grouped: Vec<String> = whys
            .iter()
            .map(|w| {
                let names: Vec<&str> = leaks
                    .iter()
                    .filter(|(_, x)| x == w)
                    .map(|(n, _)| *n)
                    .collect();
                format!("{} {w}", names.join(", "))
            })
            .collect();
        parts.push(format!(
            "{label}: {}, {loc}: {}",
            r.status,
            grouped.join(", ")
        ));
    }
    let detail = format!("GET /aspnet_client: {}", parts.join("; "));
    if answered == 0 {
        return Check::skip(ids::LOCATION, detail);
    }
    let status = if leaked { Status::Fail } else { Status::Pass };
    Check::new(ids::LOCATION, status, detail)
}

/// How an administrative endpoint answered the auditing address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Refused: 403 (IIS ipSecurity answers 403.6, or 403.503 for a denied address), 404
    /// (`denyAction="NotFound"`), or the connection was turned away.
    Restricted,
    /// Served: 2xx, a redirect (to a login page) or an authentication challenge (401).
    Reachable,
    /// Anything else (400, 405, 421, 429, 5xx, no answer): neither served nor clearly refused.
    Unclear,
}

pub fn reach(o: &Outcome) -> Reach {
    match o {
        Ok(r) if r.status == 403 || r.status == 404 => Reach::Restricted,
        Ok(r) if (200..400).contains(&r.status) || r.status == 401 => Reach::Reachable,
        Ok(_) => Reach::Unclear,
        Err(e) if e.is_refusal() => Reach::Restricted,
        Err(_) => Reach::Unclear,
    }
}

fn admin_check(o: &HttpObserved) -> Check {
    let mut parts = Vec::new();
    let mut worst = Status::Pass;
    for ((app, path), out) in ADMIN_PROBES.iter().zip(&o.admin) {
        let what = match out {
            Ok(r) => match r.header("location") {
                Some(l) if (300..400).contains(&r.status) => {
                    format!("{} to {}", r.status, shown(l, 60))
                }
                _ => r.status.to_string(),
            },
            Err(e) => e.to_string(),
        };
        match reach(out) {
            Reach::Restricted => parts.push(format!("{app} ({path}) refused: {what}")),
            Reach::Reachable => {
                worst = Status::Fail;
                parts.push(format!("{app} ({path}) REACHABLE: {what}"));
            }
            Reach::Unclear => {
                if worst == Status::Pass {
                    worst = Status::Warn;
                }
                parts.push(format!("{app} ({path}) unclear: {what}"));
            }
        }
    }
    if o.admin
        .iter()
        .all(|x| matches!(x, Err(e) if !e.is_refusal()))
    {
        return Check::skip(ids::ADMIN, parts.join("; "));
    }
    let info = format!(
        "; info: LabTech ({AGENT_PATH}) {}, WCC2 ({WCC2_PATH}) {}; \
         this verdict holds for the auditing address only",
        open_text(&o.agent),
        open_text(&o.wcc2)
    );
    Check::new(ids::ADMIN, worst, parts.join("; ") + &info)
}

fn open_text(o: &Outcome) -> String {
    match reach(o) {
        Reach::Reachable => format!("open ({})", outcome_text(o)),
        Reach::Restricted => format!("refused ({})", outcome_text(o)),
        Reach::Unclear => format!("unclear ({})", outcome_text(o)),
    }
}

fn wcc2_version_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?i)(?:\bversion\b|\bver\.|\bv)\s*[:=]?\s*(\d{1,4}\.\d{1,4}(?:\.\d{1,6}){0,2})\b",
        )
        .expect("constant regex")
    })
}

fn agent_version_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"\b\d{1,4}\.\d{1,4}(?:\.\d{1,6}){0,2}\b").expect("constant regex")
    })
}

/// A version string on the WCC2 splash page: a dotted number of two to four parts next to
/// "version", "ver." or "v" (a bare dotted number in HTML is too often something else).
pub fn wcc2_version(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(&body[..body.len().min(64 * 1024)]);
    wcc2_version_re()
        .captures(&text)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_string())
}

/// A version in the agent probe's short text answer: any dotted number of two to four parts
/// in its first 4 KiB that is not an IPv4 address.
pub fn agent_version(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(&body[..body.len().min(4096)]);
    agent_version_re()
        .find_iter(&text)
        .map(|m| m.as_str())
        .find(|s| s.parse::<std::net::Ipv4Addr>().is_err())
        .map(str::to_string)
}

fn version_check(
    id: &'static str,
    path: &str,
    out: &Outcome,
    find: fn(&[u8]) -> Option<String>,
    leak: Status,
) -> Check {
    match out {
        Ok(r) if (200..300).contains(&r.status) => match find(&r.body) {
            Some(v) => Check::new(
                id,
                leak,
                format!("GET {path}: {} shows version {}", r.status, shown(&v, 30)),
            ),
            None => Check::new(
                id,
                Status::Pass,
                format!("GET {path}: {}, no version in the body", r.status),
            ),
        },
        Ok(r) => Check::new(
            id,
            Status::Pass,
            format!("GET {path}: {} (not served)", r.status),
        ),
        Err(e) if e.is_refusal() => Check::new(id, Status::Pass, format!("GET {path}: {e}")),
        Err(e) => Check::skip(id, format!("GET {path}: {e}")),
    }
}

fn wcc2_check(o: &HttpObserved) -> Check {
    version_check(ids::WCC2, WCC2_PATH, &o.wcc2, wcc2_version, Status::Fail)
}

/// The agent probe's version is served by design (agents read it), so a leak is a warning.
fn agent_check(o: &HttpObserved) -> Check {
    version_check(
        ids::AGENT,
        AGENT_PATH,
        &o.agent,
        agent_version,
        Status::Warn,
    )
}

fn screenconnect_check(o: &HttpObserved) -> Check {
    let total = o.responses().count();
    if total == 0 {
        return Check::skip(ids::SCREENCONNECT, no_response(o));
    }
    let leak = o.responses().find_map(|r| {
        r.headers.iter().find_map(|(k, v)| {
            let is = k.eq_ignore_ascii_case("server")
                && v.to_ascii_lowercase()
                    .trim_start()
                    .strip_prefix("screenconnect/")
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
            is.then(|| shown(v, 60))
        })
    });
    match leak {
        Some(v) => Check::new(ids::SCREENCONNECT, Status::Fail, format!("Server: {v}")),
        None => Check::new(
            ids::SCREENCONNECT,
            Status::Pass,
            format!("no ScreenConnect/<version> Server header on {total} response(s) of this host"),
        ),
    }
}

#[cfg(test)]
mod tests;
