//! What every request does the same way, worked out once per rule set by running the
//! interpreter itself at load time:
//!
//! - the request-independent prefix of phase 1 (crs-setup's `SecAction`s, CRS 901's defaults:
//!   rules that read and write only TX and friends) becomes a [`Snapshot`] each request starts
//!   from;
//! - later rules that read only TX variables that no later rule writes (paranoia-level skips,
//!   exclusion-package skips) get a [`Fixed`] outcome.
//!
//! A request that presets (`RequestInput::tx`) a variable the prefix touches starts from
//! scratch; one that presets a variable a fixed rule reads runs that rule.

use std::borrow::Cow;
use std::collections::HashSet;

use super::data::Data;
use super::scan::Scratch;
use super::state::{digits_of, Map, State, Vars};
use super::{run_rule, Flow};
use crate::compile::{COp, Collection, Fixed, Matched, Rule, Scalar, Sel, Var};
use crate::macros::MacroRef;
use crate::parse::Disruptive;
use crate::request::RequestInput;

/// The state after the request-independent prefix of phase 1.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// Index in phase 1 of the first rule a request runs.
    pub start: usize,
    pub tx: Map,
    pub ip: Map,
    pub global: Map,
    pub matched_var: Vec<u8>,
    pub matched_var_name: Vec<u8>,
    pub matched_vars: Vec<(Vec<u8>, Vec<u8>)>,
    /// [`digits_of`] `tx`, `ip`, `global`.
    digits: [u16; 3],
    /// TX variables the prefix reads or writes.
    touched: HashSet<String>,
    /// The prefix reads TX members by regex or all of them.
    touched_all: bool,
}

impl Snapshot {
    /// True when the request presets none of the variables the prefix touches.
    pub fn applies(&self, preset: &[(String, Vec<u8>)]) -> bool {
        preset.is_empty()
            || !self.touched_all
                && preset
                    .iter()
                    .all(|(n, _)| !self.touched.contains(&n.to_ascii_lowercase()))
    }

    /// A request's state with the prefix done.
    pub fn state(&self) -> State<'_> {
        State {
            tx: Vars::over(&self.tx, self.digits[0]),
            ip: Vars::over(&self.ip, self.digits[1]),
            global: Vars::over(&self.global, self.digits[2]),
            matched_var: Cow::Borrowed(&self.matched_var),
            matched_var_name: Cow::Borrowed(&self.matched_var_name),
            matched_vars: Cow::Borrowed(&self.matched_vars),
            ..State::default()
        }
    }

    /// What [`Snapshot::state`] gives after `state` has been worked on.
    fn after(state: State<'_>) -> Self {
        let (tx, ip, global) = (state.tx.to_map(), state.ip.to_map(), state.global.to_map());
        Self {
            digits: [digits_of(&tx), digits_of(&ip), digits_of(&global)],
            tx,
            ip,
            global,
            matched_var: state.matched_var.into_owned(),
            matched_var_name: state.matched_var_name.into_owned(),
            matched_vars: state.matched_vars.into_owned(),
            ..Self::default()
        }
    }

    fn commit(&mut self, next: Self) {
        self.tx = next.tx;
        self.ip = next.ip;
        self.global = next.global;
        self.digits = next.digits;
        self.matched_var = next.matched_var;
        self.matched_var_name = next.matched_var_name;
        self.matched_vars = next.matched_vars;
    }
}

/// Where a rule stands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Before any request-dependent rule: may read MATCHED_VAR, IP, GLOBAL and write TX.
    Prefix,
    /// After it: may read only TX variables no later rule writes, and write nothing.
    Later,
}

/// TX names written by the rules a request runs.
#[derive(Default)]
struct Written {
    names: HashSet<String>,
    /// Keys with a macro: every name starting with one of these may be written.
    prefixes: Vec<String>,
}

