//! A per-thread memo of libinjection's verdicts. Both tests are pure functions of their input
//! and cost microseconds on what a node sees again on most requests (a browser's or an agent's
//! `User-Agent`, a JSON API's argument names), so the evaluator's fast path asks this bounded
//! table first: [`SLOTS`] slots per thread, direct-mapped on a keyed hash of (test, input), for
//! inputs up to [`MAX_INPUT`] bytes. A slot keeps the input itself and is used only when the
//! input is equal byte for byte: a collision, or a flood of distinct values, costs a miss (the
//! test is run), never a wrong verdict. The reference evaluator does not use it.

use std::cell::RefCell;

/// Slots per thread (a power of two).
pub(crate) const SLOTS: usize = 256;
/// Longer inputs are tested every time (and are rarely seen twice).
pub(crate) const MAX_INPUT: usize = 256;

/// Which libinjection test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Test {
    Sqli,
    Xss,
}

struct Slot {
    test: Test,
    input: Vec<u8>,
    /// `None`: no injection; `Some(fingerprint)` (empty for XSS): an injection.
    verdict: Option<Vec<u8>>,
}

struct Memo {
    /// Random per thread: the index is not the client's to choose.
    keys: ahash::RandomState,
    slots: Vec<Option<Slot>>,
}

thread_local! {
    static MEMO: RefCell<Option<Memo>> = const { RefCell::new(None) };
}

/// `run(input)` (the injection's fingerprint, or `None`), answered from the memo when `on` and
/// this thread has seen the same test on the same input.
pub(crate) fn verdict(
    on: bool,
    test: Test,
    input: &[u8],
    run: impl FnOnce(&[u8]) -> Option<Vec<u8>>,
) -> Option<Vec<u8>> {
    if !on || input.len() > MAX_INPUT {
        return run(input);
    }
    let found = MEMO.with(|m| {
        let m = m.try_borrow().ok()?;
        let m = m.as_ref()?;
        let slot = m.slots[index(m, test, input)].as_ref()?;
        (slot.test == test && slot.input == input).then(|| slot.verdict.clone())
    });
    if let Some(v) = found {
        return v;
    }
    let v = run(input);
    MEMO.with(|m| {
        let Ok(mut m) = m.try_borrow_mut() else {
            return;
        };
        let m = m.get_or_insert_with(|| Memo {
            keys: ahash::RandomState::new(),
            slots: (0..SLOTS).map(|_| None).collect(),
        });
        let i = index(m, test, input);
        match &mut m.slots[i] {
            Some(slot) => {
                slot.test = test;
                slot.input.clear();
                slot.input.extend_from_slice(input);
                slot.verdict.clone_from(&v);
            }
            empty => {
                *empty = Some(Slot {
                    test,
                    input: input.to_vec(),
                    verdict: v.clone(),
                })
            }
        }
    });
    v
}

fn index(m: &Memo, test: Test, input: &[u8]) -> usize {
    let h = m.keys.hash_one((test as u8, input));
    (h as usize) & (SLOTS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The memo answers what the test answers, for inputs seen once, again, after their slot
    /// was taken by others, and for the other test on the same input.
    #[test]
    fn memo_answers_as_the_test_does() {
        use crate::operator::{sqli_fingerprint as sqli, xss};
        let mut inputs: Vec<Vec<u8>> = vec![
            b"1' OR '1'='1".to_vec(),
            b"<script>alert(1)</script>".to_vec(),
            b"Mozilla/5.0 (Windows NT 10.0; Win64; x64)".to_vec(),
            b"json.options.force".to_vec(),
            vec![b'x'; MAX_INPUT + 1],
        ];
        // Far more inputs than slots, so that slots are taken over.
        for i in 0..(4 * SLOTS) {
            inputs.push(format!("id={i}' union select {i}--").into_bytes());
            inputs.push(format!("<a href=x onclick={i}>").into_bytes());
        }
        for round in 0..3 {
            for v in &inputs {
                assert_eq!(verdict(true, Test::Sqli, v, sqli), sqli(v), "round {round}");
                assert_eq!(verdict(true, Test::Xss, v, xss), xss(v), "round {round}");
            }
        }
        // A memoised verdict is not given to the other test: the XSS test on an input whose
        // SQL verdict was just memoised runs (and says what it says).
        let v = b"2' OR '2'='2' -- not seen before";
        assert!(verdict(true, Test::Sqli, v, sqli).is_some());
        assert!(verdict(true, Test::Xss, v, |_| None).is_none());
        assert!(verdict(true, Test::Xss, v, |_| Some(b"ran".to_vec())).is_none());
        // Off (the reference evaluator), the test always runs.
        assert!(verdict(false, Test::Sqli, v, |_| None).is_none());
    }
}
