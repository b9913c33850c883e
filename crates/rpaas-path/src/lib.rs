//! Reads a request target the way IIS and ASP.NET would, so that an ACL decided on our reading
//! holds for theirs. The canonical path is lowercase, percent-decoded (including IIS `%uXXXX`),
//! uses `/` only, has no `//` runs, no `.`/`..` segments, no trailing dots or spaces in
//! segments, no `;params` and no ASP.NET cookieless segments such as `/(S(abc))/`.
//!
//! Anything that stays ambiguous is an error ([`PathError`]), never a guess: an encoded `/` or
//! `\` (the origin and we could split segments differently), a double-encoded byte, a NUL or
//! other control character, overlong or invalid UTF-8, a path escaping the root, NTFS stream
//! names (`::$DATA`), 8.3 short names (`PROGRA~1`), segments of only dots.
//!
//! Pure: no I/O, no allocation beyond the output strings.
#![forbid(unsafe_code)]

/// Why a target was rejected. Every variant is reported as `path:invalid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    #[error("target does not start with '/'")]
    NotOriginForm,
    #[error("malformed percent-escape")]
    BadEscape,
    #[error("encoded path separator")]
    EncodedSeparator,
    #[error("double-encoded character")]
    DoubleEncoded,
    #[error("control character or NUL")]
    ControlChar,
    #[error("invalid or overlong UTF-8")]
    BadUtf8,
    #[error("path escapes the root")]
    EscapesRoot,
    #[error("ambiguous segment")]
    AmbiguousSegment,
    #[error("fragment in request target")]
    Fragment,
}

/// A request target as the origin will read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canonical {
    /// Canonical path: starts with `/`, lowercase.
    pub path: String,
    /// The raw query string (after `?`, undecoded), if any.
    pub query: Option<String>,
    /// The decoded path contained `.`/`..` segments. Callers classify the raw form too and
    /// refuse the request if the two disagree (a traversal aimed at another class).
    pub had_dot_segments: bool,
}

/// Canonicalises an origin-form request target (`/path?query`).
pub fn canonicalize(target: &str) -> Result<Canonical, PathError> {
    let (raw_path, query) = match target.find('?') {
        Some(i) => (&target[..i], Some(target[i + 1..].to_string())),
        None => (target, None),
    };
    if raw_path.contains('#') {
        return Err(PathError::Fragment);
    }
    if !raw_path.starts_with('/') && !raw_path.starts_with('\\') {
        return Err(PathError::NotOriginForm);
    }
    let decoded = decode(raw_path.as_bytes())?;
    let text = String::from_utf8(decoded).map_err(|_| PathError::BadUtf8)?;
    let text = fold_lookalikes(text)?;
    let (path, had_dot_segments) = normalize(&text)?;
    Ok(Canonical {
        path,
        query,
        had_dot_segments,
    })
}

/// A quick reading of the raw target for the cross-check: lowercase, `\` as `/`, no decoding
/// and no dot resolution.
pub fn naive_path(target: &str) -> String {
    let p = target.split('?').next().unwrap_or("");
    p.replace('\\', "/").to_ascii_lowercase()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes once, with IIS `%uXXXX`. Encoded separators and anything that would decode
/// again to a different string are refused.
fn decode(raw: &[u8]) -> Result<Vec<u8>, PathError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != b'%' {
            if b < 0x20 || b == 0x7f {
                return Err(PathError::ControlChar);
            }
            out.push(b);
            i += 1;
            continue;
        }
        if raw.get(i + 1).is_some_and(|c| *c == b'u' || *c == b'U') {
            let unit = |at: usize| -> Result<u16, PathError> {
                let h = raw.get(at..at + 4).ok_or(PathError::BadEscape)?;
                let mut v: u16 = 0;
                for c in h {
                    v = (v << 4) | hex(*c).ok_or(PathError::BadEscape)? as u16;
                }
                Ok(v)
            };
            let first = unit(i + 2)?;
            i += 6;
            let ch = if (0xd800..0xdc00).contains(&first) {
                // A high surrogate must be followed by `%uDC00`-`%uDFFF`.
                if raw.get(i) != Some(&b'%')
                    || !raw.get(i + 1).is_some_and(|c| *c == b'u' || *c == b'U')
                {
                    return Err(PathError::BadUtf8);
                }
                let second = unit(i + 2)?;
                i += 6;
                char::decode_utf16([first, second])
                    .next()
                    .and_then(|r| r.ok())
                    .ok_or(PathError::BadUtf8)?
            } else {
                char::from_u32(first as u32).ok_or(PathError::BadUtf8)?
            };
            push_char(&mut out, ch)?;
            continue;
        }
        let (Some(h), Some(l)) = (
            raw.get(i + 1).and_then(|c| hex(*c)),
            raw.get(i + 2).and_then(|c| hex(*c)),
        ) else {
            return Err(PathError::BadEscape);
        };
        let v = (h << 4) | l;
        match v {
            b'/' | b'\\' => return Err(PathError::EncodedSeparator),
            0..=0x1f | 0x7f => return Err(PathError::ControlChar),
            b'%' => {
                // `%25XX` decodes to `%XX`, which a second decoder would read again.
                let next2 = (raw.get(i + 3), raw.get(i + 4));
                if let (Some(a), Some(b)) = next2 {
                    if hex(*a).is_some() && hex(*b).is_some() {
                        return Err(PathError::DoubleEncoded);
                    }
                }
                if raw.get(i + 3).is_some_and(|c| *c == b'u' || *c == b'U') {
                    return Err(PathError::DoubleEncoded);
                }
                out.push(b'%');
            }
            _ => out.push(v),
        }
        i += 3;
    }
    Ok(out)
}

