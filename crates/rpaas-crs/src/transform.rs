//! Transformation functions (`t:...`) with ModSecurity 2 semantics: bytes in, bytes out, never
//! failing. Each function returns `None` when its output equals its input, so chains allocate only
//! when something changes.

use std::borrow::Cow;

use sha1::{Digest, Sha1};

use crate::bytes::ByteSet;

mod decode;

use decode::{
    base64_decode, css_decode, escape_seq_decode, hex_decode, html_entity_decode, js_decode,
    sql_hex_decode, url_decode, utf8_to_unicode,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transform {
    Lowercase,
    UrlDecode,
    UrlDecodeUni,
    HtmlEntityDecode,
    JsDecode,
    CssDecode,
    CmdLine,
    CompressWhitespace,
    RemoveWhitespace,
    RemoveNulls,
    ReplaceNulls,
    ReplaceComments,
    RemoveComments,
    RemoveCommentsChar,
    NormalizePath,
    NormalizePathWin,
    Base64Decode,
    Base64DecodeExt,
    HexDecode,
    SqlHexDecode,
    Utf8ToUnicode,
    Length,
    Sha1,
    HexEncode,
    Trim,
    TrimLeft,
    TrimRight,
    EscapeSeqDecode,
}

/// What `t:name` means: reset the chain (`none`) or append a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransformName {
    None,
    Apply(Transform),
}

impl TransformName {
    /// Resolves a name case-insensitively; `None` for names this crate does not implement.
    pub fn parse(name: &str) -> Option<Self> {
        use Transform as T;
        Some(Self::Apply(match name.to_ascii_lowercase().as_str() {
            "none" => return Some(Self::None),
            "lowercase" => T::Lowercase,
            "urldecode" => T::UrlDecode,
            "urldecodeuni" => T::UrlDecodeUni,
            "htmlentitydecode" => T::HtmlEntityDecode,
            "jsdecode" => T::JsDecode,
            "cssdecode" => T::CssDecode,
            "cmdline" => T::CmdLine,
            "compresswhitespace" => T::CompressWhitespace,
            "removewhitespace" => T::RemoveWhitespace,
            "removenulls" => T::RemoveNulls,
            "replacenulls" => T::ReplaceNulls,
            "replacecomments" => T::ReplaceComments,
            "removecomments" => T::RemoveComments,
            "removecommentschar" => T::RemoveCommentsChar,
            "normalizepath" | "normalisepath" => T::NormalizePath,
            "normalizepathwin" | "normalisepathwin" => T::NormalizePathWin,
            "base64decode" => T::Base64Decode,
            "base64decodeext" => T::Base64DecodeExt,
            "hexdecode" => T::HexDecode,
            "sqlhexdecode" => T::SqlHexDecode,
            "utf8tounicode" => T::Utf8ToUnicode,
            "length" => T::Length,
            "sha1" => T::Sha1,
            "hexencode" => T::HexEncode,
            "trim" => T::Trim,
            "trimleft" => T::TrimLeft,
            "trimright" => T::TrimRight,
            "escapeseqdecode" => T::EscapeSeqDecode,
            _ => return None,
        }))
    }
}

impl Transform {
    /// Applies the function; `None` means "unchanged".
    pub fn apply(self, input: &[u8]) -> Option<Vec<u8>> {
        use Transform as T;
        let out = match self {
            T::Lowercase => {
                if !input.iter().any(u8::is_ascii_uppercase) {
                    return None;
                }
                input.to_ascii_lowercase()
            }
            T::UrlDecode => url_decode(input, false)?,
            T::UrlDecodeUni => url_decode(input, true)?,
            T::HtmlEntityDecode => html_entity_decode(input)?,
            T::JsDecode => js_decode(input)?,
            T::CssDecode => css_decode(input)?,
            // These three copy: look first whether they would change anything.
            T::CmdLine if cmd_line_keeps(input) => return None,
            T::CmdLine => cmd_line(input),
            T::CompressWhitespace if compress_whitespace_keeps(input) => return None,
            T::CompressWhitespace => compress_whitespace(input),
            T::RemoveWhitespace => filter(input, |c| !is_space(c) && c != NBSP)?,
            T::RemoveNulls => filter(input, |c| c != 0)?,
            T::ReplaceNulls => {
                if !input.contains(&0) {
                    return None;
                }
                input
                    .iter()
                    .map(|&c| if c == 0 { b' ' } else { c })
                    .collect()
            }
            T::ReplaceComments => replace_comments(input)?,
            T::RemoveComments => remove_comments(input)?,
            T::RemoveCommentsChar => remove_comments_char(input)?,
            T::NormalizePath if normalize_path_keeps(input, false) => return None,
            T::NormalizePath => normalize_path(input, false),
            T::NormalizePathWin if normalize_path_keeps(input, true) => return None,
            T::NormalizePathWin => normalize_path(input, true),
            T::Base64Decode => base64_decode(input, false),
            T::Base64DecodeExt => base64_decode(input, true),
            T::HexDecode => hex_decode(input),
            T::SqlHexDecode => sql_hex_decode(input)?,
            T::Utf8ToUnicode => utf8_to_unicode(input)?,
            T::Length => input.len().to_string().into_bytes(),
            T::Sha1 => Sha1::digest(input).to_vec(),
            T::HexEncode => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                input
                    .iter()
                    .flat_map(|&b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]])
                    .collect()
            }
            T::Trim => trim(input, true, true)?,
            T::TrimLeft => trim(input, true, false)?,
            T::TrimRight => trim(input, false, true)?,
            T::EscapeSeqDecode => escape_seq_decode(input)?,
        };
        if out == input {
            None
        } else {
            Some(out)
        }
    }
}

