//! Who may reach which part of an Automate server, decided by one pure function, [`decide`],
//! from an instance's compiled [`InstancePolicy`], the client address, the method, the raw
//! request target and the headers. No I/O, no clock: the node feeds it, `rpaas explain` feeds
//! it the same way, benchmarks call it directly.
//!
//! Order of checks (the first that refuses decides):
//! 1. the target must canonicalise (`path:invalid`), and a traversal must not change its class;
//! 2. node and instance deny lists (`deny-list`);
//! 3. methods allowed for the class (`method:<M>`);
//! 4. restrictions: blocked paths and required secrets (`restrict:<name>`);
//! 5. a configured integration header admits the request into its classes (skips 6 and 7);
//! 6. the class's access: `open`, `trusted` (client in a trusted network) or `deny`
//!    (`acl:<class>`);
//! 7. GeoIP, unless the client is trusted: the class's countries, or the node's default plus
//!    the instance's (`geoip:<CC>`, `geoip:unknown`).
#![forbid(unsafe_code)]

mod class;
mod netset;

use std::fmt;
use std::net::IpAddr;

pub use class::{default_class, PathPattern, TrafficClass};
pub use ipnet::IpNet;
pub use netset::NetSet;
use rpaas_geoip::{CountryCode, GeoDb};

/// What a class admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Open,
    Trusted,
    Deny,
}

impl Access {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(Self::Open),
            "trusted" => Some(Self::Trusted),
            "deny" => Some(Self::Deny),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Trusted => "trusted",
            Self::Deny => "deny",
        }
    }
}

/// The instance's deployment model: the default access of each class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deployment {
    /// Every class open (the default).
    AllTraffic,
    /// Agents and deployment open; technician classes only from trusted networks; unknown
    /// paths denied.
    AgentOnly,
    /// Agents and deployment open; everything else from trusted networks only.
    Mixed,
}

impl Deployment {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "all-traffic" => Some(Self::AllTraffic),
            "agent-only" => Some(Self::AgentOnly),
            "mixed" => Some(Self::Mixed),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AllTraffic => "all-traffic",
            Self::AgentOnly => "agent-only",
            Self::Mixed => "mixed",
        }
    }

    /// Access of `class` under this model.
    ///
    /// `agent-only` closes every technician class to the public, but the instance's trusted
    /// networks (the MSP's own offices) keep reaching them: a deployment model never locks
    /// the partner out of its own server. Unknown paths (`other`) are refused to everyone.
    /// `mixed` is the same for technician classes and also lets trusted networks reach
    /// unknown paths. A class override `access = "deny"` refuses everyone.
    pub fn access(self, class: TrafficClass) -> Access {
        match (self, class) {
            (Self::AllTraffic, _) => Access::Open,
            (_, TrafficClass::Agent | TrafficClass::Deployment) => Access::Open,
            (Self::AgentOnly, TrafficClass::Other) => Access::Deny,
            (Self::AgentOnly | Self::Mixed, _) => Access::Trusted,
        }
    }
}

/// What to do with a client whose country is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownCountry {
    Deny,
    Allow,
}

/// Per-class settings after overrides.
#[derive(Debug, Clone)]
pub struct ClassPolicy {
    pub access: Access,
    /// Replaces the instance's countries for this class when set.
    pub countries: Option<Vec<CountryCode>>,
    /// Allowed methods (uppercase); `None` allows any method the node does not deny.
    pub methods: Option<Vec<String>>,
}

/// One configured override of a class.
#[derive(Debug, Clone, Default)]
pub struct ClassOverride {
    pub access: Option<Access>,
    pub countries: Option<Vec<CountryCode>>,
    pub methods: Option<Vec<String>>,
    /// Extra paths that belong to this class (checked before the default map).
    pub paths: Vec<PathPattern>,
}

/// A request restriction (the seed service's ACL options).
#[derive(Debug, Clone)]
pub struct Restriction {
    pub name: String,
    pub kind: RestrictionKind,
}

#[derive(Debug, Clone)]
pub enum RestrictionKind {
    /// Refuse these paths outright.
    Block { paths: Vec<PathPattern> },
    /// These paths need `?<param>=<secret>`; after that, a cookie `<cookie>=<secret>` set by
    /// the node carries it.
    RequireSecret {
        paths: Vec<PathPattern>,
        param: String,
        cookie: String,
        secret: String,
    },
    /// A request carrying `<header>: <secret>` is admitted into `classes` even where access
    /// or GeoIP would refuse it (integrations calling the API from anywhere).
    AdmitHeader {
        header: String,
        secret: String,
        classes: Vec<TrafficClass>,
    },
}

