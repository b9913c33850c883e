//! Required literals of a regular expression: a set of which one occurs in every match. The
//! evaluator scans each value once for the literals of all rules and runs only the regexes
//! whose literal occurs, so this must never claim a literal that a match can do without.
//!
//! Built on `regex-syntax`'s prefix extraction, which is exact about what every match starts
//! with; a sub-expression that every match must contain (a concatenation's element, a
//! repetition with a minimum of one, each branch of an alternation) contributes its own prefixes.

use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::hir::{Class, Hir, HirKind};

use crate::bytes::ByteSet;

/// At least one of these occurs (byte for byte) in every match of `pattern`, which is parsed as
/// `regex::bytes` parses it; `None` when no finite, non-empty set is known.
pub(super) fn required(pattern: &str) -> Option<Vec<Vec<u8>>> {
    let hir = regex_syntax::ParserBuilder::new()
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()?;
    let set = best_required(&hir)?;
    // A set with no literal at all would mean "never matches"; rather run the regex.
    (!set.is_empty()).then_some(set)
}

/// Bytes of which every match of `pattern` (parsed as [`required`] does) holds at least one;
/// `None` when no such set is known (a match may be empty, or made of anchors only).
pub(super) fn required_bytes(pattern: &str) -> Option<ByteSet> {
    let hir = regex_syntax::ParserBuilder::new()
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()?;
    bytes_of(&hir).filter(|s| !s.is_empty())
}

/// How often a byte turns up in ordinary header and argument values: sets of rare bytes make
/// better gates.
fn weight(b: u8) -> u32 {
    match b {
        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b' ' => 16,
        b'/' | b'.' | b',' | b';' | b'=' | b'-' | b'_' | b'(' | b')' | b':' | b'&' | b'?'
        | b'*' | b'+' | b'%' => 4,
        _ => 1,
    }
}

fn cost(set: &ByteSet) -> u32 {
    set.iter().map(weight).sum()
}

fn bytes_of(hir: &Hir) -> Option<ByteSet> {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => None,
        // Every byte of a literal is in every match: the rarest one will do.
        HirKind::Literal(l) => {
            l.0.iter()
                .copied()
                .min_by_key(|&b| weight(b))
                .map(|b| ByteSet::from_bytes(&[b]))
        }
        HirKind::Class(Class::Bytes(c)) => {
            let mut set = ByteSet::EMPTY;
            for r in c.ranges() {
                set = set.union(ByteSet::range(r.start(), r.end()));
            }
            Some(set)
        }
        HirKind::Class(Class::Unicode(c)) => {
            // A non-ASCII code point is several bytes: not worth the trouble.
            let mut set = ByteSet::EMPTY;
            for r in c.ranges() {
                let (lo, hi) = (u8::try_from(r.start()).ok()?, u8::try_from(r.end()).ok()?);
                if hi > 0x7f {
                    return None;
                }
                set = set.union(ByteSet::range(lo, hi));
            }
            Some(set)
        }
        HirKind::Repetition(r) if r.min >= 1 => bytes_of(&r.sub),
        HirKind::Repetition(_) => None,
        HirKind::Capture(c) => bytes_of(&c.sub),
        // Every match holds a match of each element: the best element's set.
        HirKind::Concat(subs) => subs.iter().filter_map(bytes_of).min_by_key(cost),
        // Every match is a match of one branch.
        HirKind::Alternation(alts) => alts
            .iter()
            .try_fold(ByteSet::EMPTY, |acc, a| Some(acc.union(bytes_of(a)?))),
    }
}

/// Lower-cases (the scan is ASCII-case-insensitive), drops duplicates and literals that contain
/// another one of the set (that one occurs whenever they do). `None` if a literal is empty.
pub(super) fn minimal(set: Vec<Vec<u8>>) -> Option<Vec<Vec<u8>>> {
    let mut set: Vec<Vec<u8>> = set.into_iter().map(|l| l.to_ascii_lowercase()).collect();
    if set.is_empty() || set.iter().any(Vec::is_empty) {
        return None;
    }
    set.sort_unstable_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    set.dedup();
    let mut kept: Vec<Vec<u8>> = Vec::with_capacity(set.len());
    for l in set {
        // Sorted by length: only earlier (shorter or equal) literals can be inside `l`.
        if !kept.iter().any(|k| memchr::memmem::find(&l, k).is_some()) {
            kept.push(l);
        }
    }
    Some(kept)
}

/// What every match starts with, when that is a finite set of non-empty literals.
fn prefixes(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(hir);
    let lits = seq.literals()?;
    if lits.iter().any(|l| l.as_bytes().is_empty()) {
        return None;
    }
    Some(lits.iter().map(|l| l.as_bytes().to_vec()).collect())
}

/// Higher is a better prefilter: longer shortest literal first (short ones hit benign text
/// often), then fewer literals.
fn score(set: &[Vec<u8>]) -> (usize, std::cmp::Reverse<usize>) {
    let min = set.iter().map(Vec::len).min().unwrap_or(0);
    (min.min(4), std::cmp::Reverse(set.len()))
}

fn better(a: Option<Vec<Vec<u8>>>, b: Option<Vec<Vec<u8>>>) -> Option<Vec<Vec<u8>>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if score(&b) > score(&a) { b } else { a }),
        (a, b) => a.or(b),
    }
}

