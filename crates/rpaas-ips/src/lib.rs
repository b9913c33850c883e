//! The rpaas IPS. Pure: rules are parsed ([`rules`]) and compiled once per config snapshot into
//! a [`RuleSet`]: per phase a plan of transform chains and multi-pattern automata (`engine`,
//! `scan`), so a request's text is scanned once for all the rules that look at it.
//! [`inspect`] scores a request (or its body, or a response) against a rule set with an
//! instance's [`Settings`] (mode, threshold, disabled rules, scoped exclusions, and the
//! shipped [`automate`] exclusions).
//! [`limits`] holds the token buckets and the ban table; it is given the time, never reads it.
#![forbid(unsafe_code)]

pub mod automate;
mod engine;
pub mod input;
pub mod limits;
pub mod rules;
mod scan;
pub mod transform;

use std::collections::HashSet;

use engine::Plan;
pub use rpaas_policy::{PathPattern, TrafficClass};

pub use input::RequestData;
pub use rules::{parse_rules, Action, Op, Phase, Rule, RuleError, Target};
pub use transform::Transform;

/// The shipped ruleset (see `rules/builtin.toml`).
pub const BUILTIN_RULES: &str = include_str!("../rules/builtin.toml");

/// A compiled rule set.
pub struct RuleSet {
    rules: Vec<Rule>,
    request: Plan,
    response: Plan,
    /// Rules counting a target's values (`count_gt`).
    counts: Vec<usize>,
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet")
            .field("rules", &self.rules.len())
            .finish()
    }
}

impl RuleSet {
    /// The shipped rules alone.
    pub fn builtin() -> Result<Self, Vec<RuleError>> {
        Self::compile(parse_rules("builtin.toml", BUILTIN_RULES)?).map_err(|e| vec![e])
    }

    pub fn compile(rules: Vec<Rule>) -> Result<Self, RuleError> {
        let mut ids = HashSet::new();
        for r in &rules {
            if !ids.insert(r.id) {
                return Err(RuleError {
                    file: "-".into(),
                    rule: Some(r.id),
                    reason: "id used by more than one rule file".into(),
                });
            }
        }
        let mut request = Vec::new();
        let mut response = Vec::new();
        let mut counts = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            match (&r.op, r.phase) {
                (Op::CountGt(_), _) => counts.push(i),
                (_, Phase::Response) => response.push(i),
                (_, Phase::Request) => request.push(i),
            }
        }
        Ok(Self {
            request: Plan::build(&rules, &request)?,
            response: Plan::build(&rules, &response)?,
            rules,
            counts,
        })
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn rule(&self, id: u32) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.rules.iter().map(|r| r.id)
    }
}

/// What the IPS does on an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Block,
    Detect,
    Off,
}

/// Scoped tuning: ignore `rules` (and rules carrying one of `tags`) where all the given
/// scopes match.
#[derive(Debug, Clone, Default)]
pub struct Exclusion {
    pub rules: Vec<u32>,
    /// Rule tags (`rce`, `lfi`, ...): every rule with one of them, whichever file it is from.
    pub tags: Vec<String>,
    pub classes: Option<Vec<TrafficClass>>,
    pub paths: Option<Vec<PathPattern>>,
    /// Argument names, without case as ASP.NET reads them (for matches in `args`/`arg_names`;
    /// in a whole query or body, the match must survive their removal).
    pub args: Option<Vec<String>>,
    /// Only matches in these targets (`None`: any).
    pub targets: Option<Vec<Target>>,
    /// Only in this part of the request (`None`: head and body; a scoped exclusion never
    /// covers a response rule).
    pub scope: Option<Scope>,
}

impl Exclusion {
    fn covers_rule(&self, rule: &Rule) -> bool {
        self.rules.contains(&rule.id) || rule.tags.iter().any(|t| self.tags.contains(t))
    }
}

