//! PCRE patterns, as CRS writes them, run on the `regex` crate when they can and on
//! `fancy-regex` (backtracking, for look-around and back-references) when they cannot.
//!
//! ModSecurity compiles with `PCRE_DOTALL | PCRE_DOLLAR_ENDONLY` and without UTF mode, so both
//! engines run on bytes with `(?s-u)`: `.` is any byte, `\w`/`\s`/`\d` and `(?i)` are ASCII.

use std::borrow::Cow;

/// A compiled `@rx` pattern.
#[derive(Debug)]
pub enum Pattern {
    Fast(regex::bytes::Regex),
    Backtracking(Box<fancy_regex::Regex>),
}

/// The captures of a match: group 0 and up to nine more (ModSecurity's TX:0..TX:9).
pub type Captures = Vec<Vec<u8>>;

impl Pattern {
    pub fn compile(pcre: &str) -> Result<Self, String> {
        let translated = translate(pcre);
        let fast = regex::bytes::RegexBuilder::new(&format!("(?s-u:{translated})"))
            .size_limit(64 << 20)
            .dfa_size_limit(16 << 20)
            .build();
        match fast {
            Ok(re) => Ok(Self::Fast(re)),
            Err(fast_err) => fancy_regex::RegexBuilder::new(&translated)
                .bytes_mode(fancy_regex::BytesMode::Ascii)
                .dot_matches_new_line(true)
                .backtrack_limit(100_000)
                .build()
                .map(|re| Self::Backtracking(Box::new(re)))
                .map_err(|e| format!("regex: {fast_err}; fancy-regex: {e}")),
        }
    }

    pub fn is_backtracking(&self) -> bool {
        matches!(self, Self::Backtracking(_))
    }

    pub fn is_match(&self, hay: &[u8]) -> bool {
        match self {
            Self::Fast(re) => re.is_match(hay),
            // A backtrack-limit error counts as no match, as PCRE's match-limit errors do.
            Self::Backtracking(re) => re.is_match(hay).unwrap_or(false),
        }
    }

    /// The whole match and groups 1..=9 (empty for groups that did not take part).
    pub fn captures(&self, hay: &[u8]) -> Option<Captures> {
        match self {
            // No group but the whole match: a search for it is much cheaper than the
            // capturing engines.
            Self::Fast(re) if re.captures_len() == 1 => {
                re.find(hay).map(|m| vec![m.as_bytes().to_vec()])
            }
            Self::Fast(re) => {
                let caps = re.captures(hay)?;
                Some(
                    (0..caps.len().min(10))
                        .map(|i| caps.get(i).map_or(Vec::new(), |m| m.as_bytes().to_vec()))
                        .collect(),
                )
            }
            Self::Backtracking(re) => {
                let caps = re.captures(hay).ok()??;
                Some(
                    (0..caps.len().min(10))
                        .map(|i| caps.get(i).map_or(Vec::new(), |m| m.as_bytes().to_vec()))
                        .collect(),
                )
            }
        }
    }
}

/// Rewrites the PCRE-isms CRS uses that the `regex` parser reads differently: a `{` that does
/// not start a counted repetition is a literal; `\<`, `\>` are literals (not word boundaries);
/// `\Z`; `\e`; `\h`; `\0`; and inside classes `[`, `&`, `~` and `--` are literals and `\b` is a
/// backspace.
pub fn translate(pcre: &str) -> Cow<'_, str> {
    let b = pcre.as_bytes();
    let mut out = String::with_capacity(pcre.len() + 8);
    let mut i = 0;
    let mut in_class = false;
    let mut changed = false;
    while i < b.len() {
        let c = b[i];
        if c == b'\\' {
            let Some(&n) = b.get(i + 1) else {
                out.push_str("\\\\");
                changed = true;
                i += 1;
                continue;
            };
            let rep: Option<&str> = match n {
                b'<' => Some("<"),
                b'>' => Some(">"),
                b'Z' if !in_class => Some("(?:\\n?\\z)"),
                b'e' => Some("\\x1B"),
                b'h' if !in_class => Some("[\\t ]"),
                b'h' => Some("\\t "),
                b'b' if in_class => Some("\\x08"),
                b'0' if !b.get(i + 2).is_some_and(u8::is_ascii_digit) => Some("\\x00"),
                b'/' => Some("/"),
                _ => None,
            };
            match rep {
                Some(r) => {
                    out.push_str(r);
                    changed = true;
                }
                None => {
                    out.push('\\');
                    push_char(&mut out, pcre, i + 1);
                }
            }
            i += 1 + char_len(b[i + 1]);
            continue;
        }
        if in_class {
            match c {
                b']' => in_class = false,
                b'[' if b.get(i + 1) != Some(&b':') => {
                    out.push_str("\\[");
                    changed = true;
                    i += 1;
                    continue;
                }
                b'[' => {
                    // A POSIX class `[:alpha:]` goes through whole.
                    if let Some(end) = pcre[i..].find(":]") {
                        out.push_str(&pcre[i..i + end + 2]);
                        i += end + 2;
                        continue;
                    }
                }
                b'&' | b'~' => {
                    out.push('\\');
                    out.push(c as char);
                    changed = true;
                    i += 1;
                    continue;
                }
                b'-' if b.get(i + 1) == Some(&b'-') => {
                    out.push_str("\\-");
                    changed = true;
                    i += 1;
                    continue;
                }
                _ => {}
            }
            push_char(&mut out, pcre, i);
            i += char_len(c);
            continue;
        }
        match c {
            b'[' => {
                in_class = true;
                out.push('[');
                i += 1;
                if b.get(i) == Some(&b'^') {
                    out.push('^');
                    i += 1;
                }
                // A `]` first in a class is a literal.
                if b.get(i) == Some(&b']') {
                    out.push_str("\\]");
                    changed = true;
                    i += 1;
                }
                continue;
            }
            b'{' => {
                if let Some(len) = counted_repetition(&b[i..]) {
                    out.push_str(&pcre[i..i + len]);
                    i += len;
                } else {
                    out.push_str("\\{");
                    changed = true;
                    i += 1;
                }
                continue;
            }
            b'}' | b']' => {
                out.push('\\');
                out.push(c as char);
                changed = true;
                i += 1;
                continue;
            }
            _ => {}
        }
        push_char(&mut out, pcre, i);
        i += char_len(c);
    }
    if changed || !pcre.is_ascii() {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(pcre)
    }
}

/// Length of `{n}`, `{n,}` or `{n,m}` at the start of `s`.
fn counted_repetition(s: &[u8]) -> Option<usize> {
    let mut i = 1;
    let digits = |i: &mut usize| {
        let start = *i;
        while s.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    if !digits(&mut i) {
        return None;
    }
    if s.get(i) == Some(&b',') {
        i += 1;
        digits(&mut i);
    }
    (s.get(i) == Some(&b'}')).then_some(i + 1)
}

fn char_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// Copies one character; a non-ASCII one becomes `\xHH` per UTF-8 byte, since PCRE without
/// UTF mode reads the pattern as bytes (and the `regex` crate refuses Unicode in `(?-u)` classes).
fn push_char(out: &mut String, s: &str, at: usize) {
    let len = char_len(s.as_bytes()[at]);
    if let Some(ch) = s.get(at..at + len) {
        if ch.is_ascii() {
            out.push_str(ch);
        } else {
            for b in ch.bytes() {
                out.push_str(&format!("\\x{b:02X}"));
            }
        }
    }
}