fn best_required(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    let mut best = prefixes(hir);
    match hir.kind() {
        HirKind::Capture(c) => best = better(best, best_required(&c.sub)),
        HirKind::Repetition(r) if r.min >= 1 => best = better(best, best_required(&r.sub)),
        HirKind::Concat(subs) => {
            for (i, sub) in subs.iter().enumerate() {
                // Every match contains a match of each element, and of each tail of the
                // concatenation, so the prefixes of either are required.
                best = better(best, best_required(sub));
                if i > 0 {
                    best = better(best, prefixes(&Hir::concat(subs[i..].to_vec())));
                }
            }
        }
        HirKind::Alternation(alts) => {
            // Every match is a match of one branch: the union of the branches' sets, if each
            // branch has one.
            let mut union = Vec::new();
            for alt in alts {
                union.extend(best_required(alt)?);
            }
            best = better(best, Some(union));
        }
        _ => {}
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(p: &str) -> Option<Vec<String>> {
        let set = minimal(required(&format!("(?s-u:{p})"))?)?;
        Some(
            set.into_iter()
                .map(|l| String::from_utf8_lossy(&l).into_owned())
                .collect(),
        )
    }

    #[test]
    fn prefixes_inner_literals_and_alternations() {
        assert_eq!(req("abc"), Some(vec!["abc".into()]));
        // Case variants are many; whatever is kept must be a piece of the match.
        let sel = req(r"(?i)\bunion\s+select").expect("has literals");
        assert!(sel
            .iter()
            .all(|l| l.len() >= 4 && "union select".contains(l.as_str())));
        assert_eq!(req(r"\d+").map(|s| s.len()), Some(10));
        assert_eq!(req("x*(foo|bar)"), Some(vec!["bar".into(), "foo".into()]));
        assert_eq!(req(r"[a-z]+\.php"), Some(vec![".php".into()]));
        assert_eq!(req("(?:ab|cd)e"), Some(vec!["abe".into(), "cde".into()]));
        assert_eq!(
            req(r"^(?:GET|HEAD)$"),
            Some(vec!["get".into(), "head".into()])
        );
    }

    #[test]
    fn nothing_is_claimed_without_proof() {
        assert_eq!(req("a*"), None);
        assert_eq!(req("(?:foo)?"), None);
        assert_eq!(req("foo|.*"), None);
        assert_eq!(req(r"[^a]"), None);
        assert_eq!(req("^$"), None);
        assert_eq!(req(r"\w*"), None);
        assert_eq!(req("(?:abc){0,3}"), None);
    }

    fn bytes(p: &str) -> Option<String> {
        let set = required_bytes(&format!("(?s-u:{p})"))?;
        Some(set.iter().map(char::from).collect())
    }

    #[test]
    fn required_bytes_of_classes_and_branches() {
        assert_eq!(bytes("a[<>]b"), Some("<>".into()));
        assert_eq!(bytes("x(?:'|\"){2,}"), Some("\"'".into()));
        assert_eq!(bytes("(?:ab|c)"), Some("ac".into()));
        assert_eq!(bytes("a?"), None);
        assert_eq!(bytes("^$"), None);
        assert_eq!(bytes(r"\b"), None);
        assert_eq!(bytes("(?:a|)"), None);
    }

    #[test]
    fn regex_and_bytes_agree() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let alphabet = b"aZ09 <>=;'\"()-/\\%&*#~!@$^`|{}[]:,._+?\x00\x7f\xff\n";
        for p in [
            r#"(?:[~!@#\$%\^&\*\(\)\-\+=\{\}\[\]\|:;"'`<>][^~!@#\$%\^&\*\(\)\-\+=\{\}\[\]\|:;"'`<>]*?){2}"#,
            r#"['"]\s*[;)]"#,
            r"(?i)[<>]|a[0-9]{2}",
            r"\W{4}",
            r"(?:\x00|%00)",
        ] {
            let full = format!("(?s-u:{p})");
            let re = regex::bytes::Regex::new(&full).expect("compiles");
            let set = required_bytes(&full).expect("has bytes");
            for _ in 0..3000 {
                let mut hay = Vec::new();
                for _ in 0..(seed % 12) {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    hay.push(alphabet[(seed % alphabet.len() as u64) as usize]);
                }
                seed = seed.wrapping_add(1);
                let has = hay.iter().any(|&b| set.contains(b));
                assert!(has || !re.is_match(&hay), "{p} on {hay:?}");
            }
        }
    }

    #[test]
    fn regex_and_literals_agree() {
        for p in [
            r"(?i)<script[^>]*>",
            r"(?:\$|&dollar;?)(?:\{|&l(?:brace|cub);?)",
            r"(?i)(?:on(?:error|load)|javascript:)",
            r"\.\./",
            r"(?:a|b)(?:c|d)x?y",
        ] {
            let full = format!("(?s-u:{p})");
            let re = regex::bytes::Regex::new(&full).expect("compiles");
            let lits = minimal(required(&full).expect("has literals")).expect("minimal");
            for hay in [
                "<SCRIPT src=x>",
                "${jndi",
                "&dollar;&lbrace;",
                "OnLoad=",
                "../../etc",
                "bdy",
                "plain text",
            ] {
                let low = hay.to_ascii_lowercase();
                let hit = lits
                    .iter()
                    .any(|l| memchr::memmem::find(low.as_bytes(), l).is_some());
                assert!(hit || !re.is_match(hay.as_bytes()), "{p} on {hay}");
            }
        }
    }
}
