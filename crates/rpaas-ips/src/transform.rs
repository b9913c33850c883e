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
                    if !cur.contains(['%', '+']) {
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
                if v.bytes().any(|b| b.is_ascii_uppercase()) || !v.is_ascii() {
                    Cow::Owned(v.to_lowercase())
                } else {
                    v
                }
            }
            Self::HtmlEntityDecode => {
                if v.contains('&') {
                    Cow::Owned(html_decode(&v))
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
                    let mut s = v.replace('\\', "/");
                    while s.contains("//") {
                        s = s.replace("//", "/");
                    }
                    while s.contains("/./") {
                        s = s.replace("/./", "/");
                    }
                    Cow::Owned(s)
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

fn hexval(b: u8) -> Option<u32> {
    (b as char).to_digit(16)
}

/// One round of decoding; invalid escapes are kept as they are.
pub fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
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
    String::from_utf8_lossy(&out).into_owned()
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