const UPPER: ByteSet = ByteSet::range(b'A', b'Z');
/// C `isspace` and the non-breaking space.
const SPACES: ByteSet = ByteSet::from_bytes(b" \t\n\x0b\x0c\r\xa0");
const CMD_LINE: ByteSet = ByteSet::from_bytes(b"\"'\\^,; \t\r\n").union(UPPER);
const COMMENTS: ByteSet = ByteSet::from_bytes(b"*-#");
const URL: ByteSet = ByteSet::from_bytes(b"%+");
const AMP: ByteSet = ByteSet::from_bytes(b"&");
const BACKSLASH: ByteSet = ByteSet::from_bytes(b"\\");
const NUL: ByteSet = ByteSet::from_bytes(b"\0");
const STAR: ByteSet = ByteSet::from_bytes(b"*");
const PATH: ByteSet = ByteSet::from_bytes(b"./");
const PATH_WIN: ByteSet = ByteSet::from_bytes(b"./\\");
const HIGH: ByteSet = ByteSet::range(0x80, 0xff);
const HEX_X: ByteSet = ByteSet::from_bytes(b"xX");

impl Transform {
    /// Bytes without which the function certainly returns a non-empty input; `FULL` for
    /// functions that (almost) always change it.
    fn triggers(self) -> ByteSet {
        use Transform as T;
        match self {
            T::Lowercase => UPPER,
            T::UrlDecode | T::UrlDecodeUni => URL,
            T::HtmlEntityDecode => AMP,
            T::JsDecode | T::CssDecode | T::EscapeSeqDecode => BACKSLASH,
            T::CmdLine => CMD_LINE,
            T::CompressWhitespace | T::RemoveWhitespace | T::Trim | T::TrimLeft | T::TrimRight => {
                SPACES
            }
            T::RemoveNulls | T::ReplaceNulls => NUL,
            // `/*` needs a `*`.
            T::ReplaceComments => STAR,
            // `/*`, `*/` need a `*`; `<!--`, `-->`, `--` a `-`.
            T::RemoveComments | T::RemoveCommentsChar => COMMENTS,
            T::NormalizePath => PATH,
            T::NormalizePathWin => PATH_WIN,
            T::Utf8ToUnicode => HIGH,
            // `0x`, in either case.
            T::SqlHexDecode => HEX_X,
            T::Base64Decode | T::Base64DecodeExt | T::HexDecode | T::Length | T::Sha1 => {
                ByteSet::FULL
            }
            T::HexEncode => ByteSet::FULL,
        }
    }

    /// True only when [`Transform::apply`] would return `None` for `input`, whose bytes are
    /// `bytes`; decided from the bytes alone where it can be, else by a check that does not
    /// copy. `false` says nothing.
    pub(crate) fn keeps(self, input: &[u8], bytes: &ByteSet) -> bool {
        use Transform as T;
        if matches!(self, T::Length | T::Sha1) {
            // They change even an empty input.
            return false;
        }
        if !bytes.intersects(&self.triggers()) {
            return true;
        }
        match self {
            T::CmdLine => cmd_line_keeps(input),
            T::CompressWhitespace => compress_whitespace_keeps(input),
            T::NormalizePath => normalize_path_keeps(input, false),
            T::NormalizePathWin => normalize_path_keeps(input, true),
            T::Trim => trim_keeps(input, true, true),
            T::TrimLeft => trim_keeps(input, true, false),
            T::TrimRight => trim_keeps(input, false, true),
            _ => false,
        }
    }
}

