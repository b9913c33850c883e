//! Directives to a runnable [`RuleSet`]: chains assembled, targets resolved to typed variables,
//! operators and transformation chains compiled, `skipAfter` resolved to rule positions per
//! phase. Everything that cannot run is reported, never silently dropped.

pub(crate) mod prefilter;
mod vars;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::macros::Expandable;
use crate::operator::Operator;
use crate::parse::{
    Action, Ctl, Directive, DirectiveKind, Disruptive, IdRange, Location, OperatorDef, SetVar,
    SetVarOp, Severity, Variable,
};
use crate::transform::{Transform, TransformName};
pub(crate) use vars::{Collection, Scalar, Sel, Target, Var};

/// Something the loader could not run, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    pub file: Arc<str>,
    pub line: usize,
    /// 0 for directives and rules without an id.
    pub rule_id: u32,
    pub reason: String,
}

/// What the loader left out, sorted by kind.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Request-phase rules that are not run (unknown variable, operator, transformation...).
    pub unsupported: Vec<Unsupported>,
    /// Rules in phases 3-5 (response and logging): parsed, not run.
    pub response_phase: Vec<Unsupported>,
    /// Directives other than `SecRule`, `SecAction`, `SecMarker`.
    pub ignored_directives: Vec<Unsupported>,
}

#[derive(Debug)]
pub(crate) struct CSetVar {
    pub collection: Collection,
    pub key: Expandable,
    pub op: COp,
}

#[derive(Debug)]
pub(crate) enum COp {
    Set(Expandable),
    Add(Expandable),
    Sub(Expandable),
    Delete,
}

#[derive(Debug)]
pub(crate) enum CCtl {
    RemoveById(Vec<IdRange>),
    RemoveByTag(String),
    RemoveTargetById(Vec<IdRange>, Vec<Target>),
    RemoveTargetByTag(String, Vec<Target>),
    EngineOff,
    DetectionOnly,
    BodyProcessor(crate::request::BodyProcessor),
    ForceBodyVariable(bool),
}

/// One `SecRule` (or `SecAction`) of a chain.
#[derive(Debug)]
pub(crate) struct Link {
    pub targets: Vec<Target>,
    pub exclusions: Vec<Target>,
    pub operator: Operator,
    pub chain_id: u16,
    pub transforms: Vec<Transform>,
    /// [`crate::transform::chain_triggers`] of `transforms`.
    pub triggers: Option<crate::bytes::ByteSet>,
    pub multi_match: bool,
    pub capture: bool,
    /// Prefilter slot: the operator can match only values in which the slot's literals occur
    /// (or one of the bytes of `short`).
    pub prefilter: Option<u32>,
    /// The one-byte literals of the prefilter, in both cases; they are tested as bytes, not
    /// scanned for.
    pub short: crate::bytes::ByteSet,
    /// The operator can match only values that hold one of these bytes.
    pub needs: Option<crate::bytes::ByteSet>,
    pub setvars: Vec<CSetVar>,
    pub ctls: Vec<CCtl>,
}

#[derive(Debug)]
pub(crate) struct Rule {
    pub id: u32,
    pub links: Vec<Link>,
    pub msg: Option<Expandable>,
    pub tags: Vec<String>,
    pub severity: Option<Severity>,
    pub disruptive: Disruptive,
    pub log: bool,
    /// Index in the phase's rule list to continue at.
    pub skip_after: Option<usize>,
    pub skip: u32,
    /// The rule cannot match unless its first link's prefilter passes on one of the group's
    /// values.
    pub gate: Option<prefilter::Gate>,
    /// What the rule does on every request, when that is known at load time.
    pub fixed: Option<Fixed>,
}

