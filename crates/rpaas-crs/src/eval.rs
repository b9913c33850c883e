//! Runs a [`RuleSet`] against one request: phase 1 (request line and headers), the body
//! processor, phase 2 (body). Pure: no I/O, no clock.

mod data;
mod fixed;
mod scan;
mod state;

use std::borrow::Cow;

use crate::compile::{CCtl, COp, Collection, Link, Rule, RuleSet, Scalar, Sel, Target, Var};
use crate::parse::{AllowScope, Disruptive, Severity};
use crate::request::RequestInput;
use data::{Data, ValueId};
pub(crate) use fixed::{fix, Snapshot};
use scan::Scratch;
use state::{Ctx, State};

/// The outcome of evaluating a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// Rules that matched and log (`nolog` rules, like CRS's bookkeeping, are left out).
    pub matches: Vec<RuleMatch>,
    /// `TX:ANOMALY_SCORE` after phase 2: the inbound anomaly score CRS 949110 compares.
    pub anomaly_score: i64,
    /// `TX:INBOUND_ANOMALY_SCORE_THRESHOLD` as the rules left it.
    pub threshold: i64,
    /// The rule whose `deny`/`drop` ended the evaluation (949110 for an anomaly-score block).
    pub blocked_by: Option<u32>,
    /// `ctl:ruleEngine=DetectionOnly` was set: a deny was recorded but would not be enforced.
    pub detection_only: bool,
}

impl Evaluation {
    /// True when ModSecurity would interrupt the request.
    pub fn would_block(&self) -> bool {
        self.blocked_by.is_some() && !self.detection_only
    }
}

/// A matched rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMatch {
    pub id: u32,
    pub phase: u8,
    pub msg: String,
    pub severity: Option<Severity>,
    /// `ARGS:q`, `REQUEST_HEADERS:User-Agent`, `REQUEST_FILENAME`...
    pub var_name: String,
    /// The matched text (the capture, else the transformed value), at most
    /// [`EXCERPT_MAX`] bytes, lossily decoded.
    pub excerpt: String,
}

/// Bound on [`RuleMatch::excerpt`].
pub const EXCERPT_MAX: usize = 80;

/// The shortcuts the evaluator may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mode {
    /// Literal prefilters may skip operators.
    prefilter: bool,
    /// Start from the [`Snapshot`] and take fixed outcomes.
    fixed: bool,
}

enum Flow {
    Next,
    Jump(usize),
    Skip(u32),
    EndPhase,
    EndRequest,
}

struct Hit {
    name: Vec<u8>,
    value: Vec<u8>,
    excerpt: Vec<u8>,
}

impl RuleSet {
    /// Evaluates phases 1 and 2 for `req`.
    pub fn evaluate(&self, req: &RequestInput) -> Evaluation {
        self.run(
            req,
            Mode {
                prefilter: true,
                fixed: true,
            },
        )
    }

    /// [`RuleSet::evaluate`] without the literal prefilters and without the load-time
    /// snapshot and fixed outcomes: every rule runs, every operator on every value it targets.
    /// The slow, obviously-right twin the fast path is tested against; it decides exactly the
    /// same.
    pub fn evaluate_reference(&self, req: &RequestInput) -> Evaluation {
        self.run(
            req,
            Mode {
                prefilter: false,
                fixed: false,
            },
        )
    }

    fn run(&self, req: &RequestInput, mode: Mode) -> Evaluation {
        let mut data = Data::new(req);
        let fixed = mode.fixed && self.snapshot.applies(&req.tx);
        let (mut state, start) = if fixed {
            (self.snapshot.state(), self.snapshot.start)
        } else {
            (State::default(), 0)
        };
        state.memo = mode.prefilter;
        for (name, value) in &req.tx {
            state
                .tx
                .set(&name.to_ascii_lowercase(), |v| v.extend_from_slice(value));
        }
        let mut cache = Scratch::new(
            mode.prefilter.then_some(&self.prefilters),
            fixed.then_some(&req.tx[..]),
        );
        let mut ended = false;
        for phase in 0..2 {
            if phase == 1 {
                let processor = state.processor_override.or(data.processor);
                data.process_body(processor, state.force_body_variable);
                cache.new_phase();
            }
            if ended {
                break;
            }
            let rules = &self.phases[phase];
            let mut i = if phase == 0 { start } else { 0 };
            while i < rules.len() {
                let rule = &rules[i];
                let flow = run_rule(rule, phase as u8 + 1, &data, &mut state, &mut cache);
                match flow {
                    Flow::Next => i += 1,
                    Flow::Jump(t) => i = t.max(i + 1),
                    Flow::Skip(n) => i += 1 + n as usize,
                    Flow::EndPhase => break,
                    Flow::EndRequest => {
                        ended = true;
                        break;
                    }
                }
            }
        }
        Evaluation {
            anomaly_score: state.tx_num("anomaly_score"),
            threshold: state.tx_num("inbound_anomaly_score_threshold"),
            matches: std::mem::take(&mut state.matches),
            blocked_by: state.blocked_by,
            detection_only: state.detection_only,
        }
    }
}