/// An instance's IPS settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub mode: Mode,
    /// Anomaly score at which a request is blocked.
    pub threshold: u32,
    pub disabled: HashSet<u32>,
    pub exclusions: Vec<Exclusion>,
}

impl Default for Settings {
    /// Blocking at score 5, with the shipped Automate exclusions ([`automate::exclusions`]).
    fn default() -> Self {
        Self {
            mode: Mode::Block,
            threshold: 5,
            disabled: HashSet::new(),
            exclusions: automate::exclusions(),
        }
    }
}

/// One rule that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub id: u32,
    pub score: u32,
    pub action: Action,
    pub target: String,
    /// The argument/header/cookie name, where the target has names.
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Would have blocked, but the instance is in detect mode.
    Detected,
    Block,
}

/// The result of an inspection.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub matches: Vec<Match>,
    pub score: u32,
    pub verdict: Verdict,
    /// The rule the block is attributed to (a `block` rule, else the highest-scoring match).
    pub rule: Option<u32>,
}

impl Outcome {
    pub fn pass() -> Self {
        Self {
            matches: Vec::new(),
            score: 0,
            verdict: Verdict::Pass,
            rule: None,
        }
    }

    pub fn ids(&self) -> Vec<u32> {
        self.matches.iter().map(|m| m.id).collect()
    }

    /// Merges a later inspection (the body) into this one and recomputes the verdict.
    pub fn merge(&mut self, other: Outcome, settings: &Settings) {
        for m in other.matches {
            if !self.matches.iter().any(|x| x.id == m.id) {
                self.matches.push(m);
            }
        }
        self.finish(settings);
    }

    fn finish(&mut self, settings: &Settings) {
        self.score = self
            .matches
            .iter()
            .filter(|m| m.action == Action::Score)
            .map(|m| m.score)
            .sum();
        let blocker = self
            .matches
            .iter()
            .find(|m| m.action == Action::Block)
            .map(|m| m.id);
        let over = self.score >= settings.threshold && self.score > 0;
        self.rule = blocker.or_else(|| {
            if over {
                // The highest score, lowest id on a tie: stable across runs.
                self.matches
                    .iter()
                    .filter(|m| m.action == Action::Score)
                    .min_by_key(|m| (std::cmp::Reverse(m.score), m.id))
                    .map(|m| m.id)
            } else {
                None
            }
        });
        self.verdict = match (self.rule.is_some(), settings.mode) {
            (false, _) | (_, Mode::Off) => Verdict::Pass,
            (true, Mode::Block) => Verdict::Block,
            (true, Mode::Detect) => Verdict::Detected,
        };
    }
}

/// Which part of a request to inspect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Method, path, query, query arguments, headers, cookies.
    Head,
    /// Body text and body arguments.
    Body,
}

