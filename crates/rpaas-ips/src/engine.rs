//! The matching engine: the rules of one phase compiled into a [`Plan`] — the transform
//! chains as a prefix tree, per group of targets one multi-pattern automaton over the
//! patterns of the rules on them, and each rule's own exact matcher — and the per-request
//! work that runs it.
//!
//! A request is judged in two steps. First every value is transformed by each chain its
//! target needs, each distinct string computed once (a transformation that changes nothing
//! copies nothing, and one already applied to the same input is reused); the distinct strings
//! are joined per group by a byte no UTF-8 text holds and the group's automaton scans them
//! once. Most requests match nothing, and those scans say so. Then only the rules whose
//! pattern hit somewhere, and the few that must look at every value (negated patterns,
//! length and equality checks, single byte classes, patterns that match the separator or
//! anchor to the whole text), are checked exactly, value by value, with their own chain and
//! matcher — which also says which argument matched.
//!
//! The scan is a superset filter: a rule that matches a value with its chain matches that
//! string somewhere in the joined text (every pattern there is compiled in multi-line mode
//! with the separator as line terminator, so `^`/`$` hold at value edges, and the separator
//! is a non-word byte like a text's edge).

use std::borrow::Cow;

use regex_automata::meta::Regex as MetaRegex;
use regex_automata::{Input, MatchKind, PatternSet};
use regex_syntax::hir::{Class, HirKind, Look};

use crate::rules::{compile_regex, Op, Rule, RuleError, Target};
use crate::scan::{self, Scanner, STREAMS};
use crate::transform::{Features, Transform};

mod work;
use work::{relifetime, Scratch, Value, Work, SCRATCH};

/// The rules of one phase, compiled.
pub(crate) struct Plan {
    /// The transform prefix tree: node 0 is the value as received, every other node is
    /// `(parent, transform)`.
    nodes: Vec<(usize, Transform)>,
    targets: Vec<TargetPlan>,
    /// Per tree node: what the transformations from the root to it act on.
    chain_triggers: Vec<Features>,
    /// The order values are collected in: `headers` first.
    order: Vec<usize>,
    rules: Vec<RulePlan>,
    /// Per scan group: one automaton for the patterns of the rules on its targets.
    groups: Vec<Option<ScanGroup>>,
    /// Indices into `rules` checked on every value.
    every_value: Vec<usize>,
}

/// The patterns that can be judged from the joined text of a group of targets.
struct ScanGroup {
    /// Whether any pattern matches.
    any: Scanner,
    /// Which patterns match (run only when one does).
    union: MetaRegex,
    /// Pattern id → index into `Plan::rules`.
    rules: Vec<usize>,
}

/// Targets are scanned in two groups. Header names and values (of a request or a response)
/// are many and long, and the few patterns on them have literals a fast prefilter finds:
/// they are scanned alone, at prefilter speed. Everything else (method, path, parameters,
/// cookies, specific headers, bodies) is scanned by one automaton over all the other
/// patterns: a lazy DFA reads each byte once whatever the number of patterns, and one scan
/// per request costs less than a scan per kind of target.
const GROUPS: usize = 2;
const _: () = assert!(GROUPS <= 8, "Work::scanned has a bit per group");

fn group_of(t: &Target) -> usize {
    match t {
        Target::Headers | Target::HeaderNames | Target::ResponseHeaders => 1,
        Target::Method
        | Target::Path
        | Target::RawPath
        | Target::Query
        | Target::Args
        | Target::ArgNames
        | Target::Cookies
        | Target::CookieNames
        | Target::UrlArgs
        | Target::UrlArgNames
        | Target::UrlPaths
        | Target::Header(_)
        | Target::Body
        | Target::ResponseBody => 0,
    }
}

struct TargetPlan {
    target: Target,
    group: usize,
    /// The chain ends (tree nodes) the union scan of an ASCII value needs.
    scan: Vec<usize>,
    /// The rules' own chain ends: what is scanned for other values.
    exact: Vec<usize>,
    /// What the `scan` chains act on: an ASCII value holding none of it is scanned as is.
    triggers: Features,
    /// How much of its values' features anything reads.
    need: Need,
}

