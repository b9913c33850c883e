//! The prefilters. Each link whose operator has required literals
//! ([`Operator::required_literals`]) gets a slot, and one Aho-Corasick automaton holds the
//! literals of all slots, each pattern standing for the slots that require it: the evaluator
//! scans each distinct transformed text of a value once, whatever the number of chains and
//! rules that read it, and runs an operator only where its slot was hit. A link whose operator
//! needs one of a set of bytes ([`Operator::required_bytes`]) runs only on values that hold one.
//!
//! A rule whose first link is prefiltered and whose targets are all request values (fixed
//! once the phase starts) also gets a [`Gate`]: the union of the hits (and of the bytes) over
//! its targets, computed once per request and phase for all rules with the same targets and
//! chain.
//!
//! [`Operator::required_literals`]: crate::operator::Operator::required_literals
//! [`Operator::required_bytes`]: crate::operator::Operator::required_bytes

use std::collections::HashMap;

use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, MatchKind};

use super::{Collection, Rule, Scalar, Target, Var};
use crate::bytes::ByteSet;
use crate::transform::Transform;

/// The automaton over every slot's literals: pattern `i` stands for the slots
/// `slots[starts[i]..starts[i + 1]]`.
#[derive(Debug)]
pub(crate) struct Scanner {
    dfa: DFA,
    start: StateID,
    starts: Vec<u32>,
    slots: Vec<u32>,
}

impl Scanner {
    /// Sets the bit of every slot whose literal occurs in `text`: one DFA transition per
    /// byte; at a match state, every pattern that ends there (the DFA's match states hold
    /// their suffixes' patterns too, so this is the overlapping search without its per-match
    /// iterator).
    pub fn scan(&self, text: &[u8], bits: &mut [u64]) {
        let dfa = &self.dfa;
        let mut sid = self.start;
        for &b in text {
            sid = dfa.next_state(Anchored::No, sid, b);
            if dfa.is_special(sid) && dfa.is_match(sid) {
                for i in 0..dfa.match_len(sid) {
                    let p = dfa.match_pattern(sid, i).as_usize();
                    let (a, z) = (self.starts[p] as usize, self.starts[p + 1] as usize);
                    for &s in &self.slots[a..z] {
                        bits[s as usize / 64] |= 1 << (s % 64);
                    }
                }
            }
        }
    }
}

/// Targets and chain shared by gated rules.
#[derive(Debug)]
pub(crate) struct Group {
    pub targets: Vec<Target>,
    pub chain_id: u16,
    pub transforms: Vec<Transform>,
    pub triggers: Option<ByteSet>,
}

/// A rule's gate: it cannot match unless, in its group's values, the slot was hit or one of
/// the `short` bytes occurs (when it has literals), and one of the `needs` bytes occurs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gate {
    pub group: u32,
    pub slot: Option<u32>,
    pub short: ByteSet,
    pub needs: Option<ByteSet>,
}

#[derive(Debug, Default)]
pub(crate) struct Prefilters {
    /// `None` when there are no literals or the automaton failed to build: every slot counts
    /// as hit.
    pub scanner: Option<Scanner>,
    pub slot_count: usize,
    pub groups: Vec<Group>,
    /// Rules (of both phases) with a gate, for the load report.
    pub gated_rules: usize,
}

impl Prefilters {
    pub fn words(&self) -> usize {
        self.slot_count.div_ceil(64)
    }
}

/// True for values that do not change while a phase runs and have a transformation-cache id:
/// request collections and scalars (not TX, MATCHED_VARS, counts, or values the body processor
/// or the rules change).
pub(crate) fn is_request_value(t: &Target) -> bool {
    use Collection as C;
    use Scalar as S;
    if t.count {
        return false;
    }
    match t.var {
        Var::Collection(c) => !matches!(
            c,
            C::Tx | C::Ip | C::Global | C::MatchedVars | C::MatchedVarsNames
        ),
        Var::Scalar(s) => matches!(
            s,
            S::RequestFilename
                | S::RequestBasename
                | S::RequestUri
                | S::RequestUriRaw
                | S::RequestLine
                | S::RequestMethod
                | S::RequestProtocol
                | S::QueryString
                | S::RequestBody
                | S::RequestBodyLength
                | S::Xml
                | S::RemoteAddr
                | S::UniqueId
        ),
    }
}

