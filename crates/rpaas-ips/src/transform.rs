//! Value transformations applied before matching, in the order a rule lists them.

use std::borrow::Cow;

/// One transformation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transform {
    /// Percent-decoding (and `+` as space, IIS `%uXXXX`) repeated until stable (at most 3 times),
    /// so double and triple encodings are seen through.
    UrlDecode,
    Lowercase,
    /// `&lt;`, `&#60;`, `&#x3c;` and friends.
    HtmlEntityDecode,
    /// Runs of white space (including `\v`, `\f`, NBSP) become one space.
    CompressWhitespace,
    /// SQL/C-style comments (`/* */`, `-- `, `#…` to end of line) removed: `UN/**/ION` is `UNION`.
    RemoveComments,
    /// `\` to `/`, `//` runs collapsed, `/./` removed (what a path traversal looks like to the OS).
    NormalizePath,
    /// NUL bytes removed.
    RemoveNulls,
}

impl Transform {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "url_decode" => Self::UrlDecode,
            "lowercase" => Self::Lowercase,
            "html_entity_decode" => Self::HtmlEntityDecode,
            "compress_whitespace" => Self::CompressWhitespace,
            "remove_comments" => Self::RemoveComments,
            "normalize_path" => Self::NormalizePath,
            "remove_nulls" => Self::RemoveNulls,
            _ => return None,
        })
    }

    pub fn apply<'a>(self, v: Cow<'a, str>) -> Cow<'a, str> {
        match self {
            Self::UrlDecode => {
                let mut cur = v;
                for _ in 0..3 {
                    if !has_escape(&cur) {
                        break;
                    }
                    let next = url_decode(&cur);
                    if next == cur {
                        break;
                    }
                    cur = Cow::Owned(next);
                }
                cur
            }
            Self::Lowercase => {
                if !v.is_ascii() {
                    Cow::Owned(v.to_lowercase())
                } else if v.bytes().any(|b| b.is_ascii_uppercase()) {
                    Cow::Owned(v.to_ascii_lowercase())
                } else {
                    v
                }
            }
            Self::HtmlEntityDecode => {
                if v.contains('&') {
                    let d = html_decode(&v);
                    if d == *v {
                        v
                    } else {
                        Cow::Owned(d)
                    }
                } else {
                    v
                }
            }
            Self::CompressWhitespace => {
                if v.chars().any(|c| c.is_whitespace() && c != ' ') || v.contains("  ") {
                    let mut out = String::with_capacity(v.len());
                    let mut last_space = false;
                    for c in v.chars() {
                        if c.is_whitespace() {
                            if !last_space {
                                out.push(' ');
                            }
                            last_space = true;
                        } else {
                            out.push(c);
                            last_space = false;
                        }
                    }
                    Cow::Owned(out)
                } else {
                    v
                }
            }
            Self::RemoveComments => {
                if v.contains("/*") || v.contains("--") || v.contains('#') {
                    Cow::Owned(remove_comments(&v))
                } else {
                    v
                }
            }
            Self::NormalizePath => {
                if v.contains('\\') || v.contains("//") || v.contains("/./") {
                    Cow::Owned(normalize_path(&v))
                } else {
                    v
                }
            }
            Self::RemoveNulls => {
                if v.contains('\0') {
                    Cow::Owned(v.replace('\0', ""))
                } else {
                    v
                }
            }
        }
    }
}

/// What a text holds that some transformation acts on: one bit per trigger, computed in one
/// pass, so a transformation that cannot change a text is not even tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Features(u16);

const PERCENT_PLUS: u16 = 1;
/// `&` and `;` both: an entity needs the two (a text with only one has nothing to decode).
const AMP: u16 = 1 << 1;
const NUL: u16 = 1 << 2;
const UPPER: u16 = 1 << 3;
const NON_ASCII: u16 = 1 << 4;
/// White space other than a single space, or two spaces in a row.
const SPACES: u16 = 1 << 5;
/// `/*`, `--` or `#`.
const COMMENT: u16 = 1 << 6;
/// `\`, `//` or `/.`.
const PATH: u16 = 1 << 7;
/// A control byte other than NUL and white space.
const CONTROL: u16 = 1 << 8;
/// `&` and `;` as seen by the byte scan, combined into [`AMP`] at its end.
const AMPERSAND: u16 = 1 << 9;
const SEMICOLON: u16 = 1 << 10;
/// Set by [`Features::bytes`]: the two-byte features were not looked for.
const BYTES_ONLY: u16 = 1 << 11;