/// `MATCHED_VAR`, `MATCHED_VAR_NAME` and `MATCHED_VARS`.
#[derive(Debug)]
pub(crate) struct Matched {
    pub var: Vec<u8>,
    pub name: Vec<u8>,
    pub vars: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The outcome of a rule that reads only TX variables no request can change (paranoia-level
/// and exclusion-package skips), decided at load time by [`crate::eval::fix`].
#[derive(Debug)]
pub(crate) struct Fixed {
    /// Every link matched: the rule's flow action is taken.
    pub hit: bool,
    /// What the rule leaves in the match variables; `None` when no link matched.
    pub matched: Option<Matched>,
    /// The TX variables it reads: a request that presets one of them runs the rule.
    pub reads: Vec<String>,
}

/// A compiled rule set: request rules of phases 1 and 2, in file order.
#[derive(Debug)]
pub struct RuleSet {
    pub(crate) phases: [Vec<Rule>; 2],
    pub(crate) prefilters: prefilter::Prefilters,
    /// The state the request-independent prefix of phase 1 leaves.
    pub(crate) snapshot: crate::eval::Snapshot,
}

impl RuleSet {
    /// Number of runnable rules (chains count once).
    pub fn rule_count(&self) -> usize {
        self.phases.iter().map(Vec::len).sum()
    }

    /// Ids of the runnable rules, in evaluation order.
    pub fn rule_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.phases.iter().flatten().map(|r| r.id)
    }

    /// Rules with a literal prefilter on some link (their operator runs only on values in
    /// which one of its required literals occurs).
    pub fn prefiltered_rule_count(&self) -> usize {
        self.phases
            .iter()
            .flatten()
            .filter(|r| {
                r.links
                    .iter()
                    .any(|l| l.prefilter.is_some() || !l.short.is_empty())
            })
            .count()
    }

    /// Rules skipped as a whole, with one bit test, when none of their values holds a literal.
    pub fn gated_rule_count(&self) -> usize {
        self.prefilters.gated_rules
    }

    /// Rules decided at load time: the request-independent prefix plus the rules with a
    /// fixed outcome.
    pub fn fixed_rule_count(&self) -> usize {
        self.snapshot.start
            + self
                .phases
                .iter()
                .flatten()
                .filter(|r| r.fixed.is_some())
                .count()
    }
}

/// A rule as written: the chain starter's directive plus its chained links.
struct Pending<'a> {
    location: &'a Location,
    links: Vec<(&'a [Variable], Option<&'a OperatorDef>, &'a [Action])>,
}

pub(crate) fn compile(directives: &[Directive], rules_dir: &Path) -> (RuleSet, LoadReport) {
    let mut report = LoadReport::default();
    let mut phases: [Vec<Rule>; 2] = [Vec::new(), Vec::new()];
    let mut skip_names: [Vec<Option<String>>; 2] = [Vec::new(), Vec::new()];
    // Marker name -> position (index of the next rule) per phase, in order of appearance.
    let mut markers: [Vec<(String, usize)>; 2] = [Vec::new(), Vec::new()];
    let mut chains: HashMap<Vec<Transform>, u16> = HashMap::new();

    let mut pending: Option<Pending> = None;
    let mut finish = |p: Pending,
                      phases: &mut [Vec<Rule>; 2],
                      skip_names: &mut [Vec<Option<String>>; 2],
                      report: &mut LoadReport| {
        let starter = p.links[0].2;
        let id = starter
            .iter()
            .find_map(|a| match a {
                Action::Id(i) => Some(*i),
                _ => None,
            })
            .unwrap_or(0);
        let phase = starter
            .iter()
            .find_map(|a| match a {
                Action::Phase(p) => Some(*p),
                _ => None,
            })
            .unwrap_or(2);
        let note = |reason: String| Unsupported {
            file: p.location.file.clone(),
            line: p.location.line,
            rule_id: id,
            reason,
        };
        if phase > 2 {
            report
                .response_phase
                .push(note(format!("phase {phase} (response/logging), not run")));
            return;
        }
        match build_rule(&p, id, rules_dir, &mut chains) {
            Ok((rule, skip_after)) => {
                let idx = usize::from(phase) - 1;
                phases[idx].push(rule);
                skip_names[idx].push(skip_after);
            }
            Err(reason) => report.unsupported.push(note(reason)),
        }
    };

    for d in directives {
        let link = match &d.kind {
            DirectiveKind::Rule(r) => Some((&r.variables[..], Some(&r.operator), &r.actions[..])),
            DirectiveKind::Action(a) => Some((&[][..], None, &a[..])),
            DirectiveKind::Marker(name) => {
                if let Some(p) = pending.take() {
                    report.unsupported.push(Unsupported {
                        file: p.location.file.clone(),
                        line: p.location.line,
                        rule_id: 0,
                        reason: "chain is not followed by a rule".into(),
                    });
                }
                for (ph, m) in markers.iter_mut().enumerate() {
                    m.push((name.clone(), phases[ph].len()));
                }
                None
            }
            DirectiveKind::Other { name, .. } => {
                report.ignored_directives.push(Unsupported {
                    file: d.location.file.clone(),
                    line: d.location.line,
                    rule_id: 0,
                    reason: format!("directive {name} is not supported; ignored"),
                });
                None
            }
        };
        let Some(link) = link else { continue };
        let chained = link.2.iter().any(|a| matches!(a, Action::Chain));
        let p = pending.get_or_insert_with(|| Pending {
            location: &d.location,
            links: Vec::new(),
        });
        p.links.push(link);
        if !chained {
            if let Some(p) = pending.take() {
                finish(p, &mut phases, &mut skip_names, &mut report);
            }
        }
    }
    if let Some(p) = pending.take() {
        report.unsupported.push(Unsupported {
            file: p.location.file.clone(),
            line: p.location.line,
            rule_id: 0,
            reason: "chain is not followed by a rule".into(),
        });
    }
    // skipAfter: continue after the first marker of that name that follows the rule; with no
    // such marker, at the end of the phase (as ModSecurity does).
    for ph in 0..2 {
        let len = phases[ph].len();
        for (i, name) in skip_names[ph].iter().enumerate() {
            if let Some(name) = name {
                let target = markers[ph]
                    .iter()
                    .find(|(n, pos)| n == name && *pos > i)
                    .map_or(len, |(_, pos)| *pos);
                phases[ph][i].skip_after = Some(target);
            }
        }
    }
    let prefilters = prefilter::build(&mut phases, chains.len());
    let snapshot = crate::eval::fix(&mut phases);
    (
        RuleSet {
            phases,
            prefilters,
            snapshot,
        },
        report,
    )
}

fn build_rule(
    p: &Pending,
    id: u32,
    rules_dir: &Path,
    chains: &mut HashMap<Vec<Transform>, u16>,
) -> Result<(Rule, Option<String>), String> {
    let mut rule = Rule {
        id,
        links: Vec::new(),
        msg: None,
        tags: Vec::new(),
        severity: None,
        disruptive: Disruptive::Pass,
        log: true,
        skip_after: None,
        skip: 0,
        gate: None,
        fixed: None,
    };
    let mut skip_after = None;
    for (n, (variables, operator, actions)) in p.links.iter().enumerate() {
        let mut link = Link {
            targets: Vec::new(),
            exclusions: Vec::new(),
            operator: match operator {
                Some(def) => Operator::compile(def, rules_dir).map_err(|e| e.to_string())?,
                None => Operator::unconditional(),
            },
            chain_id: 0,
            transforms: Vec::new(),
            triggers: None,
            multi_match: false,
            capture: false,
            prefilter: None,
            short: crate::bytes::ByteSet::EMPTY,
            needs: None,
            setvars: Vec::new(),
            ctls: Vec::new(),
        };
        if operator.is_none() {
            link.targets.push(Target::unconditional());
        }
        for v in variables.iter() {
            let t = Target::compile(v)?;
            if v.negated {
                link.exclusions.push(t);
            } else {
                link.targets.push(t);
            }
        }
        for a in actions.iter() {
            match a {
                Action::Transform(name) => match TransformName::parse(name) {
                    Some(TransformName::None) => link.transforms.clear(),
                    Some(TransformName::Apply(t)) => link.transforms.push(t),
                    None => return Err(format!("transformation t:{name} is not supported")),
                },
                Action::MultiMatch => link.multi_match = true,
                Action::Capture => link.capture = true,
                Action::SetVar(sv) => link.setvars.push(compile_setvar(sv)?),
                Action::Ctl(c) => {
                    if let Some(c) = compile_ctl(c)? {
                        link.ctls.push(c);
                    }
                }
                Action::Msg(m) if n == 0 => rule.msg = Some(Expandable::parse(m)),
                Action::Tag(t) if n == 0 => rule.tags.push(t.clone()),
                Action::Severity(s) if n == 0 => rule.severity = Some(*s),
                Action::Disruptive(d) if n == 0 => rule.disruptive = *d,
                Action::NoLog if n == 0 => rule.log = false,
                Action::Log if n == 0 => rule.log = true,
                Action::SkipAfter(m) if n == 0 => skip_after = Some(m.clone()),
                Action::Skip(k) if n == 0 => rule.skip = *k,
                Action::Disruptive(_) | Action::SkipAfter(_) | Action::Skip(_) => {
                    return Err("flow or disruptive action in a chained rule".into())
                }
                Action::Unknown { name, .. } => {
                    return Err(format!("action {name} is not supported"))
                }
                // Metadata, logging and persistence knobs that change no detection outcome.
                Action::Id(_)
                | Action::Phase(_)
                | Action::Chain
                | Action::Msg(_)
                | Action::Tag(_)
                | Action::Severity(_)
                | Action::Ver(_)
                | Action::Rev(_)
                | Action::LogData(_)
                | Action::Log
                | Action::NoLog
                | Action::AuditLog
                | Action::NoAuditLog
                | Action::Status(_)
                | Action::ExpireVar(_)
                | Action::InitCol(_)
                | Action::Meta { .. } => {}
            }
        }
        link.triggers = crate::transform::chain_triggers(&link.transforms);
        let next = u16::try_from(chains.len()).unwrap_or(u16::MAX);
        link.chain_id = *chains.entry(link.transforms.clone()).or_insert(next);
        rule.links.push(link);
    }
    Ok((rule, skip_after))
}

fn compile_setvar(sv: &SetVar) -> Result<CSetVar, String> {
    let collection = Collection::for_setvar(&sv.collection)
        .ok_or_else(|| format!("setvar on collection {} is not supported", sv.collection))?;
    Ok(CSetVar {
        collection,
        key: Expandable::parse(&sv.key.to_ascii_lowercase()),
        op: match &sv.op {
            SetVarOp::Set(v) => COp::Set(Expandable::parse(v)),
            SetVarOp::Add(v) => COp::Add(Expandable::parse(v)),
            SetVarOp::Sub(v) => COp::Sub(Expandable::parse(v)),
            SetVarOp::Delete => COp::Delete,
        },
    })
}

fn compile_targets(vars: &[Variable]) -> Result<Vec<Target>, String> {
    vars.iter().map(Target::compile).collect()
}

fn compile_ctl(c: &Ctl) -> Result<Option<CCtl>, String> {
    use crate::parse::EngineMode;
    Ok(Some(match c {
        Ctl::RuleRemoveById(ids) => CCtl::RemoveById(ids.clone()),
        Ctl::RuleRemoveByTag(t) => CCtl::RemoveByTag(t.clone()),
        Ctl::RuleRemoveTargetById(ids, v) => {
            CCtl::RemoveTargetById(ids.clone(), compile_targets(v)?)
        }
        Ctl::RuleRemoveTargetByTag(t, v) => CCtl::RemoveTargetByTag(t.clone(), compile_targets(v)?),
        Ctl::RuleEngine(EngineMode::Off) => CCtl::EngineOff,
        Ctl::RuleEngine(EngineMode::DetectionOnly) => CCtl::DetectionOnly,
        Ctl::RuleEngine(EngineMode::On) => return Ok(None),
        Ctl::RequestBodyProcessor(p) => CCtl::BodyProcessor(
            crate::request::BodyProcessor::from_name(p)
                .ok_or_else(|| format!("body processor {p} is not supported"))?,
        ),
        Ctl::ForceRequestBodyVariable(on) => CCtl::ForceBodyVariable(*on),
        Ctl::Other { .. } => return Ok(None),
    }))
}