/// Calls `f` with each `(name, value)` of a target in a part of the request.
fn for_each_value<'a>(
    req: &'a RequestData,
    t: &Target,
    scope: Scope,
    f: &mut dyn FnMut(Option<&'a str>, &'a str),
) {
    let pairs = |list: &'a [(String, String)], f: &mut dyn FnMut(Option<&'a str>, &'a str)| {
        for (k, v) in list {
            f(Some(k.as_str()), v.as_str());
        }
    };
    let names = |list: &'a [(String, String)], f: &mut dyn FnMut(Option<&'a str>, &'a str)| {
        for (k, _) in list {
            f(Some(k.as_str()), k.as_str());
        }
    };
    match (scope, t) {
        (Scope::Head, Target::Method) => f(None, &req.method),
        (Scope::Head, Target::Path) => f(None, &req.path),
        (Scope::Head, Target::RawPath) => f(None, &req.raw_path),
        (Scope::Head, Target::Query) if !req.query.is_empty() => f(None, &req.query),
        (Scope::Head, Target::Args) => {
            pairs(&req.query_args, f);
            pairs(&req.query_joined, f);
        }
        (Scope::Head, Target::ArgNames) => names(&req.query_args, f),
        (Scope::Body, Target::Args) => pairs(&req.body_args, f),
        // A JSON key is already an argument's value (under `<path>#name`); its names are
        // the paths built from those keys.
        (Scope::Body, Target::ArgNames) => {
            for (k, _) in req.body_args.iter().filter(|(k, _)| !k.ends_with("#name")) {
                f(Some(k.as_str()), k.as_str());
            }
        }
        (Scope::Head, Target::Headers) => {
            for (k, v) in req.headers.iter().filter(|(k, _)| k != "cookie") {
                f(Some(k.as_str()), v.as_str());
            }
        }
        (Scope::Head, Target::HeaderNames) => names(&req.headers, f),
        (Scope::Head, Target::Header(h)) => {
            for (k, v) in req.headers.iter().filter(|(k, _)| k == h) {
                f(Some(k.as_str()), v.as_str());
            }
        }
        (Scope::Head, Target::Cookies) => pairs(&req.cookies, f),
        (Scope::Head, Target::CookieNames) => names(&req.cookies, f),
        (Scope::Head, Target::UrlArgs) => pairs(&req.url_args, f),
        (Scope::Head, Target::UrlArgNames) => names(&req.url_args, f),
        (Scope::Head, Target::UrlPaths) => pairs(&req.url_paths, f),
        (Scope::Body, Target::Body) => {
            if let Some(b) = &req.body {
                f(None, b);
            }
        }
        _ => {}
    }
}

fn count(req: &RequestData, t: &Target, scope: Scope) -> usize {
    let mut n = 0;
    for_each_value(req, t, scope, &mut |_, _| n += 1);
    // Joined duplicates are another reading of the same arguments, not more of them.
    if (scope, t) == (Scope::Head, &Target::Args) {
        n -= req.query_joined.len();
    }
    n
}

fn applies(rule: &Rule, class: TrafficClass, method: &str, req: Option<&RequestData>) -> bool {
    rule.classes.as_ref().is_none_or(|c| c.contains(&class))
        && rule
            .methods
            .as_ref()
            .is_none_or(|m| m.iter().any(|x| x == method))
        && (rule.unless_args.is_empty()
            || req.is_none_or(|r| {
                !r.query_args
                    .iter()
                    .chain(r.body_args.iter())
                    .any(|(k, _)| rule.unless_args.iter().any(|u| u.eq_ignore_ascii_case(k)))
            }))
}

/// What the instance's tuning makes of a match.
enum Cover<'s> {
    /// It counts.
    None,
    /// Disabled, or excluded for this class, path and argument.
    All,
    /// A whole-text target (query, body) holding arguments an exclusion names: the match
    /// counts only if it survives their removal.
    Args(Vec<&'s str>),
}

fn covered<'s>(
    settings: &'s Settings,
    rule: &Rule,
    class: TrafficClass,
    path: &str,
    target: &Target,
    name: Option<&str>,
    scope: Option<Scope>,
) -> Cover<'s> {
    if settings.disabled.contains(&rule.id) {
        return Cover::All;
    }
    let mut strip = Vec::new();
    for e in &settings.exclusions {
        if !(e.covers_rule(rule)
            && e.classes.as_ref().is_none_or(|c| c.contains(&class))
            && e.targets.as_ref().is_none_or(|ts| ts.contains(target))
            && e.scope.is_none_or(|s| Some(s) == scope)
            && e.paths
                .as_ref()
                .is_none_or(|ps| ps.iter().any(|p| p.matches(path))))
        {
            continue;
        }
        match (&e.args, target) {
            (None, _) => return Cover::All,
            (Some(args), Target::Args | Target::ArgNames)
                if name.is_some_and(|n| args.iter().any(|a| a.eq_ignore_ascii_case(n))) =>
            {
                return Cover::All;
            }
            (Some(args), Target::Query | Target::Body) => {
                strip.extend(args.iter().map(String::as_str))
            }
            _ => {}
        }
    }
    if strip.is_empty() {
        Cover::None
    } else {
        Cover::Args(strip)
    }
}

