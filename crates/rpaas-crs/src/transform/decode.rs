//! The decoding transformations (`t:urlDecode`, `t:htmlEntityDecode`, `t:jsDecode`,
//! `t:cssDecode`, `t:base64Decode`, `t:hexDecode`, `t:sqlHexDecode`, `t:utf8toUnicode`,
//! `t:escapeSeqDecode`): each returns `None` (or its input's equal) when nothing was decoded.

use super::{is_space, NBSP};

pub(super) fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

pub(super) fn x2c(hi: u8, lo: u8) -> Option<u8> {
    Some(hex_val(hi)? << 4 | hex_val(lo)?)
}

pub(super) fn is_hex4(s: &[u8]) -> bool {
    s.len() >= 4 && s[..4].iter().all(u8::is_ascii_hexdigit)
}

/// `%uHHHH` and `\uHHHH`: the low byte, plus 0x20 for full-width ASCII (U+FF01..U+FF5E).
pub(super) fn unicode_low_byte(h: &[u8]) -> u8 {
    let mut c = x2c(h[2], h[3]).unwrap_or(0);
    if c > 0 && c < 0x5f && matches!(h[0], b'f' | b'F') && matches!(h[1], b'f' | b'F') {
        c += 0x20;
    }
    c
}

pub(super) fn url_decode(input: &[u8], uni: bool) -> Option<Vec<u8>> {
    if !input.iter().any(|&c| c == b'%' || c == b'+') {
        return None;
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'%' if uni && matches!(input.get(i + 1), Some(b'u' | b'U')) => {
                if i + 5 < input.len() && is_hex4(&input[i + 2..]) {
                    out.push(unicode_low_byte(&input[i + 2..i + 6]));
                    i += 6;
                } else {
                    out.extend_from_slice(&input[i..i + 2]);
                    i += 2;
                }
            }
            b'%' => match (input.get(i + 1), input.get(i + 2)) {
                (Some(&h), Some(&l)) if x2c(h, l).is_some() => {
                    out.push(x2c(h, l).unwrap_or(0));
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

/// C `strtol` of a digit run, saturating like it does, then truncated to a byte.
pub(super) fn strtol_byte(digits: &[u8], radix: u32) -> u8 {
    let mut v: u64 = 0;
    for &d in digits {
        let n = (d as char).to_digit(radix).unwrap_or(0);
        v = v
            .saturating_mul(u64::from(radix))
            .saturating_add(u64::from(n));
    }
    v.min(i64::MAX as u64) as u8
}

pub(super) fn html_entity_decode(input: &[u8]) -> Option<Vec<u8>> {
    if !input.contains(&b'&') {
        return None;
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    let n = input.len();
    while i < n {
        if input[i] == b'&' && i + 1 < n {
            if input[i + 1] == b'#' {
                let hex = i + 2 < n && matches!(input[i + 2], b'x' | b'X');
                let k = if hex { i + 3 } else { i + 2 };
                let mut j = k;
                while j < n
                    && (if hex {
                        input[j].is_ascii_hexdigit()
                    } else {
                        input[j].is_ascii_digit()
                    })
                {
                    j += 1;
                }
                if j > k {
                    out.push(strtol_byte(&input[k..j], if hex { 16 } else { 10 }));
                    i = if j < n && input[j] == b';' { j + 1 } else { j };
                    continue;
                }
            } else {
                let k = i + 1;
                let mut j = k;
                while j < n && input[j].is_ascii_alphanumeric() {
                    j += 1;
                }
                if j > k {
                    let decoded = match input[k..j].to_ascii_lowercase().as_slice() {
                        b"quot" => Some(b'"'),
                        b"amp" => Some(b'&'),
                        b"lt" => Some(b'<'),
                        b"gt" => Some(b'>'),
                        b"nbsp" => Some(NBSP),
                        _ => None,
                    };
                    match decoded {
                        Some(c) => {
                            out.push(c);
                            i = if j < n && input[j] == b';' { j + 1 } else { j };
                        }
                        None => {
                            out.extend_from_slice(&input[i..j]);
                            i = j;
                        }
                    }
                    continue;
                }
            }
        }
        out.push(input[i]);
        i += 1;
    }
    Some(out)
}

pub(super) fn is_odigit(c: u8) -> bool {
    (b'0'..=b'7').contains(&c)
}

/// Up to three octal digits starting at `start`; ModSecurity stops at two when the first digit
/// is above 3 (to stay within one byte) only for `jsDecode`.
pub(super) fn octal_run(input: &[u8], start: usize, limit_to_byte: bool) -> usize {
    let mut j = 0;
    while start + j < input.len() && j < 3 && is_odigit(input[start + j]) {
        j += 1;
    }
    if limit_to_byte && j == 3 && input[start] > b'3' {
        j = 2;
    }
    j
}

pub(super) fn js_decode(input: &[u8]) -> Option<Vec<u8>> {
    if !input.contains(&b'\\') {
        return None;
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    let n = input.len();
    while i < n {
        if input[i] != b'\\' {
            out.push(input[i]);
            i += 1;
            continue;
        }
        if i + 5 < n && input[i + 1] == b'u' && is_hex4(&input[i + 2..]) {
            out.push(unicode_low_byte(&input[i + 2..i + 6]));
            i += 6;
        } else if i + 3 < n && input[i + 1] == b'x' && x2c(input[i + 2], input[i + 3]).is_some() {
            out.push(x2c(input[i + 2], input[i + 3]).unwrap_or(0));
            i += 4;
        } else if i + 1 < n && is_odigit(input[i + 1]) {
            let j = octal_run(input, i + 1, true);
            out.push(strtol_byte(&input[i + 1..i + 1 + j], 8));
            i += 1 + j;
        } else if i + 1 < n {
            out.push(match input[i + 1] {
                b'a' => 0x07,
                b'b' => 0x08,
                b'f' => 0x0c,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'v' => 0x0b,
                c => c,
            });
            i += 2;
        } else {
            out.extend_from_slice(&input[i..]);
            i = n;
        }
    }
    Some(out)
}

pub(super) fn css_decode(input: &[u8]) -> Option<Vec<u8>> {
    if !input.contains(&b'\\') {
        return None;
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    let n = input.len();
    while i < n {
        if input[i] != b'\\' {
            out.push(input[i]);
            i += 1;
            continue;
        }
        if i + 1 >= n {
            // A trailing backslash is a continuation to nothing.
            i += 1;
            continue;
        }
        i += 1;
        let mut j = 0;
        while j < 6 && i + j < n && input[i + j].is_ascii_hexdigit() {
            j += 1;
        }
        if j > 0 {
            let h = &input[i..i + j];
            let last2 = |s: &[u8]| {
                if s.len() == 1 {
                    hex_val(s[0]).unwrap_or(0)
                } else {
                    x2c(s[s.len() - 2], s[s.len() - 1]).unwrap_or(0)
                }
            };
            let mut c = last2(h);
            let fullcheck = match j {
                4 => true,
                5 => h[0] == b'0',
                6 => h[0] == b'0' && h[1] == b'0',
                _ => false,
            };
            if fullcheck
                && c > 0
                && c < 0x5f
                && matches!(h[j - 3], b'f' | b'F')
                && matches!(h[j - 4], b'f' | b'F')
            {
                c += 0x20;
            }
            out.push(c);
            if i + j < n && is_space(input[i + j]) {
                j += 1;
            }
            i += j;
        } else if input[i] == b'\n' {
            i += 1;
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    Some(out)
}

pub(super) fn b64_val(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    }
}

/// `base64Decode` stops at the first byte outside the alphabet (as `apr_base64_decode`);
/// `base64DecodeExt` skips such bytes.
pub(super) fn base64_decode(input: &[u8], forgiving: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &c in input {
        let Some(v) = b64_val(c) else {
            if forgiving && c != b'=' {
                continue;
            }
            break;
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

pub(super) fn hex_decode(input: &[u8]) -> Vec<u8> {
    input
        .chunks(2)
        .map_while(|p| if p.len() == 2 { x2c(p[0], p[1]) } else { None })
        .collect()
}

pub(super) fn sql_hex_decode(input: &[u8]) -> Option<Vec<u8>> {
    // `0x` in either case, without a lower-cased copy.
    input
        .windows(2)
        .position(|w| w[0] == b'0' && w[1] | 0x20 == b'x')?;
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'0'
            && matches!(input.get(i + 1), Some(b'x' | b'X'))
            && input.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
            && input.get(i + 3).is_some_and(u8::is_ascii_hexdigit)
        {
            i += 2;
            while i + 1 < input.len() {
                match x2c(input[i], input[i + 1]) {
                    Some(c) => {
                        out.push(c);
                        i += 2;
                    }
                    None => break,
                }
            }
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Multi-byte UTF-8 sequences become `%uHHHH` (lower-case hex, at least four digits); invalid
/// bytes are copied.
pub(super) fn utf8_to_unicode(input: &[u8]) -> Option<Vec<u8>> {
    if input.is_ascii() {
        return None;
    }
    let mut out = Vec::with_capacity(input.len() * 2);
    let mut i = 0;
    while i < input.len() {
        let c = input[i];
        let (len, init) = match c {
            0xC0..=0xDF => (2, u32::from(c & 0x1F)),
            0xE0..=0xEF => (3, u32::from(c & 0x0F)),
            0xF0..=0xF7 => (4, u32::from(c & 0x07)),
            _ => (1, 0),
        };
        let valid = len > 1
            && i + len <= input.len()
            && input[i + 1..i + len].iter().all(|&b| b & 0xC0 == 0x80);
        if !valid {
            out.push(c);
            i += 1;
            continue;
        }
        let cp = input[i + 1..i + len]
            .iter()
            .fold(init, |acc, &b| (acc << 6) | u32::from(b & 0x3F));
        out.extend_from_slice(format!("%u{cp:04x}").as_bytes());
        i += len;
    }
    Some(out)
}

pub(super) fn escape_seq_decode(input: &[u8]) -> Option<Vec<u8>> {
    if !input.contains(&b'\\') {
        return None;
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    let n = input.len();
    while i < n {
        if input[i] != b'\\' || i + 1 >= n {
            out.push(input[i]);
            i += 1;
            continue;
        }
        let simple = match input[i + 1] {
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            b'\\' => Some(b'\\'),
            b'?' => Some(b'?'),
            b'\'' => Some(b'\''),
            b'"' => Some(b'"'),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            i += 2;
        } else if matches!(input[i + 1], b'x' | b'X')
            && i + 3 < n
            && x2c(input[i + 2], input[i + 3]).is_some()
        {
            out.push(x2c(input[i + 2], input[i + 3]).unwrap_or(0));
            i += 4;
        } else if is_odigit(input[i + 1]) {
            let j = octal_run(input, i + 1, false);
            out.push(strtol_byte(&input[i + 1..i + 1 + j], 8));
            i += 1 + j;
        } else {
            // An unknown escape loses its backslash.
            out.push(input[i + 1]);
            i += 2;
        }
    }
    Some(out)
}