impl Written {
    fn of<'r>(rules: impl Iterator<Item = &'r Rule>) -> Self {
        let mut w = Self::default();
        for link in rules.flat_map(|r| &r.links) {
            if link.capture && link.operator.captures_anything() {
                w.names.extend((0..10).map(|d| d.to_string()));
            }
            for sv in link
                .setvars
                .iter()
                .filter(|s| s.collection == Collection::Tx)
            {
                match sv.key.literal() {
                    Some(k) => w.names.insert(String::from_utf8_lossy(k).into_owned()),
                    None => {
                        let p = String::from_utf8_lossy(sv.key.literal_prefix()).into_owned();
                        w.prefixes.push(p);
                        true
                    }
                };
            }
        }
        w
    }

    fn may_write(&self, name: &str) -> bool {
        self.names.contains(name) || self.prefixes.iter().any(|p| name.starts_with(p.as_str()))
    }
}

/// What a rule reads, if it can be decided at `place`.
#[derive(Default)]
struct Reads {
    names: Vec<String>,
    all: bool,
}

fn reads(rule: &Rule, place: Place, written: &Written) -> Option<Reads> {
    let mut r = Reads::default();
    let tx = |name: &str, r: &mut Reads| {
        if place == Place::Later && written.may_write(name) {
            return false;
        }
        r.names.push(name.to_string());
        true
    };
    for link in &rule.links {
        if !link.ctls.is_empty() {
            return None;
        }
        if place == Place::Later
            && (!link.setvars.is_empty() || link.capture && link.operator.captures_anything())
        {
            return None;
        }
        for t in &link.targets {
            match (t.var, &t.sel) {
                (Var::Collection(Collection::Tx), Sel::Name(n)) => {
                    if !tx(&String::from_utf8_lossy(n), &mut r) {
                        return None;
                    }
                }
                (Var::Collection(Collection::Tx), _) if place == Place::Prefix => r.all = true,
                (
                    Var::Scalar(
                        Scalar::Unconditional | Scalar::MatchedVar | Scalar::MatchedVarName,
                    )
                    | Var::Collection(
                        Collection::Ip
                        | Collection::Global
                        | Collection::MatchedVars
                        | Collection::MatchedVarsNames,
                    ),
                    _,
                ) if place == Place::Prefix => {}
                _ => return None,
            }
        }
        let mut refs: Vec<&MacroRef> = link.operator.macro_refs();
        for sv in &link.setvars {
            // A computed key could be anything: not in the prefix.
            let key = sv.key.literal()?;
            if sv.collection == Collection::Tx {
                r.names.push(String::from_utf8_lossy(key).into_owned());
            }
            if let COp::Set(v) | COp::Add(v) | COp::Sub(v) = &sv.op {
                refs.extend(v.refs());
            }
        }
        if link.capture && link.operator.captures_anything() {
            r.names.extend((0..10).map(|d| d.to_string()));
        }
        for m in refs {
            match (m.collection.as_str(), m.key.as_deref()) {
                ("TX", Some(k)) => {
                    if !tx(k, &mut r) {
                        return None;
                    }
                }
                ("RULE", _) => {}
                ("IP" | "GLOBAL", Some(_)) | ("MATCHED_VAR" | "MATCHED_VAR_NAME", None)
                    if place == Place::Prefix => {}
                _ => return None,
            }
        }
    }
    if let Some(msg) = &rule.msg {
        for m in msg.refs() {
            match (m.collection.as_str(), m.key.as_deref()) {
                ("TX", Some(k)) if !written.may_write(k) || place == Place::Prefix => {}
                ("RULE", _) => {}
                _ => return None,
            }
        }
    }
    Some(r)
}