/// Everything needed to build an [`InstancePolicy`].
#[derive(Debug, Clone)]
pub struct PolicySpec {
    pub deployment: Deployment,
    pub overrides: Vec<(TrafficClass, ClassOverride)>,
    pub trusted: Vec<IpNet>,
    /// Node and instance deny lists together.
    pub deny: Vec<IpNet>,
    /// The node's default countries plus the instance's; empty means no GeoIP restriction.
    pub countries: Vec<CountryCode>,
    pub unknown_country: UnknownCountry,
    pub restrictions: Vec<Restriction>,
}

impl Default for PolicySpec {
    fn default() -> Self {
        Self {
            deployment: Deployment::AllTraffic,
            overrides: Vec::new(),
            trusted: Vec::new(),
            deny: Vec::new(),
            countries: Vec::new(),
            unknown_country: UnknownCountry::Deny,
            restrictions: Vec::new(),
        }
    }
}

/// An instance's compiled policy.
#[derive(Debug, Clone)]
pub struct InstancePolicy {
    pub deployment: Deployment,
    classes: [ClassPolicy; 7],
    extra_paths: Vec<(PathPattern, TrafficClass)>,
    trusted: NetSet,
    deny: NetSet,
    countries: Vec<CountryCode>,
    unknown_country: UnknownCountry,
    restrictions: Vec<Restriction>,
}

fn default_methods(class: TrafficClass) -> Option<Vec<String>> {
    let m = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect());
    match class {
        TrafficClass::Agent => m(&["GET", "HEAD", "POST"]),
        TrafficClass::Deployment => m(&["GET", "HEAD"]),
        _ => None,
    }
}

impl InstancePolicy {
    pub fn new(spec: PolicySpec) -> Self {
        let classes = TrafficClass::ALL.map(|c| ClassPolicy {
            access: spec.deployment.access(c),
            countries: None,
            methods: default_methods(c),
        });
        let mut p = Self {
            deployment: spec.deployment,
            classes,
            extra_paths: Vec::new(),
            trusted: NetSet::new(&spec.trusted),
            deny: NetSet::new(&spec.deny),
            countries: spec.countries,
            unknown_country: spec.unknown_country,
            restrictions: spec.restrictions,
        };
        for (class, o) in spec.overrides {
            let cp = &mut p.classes[class.index()];
            if let Some(a) = o.access {
                cp.access = a;
            }
            if o.countries.is_some() {
                cp.countries = o.countries;
            }
            if o.methods.is_some() {
                cp.methods = o.methods;
            }
            for path in o.paths {
                p.extra_paths.push((path, class));
            }
        }
        p
    }

    pub fn class_policy(&self, class: TrafficClass) -> &ClassPolicy {
        &self.classes[class.index()]
    }

    /// The class of a canonical path: instance patterns first, then the default map.
    pub fn classify(&self, path: &str) -> TrafficClass {
        for (pat, class) in &self.extra_paths {
            if pat.matches(path) {
                return *class;
            }
        }
        default_class(path)
    }

    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.contains(ip)
    }
}

/// Access to request headers by lowercase name.
pub trait Headers {
    /// The first value of `name`.
    fn get(&self, name: &str) -> Option<&[u8]>;
    /// All values of `name` (for `Cookie`, which may be split).
    fn get_all(&self, name: &str) -> Vec<&[u8]> {
        self.get(name).into_iter().collect()
    }
}

impl Headers for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_bytes())
    }
    fn get_all(&self, name: &str) -> Vec<&[u8]> {
        self.iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_bytes())
            .collect()
    }
}

/// The request as the policy sees it.
pub struct RequestView<'a> {
    pub ip: IpAddr,
    pub method: &'a str,
    /// Raw origin-form target (`/path?query`).
    pub target: &'a str,
    pub headers: &'a dyn Headers,
}

/// Why a request was refused. `code()` is the stable machine-readable form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    PathInvalid,
    DenyList,
    Method(String),
    Restrict(String),
    Acl(TrafficClass),
    Geo(CountryCode),
    GeoUnknown,
}

