//! The bytes of a test request, built the way ftw builds them: `METHOD URI VERSION`, the
//! headers in file order, a blank line, the data. Nothing is normalised or re-encoded; the
//! only changes are the Host (the tests' `localhost` becomes the instance's name) and, unless
//! the test says `stop_magic`, ftw's Content-Type and Content-Length for a body.

use crate::ftw::{Parts, RequestSpec};

/// The test's stand-in for the server name.
const TEST_HOST: &str = "localhost";

/// The bytes to send for `spec`, with `host` for the tests' `Host: localhost`.
pub fn build(spec: &RequestSpec, host: &str) -> Vec<u8> {
    match spec {
        RequestSpec::Raw(bytes) => replace_raw_host(bytes, host),
        RequestSpec::Parts(p) => from_parts(p, host),
    }
}

fn from_parts(p: &Parts, host: &str) -> Vec<u8> {
    let mut headers: Vec<(&str, String)> = p
        .headers
        .iter()
        .map(|(k, v)| {
            let v = if k.eq_ignore_ascii_case("host") && v.eq_ignore_ascii_case(TEST_HOST) {
                host.to_string()
            } else {
                v.clone()
            };
            (k.as_str(), v)
        })
        .collect();
    let has = |headers: &[(&str, String)], name: &str| {
        headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name))
    };
    if !p.data.is_empty() && !p.stop_magic {
        if !has(&headers, "content-type") {
            headers.push(("Content-Type", "application/x-www-form-urlencoded".into()));
        }
        if !has(&headers, "content-length") {
            headers.push(("Content-Length", p.data.len().to_string()));
        }
    }
    let mut out = Vec::with_capacity(64 + p.uri.len() + p.data.len());
    out.extend_from_slice(p.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(p.uri.as_bytes());
    out.push(b' ');
    out.extend_from_slice(p.version.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (k, v) in &headers {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&p.data);
    out
}

/// Replaces the value of `Host: localhost` lines in the head of a raw request (up to the
/// first empty line); every other byte, line ending included, is kept.
fn replace_raw_host(raw: &[u8], host: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + host.len());
    let mut rest = raw;
    let mut first = true;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let (line, tail) = rest.split_at(end);
        let content = line
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .unwrap_or(line);
        if content.is_empty() {
            out.extend_from_slice(rest);
            return out;
        }
        match (first, host_line(content)) {
            (false, Some(name_len)) => {
                out.extend_from_slice(&content[..name_len]);
                out.extend_from_slice(b": ");
                out.extend_from_slice(host.as_bytes());
                out.extend_from_slice(&line[content.len()..]);
            }
            _ => out.extend_from_slice(line),
        }
        first = false;
        rest = tail;
    }
    out
}

/// `Some(len of "Host")` when the line is `Host: localhost` (any case, optional spaces).
fn host_line(line: &[u8]) -> Option<usize> {
    let colon = line.iter().position(|&b| b == b':')?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    (name.eq_ignore_ascii_case(b"host")
        && value
            .trim_ascii()
            .eq_ignore_ascii_case(TEST_HOST.as_bytes()))
    .then_some(colon)
}

#[cfg(test)]
mod tests;
