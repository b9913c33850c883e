//! The literal prefilters: each link whose operator has required literals
//! ([`Operator::required_literals`]) gets a slot, and every transformation chain one
//! Aho-Corasick automaton over the literals of all the links that use it. The evaluator scans
//! each transformed value once per chain and runs an operator only where its slot was hit.
//!
//! A rule whose first link is prefiltered and whose targets are all request values (fixed
//! once the phase starts) also gets a gate: the union of the hits over its targets, computed
//! once per request and phase for all rules with the same targets and chain.
//!
//! [`Operator::required_literals`]: crate::operator::Operator::required_literals

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use super::{Collection, Rule, Scalar, Target, Var};
use crate::transform::Transform;

/// One chain's automaton: pattern `i` stands for the links in `slots[i]`.
#[derive(Debug)]
pub(crate) struct Scanner {
    pub ac: AhoCorasick,
    pub slots: Vec<Vec<u32>>,
}

/// Targets and chain shared by gated rules.
#[derive(Debug)]
pub(crate) struct Group {
    pub targets: Vec<Target>,
    pub chain_id: u16,
    pub transforms: Vec<Transform>,
}

#[derive(Debug, Default)]
pub(crate) struct Prefilters {
    /// By chain id; `None` for chains without prefiltered links.
    pub scanners: Vec<Option<Scanner>>,
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

/// Assigns slots and gates in `phases` and builds the scanners.
pub(crate) fn build(phases: &mut [Vec<Rule>; 2], chain_count: usize) -> Prefilters {
    let mut per_chain: Vec<Vec<(Vec<u8>, u32)>> = (0..chain_count).map(|_| Vec::new()).collect();
    let mut groups: Vec<Group> = Vec::new();
    let mut group_ids: HashMap<String, u32> = HashMap::new();
    let mut slot_count = 0u32;
    let mut gated_rules = 0;
    for rule in phases.iter_mut().flatten() {
        for (n, link) in rule.links.iter_mut().enumerate() {
            if link.multi_match || usize::from(link.chain_id) >= chain_count {
                continue;
            }
            let Some(lits) = link.operator.required_literals() else {
                continue;
            };
            let slot = slot_count;
            slot_count += 1;
            link.prefilter = Some(slot);
            per_chain[usize::from(link.chain_id)].extend(lits.into_iter().map(|l| (l, slot)));
            if n == 0 && !link.targets.is_empty() && link.targets.iter().all(is_request_value) {
                let key = format!("{:?}/{}", link.targets, link.chain_id);
                let next = u32::try_from(groups.len()).unwrap_or(u32::MAX);
                let g = *group_ids.entry(key).or_insert_with(|| {
                    groups.push(Group {
                        targets: link.targets.clone(),
                        chain_id: link.chain_id,
                        transforms: link.transforms.clone(),
                    });
                    next
                });
                rule.gate = Some((g, slot));
                gated_rules += 1;
            }
        }
    }
    let scanners = per_chain.into_iter().map(scanner).collect();
    Prefilters {
        scanners,
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
    let mut patterns: Vec<Vec<u8>> = Vec::new();
    let mut slots: Vec<Vec<u32>> = Vec::new();
    for (lit, slot) in lits {
        if patterns.last() == Some(&lit) {
            if let Some(s) = slots.last_mut() {
                s.push(slot);
            }
        } else {
            patterns.push(lit);
            slots.push(vec![slot]);
        }
    }
    for s in &mut slots {
        s.dedup();
    }
    // Standard semantics: overlapping search reports every literal that occurs. A DFA: every
    // request value is scanned once per chain, and the sets are small enough to tabulate.
    let ac = AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        .kind(Some(aho_corasick::AhoCorasickKind::DFA))
        .build(&patterns)
        .ok()?;
    Some(Scanner { ac, slots })
}
