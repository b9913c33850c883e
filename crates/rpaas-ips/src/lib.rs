//! The rpaas IPS. Pure: rules are parsed ([`rules`]) and compiled once per config snapshot into
//! a [`RuleSet`] of multi-pattern matchers — per transform chain one `RegexSet` and one
//! Aho-Corasick automaton, so each value is scanned once for all the rules that look at it.
//! [`inspect`] scores a request (or its body, or a response) against a rule set with an
//! instance's [`Settings`] (mode, threshold, disabled rules, scoped exclusions).
//! [`limits`] holds the token buckets and the ban table; it is given the time, never reads it.
#![forbid(unsafe_code)]

pub mod input;
pub mod limits;
pub mod rules;
pub mod transform;

use std::borrow::Cow;
use std::collections::HashSet;

use aho_corasick::AhoCorasick;
use regex_automata::meta::Regex as MetaRegex;
use regex_automata::util::syntax;
use regex_automata::{Input, MatchKind, PatternSet};
pub use rpaas_policy::{PathPattern, TrafficClass};

pub use input::RequestData;
pub use rules::{parse_rules, Action, Op, Phase, Rule, RuleError, Target};
pub use transform::Transform;

/// The shipped ruleset (see `rules/builtin.toml`).
pub const BUILTIN_RULES: &str = include_str!("../rules/builtin.toml");

/// Rules sharing a transform chain, compiled together.
struct Group {
    transforms: Vec<Transform>,
    /// Negated regexes, checked one by one (a set cannot say what did not match).
    negated: Vec<(usize, regex::bytes::Regex)>,
    /// Regexes that match the newline joining values for the prefilter (e.g. CR/LF rules):
    /// checked one by one so the prefilter stays meaningful.
    always: Vec<(usize, regex::bytes::Regex)>,
    targets: Vec<Target>,
    set: Option<MetaRegex>,
    /// The same patterns in multi-line mode, run once over all of a target's values joined
    /// by newlines: most requests match nothing, and one scan says so.
    prefilter: Option<MetaRegex>,
    set_rules: Vec<usize>,
    ac: Option<AhoCorasick>,
    ac_rules: Vec<usize>,
    simple: Vec<usize>,
}