/// Bits 12..15 of a byte's entry: its part in a two-byte trigger (`  `, `/*`, `--`, `//`,
/// `/.`), so the loop finds pairs with one more table lookup and no branch.
const PAIR_SHIFT: u16 = 12;
const FEATURE_BITS: u16 = (1 << PAIR_SHIFT) - 1;
const P_SPACE: u16 = 1;
const P_SLASH: u16 = 2;
const P_STAR: u16 = 3;
const P_DASH: u16 = 4;
const P_DOT: u16 = 5;

const fn pair_features() -> [u16; 64] {
    let mut t = [0u16; 64];
    t[(P_SPACE << 3 | P_SPACE) as usize] = SPACES;
    t[(P_SLASH << 3 | P_STAR) as usize] = COMMENT;
    t[(P_DASH << 3 | P_DASH) as usize] = COMMENT;
    t[(P_SLASH << 3 | P_SLASH) as usize] = PATH;
    t[(P_SLASH << 3 | P_DOT) as usize] = PATH;
    t
}

const fn byte_features() -> [u16; 256] {
    let mut t = [0u16; 256];
    let mut b = 0x80;
    while b < 256 {
        t[b] = NON_ASCII;
        b += 1;
    }
    let mut b = b'A' as usize;
    while b <= b'Z' as usize {
        t[b] = UPPER;
        b += 1;
    }
    t[b'%' as usize] = PERCENT_PLUS;
    t[b'+' as usize] = PERCENT_PLUS;
    t[b'&' as usize] = AMPERSAND;
    t[b';' as usize] = SEMICOLON;
    let mut b = 1;
    while b < 0x20 {
        t[b] = CONTROL;
        b += 1;
    }
    t[0x7f] = CONTROL;
    t[0] = NUL;
    t[b'\t' as usize] = SPACES;
    t[b'\n' as usize] = SPACES;
    t[0x0b] = SPACES;
    t[0x0c] = SPACES;
    t[b'\r' as usize] = SPACES;
    t[b'#' as usize] = COMMENT;
    t[b'\\' as usize] = PATH;
    t[b' ' as usize] = P_SPACE << PAIR_SHIFT;
    t[b'/' as usize] = P_SLASH << PAIR_SHIFT;
    t[b'*' as usize] = P_STAR << PAIR_SHIFT;
    t[b'-' as usize] = P_DASH << PAIR_SHIFT;
    t[b'.' as usize] = P_DOT << PAIR_SHIFT;
    t
}

static BYTE_FEATURES: [u16; 256] = byte_features();

/// Per two bytes `a b`: the features of `a` and of the pair.
/// Per byte: its part in a two-byte trigger (0: none).
const fn pair_parts() -> [u8; 256] {
    let bytes = byte_features();
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = (bytes[i] >> PAIR_SHIFT) as u8;
        i += 1;
    }
    t
}

/// Per pair part of a byte `a` and next byte `b` (index `part(a) << 8 | b`): the features of
/// `b` and of the pair. Small enough (3 KiB) to stay in the first-level cache.
const fn pair_table() -> [u16; 6 << 8] {
    let bytes = byte_features();
    let pairs = pair_features();
    let mut t = [0u16; 6 << 8];
    let mut i = 0;
    while i < 6 << 8 {
        let (a, b) = (i >> 8, bytes[i & 0xff]);
        t[i] = (b & FEATURE_BITS) | pairs[a << 3 | (b >> PAIR_SHIFT) as usize];
        i += 1;
    }
    t
}

static PAIR_PARTS: [u8; 256] = pair_parts();
static PAIR_TABLE: [u16; 6 << 8] = pair_table();