impl Reason {
    pub fn code(&self) -> String {
        match self {
            Self::PathInvalid => "path:invalid".into(),
            Self::DenyList => "deny-list".into(),
            Self::Method(m) => format!("method:{m}"),
            Self::Restrict(n) => format!("restrict:{n}"),
            Self::Acl(c) => format!("acl:{c}"),
            Self::Geo(cc) => format!("geoip:{cc}"),
            Self::GeoUnknown => "geoip:unknown".into(),
        }
    }

    /// The HTTP status of the refusal.
    pub fn status(&self) -> u16 {
        match self {
            Self::PathInvalid => 400,
            _ => 403,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny(Reason),
}

/// The decision and how it was reached (for logs, metrics and `rpaas explain`).
#[derive(Debug, Clone)]
pub struct Decision {
    pub verdict: Verdict,
    pub canonical_path: Option<String>,
    pub class: Option<TrafficClass>,
    pub country: Option<CountryCode>,
    pub trusted: bool,
    /// Which rule decided, in words.
    pub rule: String,
    /// A cookie the node must set on the response (`name`, `value`).
    pub set_cookie: Option<(String, String)>,
}

impl Decision {
    fn deny(reason: Reason, rule: impl Into<String>) -> Self {
        Self {
            verdict: Verdict::Deny(reason),
            canonical_path: None,
            class: None,
            country: None,
            trusted: false,
            rule: rule.into(),
            set_cookie: None,
        }
    }

    pub fn is_allow(&self) -> bool {
        self.verdict == Verdict::Allow
    }
}

/// Compares secrets without an early exit on the first differing byte.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Percent-decodes a query value (`+` is a space), lossily.
fn query_value(query: &str, param: &str) -> Option<Vec<u8>> {
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k.eq_ignore_ascii_case(param) {
            let b = v.as_bytes();
            let mut out = Vec::with_capacity(b.len());
            let mut i = 0;
            while i < b.len() {
                match b[i] {
                    b'+' => out.push(b' '),
                    b'%' if i + 2 < b.len() => {
                        let h = (b[i + 1] as char).to_digit(16);
                        let l = (b[i + 2] as char).to_digit(16);
                        match (h, l) {
                            (Some(h), Some(l)) => {
                                out.push((h * 16 + l) as u8);
                                i += 2;
                            }
                            _ => out.push(b'%'),
                        }
                    }
                    c => out.push(c),
                }
                i += 1;
            }
            return Some(out);
        }
    }
    None
}

fn cookie_value<'a>(headers: &'a dyn Headers, name: &str) -> Option<&'a [u8]> {
    for line in headers.get_all("cookie") {
        for part in line.split(|b| *b == b';') {
            let part = part.trim_ascii();
            if let Some(eq) = part.iter().position(|b| *b == b'=') {
                if part[..eq].eq_ignore_ascii_case(name.as_bytes()) {
                    return Some(&part[eq + 1..]);
                }
            }
        }
    }
    None
}

