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

pub use class::{default_class, PathPattern, PatternError, TrafficClass};
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

    /// Whether a decision reads the query or the cookies (a restriction that takes a secret
    /// from them); callers that have not parsed them need not.
    pub fn reads_query_or_cookies(&self) -> bool {
        self.restrictions
            .iter()
            .any(|r| matches!(r.kind, RestrictionKind::RequireSecret { .. }))
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

/// Methods named in reason codes and metric labels; any other token a client sends is
/// `other`, so a client cannot grow the set of values.
pub const KNOWN_METHODS: &[&str] = &[
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "PATCH",
    "OPTIONS",
    "TRACE",
    "TRACK",
    "CONNECT",
    "DEBUG",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "SEARCH",
];

/// The bounded label of a method: itself (uppercase) if known, else `other`.
pub fn method_label(m: &str) -> &'static str {
    KNOWN_METHODS
        .iter()
        .find(|k| k.eq_ignore_ascii_case(m))
        .copied()
        .unwrap_or("other")
}

/// Why a request was refused. `code()` is the stable machine-readable form; every value comes
/// from a bounded set (the method is [`method_label`]ed, a restriction's name is the config's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    PathInvalid,
    DenyList,
    Method(&'static str),
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

/// Which check decided, kept as data: the sentence is written only when someone asks
/// ([`Why::describe`], for `rpaas explain`), never on the request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    Path(rpaas_path::PathError),
    DotSegmentsMoveClass {
        from: TrafficClass,
        to: TrafficClass,
    },
    DenyList,
    ClassMethods(TrafficClass),
    RestrictionBlocks(usize),
    RestrictionNeedsSecret(usize),
    Admitted {
        restriction: usize,
        class: TrafficClass,
    },
    ClassDenied(TrafficClass),
    ClassTrustedOnly(TrafficClass),
    TrustedSkipsGeo(TrafficClass),
    NoCountryRestriction(TrafficClass, Access),
    GeoUnknownDenied,
    GeoUnknownAllowed(TrafficClass),
    CountryRefused(CountryCode, TrafficClass),
    CountryAllowed(CountryCode, TrafficClass),
}

impl Why {
    /// The sentence for a human (`ip` is the client the decision was about).
    pub fn describe(&self, policy: &InstancePolicy, ip: IpAddr) -> String {
        let name = |i: &usize| {
            policy
                .restrictions
                .get(*i)
                .map_or("?", |r| r.name.as_str())
                .to_string()
        };
        match self {
            Self::Path(e) => format!("path: {e}"),
            Self::DotSegmentsMoveClass { from, to } => {
                format!("path: dot-segments move the request from {from} to {to}")
            }
            Self::DenyList => format!("deny list contains {ip}"),
            Self::ClassMethods(c) => format!(
                "{c} allows only {}",
                policy
                    .class_policy(*c)
                    .methods
                    .as_deref()
                    .unwrap_or_default()
                    .join(", ")
            ),
            Self::RestrictionBlocks(i) => {
                format!("restriction {:?} blocks this path", name(i))
            }
            Self::RestrictionNeedsSecret(i) => {
                let param = match policy.restrictions.get(*i).map(|r| &r.kind) {
                    Some(RestrictionKind::RequireSecret { param, .. }) => param.as_str(),
                    _ => "?",
                };
                format!("restriction {:?} requires ?{param}= or its cookie", name(i))
            }
            Self::Admitted { restriction, class } => format!(
                "admitted into {class} by restriction {:?} (integration header)",
                name(restriction)
            ),
            Self::ClassDenied(c) => format!(
                "{c} is denied on this instance ({})",
                policy.deployment.as_str()
            ),
            Self::ClassTrustedOnly(c) => {
                format!("{c} is for trusted networks only and {ip} is not in one")
            }
            Self::TrustedSkipsGeo(c) => format!("{c} from a trusted network (GeoIP skipped)"),
            Self::NoCountryRestriction(c, a) => {
                format!("{c} is {} and no country restriction applies", a.as_str())
            }
            Self::GeoUnknownDenied => {
                format!("no country known for {ip} (unknown_country = deny)")
            }
            Self::GeoUnknownAllowed(c) => format!("{c} open; unknown country allowed"),
            Self::CountryRefused(cc, c) => {
                format!("{cc} is not among the countries allowed for {c}")
            }
            Self::CountryAllowed(cc, c) => format!("{c} open to {cc}"),
        }
    }
}

/// The decision and how it was reached (for logs, metrics and `rpaas explain`).
#[derive(Debug, Clone)]
pub struct Decision {
    pub verdict: Verdict,
    pub class: Option<TrafficClass>,
    pub country: Option<CountryCode>,
    pub trusted: bool,
    /// Which check decided.
    pub why: Why,
    /// A cookie the node must set on the response (`name`, `value`).
    pub set_cookie: Option<(String, String)>,
}