fn removed(rule: &Rule, state: &State) -> bool {
    state.removed_ids.iter().any(|r| r.contains(rule.id))
        || (!state.removed_tags.is_empty()
            && rule
                .tags
                .iter()
                .any(|t| state.removed_tags.iter().any(|r| r.eq_ignore_ascii_case(t))))
}

fn run_rule<'s>(
    rule: &'s Rule,
    phase: u8,
    data: &Data<'_>,
    state: &mut State<'s>,
    cache: &mut Scratch<'_>,
) -> Flow {
    if removed(rule, state) {
        return Flow::Next;
    }
    if let (Some(f), Some(preset)) = (&rule.fixed, cache.preset) {
        if f.applies(preset) && !fixed::tx_targets_removed(state) {
            return fixed::apply(rule, f, state);
        }
    }
    state.matched_vars = Cow::Borrowed(&[]);
    if !cache.gate_open(rule.gate.as_ref(), data) {
        return Flow::Next;
    }
    let mut last_hit = None;
    for link in &rule.links {
        let hits = run_link(rule, link, data, state, cache);
        if hits.is_empty() {
            return Flow::Next;
        }
        let mut hits = hits;
        // Only a logged match reports its first hit.
        if rule.log {
            last_hit = hits
                .first_mut()
                .map(|h| (h.name.clone(), std::mem::take(&mut h.excerpt)));
        }
        state.matched_vars = hits
            .into_iter()
            .map(|h| (h.name, h.value))
            .collect::<Vec<_>>()
            .into();
    }
    if state.engine_off {
        return Flow::EndRequest;
    }
    if rule.log && rule.id != 0 {
        let msg = rule.msg.as_ref().map_or_else(String::new, |m| {
            let ctx = Ctx { data, state, rule };
            String::from_utf8_lossy(&m.expand(&ctx)).into_owned()
        });
        let (var_name, excerpt) = last_hit.map_or_else(Default::default, |(name, excerpt)| {
            (
                String::from_utf8_lossy(&name).into_owned(),
                bounded(&excerpt),
            )
        });
        state.matches.push(RuleMatch {
            id: rule.id,
            phase,
            msg,
            severity: rule.severity,
            var_name,
            excerpt,
        });
    }
    match rule.disruptive {
        Disruptive::Deny | Disruptive::Drop => {
            state.blocked_by = Some(rule.id);
            return Flow::EndRequest;
        }
        Disruptive::Allow(AllowScope::Phase) => return Flow::EndPhase,
        Disruptive::Allow(_) => return Flow::EndRequest,
        Disruptive::Block | Disruptive::Pass => {}
    }
    if let Some(t) = rule.skip_after {
        return Flow::Jump(t);
    }
    if rule.skip > 0 {
        return Flow::Skip(rule.skip);
    }
    Flow::Next
}

fn bounded(v: &[u8]) -> String {
    let s = String::from_utf8_lossy(&v[..v.len().min(EXCERPT_MAX)]).into_owned();
    s.chars()
        .map(|c| if c.is_control() { '.' } else { c })
        .collect()
}

/// Evaluates one link against all its targets; runs its non-disruptive actions once per hit
/// (as ModSecurity 2 does) and returns the hits.
fn run_link<'s>(
    rule: &'s Rule,
    link: &'s Link,
    data: &Data<'_>,
    state: &mut State<'s>,
    cache: &mut Scratch<'_>,
) -> Vec<Hit> {
    let mut hits = Vec::new();
    for target in &link.targets {
        let keep = |name: &[u8], state: &State| {
            !link.exclusions.iter().any(|e| e.excludes(target.var, name))
                && !state.target_removed(rule, target.var, name)
        };
        let label = label(target);
        if let Var::Collection(c) = target.var {
            if !is_dynamic(c) && !target.count {
                // Request collections are borrowed and tested in place.
                data.members(c, &mut |m| {
                    if target.sel.matches(m.name) && keep(m.name, state) {
                        let name = Name {
                            label,
                            target,
                            member: m.name,
                        };
                        test_value(
                            rule, link, data, state, &mut hits, name, &m.value, m.id, cache,
                        );
                    }
                });
                continue;
            }
        }
        // Values that rules may change while this link runs (TX, MATCHED_VARS...) are copied.
        let mut owned: Vec<Owned<'_>> = Vec::new();
        collect(target, data, state, &mut owned);
        if target.count {
            let n = owned.iter().filter(|(n, _, _)| keep(n, state)).count();
            let value = n.to_string().into_bytes();
            let name = Name {
                label,
                target,
                member: b"",
            };
            test_value(
                rule, link, data, state, &mut hits, name, &value, None, cache,
            );
            continue;
        }
        for (n, v, id) in owned {
            if !keep(&n, state) {
                continue;
            }
            let name = Name {
                label,
                target,
                member: &n,
            };
            test_value(rule, link, data, state, &mut hits, name, &v, id, cache);
        }
    }
    hits
}

