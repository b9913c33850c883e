//! Per-request scratch: the distinct transformed texts of each request value (one per value
//! and chain, shared between chains that give the same text), their prefilter scans (once per
//! text up to ASCII case, over the literals of every rule) and the gates' groups (once per
//! phase).

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use super::data::{Data, ValueId};
use super::state::FxHasher;
use crate::bytes::ByteSet;
use crate::compile::prefilter::{Gate, Prefilters};
use crate::compile::{Link, Var};
use crate::transform::Transform;

const NONE: u32 = u32::MAX;

/// One distinct text of a request value: the raw value or a chain's output.
struct Text {
    /// `None`: the raw value.
    owned: Option<Vec<u8>>,
    bytes: ByteSet,
    /// The text whose scan this one shares (the same up to ASCII case), or itself.
    scan: u32,
    /// Offset of the scan's slot bits in `Scratch::hits`; `NONE` until scanned.
    hits: u32,
    /// The value's next text; `NONE` at the end.
    next: u32,
}

type Fx<K> = HashMap<K, u32, BuildHasherDefault<FxHasher>>;

pub(crate) struct Scratch<'p> {
    /// `None` in reference mode: every operator runs.
    pf: Option<&'p Prefilters>,
    /// The request's preset TX variables when fixed outcomes may be taken.
    pub preset: Option<&'p [(String, Vec<u8>)]>,
    b: Buffers,
}

/// What a [`Scratch`] allocates, kept per thread between requests (emptied, capacity kept) so
/// that an evaluation does not allocate, zero and free its tables each time.
#[derive(Default)]
struct Buffers {
    /// Value -> its raw text.
    raw: Fx<ValueId>,
    /// (value, chain) -> its text.
    chained: Fx<(ValueId, u16)>,
    texts: Vec<Text>,
    hits: Vec<u64>,
    /// Per group, the offset of its `words` bits of hit slots in `group_bits` and of its
    /// texts' bytes in `group_bytes`; `NONE` until the group is filled in this phase.
    group_at: Vec<u32>,
    group_bits: Vec<u64>,
    group_bytes: Vec<ByteSet>,
}

/// Buffers above these sizes (a large request's) are dropped rather than kept for the next.
const KEEP_TEXTS: usize = 1024;
const KEEP_HITS: usize = 4 * 1024;

thread_local! {
    static SPARE: std::cell::Cell<Option<Buffers>> = const { std::cell::Cell::new(None) };
}

impl Buffers {
    fn take() -> Self {
        SPARE.with(std::cell::Cell::take).unwrap_or_else(|| Self {
            // Sized for an ordinary request (a few dozen values, a few hundred value/chain
            // texts), so that they do not grow and rehash in steps while it runs.
            raw: Fx::with_capacity_and_hasher(64, Default::default()),
            chained: Fx::with_capacity_and_hasher(256, Default::default()),
            texts: Vec::with_capacity(64),
            ..Self::default()
        })
    }

    fn give_back(mut self) {
        if self.texts.capacity() > KEEP_TEXTS
            || self.hits.capacity() > KEEP_HITS
            || self.chained.capacity() > 4 * KEEP_TEXTS
        {
            return;
        }
        self.raw.clear();
        self.chained.clear();
        self.texts.clear();
        self.hits.clear();
        self.group_at.clear();
        self.group_bits.clear();
        self.group_bytes.clear();
        SPARE.with(|s| s.set(Some(self)));
    }
}

impl Drop for Scratch<'_> {
    fn drop(&mut self) {
        std::mem::take(&mut self.b).give_back();
    }
}

impl<'p> Scratch<'p> {
    pub fn new(pf: Option<&'p Prefilters>, preset: Option<&'p [(String, Vec<u8>)]>) -> Self {
        let mut b = Buffers::take();
        b.hits.reserve(pf.map_or(0, |p| p.words() * 32));
        Self { pf, preset, b }
    }