/// Assigns slots, byte sets and gates in `phases` and builds the scanner.
pub(crate) fn build(phases: &mut [Vec<Rule>; 2], chain_count: usize) -> Prefilters {
    let mut lits: Vec<(Vec<u8>, u32)> = Vec::new();
    let mut groups: Vec<Group> = Vec::new();
    let mut group_ids: HashMap<String, u32> = HashMap::new();
    let mut slot_count = 0u32;
    let mut gated_rules = 0;
    for rule in phases.iter_mut().flatten() {
        for (n, link) in rule.links.iter_mut().enumerate() {
            if link.multi_match || usize::from(link.chain_id) >= chain_count {
                continue;
            }
            if let Some(required) = link.operator.required_literals() {
                // One-byte literals are tested on the value's bytes: scanning for them would
                // report a match at every occurrence.
                let (short, long): (Vec<_>, Vec<_>) =
                    required.into_iter().partition(|l| l.len() == 1);
                for l in short {
                    link.short.insert(l[0].to_ascii_lowercase());
                    link.short.insert(l[0].to_ascii_uppercase());
                }
                if !long.is_empty() {
                    let slot = slot_count;
                    slot_count += 1;
                    link.prefilter = Some(slot);
                    lits.extend(long.into_iter().map(|l| (l, slot)));
                }
            }
            link.needs = link.operator.required_bytes();
            if link.prefilter.is_none() && link.short.is_empty() && link.needs.is_none() {
                continue;
            }
            if n == 0 && !link.targets.is_empty() && link.targets.iter().all(is_request_value) {
                let key = format!("{:?}/{}", link.targets, link.chain_id);
                let next = u32::try_from(groups.len()).unwrap_or(u32::MAX);
                let group = *group_ids.entry(key).or_insert_with(|| {
                    groups.push(Group {
                        targets: link.targets.clone(),
                        chain_id: link.chain_id,
                        transforms: link.transforms.clone(),
                        triggers: link.triggers,
                    });
                    next
                });
                rule.gate = Some(Gate {
                    group,
                    slot: link.prefilter,
                    short: link.short,
                    needs: link.needs,
                });
                gated_rules += 1;
            }
        }
    }
    Prefilters {
        scanner: scanner(lits),
        slot_count: slot_count as usize,
        groups,
        gated_rules,
    }
}

fn scanner(mut lits: Vec<(Vec<u8>, u32)>) -> Option<Scanner> {
    if lits.is_empty() {
        return None;
    }
    lits.sort_unstable();
    lits.dedup();
    let mut patterns: Vec<Vec<u8>> = Vec::new();
    let mut starts: Vec<u32> = Vec::new();
    let mut slots: Vec<u32> = Vec::new();
    for (lit, slot) in lits {
        if patterns.last() != Some(&lit) {
            patterns.push(lit);
            starts.push(u32::try_from(slots.len()).ok()?);
        }
        slots.push(slot);
    }
    starts.push(u32::try_from(slots.len()).ok()?);
    // Standard semantics: every literal that occurs is reported. A DFA: every distinct text
    // is scanned once, and the set is small enough to tabulate. An unanchored DFA has no dead
    // state to stop at, and no prefilter is consulted.
    let dfa = DFA::builder()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        .prefilter(false)
        .start_kind(aho_corasick::StartKind::Unanchored)
        .build(&patterns)
        .ok()?;
    let start = dfa.start_state(Anchored::No).ok()?;
    Some(Scanner {
        dfa,
        start,
        starts,
        slots,
    })
}