/// `text` (a query or body) without the named arguments: `name=value` pairs of a query or
/// form body are dropped; for other bodies the arguments' values (as sent and as JSON
/// strings) are cut out.
fn without_args(text: &str, args: &[&str], req: &RequestData, target: &Target) -> String {
    let form = matches!(target, Target::Query)
        || req.header("content-type").is_some_and(|c| {
            c.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if form {
        return text
            .split('&')
            .filter(|p| {
                let n = p.split_once('=').map_or(*p, |(n, _)| n);
                !args.iter().any(|a| a.eq_ignore_ascii_case(n))
            })
            .collect::<Vec<_>>()
            .join("&");
    }
    let mut out = text.to_string();
    for (k, v) in &req.body_args {
        if v.is_empty() || !args.iter().any(|a| a.eq_ignore_ascii_case(k)) {
            continue;
        }
        let json = serde_json::to_string(v).unwrap_or_default();
        out = out.replace(json.as_str(), "\"\"").replace(v.as_str(), "");
    }
    out
}

/// Inspects one part of a request.
pub fn inspect(rs: &RuleSet, settings: &Settings, req: &RequestData, scope: Scope) -> Outcome {
    let mut out = Outcome::pass();
    if settings.mode == Mode::Off {
        return out;
    }
    let wanted = |i: usize| {
        let r = &rs.rules[i];
        !settings.disabled.contains(&r.id) && applies(r, req.class, &req.method, Some(req))
    };
    let keep = |i: usize, t: &Target, name: Option<&str>, raw: &str| match covered(
        settings,
        &rs.rules[i],
        req.class,
        &req.path,
        t,
        name,
        Some(scope),
    ) {
        Cover::None => true,
        Cover::All => false,
        Cover::Args(args) => {
            rs.request
                .rule_matches(&rs.rules, i, &without_args(raw, &args, req, t))
        }
    };
    rs.request.run(
        &rs.rules,
        |t, f| for_each_value(req, t, scope, f),
        wanted,
        keep,
        &mut out.matches,
    );
    for &i in &rs.counts {
        let r = &rs.rules[i];
        let Op::CountGt(n) = r.op else { continue };
        if !wanted(i) {
            continue;
        }
        if let Some(t) = r
            .targets
            .iter()
            .find(|t| count(req, t, scope) > n && keep(i, t, None, ""))
        {
            out.matches.push(matched(r, t, None));
        }
    }
    out.matches.sort_by_key(|m| m.id);
    out.finish(settings);
    out
}

pub(crate) fn matched(r: &Rule, target: &Target, name: Option<&str>) -> Match {
    Match {
        id: r.id,
        score: r.score,
        action: r.action,
        target: target.label(),
        name: name.map(str::to_string),
    }
}

/// Inspects a response (headers and the first bytes of its body) for data leakage.
pub fn inspect_response(
    rs: &RuleSet,
    settings: &Settings,
    class: TrafficClass,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &str,
) -> Outcome {
    let mut out = Outcome::pass();
    if settings.mode == Mode::Off || rs.response.is_empty() {
        return out;
    }
    let wanted = |i: usize| {
        let r = &rs.rules[i];
        !settings.disabled.contains(&r.id) && applies(r, class, method, None)
    };
    let keep = |i: usize, t: &Target, name: Option<&str>, _: &str| {
        matches!(
            covered(settings, &rs.rules[i], class, path, t, name, None),
            Cover::None
        )
    };
    rs.response.run(
        &rs.rules,
        |t, f| match t {
            Target::ResponseBody => f(None, body),
            Target::ResponseHeaders => {
                for (k, v) in headers {
                    f(Some(k.as_str()), v.as_str());
                }
            }
            _ => {}
        },
        wanted,
        keep,
        &mut out.matches,
    );
    out.matches.sort_by_key(|m| m.id);
    out.finish(settings);
    out
}

#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;