impl Features {
    pub(crate) fn of(s: &str) -> Self {
        let b = s.as_bytes();
        let Some(&first) = b.first() else {
            return Self::NONE;
        };
        // Per byte and its successor, two lookups that do not wait on the previous byte's:
        // the byte's pair part, then the successor's features and the pair's.
        let pair = |a: u8, c: u8| {
            u32::from(PAIR_TABLE[(PAIR_PARTS[a as usize] as usize) << 8 | c as usize])
        };
        // Four pairs per round into two accumulators, so the ORs do not wait on each other.
        let (mut f0, mut f1) = (u32::from(BYTE_FEATURES[first as usize]), 0u32);
        let mut chunks = b.windows(5).step_by(4);
        let mut done = 0;
        for w in chunks.by_ref() {
            f0 |= pair(w[0], w[1]) | pair(w[1], w[2]);
            f1 |= pair(w[2], w[3]) | pair(w[3], w[4]);
            done += 4;
        }
        for w in b[done..].windows(2) {
            f0 |= pair(w[0], w[1]);
        }
        Self::finish((f0 | f1) as u16)
    }

    fn finish(mut f: u16) -> Self {
        if f & (AMPERSAND | SEMICOLON) == AMPERSAND | SEMICOLON {
            f |= AMP;
        }
        Self(f & FEATURE_BITS & !(AMPERSAND | SEMICOLON))
    }

    /// The one-byte features alone (one lookup per byte): the two-byte ones (two spaces,
    /// `/*`, `--`, `//`, `/.`) are not looked for, and [`Features::has_all`] says so.
    pub(crate) fn bytes(s: &str) -> Self {
        let mut f = [0u16; 4];
        let mut chunks = s.as_bytes().chunks_exact(4);
        for c in chunks.by_ref() {
            for (acc, &b) in f.iter_mut().zip(c) {
                *acc |= BYTE_FEATURES[b as usize];
            }
        }
        for &b in chunks.remainder() {
            f[0] |= BYTE_FEATURES[b as usize];
        }
        let f = Self::finish(f[0] | f[1] | f[2] | f[3]);
        Self(f.0 | BYTES_ONLY)
    }

    /// False for [`Features::bytes`]: the two-byte features were not looked for.
    pub(crate) fn has_all(self) -> bool {
        self.0 & BYTES_ONLY == 0
    }

    /// Whether any of the two-byte features is among these.
    pub(crate) fn has_pairs(self) -> bool {
        self.0 & (SPACES | COMMENT | PATH) != 0
    }

    pub(crate) fn is_ascii(self) -> bool {
        self.0 & NON_ASCII == 0
    }

    pub(crate) const NONE: Self = Self(0);

    /// The features that say a text may hold one of `bytes`, or `None` when some byte of
    /// the set has no feature of its own.
    pub(crate) fn covering(bytes: impl Iterator<Item = u8>) -> Option<Self> {
        let mut f = 0;
        for b in bytes {
            let t = match b {
                b' ' | b'*' | b'-' | b'/' | b'.' | b'&' | b';' => return None,
                _ => BYTE_FEATURES[b as usize] & FEATURE_BITS,
            };
            if t == 0 {
                return None;
            }
            f |= t;
        }
        Some(Self(f))
    }

    pub(crate) fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    pub(crate) fn meets(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }
}

impl Transform {
    /// False when `apply` would certainly return its input unchanged.
    pub(crate) fn may_change(self, f: Features) -> bool {
        f.0 & self.triggers().0 != 0
    }

    /// What in a text this transformation acts on.
    pub(crate) fn triggers(self) -> Features {
        Features(match self {
            Self::UrlDecode => PERCENT_PLUS,
            Self::Lowercase => UPPER | NON_ASCII,
            Self::HtmlEntityDecode => AMP,
            Self::CompressWhitespace => SPACES | NON_ASCII,
            Self::RemoveComments => COMMENT,
            Self::NormalizePath => PATH,
            Self::RemoveNulls => NUL,
        })
    }
}

fn hexval(b: u8) -> Option<u32> {
    (b as char).to_digit(16)
}

