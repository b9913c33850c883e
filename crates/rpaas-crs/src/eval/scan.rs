//! Per-request scratch: transformed values (once per value and chain), their prefilter scans
//! (once per value and chain, over the literals of every rule on that chain) and the gates'
//! groups (once per phase).

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use super::data::{Data, ValueId};
use super::state::FxHasher;
use crate::compile::prefilter::{Prefilters, Scanner};
use crate::compile::{Link, Var};
use crate::transform::Transform;

/// A value under one transformation chain.
pub(crate) struct Entry {
    /// `None`: the chain left the value as it was.
    pub value: Option<Vec<u8>>,
    /// Slots whose literals occur in the value, sorted; `None` until scanned.
    hits: Option<Vec<u32>>,
}

impl Entry {
    fn new(chain: &[Transform], raw: &[u8]) -> Self {
        let value = match crate::transform::apply_chain(chain, raw) {
            Cow::Borrowed(_) => None,
            Cow::Owned(v) => Some(v),
        };
        Self { value, hits: None }
    }

    fn scanned(&mut self, raw: &[u8], scanner: &Scanner) -> &[u32] {
        let value = self.value.as_deref().unwrap_or(raw);
        self.hits.get_or_insert_with(|| {
            let mut hits = Vec::new();
            for m in scanner.ac.find_overlapping_iter(value) {
                hits.extend_from_slice(&scanner.slots[m.pattern().as_usize()]);
            }
            hits.sort_unstable();
            hits.dedup();
            hits
        })
    }
}

type Cache = HashMap<(ValueId, u16), Entry, BuildHasherDefault<FxHasher>>;

pub(crate) struct Scratch<'p> {
    /// `None` in reference mode: every operator runs.
    pf: Option<&'p Prefilters>,
    /// The request's preset TX variables when fixed outcomes may be taken.
    pub preset: Option<&'p [(String, Vec<u8>)]>,
    cache: Cache,
    /// Per group, `words` bits of hit slots; valid where `group_done`.
    group_bits: Vec<u64>,
    group_done: Vec<bool>,
}

impl<'p> Scratch<'p> {
    pub fn new(pf: Option<&'p Prefilters>, preset: Option<&'p [(String, Vec<u8>)]>) -> Self {
        Self {
            pf,
            preset,
            cache: Cache::default(),
            group_bits: Vec::new(),
            group_done: Vec::new(),
        }
    }

    /// Called when a phase starts: the request's values may have changed (the body).
    pub fn new_phase(&mut self) {
        self.group_done.clear();
        self.group_bits.clear();
    }

    /// False when the rule's gate proves that its first link matches nothing.
    pub fn gate_open(&mut self, gate: Option<(u32, u32)>, data: &Data<'_>) -> bool {
        let (Some(pf), Some((group, slot))) = (self.pf, gate) else {
            return true;
        };
        let (g, slot) = (group as usize, slot as usize);
        let words = pf.words();
        if self.group_done.is_empty() {
            self.group_done.resize(pf.groups.len(), false);
            self.group_bits.resize(pf.groups.len() * words, 0);
        }
        if !self.group_done[g] {
            self.group_done[g] = true;
            let bits = &mut self.group_bits[g * words..(g + 1) * words];
            fill_group(pf, g, data, &mut self.cache, bits);
        }
        self.group_bits[g * words + slot / 64] & (1 << (slot % 64)) != 0
    }

    /// The value the link's operator sees, or `None` when its prefilter proves that the
    /// operator does not match it.
    pub fn value<'v>(
        &'v mut self,
        link: &Link,
        gateable: bool,
        raw: &'v [u8],
        id: Option<ValueId>,
    ) -> Option<Cow<'v, [u8]>> {
        let scanner = match (self.pf, link.prefilter, id) {
            (Some(pf), Some(slot), Some(_)) if gateable => pf
                .scanners
                .get(usize::from(link.chain_id))
                .and_then(Option::as_ref)
                .map(|s| (s, slot)),
            _ => None,
        };
        let Some(id) = id else {
            return Some(crate::transform::apply_chain(&link.transforms, raw));
        };
        if link.transforms.is_empty() && scanner.is_none() {
            return Some(Cow::Borrowed(raw));
        }
        let entry = self
            .cache
            .entry((id, link.chain_id))
            .or_insert_with(|| Entry::new(&link.transforms, raw));
        if let Some((scanner, slot)) = scanner {
            if entry.scanned(raw, scanner).binary_search(&slot).is_err() {
                return None;
            }
        }
        Some(Cow::Borrowed(entry.value.as_deref().unwrap_or(raw)))
    }
}

/// ORs the hits of every value of the group's targets into `bits`.
fn fill_group(pf: &Prefilters, g: usize, data: &Data<'_>, cache: &mut Cache, bits: &mut [u64]) {
    let group = &pf.groups[g];
    let Some(scanner) = pf
        .scanners
        .get(usize::from(group.chain_id))
        .and_then(Option::as_ref)
    else {
        // No automaton (it failed to build): every gate of the group stays open.
        bits.fill(u64::MAX);
        return;
    };
    let mut add = |raw: &[u8], id: Option<ValueId>, bits: &mut [u64]| {
        let Some(id) = id else {
            bits.fill(u64::MAX);
            return;
        };
        let entry = cache
            .entry((id, group.chain_id))
            .or_insert_with(|| Entry::new(&group.transforms, raw));
        for &s in entry.scanned(raw, scanner) {
            bits[s as usize / 64] |= 1 << (s % 64);
        }
    };
    for t in &group.targets {
        match t.var {
            Var::Collection(c) => data.members(c, &mut |m| {
                if t.sel.matches(m.name) {
                    add(&m.value, m.id, bits);
                }
            }),
            Var::Scalar(s) => {
                if let Some(v) = data.scalar(s) {
                    add(&v, Data::scalar_id(s), bits);
                }
            }
        }
    }
}