impl Decision {
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

/// Percent-decodes a raw query value (`+` is a space), lossily.
fn decode_query_value(v: &str) -> Vec<u8> {
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
    out
}

/// Splits a raw query string into `(name, value)` pairs as received.
pub fn split_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// Splits `Cookie` header values into `(name, value)` pairs.
pub fn split_cookies(headers: &dyn Headers) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in headers.get_all("cookie") {
        for part in String::from_utf8_lossy(line).split(';') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (n, v) = part.split_once('=').unwrap_or((part, ""));
            out.push((n.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

/// A request with its target already canonicalised and its query and cookies parsed, once,
/// by the caller (the admission core shares them with the IPS).
pub struct Facts<'a> {
    pub ip: IpAddr,
    pub method: &'a str,
    /// Raw origin-form target (`/path?query`).
    pub target: &'a str,
    pub canon: &'a rpaas_path::Canonical,
    pub class: TrafficClass,
    /// Query arguments as received.
    pub query: &'a [(String, String)],
    pub cookies: &'a [(String, String)],
    pub headers: &'a dyn Headers,
    /// Whether the client is in the instance's trusted networks ([`InstancePolicy::is_trusted`],
    /// computed once by the caller).
    pub trusted: bool,
}

/// The decision for one request: canonicalises and parses, then [`decide_facts`].
pub fn decide(policy: &InstancePolicy, geo: Option<&GeoDb>, req: &RequestView<'_>) -> Decision {
    let canon = match rpaas_path::canonicalize(req.target) {
        Ok(c) => c,
        Err(e) => {
            return Decision {
                verdict: Verdict::Deny(Reason::PathInvalid),
                class: None,
                country: None,
                trusted: false,
                why: Why::Path(e),
                set_cookie: None,
            }
        }
    };
    let (query, cookies) = if policy.reads_query_or_cookies() {
        (
            canon.query.as_deref().map(split_query).unwrap_or_default(),
            split_cookies(req.headers),
        )
    } else {
        (Vec::new(), Vec::new())
    };
    decide_facts(
        policy,
        geo,
        &Facts {
            ip: req.ip,
            method: req.method,
            target: req.target,
            class: policy.classify(&canon.path),
            canon: &canon,
            query: &query,
            cookies: &cookies,
            headers: req.headers,
            trusted: policy.is_trusted(req.ip),
        },
    )
}

/// The decision for one request whose target canonicalised.
pub fn decide_facts(policy: &InstancePolicy, geo: Option<&GeoDb>, f: &Facts<'_>) -> Decision {
    let class = f.class;
    let mut d = Decision {
        verdict: Verdict::Allow,
        class: Some(class),
        country: None,
        trusted: false,
        why: Why::DenyList,
        set_cookie: None,
    };
    let deny = |mut d: Decision, r: Reason, why: Why| {
        d.verdict = Verdict::Deny(r);
        d.why = why;
        d
    };
    if f.canon.had_dot_segments {
        let naive = rpaas_path::naive_path(f.target);
        let naive_class = policy.classify(&naive);
        if naive_class != class && naive_class != TrafficClass::Other {
            return deny(
                d,
                Reason::PathInvalid,
                Why::DotSegmentsMoveClass {
                    from: naive_class,
                    to: class,
                },
            );
        }
    }
    if policy.deny.contains(f.ip) {
        return deny(d, Reason::DenyList, Why::DenyList);
    }
    let cp = policy.class_policy(class);
    if let Some(methods) = &cp.methods {
        if !methods.iter().any(|m| m == f.method) {
            return deny(
                d,
                Reason::Method(method_label(f.method)),
                Why::ClassMethods(class),
            );
        }
    }
    let mut admitted = None;
    for (ri, r) in policy.restrictions.iter().enumerate() {
        match &r.kind {
            RestrictionKind::Block { paths } => {
                if paths.iter().any(|p| p.matches(&f.canon.path)) {
                    return deny(
                        d,
                        Reason::Restrict(r.name.clone()),
                        Why::RestrictionBlocks(ri),
                    );
                }
            }
            RestrictionKind::RequireSecret {
                paths,
                param,
                cookie,
                secret,
            } => {
                if !paths.iter().any(|p| p.matches(&f.canon.path)) {
                    continue;
                }
                let by_query = f
                    .query
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(param))
                    .is_some_and(|(_, v)| ct_eq(&decode_query_value(v), secret.as_bytes()));
                let by_cookie = f
                    .cookies
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(cookie))
                    .is_some_and(|(_, v)| ct_eq(v.as_bytes(), secret.as_bytes()));
                if !by_query && !by_cookie {
                    return deny(
                        d,
                        Reason::Restrict(r.name.clone()),
                        Why::RestrictionNeedsSecret(ri),
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
                    && f.headers
                        .get(header)
                        .is_some_and(|v| ct_eq(v, secret.as_bytes()))
                {
                    admitted = Some(ri);
                }
            }
        }
    }
    d.trusted = f.trusted;
    if let Some(restriction) = admitted {
        d.why = Why::Admitted { restriction, class };
        return d;
    }
    match cp.access {
        Access::Deny => return deny(d, Reason::Acl(class), Why::ClassDenied(class)),
        Access::Trusted if !d.trusted => {
            return deny(d, Reason::Acl(class), Why::ClassTrustedOnly(class));
        }
        _ => {}
    }
    if d.trusted {
        d.why = Why::TrustedSkipsGeo(class);
        return d;
    }
    let countries = cp.countries.as_ref().unwrap_or(&policy.countries);
    if countries.is_empty() {
        d.why = Why::NoCountryRestriction(class, cp.access);
        return d;
    }
    d.country = geo.and_then(|g| g.country(f.ip));
    match d.country {
        None if policy.unknown_country == UnknownCountry::Deny => {
            return deny(d, Reason::GeoUnknown, Why::GeoUnknownDenied);
        }
        None => d.why = Why::GeoUnknownAllowed(class),
        Some(cc) if !countries.contains(&cc) => {
            return deny(d, Reason::Geo(cc), Why::CountryRefused(cc, class));
        }
        Some(cc) => d.why = Why::CountryAllowed(cc, class),
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