/// How much of a value's [`Features`] the rules on its target read.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) enum Need {
    /// Nothing: only lengths and plain comparisons of the value as received.
    Nothing,
    /// The one-byte features (no chain or byte class asks about the two-byte ones).
    Bytes,
    /// All of them.
    All,
}

struct RulePlan {
    /// Index into the rule set's rules.
    rule: usize,
    /// The rule's chain.
    node: usize,
    /// Indices into `Plan::targets`.
    targets: Vec<usize>,
    matcher: Matcher,
}

enum Matcher {
    Regex(regex::bytes::Regex),
    /// A pattern that is one byte class: checked on every value, skipped at once where the
    /// value's features rule it out.
    Bytes(Box<[bool; 256]>, Option<Features>),
    Contains(Vec<String>),
    /// prefix, suffix, equals, length_gt: read from the rule.
    Simple,
}

fn matches_simple(op: &Op, v: &str) -> bool {
    match op {
        Op::Prefix(p) => v.starts_with(p.as_str()),
        Op::Suffix(p) => v.ends_with(p.as_str()),
        Op::Equals(p) => v == p,
        Op::LengthGt(n) => v.len() > *n,
        _ => false,
    }
}

/// What joins values for the union scan: a byte no value holds (values are UTF-8), and the
/// union automaton's line terminator, so `^`/`$` hold at value edges (and `.` stops there).
const SEP: u8 = 0xff;

/// Whether a pattern can be judged on the joined text: it must not match the separator or
/// the empty string (every request would be a candidate) nor anchor to the very start or end.
fn joinable(pattern: &str, re: &regex::bytes::Regex) -> bool {
    if re.is_match(&[SEP]) || re.is_match(b"") {
        return false;
    }
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .multi_line(true)
        .line_terminator(SEP)
        .build()
        .parse(pattern);
    match hir {
        Ok(h) => {
            let looks = h.properties().look_set();
            !looks.contains(Look::Start) && !looks.contains(Look::End)
        }
        Err(_) => false,
    }
}

/// The bytes a pattern matches when it is a single byte class (`[\r\n]`, `[\x00-\x1f]`).
fn byte_class(pattern: &str) -> Option<Box<[bool; 256]>> {
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()?;
    let mut set = Box::new([false; 256]);
    match hir.kind() {
        HirKind::Class(Class::Bytes(c)) => {
            for r in c.ranges() {
                for b in r.start()..=r.end() {
                    set[b as usize] = true;
                }
            }
        }
        HirKind::Literal(l) if l.0.len() == 1 => set[l.0[0] as usize] = true,
        _ => return None,
    }
    Some(set)
}

/// Whether a pattern switches case-insensitivity off (`(?-i)`, `(?s-i:...)`): then it cannot
/// be folded into a case-insensitive scan.
fn turns_off_case_folding(p: &str) -> bool {
    p.match_indices("(?").any(|(i, _)| {
        let flags: String = p[i + 2..]
            .chars()
            .take_while(|c| *c != ':' && *c != ')')
            .collect();
        flags
            .split_once('-')
            .is_some_and(|(_, off)| off.contains('i'))
    })
}

fn compile_error(rule: Option<u32>, reason: String) -> RuleError {
    RuleError {
        file: "-".into(),
        rule,
        reason,
    }
}