/// A compiled rule set.
pub struct RuleSet {
    rules: Vec<Rule>,
    request: Vec<Group>,
    response: Vec<Group>,
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
        let mut request: Vec<Group> = Vec::new();
        let mut response: Vec<Group> = Vec::new();
        let mut counts = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            if let Op::CountGt(_) = r.op {
                counts.push(i);
                continue;
            }
            let groups = if r.phase == Phase::Response {
                &mut response
            } else {
                &mut request
            };
            let g = match groups.iter_mut().position(|g| g.transforms == r.transforms) {
                Some(p) => &mut groups[p],
                None => {
                    groups.push(Group {
                        transforms: r.transforms.clone(),
                        negated: Vec::new(),
                        always: Vec::new(),
                        targets: Vec::new(),
                        set: None,
                        prefilter: None,
                        set_rules: Vec::new(),
                        ac: None,
                        ac_rules: Vec::new(),
                        simple: Vec::new(),
                    });
                    let n = groups.len() - 1;
                    &mut groups[n]
                }
            };
            for t in &r.targets {
                if !g.targets.contains(t) {
                    g.targets.push(t.clone());
                }
            }
            match &r.op {
                Op::Regex(p) => {
                    let re = rules::compile_regex(p).map_err(|reason| RuleError {
                        file: "-".into(),
                        rule: Some(r.id),
                        reason,
                    })?;
                    if r.negate {
                        g.negated.push((i, re));
                    } else if re.is_match(b"\n") {
                        g.always.push((i, re));
                    } else {
                        g.set_rules.push(i);
                    }
                }
                Op::Contains(list) => {
                    for _ in list {
                        g.ac_rules.push(i);
                    }
                }
                _ => g.simple.push(i),
            }
        }
        for g in request.iter_mut().chain(response.iter_mut()) {
            if !g.set_rules.is_empty() {
                let pats: Vec<&str> = g
                    .set_rules
                    .iter()
                    .map(|i| match &rules[*i].op {
                        Op::Regex(p) => p.as_str(),
                        _ => "",
                    })
                    .collect();
                // ASCII classes and boundaries keep the lazy DFA small and on its fast path;
                // values are matched as bytes.
                g.prefilter = Some(build_set(&pats, true)?);
                g.set = Some(build_set(&pats, false)?);
            }
            if !g.ac_rules.is_empty() {
                let mut pats: Vec<&str> = Vec::new();
                let mut seen_rules = Vec::new();
                for i in &g.ac_rules {
                    if seen_rules.contains(i) {
                        continue;
                    }
                    seen_rules.push(*i);
                    if let Op::Contains(list) = &rules[*i].op {
                        pats.extend(list.iter().map(String::as_str));
                    }
                }
                g.ac = Some(AhoCorasick::new(pats).map_err(|e| RuleError {
                    file: "-".into(),
                    rule: None,
                    reason: e.to_string(),
                })?);
            }
        }
        Ok(Self {
            rules,
            request,
            response,
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

/// One automaton for many patterns. Literal prefilters are off: with dozens of patterns the
/// extracted literals are short and common, and the prefilter would fire at nearly every
/// position; the lazy DFA alone scans each byte once.
fn build_set(pats: &[&str], multi_line: bool) -> Result<MetaRegex, RuleError> {
    MetaRegex::builder()
        .syntax(
            syntax::Config::new()
                .unicode(false)
                .utf8(false)
                .multi_line(multi_line),
        )
        .configure(
            MetaRegex::config()
                .match_kind(MatchKind::All)
                .auto_prefilter(false)
                .nfa_size_limit(Some(1 << 26))
                .hybrid_cache_capacity(1 << 23),
        )
        .build_many(pats)
        .map_err(|e| RuleError {
            file: "-".into(),
            rule: None,
            reason: format!("rule set cannot be compiled: {e}"),
        })
}

/// What the IPS does on an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Block,
    Detect,
    Off,
}

/// Scoped tuning: ignore `rules` where all the given scopes match.
#[derive(Debug, Clone, Default)]
pub struct Exclusion {
    pub rules: Vec<u32>,
    pub classes: Option<Vec<TrafficClass>>,
    pub paths: Option<Vec<PathPattern>>,
    /// Argument names (for matches in `args`/`arg_names`).
    pub args: Option<Vec<String>>,
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
    fn default() -> Self {
        Self {
            mode: Mode::Block,
            threshold: 5,
            disabled: HashSet::new(),
            exclusions: Vec::new(),
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

/// `(name, value)` pairs of a list.
fn pairs(list: &[(String, String)]) -> Vec<(Option<&str>, &str)> {
    list.iter()
        .map(|(k, v)| (Some(k.as_str()), v.as_str()))
        .collect()
}

/// The names of a list, as values.
fn names(list: &[(String, String)]) -> Vec<(Option<&str>, &str)> {
    list.iter()
        .map(|(k, _)| (Some(k.as_str()), k.as_str()))
        .collect()
}

fn values<'a>(req: &'a RequestData, t: &Target, scope: Scope) -> Vec<(Option<&'a str>, &'a str)> {
    match (scope, t) {
        (Scope::Head, Target::Method) => vec![(None, req.method.as_str())],
        (Scope::Head, Target::Path) => vec![(None, req.path.as_str())],
        (Scope::Head, Target::RawPath) => vec![(None, req.raw_path.as_str())],
        (Scope::Head, Target::Query) if !req.query.is_empty() => vec![(None, req.query.as_str())],
        (Scope::Head, Target::Args) => pairs(&req.query_args),
        (Scope::Head, Target::ArgNames) => names(&req.query_args),
        (Scope::Body, Target::Args) => pairs(&req.body_args),
        (Scope::Body, Target::ArgNames) => names(&req.body_args),
        (Scope::Head, Target::Headers) => req
            .headers
            .iter()
            .filter(|(k, _)| k != "cookie")
            .map(|(k, v)| (Some(k.as_str()), v.as_str()))
            .collect(),
        (Scope::Head, Target::HeaderNames) => names(&req.headers),
        (Scope::Head, Target::Header(h)) => req
            .headers
            .iter()
            .filter(|(k, _)| k == h)
            .map(|(k, v)| (Some(k.as_str()), v.as_str()))
            .collect(),
        (Scope::Head, Target::Cookies) => pairs(&req.cookies),
        (Scope::Head, Target::CookieNames) => names(&req.cookies),
        (Scope::Body, Target::Body) => req
            .body
            .as_deref()
            .map(|b| vec![(None, b)])
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

fn count(req: &RequestData, t: &Target, scope: Scope) -> usize {
    values(req, t, scope).len()
}

/// A matched rule, before settings are applied.
struct Hit<'a> {
    rule: usize,
    target: &'a Target,
    name: Option<&'a str>,
}

fn simple_match(op: &Op, v: &str) -> bool {
    match op {
        Op::Prefix(p) => v.starts_with(p.as_str()),
        Op::Suffix(p) => v.ends_with(p.as_str()),
        Op::Equals(p) => v == p,
        Op::LengthGt(n) => v.len() > *n,
        _ => false,
    }
}

/// Scans a request's values. Per group (transform chain) and target, the values are
/// transformed (with a per-value prefix cache: `url_decode` is computed once and `lowercase`
/// built on it, ...), joined by newlines and run once through the group's prefilter; only when
/// that finds something are the values matched one by one to know which rule and argument.
fn scan<'a>(
    rs: &RuleSet,
    groups: &'a [Group],
    get: impl Fn(&Target) -> Vec<(Option<&'a str>, &'a str)>,
    hits: &mut Vec<Hit<'a>>,
) {
    struct Slot<'a> {
        target: &'a Target,
        values: Vec<(Option<&'a str>, &'a str)>,
        cache: Vec<Vec<(&'a [Transform], Cow<'a, str>)>>,
    }
    let mut slots: Vec<Slot<'a>> = Vec::new();
    let mut joined = String::new();
    for g in groups {
        let chain: &'a [Transform] = &g.transforms;
        for t in &g.targets {
            let si = match slots.iter().position(|s| s.target == t) {
                Some(i) => i,
                None => {
                    let values = get(t);
                    let n = values.len();
                    slots.push(Slot {
                        target: t,
                        values,
                        cache: (0..n).map(|_| Vec::new()).collect(),
                    });
                    slots.len() - 1
                }
            };
            let slot = &mut slots[si];
            if slot.values.is_empty() {
                continue;
            }
            // Transform every value (reusing the longest cached prefix of this chain).
            let mut idx = Vec::with_capacity(slot.values.len());
            for (vi, (_, raw)) in slot.values.iter().enumerate() {
                let cache = &mut slot.cache[vi];
                if let Some(i) = cache.iter().position(|(c, _)| *c == chain) {
                    idx.push(i);
                    continue;
                }
                let mut best: Option<usize> = None;
                for (i, (c, _)) in cache.iter().enumerate() {
                    if chain.starts_with(c) && best.is_none_or(|b| cache[b].0.len() < c.len()) {
                        best = Some(i);
                    }
                }
                let (start, mut v): (usize, Cow<'a, str>) = match best {
                    Some(i) => (cache[i].0.len(), cache[i].1.clone()),
                    None => (0, Cow::Borrowed(*raw)),
                };
                for tr in &chain[start..] {
                    v = tr.apply(v);
                }
                cache.push((chain, v));
                idx.push(cache.len() - 1);
            }
            let value = |vi: usize| -> &str { &slot.cache[vi][idx[vi]].1 };
            // Cheap per-value checks first.
            if !g.simple.is_empty() || !g.negated.is_empty() || !g.always.is_empty() {
                for vi in 0..slot.values.len() {
                    let v = value(vi);
                    let name = slot.values[vi].0;
                    let mut hit = |rule: usize| {
                        if rs.rules[rule].targets.contains(t)
                            && !hits.iter().any(|h| h.rule == rule)
                        {
                            hits.push(Hit {
                                rule,
                                target: t,
                                name,
                            });
                        }
                    };
                    for i in &g.simple {
                        if simple_match(&rs.rules[*i].op, v) != rs.rules[*i].negate {
                            hit(*i);
                        }
                    }
                    for (i, re) in &g.negated {
                        if !re.is_match(v.as_bytes()) {
                            hit(*i);
                        }
                    }
                    for (i, re) in &g.always {
                        if re.is_match(v.as_bytes()) {
                            hit(*i);
                        }
                    }
                }
            }
            if g.set.is_none() && g.ac.is_none() {
                continue;
            }
            let candidates = if slot.values.len() == 1 {
                true
            } else {
                joined.clear();
                for vi in 0..slot.values.len() {
                    if vi > 0 {
                        joined.push('\n');
                    }
                    joined.push_str(value(vi));
                }
                g.prefilter
                    .as_ref()
                    .is_some_and(|p| p.is_match(joined.as_bytes()))
                    || g.ac.as_ref().is_some_and(|ac| ac.is_match(joined.as_str()))
            };
            if !candidates {
                continue;
            }
            for vi in 0..slot.values.len() {
                let v = value(vi);
                let name = slot.values[vi].0;
                let mut hit = |rule: usize| {
                    if rs.rules[rule].targets.contains(t) && !hits.iter().any(|h| h.rule == rule) {
                        hits.push(Hit {
                            rule,
                            target: t,
                            name,
                        });
                    }
                };
                if let Some(set) = &g.set {
                    let input = Input::new(v.as_bytes());
                    if set.is_match(input.clone()) {
                        let mut found = PatternSet::new(set.pattern_len());
                        set.which_overlapping_matches(&input, &mut found);
                        for i in found.iter() {
                            hit(g.set_rules[i.as_usize()]);
                        }
                    }
                }
                if let Some(ac) = &g.ac {
                    if ac.is_match(v) {
                        for m in ac.find_overlapping_iter(v) {
                            hit(g.ac_rules[m.pattern().as_usize()]);
                        }
                    }
                }
            }
        }
    }
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

fn excluded(
    settings: &Settings,
    rule: u32,
    class: TrafficClass,
    path: &str,
    target: &Target,
    name: Option<&str>,
) -> bool {
    settings.disabled.contains(&rule)
        || settings.exclusions.iter().any(|e| {
            e.rules.contains(&rule)
                && e.classes.as_ref().is_none_or(|c| c.contains(&class))
                && e.paths
                    .as_ref()
                    .is_none_or(|ps| ps.iter().any(|p| p.matches(path)))
                && e.args.as_ref().is_none_or(|args| {
                    matches!(target, Target::Args | Target::ArgNames)
                        && name.is_some_and(|n| args.iter().any(|a| a == n))
                })
        })
}

/// Inspects one part of a request.
pub fn inspect(rs: &RuleSet, settings: &Settings, req: &RequestData, scope: Scope) -> Outcome {
    let mut out = Outcome::pass();
    if settings.mode == Mode::Off {
        return out;
    }
    let mut hits = Vec::new();
    scan(rs, &rs.request, |t| values(req, t, scope), &mut hits);
    for i in &rs.counts {
        let r = &rs.rules[*i];
        if let Op::CountGt(n) = r.op {
            for t in &r.targets {
                if count(req, t, scope) > n && !hits.iter().any(|h| h.rule == *i) {
                    hits.push(Hit {
                        rule: *i,
                        target: t,
                        name: None,
                    });
                }
            }
        }
    }
    for h in hits {
        let r = &rs.rules[h.rule];
        if !applies(r, req.class, &req.method, Some(req))
            || excluded(settings, r.id, req.class, &req.path, h.target, h.name)
        {
            continue;
        }
        out.matches.push(Match {
            id: r.id,
            score: r.score,
            action: r.action,
            target: h.target.label(),
            name: h.name.map(str::to_string),
        });
    }
    out.matches.sort_by_key(|m| m.id);
    out.finish(settings);
    out
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
    let mut hits = Vec::new();
    let get = |t: &Target| -> Vec<(Option<&str>, &str)> {
        match t {
            Target::ResponseBody => vec![(None, body)],
            Target::ResponseHeaders => headers
                .iter()
                .map(|(k, v)| (Some(k.as_str()), v.as_str()))
                .collect(),
            _ => Vec::new(),
        }
    };
    scan(rs, &rs.response, get, &mut hits);
    for h in hits {
        let r = &rs.rules[h.rule];
        if !applies(r, class, method, None)
            || excluded(settings, r.id, class, path, h.target, h.name)
        {
            continue;
        }
        out.matches.push(Match {
            id: r.id,
            score: r.score,
            action: r.action,
            target: h.target.label(),
            name: h.name.map(str::to_string),
        });
    }
    out.finish(settings);
    out
}

#[cfg(test)]
mod tests;