/// Bytes without which the whole chain certainly returns its input; `None` when it may change
/// any input (`t:length`, `t:sha1`).
pub(crate) fn chain_triggers(chain: &[Transform]) -> Option<ByteSet> {
    chain.iter().try_fold(ByteSet::EMPTY, |acc, t| {
        (!matches!(t, Transform::Length | Transform::Sha1)).then(|| acc.union(t.triggers()))
    })
}

/// [`apply_chain`] for an input whose bytes are known: the output and its bytes. Functions
/// that [`Transform::keeps`] the value are not called.
pub(crate) fn apply_chain_known<'a>(
    chain: &[Transform],
    input: &'a [u8],
    bytes: ByteSet,
) -> (Cow<'a, [u8]>, ByteSet) {
    let mut value = Cow::Borrowed(input);
    let mut bytes = bytes;
    for t in chain {
        if t.keeps(&value, &bytes) {
            continue;
        }
        if let Some(v) = t.apply(&value) {
            bytes = ByteSet::of(&v);
            value = Cow::Owned(v);
        }
    }
    (value, bytes)
}

/// True when [`trim`] returns `None`.
fn trim_keeps(input: &[u8], left: bool, right: bool) -> bool {
    !(left && input.first().is_some_and(|&c| is_space(c))
        || right && input.last().is_some_and(|&c| is_space(c)))
}

/// Applies a chain, returning the final value (borrowed when nothing changed).
pub fn apply_chain<'a>(chain: &[Transform], input: &'a [u8]) -> Cow<'a, [u8]> {
    let mut value = Cow::Borrowed(input);
    for t in chain {
        if let Some(v) = t.apply(&value) {
            value = Cow::Owned(v);
        }
    }
    value
}

pub(crate) const NBSP: u8 = 0xa0;

/// C `isspace` in the "C" locale.
pub(crate) fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn filter(input: &[u8], keep: impl Fn(u8) -> bool) -> Option<Vec<u8>> {
    if input.iter().all(|&c| keep(c)) {
        return None;
    }
    Some(input.iter().copied().filter(|&c| keep(c)).collect())
}

/// True when [`cmd_line`] returns its input: nothing to drop or lower-case, spaces single and
/// not before `/` or `(`.
fn cmd_line_keeps(input: &[u8]) -> bool {
    let mut space = false;
    for &c in input {
        match c {
            b'"' | b'\'' | b'\\' | b'^' | b',' | b';' | b'\t' | b'\r' | b'\n' => return false,
            b' ' if space => return false,
            b' ' => space = true,
            b'/' | b'(' if space => return false,
            c if c.is_ascii_uppercase() => return false,
            _ => space = false,
        }
    }
    true
}

fn cmd_line(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut space = false;
    for &c in input {
        match c {
            b'"' | b'\'' | b'\\' | b'^' => {}
            b' ' | b',' | b';' | b'\t' | b'\r' | b'\n' => {
                if !space {
                    out.push(b' ');
                    space = true;
                }
            }
            b'/' | b'(' => {
                if space {
                    out.pop();
                }
                space = false;
                out.push(c);
            }
            _ => {
                out.push(c.to_ascii_lowercase());
                space = false;
            }
        }
    }
    out
}

/// True when [`compress_whitespace`] returns its input: every space is a single `' '`.
fn compress_whitespace_keeps(input: &[u8]) -> bool {
    let mut space = false;
    for &c in input {
        if c == b' ' {
            if space {
                return false;
            }
            space = true;
        } else if is_space(c) || c == NBSP {
            return false;
        } else {
            space = false;
        }
    }
    true
}

fn compress_whitespace(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut in_ws = false;
    for &c in input {
        if is_space(c) || c == NBSP {
            if !in_ws {
                out.push(b' ');
                in_ws = true;
            }
        } else {
            out.push(c);
            in_ws = false;
        }
    }
    out
}