fn is_dynamic(c: Collection) -> bool {
    matches!(
        c,
        Collection::Tx
            | Collection::Ip
            | Collection::Global
            | Collection::MatchedVars
            | Collection::MatchedVarsNames
    )
}

fn label(target: &Target) -> &'static str {
    match target.var {
        Var::Scalar(s) => s.label(),
        Var::Collection(c) => c.label(),
    }
}

/// A member's name, rendered (`ARGS:q`) only when it matched.
struct Name<'a> {
    label: &'static str,
    target: &'a Target,
    member: &'a [u8],
}

impl Name<'_> {
    fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.label.len() + 1 + self.member.len());
        if self.target.count {
            out.push(b'&');
        }
        out.extend_from_slice(self.label.as_bytes());
        if matches!(self.target.var, Var::Collection(_)) && !self.target.count {
            out.push(b':');
            out.extend_from_slice(self.member);
        }
        out
    }
}

/// A member gathered by [`collect`]: name, value, cache id. Request values are borrowed;
/// values the rules may change while the link runs are copied.
type Owned<'d> = (Cow<'d, [u8]>, Cow<'d, [u8]>, Option<ValueId>);

/// Gathers a target's members: scalars, TX-like collections, counted collections.
fn collect<'d>(target: &Target, data: &'d Data<'_>, state: &State<'_>, owned: &mut Vec<Owned<'d>>) {
    let own = |v: &[u8]| Cow::Owned(v.to_vec());
    match target.var {
        Var::Scalar(s) => {
            let value = match s {
                Scalar::MatchedVar => Some(own(&state.matched_var)),
                Scalar::MatchedVarName => Some(own(&state.matched_var_name)),
                s => data.scalar(s),
            };
            if let Some(v) = value {
                owned.push((Cow::Borrowed(&b""[..]), v, Data::scalar_id(s)));
            }
        }
        Var::Collection(c @ (Collection::Tx | Collection::Ip | Collection::Global)) => {
            let map = state.collection(c);
            if let Sel::Name(k) = &target.sel {
                // Keys are stored lower-cased, as selectors are.
                if let Some(v) = std::str::from_utf8(k).ok().and_then(|k| map.get(k)) {
                    owned.push((own(k), own(v), None));
                }
                return;
            }
            for (k, v) in map.entries_where(&|k| target.sel.matches(k.as_bytes())) {
                owned.push((own(k.as_bytes()), own(v), None));
            }
            // Deterministic order for a deterministic engine.
            owned.sort();
        }
        Var::Collection(c @ (Collection::MatchedVars | Collection::MatchedVarsNames)) => {
            for (n, v) in state.matched_vars.iter() {
                if target.sel.matches(n) {
                    let value = if c == Collection::MatchedVars { v } else { n };
                    owned.push((own(n), own(value), None));
                }
            }
        }
        Var::Collection(c) => data.members(c, &mut |m| {
            if target.sel.matches(m.name) {
                owned.push((Cow::Borrowed(m.name), m.value, m.id));
            }
        }),
    }
}

