//! Response hardening, as pure functions over strings: which response headers give the origin
//! away, how a `Location`/`Content-Location`/`Refresh` that names the upstream's internal host
//! or an IP literal is rewritten to the public hostname the client used, and which methods are
//! refused before they reach the origin.
//!
//! The node applies these to upstream responses *and* to the responses it makes itself; this
//! crate does no I/O and knows nothing about Pingora.
#![forbid(unsafe_code)]

use std::net::IpAddr;

/// Response headers removed by default: they fingerprint IIS/ASP.NET and its versions.
pub const DEFAULT_STRIP: &[&str] = &[
    "server",
    "x-powered-by",
    "x-aspnet-version",
    "x-aspnetmvc-version",
    "x-sourcefiles",
];

/// Methods refused with 405 by default (the hardening guide's OPTIONS/TRACE plus their kin).
pub const DEFAULT_DENY_METHODS: &[&str] = &["OPTIONS", "TRACE", "TRACK", "CONNECT", "DEBUG"];

/// The default `Strict-Transport-Security` value (one year).
pub const DEFAULT_HSTS: &str = "max-age=31536000";

/// Is `method` in `denied`? Compared without case: HTTP says methods are case-sensitive, but
/// a lowercase `options` must not slip past because some origin might fold it.
pub fn is_denied_method(method: &str, denied: &[String]) -> bool {
    denied.iter().any(|m| m.eq_ignore_ascii_case(method))
}

/// What the rewriter knows about one instance.
#[derive(Debug, Clone)]
pub struct LocationRewrite<'a> {
    /// Hostnames that belong to the origin (the upstream URL's host, `upstream_host`), lowercase.
    pub internal_hosts: &'a [String],
    /// The public hostname the client used; the rewritten URL points here.
    pub public_host: &'a str,
}

impl LocationRewrite<'_> {
    /// Rewrites an absolute URL whose host is internal (or any IP literal) to
    /// `https://<public_host><path>`. Returns `None` when the value needs no change.
    pub fn rewrite_url(&self, value: &str) -> Option<String> {
        let trimmed = value.trim();
        let rest = split_scheme(trimmed)?;
        let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..auth_end];
        let tail = &rest[auth_end..];
        // Drop userinfo: it is never meaningful in a redirect and hides the host.
        let hostport = authority.rsplit('@').next().unwrap_or(authority);
        let host = host_of(hostport);
        if host.is_empty() || !self.is_internal(host) {
            return None;
        }
        let tail = if tail.is_empty() { "/" } else { tail };
        Some(format!("https://{}{}", self.public_host, tail))
    }

    /// Rewrites the URL inside a `Refresh` value (`5; url=http://10.0.0.5/x`).
    pub fn rewrite_refresh(&self, value: &str) -> Option<String> {
        let lower = value.to_ascii_lowercase();
        let idx = lower.find("url=")?;
        let url_start = idx + 4;
        let raw = &value[url_start..];
        let (quote, inner) = match raw.chars().next() {
            Some(q @ ('\'' | '"')) => (Some(q), &raw[1..]),
            _ => (None, raw),
        };
        let inner = match quote {
            Some(q) => inner.split(q).next().unwrap_or(inner),
            None => inner,
        };
        let new = self.rewrite_url(inner)?;
        let q = quote.map(String::from).unwrap_or_default();
        Some(format!("{}{q}{new}{q}", &value[..url_start]))
    }

    fn is_internal(&self, host: &str) -> bool {
        let h = host.trim_end_matches('.');
        if parse_ip_literal(h).is_some() {
            return true;
        }
        self.internal_hosts
            .iter()
            .any(|i| i.eq_ignore_ascii_case(h))
    }
}

/// Splits `scheme://rest`, accepting only http(s) and scheme-relative `//rest`.
fn split_scheme(v: &str) -> Option<&str> {
    if let Some(rest) = v.strip_prefix("//") {
        return Some(rest);
    }
    let colon = v.find("://")?;
    let scheme = &v[..colon];
    if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
        Some(&v[colon + 3..])
    } else {
        None
    }
}

/// The host part of `host[:port]` or `[v6]:port`.
fn host_of(hostport: &str) -> &str {
    if let Some(rest) = hostport.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    match hostport.rfind(':') {
        Some(i) if hostport[i + 1..].bytes().all(|b| b.is_ascii_digit()) => &hostport[..i],
        _ => hostport,
    }
}

/// Parses IP literals the way browsers and IIS accept them, including the dotted decimal form
/// with fewer parts and hex/octal octets (`http://0x7f.1/`), so a leak cannot hide in them.
pub fn parse_ip_literal(host: &str) -> Option<IpAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(ip);
    }
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut nums = Vec::with_capacity(parts.len());
    for p in &parts {
        nums.push(parse_ipv4_number(p)?);
    }
    let last = *nums.last()?;
    let head = &nums[..nums.len() - 1];
    if head.iter().any(|n| *n > 255) {
        return None;
    }
    let max_last = 1u64 << (8 * (5 - nums.len()));
    if last >= max_last {
        return None;
    }
    let mut v: u64 = 0;
    for (i, n) in head.iter().enumerate() {
        v |= n << (24 - 8 * i);
    }
    v |= last;
    Some(IpAddr::V4(std::net::Ipv4Addr::from(v as u32)))
}

fn parse_ipv4_number(p: &str) -> Option<u64> {
    if p.is_empty() {
        return None;
    }
    let (digits, radix) = if let Some(h) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
        (h, 16)
    } else if p.len() > 1 && p.starts_with('0') {
        (&p[1..], 8)
    } else {
        (p, 10)
    };
    if digits.is_empty() {
        return if radix == 16 { Some(0) } else { None };
    }
    u64::from_str_radix(digits, radix)
        .ok()
        .filter(|v| *v <= u32::MAX as u64)
}

#[cfg(test)]
mod tests;