fn replace_comments(input: &[u8]) -> Option<Vec<u8>> {
    memchr::memmem::find(input, b"/*")?;
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    let mut in_comment = false;
    while i < input.len() {
        if !in_comment {
            if input[i] == b'/' && input.get(i + 1) == Some(&b'*') {
                in_comment = true;
                i += 2;
            } else {
                out.push(input[i]);
                i += 1;
            }
        } else if input[i] == b'*' && input.get(i + 1) == Some(&b'/') {
            in_comment = false;
            i += 2;
            out.push(b' ');
        } else {
            i += 1;
        }
    }
    if in_comment {
        out.push(b' ');
    }
    Some(out)
}

fn remove_comments(input: &[u8]) -> Option<Vec<u8>> {
    if !input
        .iter()
        .any(|&c| matches!(c, b'/' | b'<' | b'-' | b'#'))
    {
        return None;
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    let mut in_comment = false;
    while i < input.len() {
        let rest = &input[i..];
        if !in_comment {
            if rest.starts_with(b"/*") {
                in_comment = true;
                i += 2;
            } else if rest.starts_with(b"<!--") {
                in_comment = true;
                i += 4;
            } else if rest.starts_with(b"--") || rest[0] == b'#' {
                // The rest of the input is a line comment.
                break;
            } else {
                out.push(input[i]);
                i += 1;
            }
        } else if rest.starts_with(b"*/") {
            in_comment = false;
            i += 2;
        } else if rest.starts_with(b"-->") {
            in_comment = false;
            i += 3;
        } else {
            i += 1;
        }
    }
    if in_comment {
        out.push(b' ');
    }
    Some(out)
}

fn remove_comments_char(input: &[u8]) -> Option<Vec<u8>> {
    if !input
        .iter()
        .any(|&c| matches!(c, b'/' | b'*' | b'<' | b'-' | b'#'))
    {
        return None;
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let rest = &input[i..];
        if rest.starts_with(b"/*") || rest.starts_with(b"*/") {
            i += 2;
        } else if rest.starts_with(b"<!--") {
            i += 4;
        } else if rest.starts_with(b"-->") {
            i += 3;
        } else if rest.starts_with(b"--") {
            i += 2;
        } else if rest[0] == b'#' {
            i += 1;
        } else {
            out.push(rest[0]);
            i += 1;
        }
    }
    Some(out)
}

/// True when [`normalize_path`] returns its input: no empty, `.` or `..` segment (each needs
/// `//`, `/.` or a leading `.`) and, with `win`, no `\\`.
fn normalize_path_keeps(input: &[u8], win: bool) -> bool {
    !input.starts_with(b".")
        && memchr::memmem::find(input, b"//").is_none()
        && memchr::memmem::find(input, b"/.").is_none()
        && !(win && input.contains(&b'\\'))
}

/// Removes `//`, `/./` and resolves `/../` (a leading `..` of a relative path is kept, `..`
/// above the root of an absolute path is dropped). With `win`, `\` is a separator first.
fn normalize_path(input: &[u8], win: bool) -> Vec<u8> {
    let owned;
    let input = if win {
        owned = input
            .iter()
            .map(|&c| if c == b'\\' { b'/' } else { c })
            .collect::<Vec<u8>>();
        &owned[..]
    } else {
        input
    };
    if input.is_empty() {
        return Vec::new();
    }
    let absolute = input[0] == b'/';
    let trailing = input.len() > 1 && input.ends_with(b"/")
        || input.ends_with(b"/.")
        || input.ends_with(b"/..")
        || input == b"."
        || input == b"..";
    let mut segs: Vec<&[u8]> = Vec::new();
    for seg in input.split(|&c| c == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => match segs.last() {
                Some(&last) if last != b".." => {
                    segs.pop();
                }
                _ if absolute => {}
                _ => segs.push(seg),
            },
            s => segs.push(s),
        }
    }
    let mut out = Vec::with_capacity(input.len());
    if absolute {
        out.push(b'/');
    }
    for (k, s) in segs.iter().enumerate() {
        if k > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(s);
    }
    if trailing && !segs.is_empty() {
        out.push(b'/');
    }
    out
}

fn trim(input: &[u8], left: bool, right: bool) -> Option<Vec<u8>> {
    let mut s = input;
    if left {
        while let [first, rest @ ..] = s {
            if !is_space(*first) {
                break;
            }
            s = rest;
        }
    }
    if right {
        while let [rest @ .., last] = s {
            if !is_space(*last) {
                break;
            }
            s = rest;
        }
    }
    if s.len() == input.len() {
        None
    } else {
        Some(s.to_vec())
    }
}

#[cfg(test)]
mod tests;