#[allow(clippy::too_many_arguments)]
fn test_value<'s>(
    rule: &'s Rule,
    link: &'s Link,
    data: &Data<'_>,
    state: &mut State<'s>,
    hits: &mut Vec<Hit>,
    name: Name<'_>,
    raw: &[u8],
    id: Option<ValueId>,
    cache: &mut Scratch<'_>,
) {
    let capture = link.capture && link.operator.captures_anything();
    let result = if link.multi_match {
        multi_match(rule, link, data, state, raw, capture)
    } else {
        let gateable = crate::compile::prefilter::is_request_value(name.target);
        let Some(value) = cache.value(link, gateable, raw, id) else {
            return;
        };
        let ctx = Ctx { data, state, rule };
        link.operator
            .run(&value, capture, &ctx)
            .map(|caps| (caps, value.into_owned()))
    };
    let Some((caps, value)) = result else { return };
    if link.capture {
        state.set_captures(&caps);
    }
    let name = name.render();
    set_owned(&mut state.matched_var, &value);
    set_owned(&mut state.matched_var_name, &name);
    // Only the link's first hit is reported (its excerpt); the others keep none.
    let excerpt = if hits.is_empty() {
        let excerpt = caps.into_iter().next().filter(|c| !c.is_empty());
        excerpt.unwrap_or_else(|| value[..value.len().min(EXCERPT_MAX)].to_vec())
    } else {
        Vec::new()
    };
    hits.push(Hit {
        name,
        value,
        excerpt,
    });
    run_actions(rule, link, data, state);
}

/// Sets a match variable, in the buffer it already owns when it owns one.
fn set_owned(var: &mut Cow<'_, [u8]>, value: &[u8]) {
    match var {
        Cow::Owned(v) => {
            v.clear();
            v.extend_from_slice(value);
        }
        Cow::Borrowed(_) => *var = Cow::Owned(value.to_vec()),
    }
}

/// `multiMatch`: the operator runs on the value before any transformation and after each one
/// that changed it.
fn multi_match(
    rule: &Rule,
    link: &Link,
    data: &Data<'_>,
    state: &State<'_>,
    raw: &[u8],
    capture: bool,
) -> Option<(Vec<Vec<u8>>, Vec<u8>)> {
    let ctx = Ctx { data, state, rule };
    if let Some(c) = link.operator.run(raw, capture, &ctx) {
        return Some((c, raw.to_vec()));
    }
    // One transformation at a time through the chain's own stepper, which does not call those
    // the value's bytes prove idle.
    let mut value = Cow::Borrowed(raw);
    let mut bytes = crate::bytes::ByteSet::of(raw);
    for t in &link.transforms {
        let (out, b) = crate::transform::apply_chain_known(std::slice::from_ref(t), &value, bytes);
        if let Cow::Owned(v) = out {
            (value, bytes) = (Cow::Owned(v), b);
            if let Some(c) = link.operator.run(&value, capture, &ctx) {
                return Some((c, value.into_owned()));
            }
        }
    }
    None
}

fn run_actions<'s>(rule: &'s Rule, link: &'s Link, data: &Data<'_>, state: &mut State<'s>) {
    let mut key_buf = Vec::new();
    let mut value = Vec::new();
    for sv in &link.setvars {
        let key = {
            let ctx = Ctx { data, state, rule };
            value.clear();
            if let COp::Set(v) | COp::Add(v) | COp::Sub(v) = &sv.op {
                v.expand_into(&ctx, &mut value);
            }
            // Keys are lower-cased at load; only a macro's expansion can bring upper case.
            match sv.key.literal() {
                Some(k) => String::from_utf8_lossy(k),
                None => {
                    key_buf.clear();
                    sv.key.expand_into(&ctx, &mut key_buf);
                    Cow::Owned(String::from_utf8_lossy(&key_buf).to_ascii_lowercase())
                }
            }
        };
        let map = state.collection_mut(sv.collection);
        match &sv.op {
            COp::Set(_) => map.set(&key, |v| v.extend_from_slice(&value)),
            COp::Add(_) | COp::Sub(_) => {
                let cur = map.get(&key).map_or(0, state::atoi);
                let delta = state::atoi(&value);
                let new = if matches!(sv.op, COp::Add(_)) {
                    cur.saturating_add(delta)
                } else {
                    cur.saturating_sub(delta)
                };
                map.set(&key, |v| state::itoa(new, v));
            }
            COp::Delete => map.remove(&key),
        }
    }
    for c in &link.ctls {
        match c {
            CCtl::RemoveById(ids) => state.removed_ids.extend_from_slice(ids),
            CCtl::RemoveByTag(t) => state.removed_tags.push(t.clone()),
            CCtl::RemoveTargetById(ids, t) => state.removed_targets_by_id.push((ids, t)),
            CCtl::RemoveTargetByTag(tag, t) => state.removed_targets_by_tag.push((tag, t)),
            CCtl::EngineOff => state.engine_off = true,
            CCtl::DetectionOnly => state.detection_only = true,
            CCtl::BodyProcessor(p) => state.processor_override = Some(*p),
            CCtl::ForceBodyVariable(on) => state.force_body_variable = *on,
        }
    }
}

#[cfg(test)]
mod tests;
