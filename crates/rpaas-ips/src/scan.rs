//! "Does any pattern match anywhere in these values?" for a scan group, as fast as this
//! machine allows.
//!
//! A lazy DFA step is a table lookup whose address depends on the previous lookup, so one
//! scan waits on the cache's latency at every byte. The values of a group are independent,
//! so the engine deals them into [`STREAMS`] texts of about the same length (each value
//! followed by the separator) and [`Scanner`] steps the streams in turn: the lookups of
//! different streams overlap, and the scan runs at the machine's throughput instead of its
//! latency. Patterns with a literal prefilter fast enough to skip most of the text (the
//! headers' few patterns) are left to the meta regex and its prefilter. Whatever the walk
//! cannot handle (the lazy DFA's cache cleared under the other streams, a quit byte) falls
//! back to the meta regex, so the answer never depends on the path taken.

use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::hybrid::LazyStateID;
use regex_automata::meta::Regex as MetaRegex;
use regex_automata::nfa::thompson;
use regex_automata::util::look::LookMatcher;
use regex_automata::util::pool::Pool;
use regex_automata::util::prefilter::Prefilter;
use regex_automata::util::syntax;
use regex_automata::{Input, MatchKind};

/// The syntax of a group's patterns: bytes, ASCII classes, multi-line with `sep` (which
/// joins the values) as line terminator.
pub(crate) fn union_syntax(sep: u8) -> syntax::Config {
    syntax::Config::new()
        .unicode(false)
        .utf8(false)
        .multi_line(true)
        .line_terminator(sep)
}

/// Texts a group's values are dealt into.
pub(crate) const STREAMS: usize = 4;

type CacheFn = Box<dyn Fn() -> Cache + Send + Sync + std::panic::RefUnwindSafe>;

pub(crate) struct Scanner {
    /// Leftmost-first, with a literal prefilter where the patterns have one.
    meta: MetaRegex,
    /// Present when the patterns have no fast prefilter: then the DFA walks the streams.
    lazy: Option<(DFA, Pool<Cache, CacheFn>)>,
}

impl Scanner {
    /// `pats` in multi-line mode with `sep` as line terminator, over bytes.
    pub(crate) fn new(pats: &[String], sep: u8, meta: MetaRegex) -> Result<Self, String> {
        Self::with_cache(pats, sep, meta, 1 << 23)
    }