/// The decision for one request.
pub fn decide(policy: &InstancePolicy, geo: Option<&GeoDb>, req: &RequestView<'_>) -> Decision {
    let canon = match rpaas_path::canonicalize(req.target) {
        Ok(c) => c,
        Err(e) => return Decision::deny(Reason::PathInvalid, format!("path: {e}")),
    };
    let class = policy.classify(&canon.path);
    let mut d = Decision {
        verdict: Verdict::Allow,
        canonical_path: Some(canon.path.clone()),
        class: Some(class),
        country: None,
        trusted: false,
        rule: String::new(),
        set_cookie: None,
    };
    let deny = |mut d: Decision, r: Reason, rule: String| {
        d.verdict = Verdict::Deny(r);
        d.rule = rule;
        d
    };
    if canon.had_dot_segments {
        let naive = rpaas_path::naive_path(req.target);
        let naive_class = policy.classify(&naive);
        if naive_class != class && naive_class != TrafficClass::Other {
            return deny(
                d,
                Reason::PathInvalid,
                format!("path: dot-segments move the request from {naive_class} to {class}"),
            );
        }
    }
    if policy.deny.contains(req.ip) {
        return deny(
            d,
            Reason::DenyList,
            format!("deny list contains {}", req.ip),
        );
    }
    let cp = policy.class_policy(class);
    if let Some(methods) = &cp.methods {
        if !methods.iter().any(|m| m == req.method) {
            return deny(
                d,
                Reason::Method(req.method.to_string()),
                format!("{class} allows only {}", methods.join(", ")),
            );
        }
    }
    let mut admitted = None;
    for r in &policy.restrictions {
        match &r.kind {
            RestrictionKind::Block { paths } => {
                if paths.iter().any(|p| p.matches(&canon.path)) {
                    return deny(
                        d,
                        Reason::Restrict(r.name.clone()),
                        format!("restriction {:?} blocks this path", r.name),
                    );
                }
            }
            RestrictionKind::RequireSecret {
                paths,
                param,
                cookie,
                secret,
            } => {
                if !paths.iter().any(|p| p.matches(&canon.path)) {
                    continue;
                }
                let by_query = canon
                    .query
                    .as_deref()
                    .and_then(|q| query_value(q, param))
                    .is_some_and(|v| ct_eq(&v, secret.as_bytes()));
                let by_cookie =
                    cookie_value(req.headers, cookie).is_some_and(|v| ct_eq(v, secret.as_bytes()));
                if !by_query && !by_cookie {
                    return deny(
                        d,
                        Reason::Restrict(r.name.clone()),
                        format!("restriction {:?} requires ?{param}= or its cookie", r.name),
                    );
                }
                if by_query && !by_cookie {
                    d.set_cookie = Some((cookie.clone(), secret.clone()));
                }
            }
            RestrictionKind::AdmitHeader {
                header,
                secret,
                classes,
            } => {
                if admitted.is_none()
                    && classes.contains(&class)
                    && req
                        .headers
                        .get(header)
                        .is_some_and(|v| ct_eq(v, secret.as_bytes()))
                {
                    admitted = Some(r.name.clone());
                }
            }
        }
    }
    d.trusted = policy.is_trusted(req.ip);
    if let Some(name) = admitted {
        d.rule = format!("admitted into {class} by restriction {name:?} (integration header)");
        return d;
    }
    match cp.access {
        Access::Deny => {
            return deny(
                d,
                Reason::Acl(class),
                format!(
                    "{class} is denied on this instance ({})",
                    policy.deployment.as_str()
                ),
            );
        }
        Access::Trusted if !d.trusted => {
            return deny(
                d,
                Reason::Acl(class),
                format!(
                    "{class} is for trusted networks only and {} is not in one",
                    req.ip
                ),
            );
        }
        _ => {}
    }
    if d.trusted {
        d.rule = format!("{class} from a trusted network (GeoIP skipped)");
        return d;
    }
    let countries = cp.countries.as_ref().unwrap_or(&policy.countries);
    if countries.is_empty() {
        d.rule = format!(
            "{class} is {} and no country restriction applies",
            cp.access.as_str()
        );
        return d;
    }
    d.country = geo.and_then(|g| g.country(req.ip));
    match d.country {
        None if policy.unknown_country == UnknownCountry::Deny => {
            return deny(
                d,
                Reason::GeoUnknown,
                format!("no country known for {} (unknown_country = deny)", req.ip),
            );
        }
        None => {
            d.rule = format!("{class} open; unknown country allowed");
        }
        Some(cc) if !countries.contains(&cc) => {
            return deny(
                d,
                Reason::Geo(cc),
                format!("{cc} is not among the countries allowed for {class}"),
            );
        }
        Some(cc) => {
            d.rule = format!("{class} open to {cc}");
        }
    }
    d
}

/// The address-only part of the decision, for traffic with no HTTP request (UDP heartbeats,
/// TCP relays): deny lists, the given access level, and GeoIP (skipped for trusted networks)
/// with the countries of `class`.
pub fn admit_ip(
    policy: &InstancePolicy,
    geo: Option<&GeoDb>,
    ip: IpAddr,
    class: TrafficClass,
    access: Access,
) -> Result<(), Reason> {
    if policy.deny.contains(ip) {
        return Err(Reason::DenyList);
    }
    let trusted = policy.is_trusted(ip);
    match access {
        Access::Deny => return Err(Reason::Acl(class)),
        Access::Trusted if !trusted => return Err(Reason::Acl(class)),
        _ => {}
    }
    if trusted {
        return Ok(());
    }
    let cp = policy.class_policy(class);
    let countries = cp.countries.as_ref().unwrap_or(&policy.countries);
    if countries.is_empty() {
        return Ok(());
    }
    match geo.and_then(|g| g.country(ip)) {
        None if policy.unknown_country == UnknownCountry::Deny => Err(Reason::GeoUnknown),
        None => Ok(()),
        Some(cc) if !countries.contains(&cc) => Err(Reason::Geo(cc)),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests;