impl Plan {
    /// Compiles `rules[i]` for every `i` in `which`.
    pub(crate) fn build(rules: &[Rule], which: &[usize]) -> Result<Self, RuleError> {
        let mut plan = Plan {
            nodes: vec![(0, Transform::Lowercase)],
            targets: Vec::new(),
            rules: Vec::new(),
            groups: Vec::new(),
            chain_triggers: Vec::new(),
            order: Vec::new(),
            every_value: Vec::new(),
        };
        // Per group: (pattern, rule plan index).
        let mut patterns: Vec<Vec<(String, usize)>> = vec![Vec::new(); GROUPS];
        for &i in which {
            let r = &rules[i];
            let node = plan.chain_node(&r.transforms);
            let lowercase = r.transforms.contains(&Transform::Lowercase);
            let foldable = match &r.op {
                Op::Regex(p) => lowercase && !turns_off_case_folding(p),
                _ => lowercase,
            };
            // What the union scans for an ASCII value: the chain without `lowercase`, the
            // pattern being case-insensitive there instead (the same match on ASCII text, and
            // no lowercase copy of every value).
            let scan = if foldable {
                let folded: Vec<Transform> = r
                    .transforms
                    .iter()
                    .copied()
                    .filter(|t| *t != Transform::Lowercase)
                    .collect();
                plan.chain_node(&folded)
            } else {
                node
            };
            let fold = |p: String| if foldable { format!("(?i:{p})") } else { p };
            let ri = plan.rules.len();
            let (matcher, union) = match &r.op {
                Op::Regex(p) => match byte_class(p) {
                    Some(set) if !r.negate => {
                        let guard = Features::covering((0..=255u8).filter(|b| set[*b as usize]));
                        (Matcher::Bytes(set, guard), None)
                    }
                    _ => {
                        let re = compile_regex(p).map_err(|e| compile_error(Some(r.id), e))?;
                        let union = !r.negate && joinable(p, &re);
                        (Matcher::Regex(re), union.then(|| vec![fold(p.clone())]))
                    }
                },
                Op::Contains(list) => (
                    Matcher::Contains(list.clone()),
                    (!r.negate)
                        .then(|| list.iter().map(|s| fold(regex_syntax::escape(s))).collect()),
                ),
                _ => (Matcher::Simple, None),
            };
            let mut targets = Vec::new();
            for t in &r.targets {
                let ti = match plan.targets.iter().position(|x| &x.target == t) {
                    Some(ti) => ti,
                    None => {
                        plan.targets.push(TargetPlan {
                            target: t.clone(),
                            group: group_of(t),
                            scan: Vec::new(),
                            exact: Vec::new(),
                            triggers: Features::NONE,
                            need: Need::Nothing,
                        });
                        plan.targets.len() - 1
                    }
                };
                targets.push(ti);
                // Only the union's patterns read the scan: what other rules look at is
                // checked value by value.
                if union.is_none() {
                    continue;
                }
                let tp = &mut plan.targets[ti];
                for t in r.transforms.iter().filter(|t| **t != Transform::Lowercase) {
                    tp.triggers = tp.triggers.union(t.triggers());
                }
                if !tp.scan.contains(&scan) {
                    tp.scan.push(scan);
                }
                if !tp.exact.contains(&node) {
                    tp.exact.push(node);
                }
            }
            match union {
                Some(pats) => {
                    let mut groups: Vec<usize> = r.targets.iter().map(group_of).collect();
                    groups.sort_unstable();
                    groups.dedup();
                    for g in groups {
                        patterns[g].extend(pats.iter().map(|p| (p.clone(), ri)));
                    }
                }
                None => plan.every_value.push(ri),
            }
            plan.rules.push(RulePlan {
                rule: i,
                node,
                targets,
                matcher,
            });
        }
        plan.chain_triggers = vec![Features::NONE];
        for n in 1..plan.nodes.len() {
            let (parent, t) = plan.nodes[n];
            let f = plan.chain_triggers[parent].union(t.triggers());
            plan.chain_triggers.push(f);
        }
        // What each target's values must have computed: all features where a chain on the
        // way or a byte class reads a two-byte one, the one-byte ones where anything reads
        // features at all.
        for rp in &plan.rules {
            let mut reads = plan.chain_triggers[rp.node];
            if let Matcher::Bytes(_, Some(guard)) = &rp.matcher {
                reads = reads.union(*guard);
            }
            let need = if reads.has_pairs() {
                Need::All
            } else if rp.node != 0 || !matches!(rp.matcher, Matcher::Simple) {
                Need::Bytes
            } else {
                Need::Nothing
            };
            for &ti in &rp.targets {
                let tp = &mut plan.targets[ti];
                tp.need = tp.need.max(need);
            }
        }
        for tp in &mut plan.targets {
            if !tp.scan.is_empty() {
                let scans = tp.scan.iter().chain(&tp.exact);
                let pairs = scans.fold(Features::NONE, |f, &n| f.union(plan.chain_triggers[n]));
                tp.need = tp.need.max(if pairs.has_pairs() {
                    Need::All
                } else {
                    Need::Bytes
                });
            }
        }
        plan.order = (0..plan.targets.len()).collect();
        plan.order
            .sort_by_key(|&ti| plan.targets[ti].target != Target::Headers);
        for pats in patterns {
            plan.groups.push(if pats.is_empty() {
                None
            } else {
                let (pats, rules): (Vec<String>, Vec<usize>) = pats.into_iter().unzip();
                Some(ScanGroup {
                    any: Scanner::new(&pats, SEP, build_union(&pats, MatchKind::LeftmostFirst)?)
                        .map_err(|e| {
                            compile_error(None, format!("rule set cannot be compiled: {e}"))
                        })?,
                    union: build_union(&pats, MatchKind::All)?,
                    rules,
                })
            });
        }
        Ok(plan)
    }