/// The character Windows' best-fit mapping makes of `ch`: full-width forms become ASCII, the
/// division and fraction slashes `/`, the set-minus and small reverse solidus `\`.
fn best_fit(ch: char) -> char {
    match ch as u32 {
        0xff01..=0xff5e => char::from_u32(ch as u32 - 0xff01 + 0x21).unwrap_or(ch),
        0x2215 | 0x2044 => '/',
        0x2216 | 0xfe68 => '\\',
        _ => ch,
    }
}

/// Applies [`best_fit`] to every non-ASCII character of decoded text, whatever spelling
/// brought it there (`%uFF0F`, `%EF%BC%8F`, raw UTF-8): one rule for every encoding of a code
/// point. A look-alike separator is an encoded separator.
fn fold_lookalikes(text: String) -> Result<String, PathError> {
    if text.is_ascii() {
        return Ok(text);
    }
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if ch.is_ascii() {
            out.push(ch);
            continue;
        }
        match best_fit(ch) {
            '/' | '\\' => return Err(PathError::EncodedSeparator),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => return Err(PathError::ControlChar),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Appends a `%u`-decoded character, applying the best-fit mappings IIS applies to full-width
/// forms, so `%uFF0E` is the `.` IIS will see and `%uFF0F` an encoded separator.
fn push_char(out: &mut Vec<u8>, ch: char) -> Result<(), PathError> {
    match best_fit(ch) {
        '/' | '\\' => Err(PathError::EncodedSeparator),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => Err(PathError::ControlChar),
        c => {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            Ok(())
        }
    }
}

/// Segment-level rules on decoded text.
fn normalize(text: &str) -> Result<(String, bool), PathError> {
    let mut segments: Vec<String> = Vec::with_capacity(8);
    let mut had_dots = false;
    let trailing_slash = text.ends_with('/') || text.ends_with('\\');
    for raw_seg in text.split(['/', '\\']) {
        // `;params` are not part of the resource name.
        let seg = raw_seg.split(';').next().unwrap_or("");
        if seg.is_empty() {
            continue;
        }
        if is_cookieless(seg) {
            continue;
        }
        if seg.contains("::$") || seg.contains(':') {
            return Err(PathError::AmbiguousSegment);
        }
        if seg == "." {
            had_dots = true;
            continue;
        }
        if seg == ".." {
            had_dots = true;
            if segments.pop().is_none() {
                return Err(PathError::EscapesRoot);
            }
            continue;
        }
        // Windows drops trailing dots and spaces from names.
        let trimmed = seg.trim_end_matches(['.', ' ']);
        if trimmed.is_empty() {
            // "...", ". ", "  ": dot-like segments with no agreed meaning.
            return Err(PathError::AmbiguousSegment);
        }
        if is_short_name(trimmed) {
            return Err(PathError::AmbiguousSegment);
        }
        segments.push(trimmed.to_lowercase());
    }
    let mut path = String::with_capacity(text.len() + 1);
    for s in &segments {
        path.push('/');
        path.push_str(s);
    }
    if path.is_empty() || (trailing_slash && !segments.is_empty()) {
        path.push('/');
    }
    Ok((path, had_dots))
}

/// ASP.NET cookieless session/auth segments: `(X(...))` with one capital letter.
fn is_cookieless(seg: &str) -> bool {
    let b = seg.as_bytes();
    b.len() >= 5 && b[0] == b'(' && b[1].is_ascii_uppercase() && b[2] == b'(' && b.ends_with(b"))")
}

/// An 8.3 short name such as `AUTOMA~1` or `PROGRA~1.ASP`: `~` followed by a digit.
fn is_short_name(seg: &str) -> bool {
    let b = seg.as_bytes();
    b.windows(2).any(|w| w[0] == b'~' && w[1].is_ascii_digit())
}

#[cfg(test)]
mod tests;