    /// Called when a phase starts: the request's values may have changed (the body).
    pub fn new_phase(&mut self) {
        self.b.group_at.clear();
        self.b.group_bits.clear();
        self.b.group_bytes.clear();
    }

    /// False when the rule's gate proves that its first link matches nothing.
    pub fn gate_open(&mut self, gate: Option<&Gate>, data: &Data<'_>) -> bool {
        let (Some(pf), Some(gate)) = (self.pf, gate) else {
            return true;
        };
        let g = gate.group as usize;
        let words = pf.words();
        if self.b.group_at.is_empty() {
            self.b.group_at.resize(pf.groups.len(), NONE);
        }
        if self.b.group_at[g] == NONE {
            self.fill_group(pf, g, data);
        }
        let at = self.b.group_at[g] as usize;
        let bytes = &self.b.group_bytes[at];
        let literal = match gate.slot {
            Some(slot) => {
                let slot = slot as usize;
                self.b.group_bits[at * words + slot / 64] & (1 << (slot % 64)) != 0
                    || bytes.intersects(&gate.short)
            }
            None => gate.short.is_empty() || bytes.intersects(&gate.short),
        };
        literal && gate.needs.is_none_or(|n| bytes.intersects(&n))
    }

    /// The value the link's operator sees, or `None` when its prefilter proves that the
    /// operator does not match it. `gateable`: the value does not change during the phase.
    pub fn value<'v>(
        &'v mut self,
        link: &Link,
        gateable: bool,
        raw: &'v [u8],
        id: Option<ValueId>,
    ) -> Option<Cow<'v, [u8]>> {
        let (Some(pf), Some(id), true) = (self.pf, id, gateable) else {
            return Some(crate::transform::apply_chain(&link.transforms, raw));
        };
        if link.transforms.is_empty()
            && link.prefilter.is_none()
            && link.short.is_empty()
            && link.needs.is_none()
        {
            return Some(Cow::Borrowed(raw));
        }
        let chain = (link.chain_id, &link.transforms[..], link.triggers);
        let t = self.text(id, chain, raw);
        if !self.passes(pf, link, t, raw) {
            return None;
        }
        Some(Cow::Borrowed(
            self.b.texts[t as usize].owned.as_deref().unwrap_or(raw),
        ))
    }

    /// False when the link's prefilter proves that its operator does not match text `t`.
    fn passes(&mut self, pf: &Prefilters, link: &Link, t: u32, raw: &[u8]) -> bool {
        let bytes = self.b.texts[t as usize].bytes;
        if link.needs.is_some_and(|n| !bytes.intersects(&n)) {
            return false;
        }
        if !bytes.intersects(&link.short) {
            match link.prefilter {
                Some(slot) => {
                    let at = self.scan(pf, t, raw);
                    let slot = slot as usize;
                    if at != NONE && self.b.hits[at as usize + slot / 64] & (1 << (slot % 64)) == 0
                    {
                        return false;
                    }
                }
                None if !link.short.is_empty() => return false,
                None => {}
            }
        }
        true
    }

    /// The raw text of a value.
    fn raw_text(&mut self, id: ValueId, raw: &[u8]) -> u32 {
        if let Some(&t) = self.b.raw.get(&id) {
            return t;
        }
        let t = self.push(None, ByteSet::of(raw));
        self.b.raw.insert(id, t);
        t
    }

    fn push(&mut self, owned: Option<Vec<u8>>, bytes: ByteSet) -> u32 {
        let t = u32::try_from(self.b.texts.len()).unwrap_or(NONE);
        self.b.texts.push(Text {
            owned,
            bytes,
            scan: t,
            hits: NONE,
            next: NONE,
        });
        t
    }

    /// The text of a value under a chain (whose [`crate::transform::chain_triggers`] are
    /// `triggers`).
    fn text(
        &mut self,
        id: ValueId,
        (chain_id, chain, triggers): (u16, &[Transform], Option<ByteSet>),
        raw: &[u8],
    ) -> u32 {
        let r = self.raw_text(id, raw);
        let keeps = |t: ByteSet| !self.b.texts[r as usize].bytes.intersects(&t);
        if chain.is_empty() || triggers.is_some_and(keeps) {
            return r;
        }
        if let Some(&t) = self.b.chained.get(&(id, chain_id)) {
            return t;
        }
        let t =
            match crate::transform::apply_chain_known(chain, raw, self.b.texts[r as usize].bytes) {
                (Cow::Borrowed(_), _) => r,
                (Cow::Owned(v), bytes) => self.add_text(r, raw, v, bytes),
            };
        self.b.chained.insert((id, chain_id), t);
        t
    }

    /// A chain's output: an earlier text of the value when it is the same, else a new text
    /// that shares the scan of one that is the same up to ASCII case (the scan ignores case).
    fn add_text(&mut self, r: u32, raw: &[u8], v: Vec<u8>, bytes: ByteSet) -> u32 {
        let mut k = r;
        let mut scan = NONE;
        loop {
            let text = self.b.texts[k as usize].owned.as_deref().unwrap_or(raw);
            if text == v.as_slice() {
                return k;
            }
            if scan == NONE && text.eq_ignore_ascii_case(&v) {
                scan = self.b.texts[k as usize].scan;
            }
            match self.b.texts[k as usize].next {
                NONE => break,
                n => k = n,
            }
        }
        let t = self.push(Some(v), bytes);
        if scan != NONE {
            self.b.texts[t as usize].scan = scan;
        }
        self.b.texts[k as usize].next = t;
        t
    }

    /// Offset of the slot bits of text `t` (of the value `raw`); `NONE` when there is no
    /// scanner (every slot counts as hit).
    fn scan(&mut self, pf: &Prefilters, t: u32, raw: &[u8]) -> u32 {
        let Some(scanner) = &pf.scanner else {
            return NONE;
        };
        let s = self.b.texts[t as usize].scan as usize;
        if self.b.texts[s].hits == NONE {
            let at = self.b.hits.len();
            self.b.hits.resize(at + pf.words(), 0);
            let text = self.b.texts[s].owned.as_deref().unwrap_or(raw);
            scanner.scan(text, &mut self.b.hits[at..]);
            self.b.texts[s].hits = u32::try_from(at).unwrap_or(NONE);
        }
        self.b.texts[s].hits
    }

    /// ORs the hits and bytes of every value of the group's targets.
    fn fill_group(&mut self, pf: &Prefilters, g: usize, data: &Data<'_>) {
        let group = &pf.groups[g];
        let words = pf.words();
        let at = self.b.group_bytes.len();
        let mut bits = std::mem::take(&mut self.b.group_bits);
        bits.resize((at + 1) * words, 0);
        let mut bytes = ByteSet::EMPTY;
        let mine = &mut bits[at * words..];
        let mut add = |this: &mut Self, raw: &[u8], id: Option<ValueId>| {
            let Some(id) = id else {
                mine.fill(u64::MAX);
                bytes = ByteSet::FULL;
                return;
            };
            let chain = (group.chain_id, &group.transforms[..], group.triggers);
            let t = this.text(id, chain, raw);
            bytes = bytes.union(this.b.texts[t as usize].bytes);
            match this.scan(pf, t, raw) {
                NONE => mine.fill(u64::MAX),
                h => {
                    let h = h as usize;
                    for (m, x) in mine.iter_mut().zip(&this.b.hits[h..h + words]) {
                        *m |= x;
                    }
                }
            }
        };
        for t in &group.targets {
            match t.var {
                Var::Collection(c) => data.members(c, &mut |m| {
                    if t.sel.matches(m.name) {
                        add(self, &m.value, m.id);
                    }
                }),
                Var::Scalar(s) => {
                    if let Some(v) = data.scalar(s) {
                        add(self, &v, super::data::Data::scalar_id(s));
                    }
                }
            }
        }
        self.b.group_bits = bits;
        self.b.group_bytes.push(bytes);
        self.b.group_at[g] = u32::try_from(at).unwrap_or(NONE);
    }
}