/// Runs the request-independent prefix, fixes the outcome of the later rules that can be
/// fixed, and returns the prefix's state.
pub(crate) fn fix(phases: &mut [Vec<Rule>; 2]) -> Snapshot {
    let req = RequestInput::new("GET", "/");
    let data = Data::new(&req);
    let mut snap = Snapshot::default();
    let none = Written::default();
    let rules = &phases[0];
    let mut i = 0;
    while i < rules.len() {
        let rule = &rules[i];
        let Some(r) = reads(rule, Place::Prefix, &none) else {
            break;
        };
        let mut state = snap.state();
        let mut scratch = Scratch::new(None, None);
        let next = match run_rule(rule, 1, &data, &mut state, &mut scratch) {
            Flow::Next => i + 1,
            Flow::Jump(t) => t.max(i + 1),
            Flow::Skip(n) => i + 1 + n as usize,
            Flow::EndPhase | Flow::EndRequest => break,
        };
        if !state.matches.is_empty() || state.blocked_by.is_some() || state.engine_off {
            break;
        }
        let next_state = Snapshot::after(state);
        snap.commit(next_state);
        snap.touched.extend(r.names);
        snap.touched_all |= r.all;
        i = next;
    }
    snap.start = i;
    let written = Written::of(phases[0][i..].iter().chain(&phases[1]));
    let mut outcomes = Vec::new();
    for (ph, rules) in phases.iter().enumerate() {
        let from = if ph == 0 { snap.start } else { 0 };
        for (k, rule) in rules.iter().enumerate().skip(from) {
            if let Some(f) = outcome(rule, ph as u8 + 1, &data, &snap, &written) {
                outcomes.push((ph, k, f));
            }
        }
    }
    for (ph, k, f) in outcomes {
        phases[ph][k].fixed = Some(f);
    }
    snap
}

fn outcome(
    rule: &Rule,
    phase: u8,
    data: &Data<'_>,
    snap: &Snapshot,
    written: &Written,
) -> Option<Fixed> {
    let r = reads(rule, Place::Later, written)?;
    let mut state = snap.state();
    // With the engine off, a rule whose links all match ends the request before it logs:
    // that tells a full match apart from a partial one.
    state.engine_off = true;
    let mut scratch = Scratch::new(None, None);
    let hit = match run_rule(rule, phase, data, &mut state, &mut scratch) {
        Flow::Next => false,
        Flow::EndRequest => true,
        _ => return None,
    };
    let passes = matches!(rule.disruptive, Disruptive::Pass | Disruptive::Block);
    if hit && (!passes || rule.log && rule.id != 0) || !state.matches.is_empty() {
        return None;
    }
    let matched = (!state.matched_vars.is_empty()).then(|| Matched {
        var: state.matched_var.to_vec(),
        name: state.matched_var_name.to_vec(),
        vars: state.matched_vars.to_vec(),
    });
    Some(Fixed {
        hit,
        matched,
        reads: r.names,
    })
}

impl Fixed {
    /// True when the request presets none of the variables the rule reads.
    pub fn applies(&self, preset: &[(String, Vec<u8>)]) -> bool {
        preset
            .iter()
            .all(|(n, _)| !self.reads.iter().any(|r| r.eq_ignore_ascii_case(n)))
    }
}

/// Does what `run_rule` would do for a rule with a fixed outcome.
pub(super) fn apply<'s>(rule: &'s Rule, f: &'s Fixed, state: &mut State<'s>) -> Flow {
    match &f.matched {
        Some(m) => {
            state.matched_var = Cow::Borrowed(&m.var);
            state.matched_var_name = Cow::Borrowed(&m.name);
            state.matched_vars = Cow::Borrowed(&m.vars);
        }
        None => state.matched_vars = Cow::Borrowed(&[]),
    }
    if !f.hit {
        return Flow::Next;
    }
    if state.engine_off {
        return Flow::EndRequest;
    }
    if let Some(t) = rule.skip_after {
        return Flow::Jump(t);
    }
    if rule.skip > 0 {
        return Flow::Skip(rule.skip);
    }
    Flow::Next
}

/// A `ctl:ruleRemoveTarget...` removed some TX member from some rule: fixed outcomes may not
/// hold.
pub(super) fn tx_targets_removed(state: &State<'_>) -> bool {
    let tx =
        |ts: &[crate::compile::Target]| ts.iter().any(|t| t.var == Var::Collection(Collection::Tx));
    state.removed_targets_by_id.iter().any(|(_, ts)| tx(ts))
        || state.removed_targets_by_tag.iter().any(|(_, ts)| tx(ts))
}