    fn chain_node(&mut self, chain: &[Transform]) -> usize {
        let mut node = 0;
        for t in chain {
            node = match self.nodes[1..].iter().position(|n| *n == (node, *t)) {
                Some(n) => n + 1,
                None => {
                    self.nodes.push((node, *t));
                    self.nodes.len() - 1
                }
            };
        }
        node
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Runs the plan. `values` lists a target's `(name, value)` pairs; `wanted` says whether a
    /// rule applies at all (class, method, disabled); `keep` whether a match on a given target,
    /// name and raw value counts (scoped exclusions) — a rule excluded for one argument still
    /// matches in another.
    pub(crate) fn run<'a>(
        &self,
        rules: &[Rule],
        values: impl Fn(&Target, &mut dyn FnMut(Option<&'a str>, &'a str)),
        wanted: impl Fn(usize) -> bool,
        keep: impl Fn(usize, &Target, Option<&str>, &str) -> bool,
        matches: &mut Vec<crate::Match>,
    ) {
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut s) => self.run_in(&mut s, rules, values, wanted, keep, matches),
            // Only if a callback inspected again on this thread.
            Err(_) => self.run_in(
                &mut Scratch::default(),
                rules,
                values,
                wanted,
                keep,
                matches,
            ),
        })
    }

    fn run_in<'a>(
        &self,
        scratch: &mut Scratch,
        rules: &[Rule],
        values: impl Fn(&Target, &mut dyn FnMut(Option<&'a str>, &'a str)),
        wanted: impl Fn(usize) -> bool,
        keep: impl Fn(usize, &Target, Option<&str>, &str) -> bool,
        matches: &mut Vec<crate::Match>,
    ) {
        let mut w = Work::new(scratch);
        // Each target's values are a contiguous run of `w.values`.
        let mut runs = std::mem::take(&mut w.s.runs);
        runs.clear();
        runs.resize(self.targets.len(), 0..0);
        w.s.summary.clear();
        w.s.summary.resize(self.targets.len(), Summary::default());
        // Per group, its streams (see `scan`); values for interleaved groups are dealt
        // below, longest first, each to the shortest stream.
        let mut joined = std::mem::take(&mut w.s.joined);
        joined.resize_with(GROUPS, Vec::new);
        for streams in &mut joined {
            streams.resize_with(STREAMS, Vec::new);
            streams.iter_mut().for_each(Vec::clear);
        }
        let mut deal = std::mem::take(&mut w.s.deal);
        deal.clear();
        let mut pick = std::mem::take(&mut w.s.pick);
        // All headers first: a specific header's values are the same text, found again by
        // address, and share their transformations. `picked` holds the headers' memos.
        let mut picked = std::mem::take(&mut w.s.picked);
        picked.clear();
        for &ti in &self.order {
            let tp = &self.targets[ti];
            let start = w.values.len();
            let shared: &[usize] = if matches!(tp.target, Target::Header(_)) {
                &picked
            } else {
                &[]
            };
            let scanned = !tp.scan.is_empty() && self.groups[tp.group].is_some();
            let mut sum = Summary::default();
            values(&tp.target, &mut |name, v| {
                let memo = w.memo(v, shared, tp.need);
                w.values.push(Value { name, memo });
                sum.features = sum.features.union(w.s.info[w.s.memos[memo].raw].features);
                sum.max_len = sum.max_len.max(v.len());
                if scanned {
                    self.prepare(&mut w, tp, memo, &mut pick, &mut joined, &mut deal);
                }
            });
            runs[ti] = start..w.values.len();
            w.s.summary[ti] = sum;
            if tp.target == Target::Headers {
                picked.extend(w.values[runs[ti].clone()].iter().map(|x| x.memo));
            }
        }
        let summary = std::mem::take(&mut w.s.summary);
        let mut candidates = std::mem::take(&mut w.s.candidates);
        candidates.clear();
        candidates.extend_from_slice(&self.every_value);
        deal.sort_unstable();
        for &d in deal.iter().rev() {
            let (g, s) = ((d >> 32 & 0xff) as usize, (d & 0xffff_ffff) as usize);
            if let Some(buf) = joined[g].iter_mut().min_by_key(|b| b.len()) {
                buf.extend_from_slice(w.strings[s].as_bytes());
                buf.push(SEP);
            }
        }
        for (g, streams) in self.groups.iter().zip(&joined) {
            let Some(g) = g else { continue };
            if streams.iter().all(Vec::is_empty) || !g.any.is_match(streams) {
                continue;
            }
            let mut found = PatternSet::new(g.union.pattern_len());
            for buf in streams.iter().filter(|b| !b.is_empty()) {
                g.union
                    .which_overlapping_matches(&Input::new(buf), &mut found);
            }
            for p in found.iter() {
                let ri = g.rules[p.as_usize()];
                if !candidates.contains(&ri) {
                    candidates.push(ri);
                }
            }
        }
        for &ri in &candidates {
            let rp = &self.rules[ri];
            let rule = &rules[rp.rule];
            if !wanted(rp.rule) {
                continue;
            }
            let pairs = rp
                .targets
                .iter()
                .filter(|&&ti| !rp.rules_out(self, rule, &summary[ti]))
                .flat_map(|&ti| runs[ti].clone().map(move |vi| (ti, vi)));
            for (ti, vi) in pairs {
                let (memo, name) = (w.values[vi].memo, w.values[vi].name);
                let s = w.out(self, memo, rp.node);
                if let Matcher::Bytes(_, Some(guard)) = &rp.matcher {
                    if !w.s.info[s].features.meets(*guard) {
                        continue;
                    }
                }
                let target = &self.targets[ti].target;
                if rp.matches(rule, &w.strings[s])
                    && keep(rp.rule, target, name, &w.strings[w.s.memos[memo].raw])
                {
                    matches.push(crate::matched(rule, target, name));
                    break;
                }
            }
        }
        w.s.runs = runs;
        w.s.candidates = candidates;
        w.s.summary = summary;
        w.s.joined = joined;
        w.s.deal = deal;
        w.s.picked = picked;
        w.s.pick = pick;
        w.s.strings = relifetime(w.strings);
        w.s.values = relifetime(w.values);
    }

    /// A value's strings for its group's scan: appended to the group's text, or listed to
    /// be dealt into its streams.
    fn prepare(
        &self,
        w: &mut Work<'_, '_>,
        tp: &TargetPlan,
        memo: usize,
        pick: &mut Vec<usize>,
        joined: &mut [Vec<Vec<u8>>],
        deal: &mut Vec<u64>,
    ) {
        // Case-insensitive patterns over the chains without `lowercase` see what the
        // rules see only in ASCII text; anything else is scanned as the rules see it.
        pick.clear();
        let raw = w.s.info[w.s.memos[memo].raw].features;
        let mut ascii = raw.is_ascii();
        if ascii && !raw.meets(tp.triggers) {
            pick.push(w.s.memos[memo].raw);
        } else if ascii {
            for &node in &tp.scan {
                let s = w.out(self, memo, node);
                ascii &= w.s.info[s].features.is_ascii();
                pick.push(s);
            }
        }
        if !ascii {
            pick.clear();
            for &node in &tp.exact {
                pick.push(w.out(self, memo, node));
            }
        }
        let interleaves = self.groups[tp.group]
            .as_ref()
            .is_some_and(|g| g.any.interleaves());
        let bit = 1u8 << tp.group;
        for &s in pick.iter() {
            if w.s.info[s].scanned & bit != 0 || w.strings[s].is_empty() {
                continue;
            }
            w.s.info[s].scanned |= bit;
            if interleaves {
                // Sorted as one number: length, then group and string.
                deal.push(
                    (w.strings[s].len().min(0xff_ffff) as u64) << 40
                        | (tp.group as u64) << 32
                        | s as u64,
                );
            } else {
                let buf = &mut joined[tp.group][0];
                buf.extend_from_slice(w.strings[s].as_bytes());
                buf.push(SEP);
            }
        }
    }

    /// Whether `rules[rule]` matches a value (transformed here by its chain).
    pub(crate) fn rule_matches(&self, rules: &[Rule], rule: usize, raw: &str) -> bool {
        let r = &rules[rule];
        let v = r
            .transforms
            .iter()
            .fold(Cow::Borrowed(raw), |v, t| t.apply(v));
        self.rules
            .iter()
            .find(|rp| rp.rule == rule)
            .is_some_and(|rp| rp.matches(r, &v))
    }
}

