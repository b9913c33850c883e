//! The per-request side of a [`Plan`](super::Plan): the strings a request's values become
//! under the transform chains (each computed once) and the scratch vectors, kept per thread.

use std::borrow::Cow;

use super::{Need, Plan, Summary};
use crate::transform::{Features, Transform};

pub(super) struct Value<'a> {
    pub(super) name: Option<&'a str>,
    pub(super) memo: usize,
}

/// What is known of one string of a request.
#[derive(Clone, Copy)]
pub(super) struct Info {
    /// What it holds that a transformation acts on.
    pub(super) features: Features,
    /// The groups whose text holds it, one bit each.
    pub(super) scanned: u8,
}

/// A distinct raw value and the transformations of it done so far.
#[derive(Clone, Copy)]
pub(super) struct Memo {
    /// Its string index.
    pub(super) raw: usize,
    /// Its latest entry in `steps` (`usize::MAX`: none yet).
    pub(super) last_step: usize,
    /// Where its row of `node_out` starts (`usize::MAX`: none yet, filled in on the first
    /// transformation; most values need none).
    pub(super) node_base: usize,
}

/// The index vectors of a [`Work`], kept per thread between requests so a request
/// allocates little.
#[derive(Default)]
pub(super) struct Scratch {
    /// Parallel to `Work::strings`.
    pub(super) info: Vec<Info>,
    /// Per distinct raw value.
    pub(super) memos: Vec<Memo>,
    /// Per raw value and tree node: the string index, or `usize::MAX` before it is needed.
    pub(super) node_out: Vec<usize>,
    /// `(input, transform, output, previous entry of the same raw value)`: transformations
    /// already applied, a short list per raw value.
    pub(super) steps: Vec<(usize, Transform, usize, usize)>,
    pub(super) runs: Vec<std::ops::Range<usize>>,
    /// Per target: what its raw values hold together.
    pub(super) summary: Vec<Summary>,
    pub(super) candidates: Vec<usize>,
    /// The `headers` target's memos.
    pub(super) picked: Vec<usize>,
    /// A value's strings to scan.
    pub(super) pick: Vec<usize>,
    pub(super) joined: Vec<Vec<Vec<u8>>>,
    /// Strings to deal into an interleaved group's streams: length (24 bits), group (8),
    /// string (32), as one number to sort.
    pub(super) deal: Vec<u64>,
    /// `Work::strings` and `Work::values`, emptied, kept for their allocations.
    pub(super) strings: Vec<Cow<'static, str>>,
    pub(super) values: Vec<Value<'static>>,
}

/// A vector emptied and retyped (to another lifetime): the in-place collect keeps its
/// allocation, so the per-request vectors are allocated once per thread.
pub(super) fn relifetime<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    v.into_iter().filter_map(|_| None).collect()
}

thread_local! {
    pub(super) static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// The strings one request produces, and how each was derived.
pub(super) struct Work<'a, 's> {
    pub(super) strings: Vec<Cow<'a, str>>,
    pub(super) values: Vec<Value<'a>>,
    pub(super) s: &'s mut Scratch,
}

impl<'a, 's> Work<'a, 's> {
    pub(super) fn new(s: &'s mut Scratch) -> Self {
        s.info.clear();
        s.memos.clear();
        s.node_out.clear();
        s.steps.clear();
        Self {
            strings: relifetime(std::mem::take(&mut s.strings)),
            values: relifetime(std::mem::take(&mut s.values)),
            s,
        }
    }

    pub(super) fn push(&mut self, s: Cow<'a, str>) -> usize {
        self.push_with(s, Need::All)
    }

    fn push_with(&mut self, s: Cow<'a, str>, need: Need) -> usize {
        let features = match need {
            Need::All => Features::of(&s),
            Need::Bytes => Features::bytes(&s),
            Need::Nothing => Features::NONE,
        };
        self.s.info.push(Info {
            features,
            scanned: 0,
        });
        self.strings.push(s);
        self.strings.len() - 1
    }

    /// The memo for a raw value. A specific header's values are the same text as the
    /// `headers` target's: those are found again and share their transformations.
    /// `need` says which of its features the value's target reads (a shared value gets
    /// the rest computed when another target needs them).
    pub(super) fn memo(&mut self, v: &'a str, shared: &[usize], need: Need) -> usize {
        if let Some(&m) = shared
            .iter()
            .find(|&&m| std::ptr::eq(self.strings[self.s.memos[m].raw].as_ref(), v))
        {
            let s = self.s.memos[m].raw;
            if need == Need::All && !self.s.info[s].features.has_all() {
                self.s.info[s].features = Features::of(v);
            }
            return m;
        }
        let raw = self.push_with(Cow::Borrowed(v), need);
        self.s.memos.push(Memo {
            raw,
            last_step: usize::MAX,
            node_base: usize::MAX,
        });
        self.s.memos.len() - 1
    }

    /// The string for raw value `memo` transformed by the chain ending at tree node `node`.
    pub(super) fn out(&mut self, plan: &Plan, memo: usize, node: usize) -> usize {
        // Most values hold nothing any transformation on the way acts on.
        if node == 0
            || !self.s.info[self.s.memos[memo].raw]
                .features
                .meets(plan.chain_triggers[node])
        {
            return self.s.memos[memo].raw;
        }
        if self.s.memos[memo].node_base == usize::MAX {
            self.s.memos[memo].node_base = self.s.node_out.len();
            self.s
                .node_out
                .extend(std::iter::repeat_n(usize::MAX, plan.nodes.len()));
        }
        let slot = self.s.memos[memo].node_base + node;
        if self.s.node_out[slot] != usize::MAX {
            return self.s.node_out[slot];
        }
        let (parent, t) = plan.nodes[node];
        let input = self.out(plan, memo, parent);
        if !t.may_change(self.s.info[input].features) {
            self.s.node_out[slot] = input;
            return input;
        }
        let mut done = None;
        let mut at = self.s.memos[memo].last_step;
        while at != usize::MAX {
            let (i, x, o, prev) = self.s.steps[at];
            if i == input && x == t {
                done = Some(o);
                break;
            }
            at = prev;
        }
        let output = match done {
            Some(o) => o,
            None => {
                let changed = match t.apply(Cow::Borrowed(&self.strings[input])) {
                    Cow::Borrowed(_) => None,
                    Cow::Owned(s) if s == self.strings[input] => None,
                    Cow::Owned(s) => Some(s),
                };
                let o = match changed {
                    None => input,
                    Some(s) => self.push(Cow::Owned(s)),
                };
                self.s
                    .steps
                    .push((input, t, o, self.s.memos[memo].last_step));
                self.s.memos[memo].last_step = self.s.steps.len() - 1;
                o
            }
        };
        self.s.node_out[slot] = output;
        output
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn relifetime_keeps_the_allocation() {
        let mut v: Vec<std::borrow::Cow<'static, str>> = Vec::with_capacity(100);
        v.push("x".into());
        let p = v.as_ptr() as usize;
        let w: Vec<std::borrow::Cow<'_, str>> = super::relifetime(v);
        assert!(w.is_empty());
        assert_eq!(w.capacity(), 100);
        assert_eq!(w.as_ptr() as usize, p);
    }
}