    /// As [`Scanner::new`], with the lazy DFA's cache capacity in bytes.
    fn with_cache(pats: &[String], sep: u8, meta: MetaRegex, cache: usize) -> Result<Self, String> {
        let syntax = union_syntax(sep);
        let hirs = pats
            .iter()
            .map(|p| syntax::parse_with(p, &syntax).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let fast_prefilter = Prefilter::from_hirs_prefix(MatchKind::LeftmostFirst, &hirs)
            .is_some_and(|p| p.is_fast());
        if fast_prefilter {
            return Ok(Self { meta, lazy: None });
        }
        let mut look = LookMatcher::new();
        look.set_line_terminator(sep);
        let dfa = DFA::builder()
            .syntax(syntax)
            .thompson(
                thompson::Config::new()
                    .look_matcher(look)
                    .nfa_size_limit(Some(1 << 27)),
            )
            .configure(
                DFA::config()
                    .match_kind(MatchKind::All)
                    .cache_capacity(cache)
                    .skip_cache_capacity_check(true),
            )
            .build_many(pats)
            .map_err(|e| e.to_string())?;
        let create = {
            let dfa = dfa.clone();
            Box::new(move || dfa.create_cache()) as CacheFn
        };
        Ok(Self {
            meta,
            lazy: Some((dfa, Pool::new(create))),
        })
    }

    /// Whether the values are dealt into streams (else all go to the first).
    pub(crate) fn interleaves(&self) -> bool {
        self.lazy.is_some()
    }

    /// Whether some pattern matches in one of the streams.
    pub(crate) fn is_match(&self, streams: &[Vec<u8>]) -> bool {
        if let Some((dfa, pool)) = &self.lazy {
            if let Ok(streams) = <&[Vec<u8>; STREAMS]>::try_from(streams) {
                let mut cache = pool.get();
                if let Some(found) = walk(dfa, &mut cache, streams.each_ref().map(Vec::as_slice)) {
                    return found;
                }
            }
        }
        streams
            .iter()
            .any(|s| !s.is_empty() && self.meta.is_match(Input::new(s)))
    }
}

/// The interleaved walk; `None` when it cannot answer.
fn walk(dfa: &DFA, cache: &mut Cache, streams: [&[u8]; STREAMS]) -> Option<bool> {
    let clears = cache.clear_count();
    let mut sid = [LazyStateID::default(); STREAMS];
    for (s, text) in sid.iter_mut().zip(streams) {
        *s = dfa.start_state_forward(cache, &Input::new(text)).ok()?;
        if s.is_tagged() {
            return None;
        }
    }
    let mut rest = streams;
    // All together while each has bytes left.
    let n = rest.iter().map(|s| s.len()).min().unwrap_or(0);
    if !lockstep(dfa, cache, &mut sid, &rest, n, clears)? {
        return Some(true);
    }
    for r in &mut rest {
        *r = &r[n..];
    }
    // Then two at a time, then each alone.
    loop {
        let mut live = (0..STREAMS).filter(|&k| !rest[k].is_empty());
        let (Some(a), Some(b)) = (live.next(), live.next()) else {
            break;
        };
        let n = rest[a].len().min(rest[b].len());
        let (mut sa, mut sb) = (sid[a], sid[b]);
        for (&x, &y) in rest[a][..n].iter().zip(&rest[b][..n]) {
            let na = dfa.next_state_untagged(cache, sa, x);
            let nb = dfa.next_state_untagged(cache, sb, y);
            if na.is_tagged() | nb.is_tagged() {
                if !step(dfa, cache, &mut sa, x, clears)? || !step(dfa, cache, &mut sb, y, clears)?
                {
                    return Some(true);
                }
            } else {
                (sa, sb) = (na, nb);
            }
        }
        (sid[a], sid[b]) = (sa, sb);
        rest[a] = &rest[a][n..];
        rest[b] = &rest[b][n..];
    }
    for k in 0..STREAMS {
        for &x in rest[k] {
            if !step(dfa, cache, &mut sid[k], x, clears)? {
                return Some(true);
            }
        }
        // Each stream ends with a separator, so only a match at the very end is left.
        let eoi = dfa.next_eoi_state(cache, sid[k]).ok()?;
        if cache.clear_count() != clears {
            return None;
        }
        if eoi.is_match() {
            return Some(true);
        }
    }
    Some(false)
}

/// The first `n` bytes of all streams, in lockstep: `Some(false)` on a match.
#[inline(always)]
// `i` indexes all K streams at once.
#[allow(clippy::needless_range_loop)]
fn lockstep<const K: usize>(
    dfa: &DFA,
    cache: &mut Cache,
    sid: &mut [LazyStateID; K],
    streams: &[&[u8]; K],
    n: usize,
    clears: usize,
) -> Option<bool> {
    let mut s = *sid;
    let c: [&[u8]; K] = streams.map(|x| &x[..n]);
    for i in 0..n {
        let mut next = s;
        let mut tagged = false;
        for k in 0..K {
            next[k] = dfa.next_state_untagged(cache, s[k], c[k][i]);
            tagged |= next[k].is_tagged();
        }
        if tagged {
            for k in 0..K {
                if !step(dfa, cache, &mut s[k], c[k][i], clears)? {
                    return Some(false);
                }
            }
        } else {
            s = next;
        }
    }
    *sid = s;
    Some(true)
}

/// One step of one stream: `Some(false)` when it reached a match, `None` when the walk
/// cannot go on.
#[inline(always)]
fn step(dfa: &DFA, cache: &mut Cache, sid: &mut LazyStateID, b: u8, clears: usize) -> Option<bool> {
    let next = dfa.next_state_untagged(cache, *sid, b);
    if !next.is_tagged() {
        *sid = next;
        return Some(true);
    }
    slow_step(dfa, cache, sid, b, clears)
}

/// A transition to a state not computed yet, or a special one.
#[cold]
#[inline(never)]
fn slow_step(
    dfa: &DFA,
    cache: &mut Cache,
    sid: &mut LazyStateID,
    b: u8,
    clears: usize,
) -> Option<bool> {
    let next = dfa.next_state(cache, *sid, b).ok()?;
    // A cleared cache invalidates the other streams' states; quit and dead states are not
    // expected of an unanchored search for these patterns, and are left to the meta regex.
    if cache.clear_count() != clears || next.is_quit() || next.is_dead() || next.is_unknown() {
        return None;
    }
    if next.is_match() {
        return Some(false);
    }
    *sid = next;
    Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEP: u8 = 0xff;

    fn meta(pats: &[String]) -> MetaRegex {
        MetaRegex::builder()
            .syntax(union_syntax(SEP))
            .configure(MetaRegex::config().line_terminator(SEP))
            .build_many(pats)
            .expect("patterns")
    }

    /// The lockstep walk answers as the meta regex does over the same values, however they
    /// are dealt, with a roomy cache and with one so small it is cleared mid-walk (then the
    /// walk must hand over rather than read stale states).
    #[test]
    fn the_walk_agrees_with_the_meta_regex() {
        let pats: Vec<String> = [
            r"\bunion\s+(?:all\s+)?select\b",
            r"(?:^|/)\.\.(?:/|$)",
            r"<\s*script[\s>/]",
            r"a[^x]{3,9}b",
            r"\bor\s+\d+\s*=\s*\d+\s*$",
        ]
        .iter()
        .map(|p| p.to_string())
        .collect();
        let words = [
            "union", "select", "all", " ", "  ", "/", "..", "<", "script", ">", "a", "b", "x",
            "or", "1", "=", "2", "q", "\t",
        ];
        let mut seed = 0x2545_f491_u32;
        let mut next = move |n: u32| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed % n
        };
        for cache in [1 << 23, 1] {
            let s = Scanner::with_cache(&pats, SEP, meta(&pats), cache).expect("scanner");
            assert!(s.interleaves());
            let (mut hits, mut cases) = (0, 0);
            for _ in 0..3000 {
                let mut streams = vec![Vec::new(); STREAMS];
                for _ in 0..next(12) {
                    let mut v = Vec::new();
                    for _ in 0..next(10) {
                        v.extend_from_slice(words[next(words.len() as u32) as usize].as_bytes());
                    }
                    let k = next(STREAMS as u32) as usize;
                    streams[k].extend_from_slice(&v);
                    streams[k].push(SEP);
                }
                let m = meta(&pats);
                let want = streams
                    .iter()
                    .any(|t| !t.is_empty() && m.is_match(Input::new(t)));
                assert_eq!(s.is_match(&streams), want, "{streams:?}");
                hits += usize::from(want);
                cases += 1;
            }
            assert!(
                hits > cases / 10 && hits < cases * 9 / 10,
                "{hits} of {cases}"
            );
        }
    }
}