/// Whether one round of [`url_decode`] would change anything.
fn has_escape(s: &str) -> bool {
    let b = s.as_bytes();
    let hex = |i: usize| b.get(i).is_some_and(u8::is_ascii_hexdigit);
    b.iter().enumerate().any(|(i, &c)| {
        c == b'+'
            || (c == b'%'
                && ((hex(i + 1) && hex(i + 2))
                    || (matches!(b.get(i + 1), Some(b'u' | b'U')) && (2..6).all(|k| hex(i + k)))))
    })
}

/// One round of decoding; invalid escapes are kept as they are.
pub fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        // Copy the plain run up to the next `%` or `+` at once.
        let run = b[i..]
            .iter()
            .position(|c| *c == b'%' || *c == b'+')
            .unwrap_or(b.len() - i);
        out.extend_from_slice(&b[i..i + run]);
        i += run;
        if i >= b.len() {
            break;
        }
        match b[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 5 < b.len() && (b[i + 1] == b'u' || b[i + 1] == b'U') => {
                let v = (2..6).try_fold(0u32, |acc, k| hexval(b[i + k]).map(|d| acc * 16 + d));
                // IIS maps full-width forms to ASCII ("best fit"); so do we.
                let v = v.map(|c| {
                    if (0xff01..=0xff5e).contains(&c) {
                        c - 0xff01 + 0x21
                    } else {
                        c
                    }
                });
                match v.and_then(char::from_u32) {
                    Some(c) => {
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        i += 6;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'%' if i + 2 < b.len() => match (hexval(b[i + 1]), hexval(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// `\` as `/`, runs of `/` as one, `/./` as `/`, in one pass.
fn normalize_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = if c == '\\' { '/' } else { c };
        if c == '/' {
            if out.ends_with('/') {
                continue;
            }
            if out.ends_with("/.") {
                out.pop();
                continue;
            }
        }
        out.push(c);
    }
    out
}

fn html_decode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let end = after.find(';').filter(|e| *e <= 10);
        let decoded = end.and_then(|e| {
            let ent = &after[..e];
            let c = if let Some(num) = ent.strip_prefix("#x").or_else(|| ent.strip_prefix("#X")) {
                u32::from_str_radix(num, 16).ok().and_then(char::from_u32)
            } else if let Some(num) = ent.strip_prefix('#') {
                num.parse::<u32>().ok().and_then(char::from_u32)
            } else {
                match ent.to_ascii_lowercase().as_str() {
                    "lt" => Some('<'),
                    "gt" => Some('>'),
                    "quot" => Some('"'),
                    "apos" => Some('\''),
                    "amp" => Some('&'),
                    "sol" => Some('/'),
                    "colon" => Some(':'),
                    "lpar" => Some('('),
                    "rpar" => Some(')'),
                    "tab" => Some('\t'),
                    "newline" => Some('\n'),
                    "nbsp" => Some(' '),
                    _ => None,
                }
            };
            c.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &after[e + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn remove_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.char_indices().peekable();
    let bytes = s.as_bytes();
    while let Some((i, c)) = it.next() {
        if c == '/' && bytes.get(i + 1) == Some(&b'*') {
            // Skip to the closing */ (or the end). MySQL runs the content of `/*! ... */`
            // (optionally versioned, `/*!50000 ... */`), so that content is kept.
            let end = s[i + 2..].find("*/").map(|e| i + 2 + e).unwrap_or(s.len());
            let close = (end + 2).min(s.len());
            if bytes.get(i + 2) == Some(&b'!') {
                let inner = &s[i + 3..end];
                out.push(' ');
                out.push_str(inner.trim_start_matches(|c: char| c.is_ascii_digit()));
                out.push(' ');
            }
            while it.peek().is_some_and(|(j, _)| *j < close) {
                it.next();
            }
            continue;
        }
        if (c == '-' && bytes.get(i + 1) == Some(&b'-')) || c == '#' {
            let eol = s[i..].find('\n').map(|e| i + e).unwrap_or(s.len());
            while it.peek().is_some_and(|(j, _)| *j < eol) {
                it.next();
            }
            out.push(' ');
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(x: Transform, s: &str) -> String {
        x.apply(Cow::Borrowed(s)).into_owned()
    }

    fn xorshift(seed: &mut u32) -> u32 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 17;
        *seed ^= *seed << 5;
        *seed
    }

    /// A transformation that `may_change` rules out leaves the text as it is.
    #[test]
    fn features_never_skip_a_change() {
        let alphabet: Vec<char> = "aZ%+&\0 \t\n/*-#\\.é\u{a0};x2uF".chars().collect();
        let all = [
            Transform::UrlDecode,
            Transform::Lowercase,
            Transform::HtmlEntityDecode,
            Transform::CompressWhitespace,
            Transform::RemoveComments,
            Transform::NormalizePath,
            Transform::RemoveNulls,
        ];
        let mut seed = 0x9e37_79b9_u32;
        for _ in 0..20_000 {
            let mut s = String::new();
            for _ in 0..xorshift(&mut seed) % 9 {
                s.push(alphabet[xorshift(&mut seed) as usize % alphabet.len()]);
            }
            let f = Features::of(&s);
            let b = Features::bytes(&s);
            assert!(!b.has_all() && f.has_all());
            assert_eq!(b.0 & !BYTES_ONLY & !f.0, 0, "{s:?}");
            if !["  ", "/*", "--", "//", "/."].iter().any(|p| s.contains(p)) {
                assert_eq!(b.0 & !BYTES_ONLY, f.0, "{s:?}");
            }
            if !has_escape(&s) {
                assert_eq!(url_decode(&s), s, "{s:?}");
            }
            for t in all {
                if !t.may_change(f) {
                    assert_eq!(t.apply(Cow::Borrowed(&s)), s, "{t:?} on {s:?}");
                }
            }
        }
    }

    /// The one-pass path normalisation does what replacing until nothing changes did.
    #[test]
    fn normalize_path_matches_repeated_replacement() {
        let slow = |v: &str| {
            let mut s = v.replace('\\', "/");
            while s.contains("//") {
                s = s.replace("//", "/");
            }
            while s.contains("/./") {
                s = s.replace("/./", "/");
            }
            s
        };
        let alphabet = ['/', '\\', '.', 'a', 'é'];
        let mut seed = 0x1234_5678_u32;
        for _ in 0..20_000 {
            let mut v = String::new();
            for _ in 0..xorshift(&mut seed) % 10 {
                v.push(alphabet[xorshift(&mut seed) as usize % alphabet.len()]);
            }
            assert_eq!(normalize_path(&v), slow(&v), "{v:?}");
        }
    }

    #[test]
    fn transforms() {
        assert_eq!(t(Transform::UrlDecode, "%2527%20or%201=1"), "' or 1=1");
        assert_eq!(t(Transform::UrlDecode, "a+b%u0027"), "a b'");
        assert_eq!(t(Transform::UrlDecode, "100%"), "100%");
        assert_eq!(t(Transform::Lowercase, "SeLeCt"), "select");
        assert_eq!(
            t(Transform::HtmlEntityDecode, "&lt;script&#62;&#x28;&amp;x"),
            "<script>(&x"
        );
        assert_eq!(
            t(Transform::CompressWhitespace, "union\t\n  select"),
            "union select"
        );
        assert_eq!(
            t(Transform::RemoveComments, "UN/**/ION SEL/*x*/ECT"),
            "UNION SELECT"
        );
        assert_eq!(t(Transform::RemoveComments, "1 -- x\nunion"), "1  \nunion");
        assert_eq!(
            t(Transform::RemoveComments, "UNION/*!50000SELECT*/1"),
            "UNION SELECT 1"
        );
        assert_eq!(t(Transform::UrlDecode, "%uff1cscript%uff1e"), "<script>");
        assert_eq!(
            t(Transform::NormalizePath, "..\\..//./windows"),
            "../../windows"
        );
        assert_eq!(t(Transform::RemoveNulls, "a\0b"), "ab");
    }
}
