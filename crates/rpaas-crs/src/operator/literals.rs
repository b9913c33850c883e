//! Required literals of a regular expression: a set of which one occurs in every match. The
//! evaluator scans each value once for the literals of all rules and runs only the regexes
//! whose literal occurs, so this must never claim a literal that a match can do without.
//!
//! Built on `regex-syntax`'s prefix extraction, which is exact about what every match starts
//! with; a sub-expression that every match must contain (a concatenation's element, a
//! repetition with a minimum of one, each branch of an alternation) contributes its own prefixes.

use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::hir::{Hir, HirKind};

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