/// What a target's raw values hold together, so a rule that looks at every value can
/// often be ruled out for the whole target at once.
#[derive(Clone, Copy)]
struct Summary {
    features: Features,
    max_len: usize,
}

impl Default for Summary {
    fn default() -> Self {
        Self {
            features: Features::NONE,
            max_len: 0,
        }
    }
}

impl RulePlan {
    /// True when no value of a target with summary `sum` can match: a byte class none of
    /// the values (nor their transformations) can hold, or a length or text no value reaches.
    fn rules_out(&self, plan: &Plan, rule: &Rule, sum: &Summary) -> bool {
        match &self.matcher {
            Matcher::Bytes(_, Some(guard)) => !sum
                .features
                .meets(plan.chain_triggers[self.node].union(*guard)),
            Matcher::Simple if !rule.negate && self.node == 0 => match &rule.op {
                Op::LengthGt(n) => sum.max_len <= *n,
                Op::Equals(p) | Op::Prefix(p) | Op::Suffix(p) => sum.max_len < p.len(),
                _ => false,
            },
            _ => false,
        }
    }

    fn matches(&self, rule: &Rule, v: &str) -> bool {
        let m = match &self.matcher {
            Matcher::Regex(re) => re.is_match(v.as_bytes()),
            Matcher::Bytes(set, _) => v.bytes().any(|b| set[b as usize]),
            Matcher::Contains(list) => list.iter().any(|n| v.contains(n.as_str())),
            Matcher::Simple => matches_simple(&rule.op, v),
        };
        m != rule.negate
    }
}

/// One automaton for many patterns, in multi-line mode over values joined by [`SEP`]. The
/// leftmost-first one ("is there a match") keeps literal prefilters, which let the headers'
/// scan skip ahead; the one that says which patterns match reads every byte anyway. ASCII
/// classes and boundaries keep the DFA small and on its fast path.
fn build_union(pats: &[String], kind: MatchKind) -> Result<MetaRegex, RuleError> {
    MetaRegex::builder()
        .syntax(scan::union_syntax(SEP))
        .configure(
            MetaRegex::config()
                .match_kind(kind)
                .line_terminator(SEP)
                .auto_prefilter(kind == MatchKind::LeftmostFirst)
                .nfa_size_limit(Some(1 << 27))
                .hybrid_cache_capacity(1 << 23),
        )
        .build_many(pats)
        .map_err(|e| compile_error(None, format!("rule set cannot be compiled: {e}")))
}
