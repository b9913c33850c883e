//! What the core is told about a request: the connection, the head, and the state of bans and
//! rate limits.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use rpaas_config::{canonical_ip, ClientIpSource, Listener};
use rpaas_ips::limits::Rate;

/// The connection a request came on.
#[derive(Debug, Clone, Copy)]
pub struct Conn<'a> {
    /// Index of the `[[listener]]`.
    pub listener: usize,
    /// The TCP peer, or the client a trusted PROXY header named.
    pub peer: IpAddr,
    /// The SNI of the TLS connection (lowercase), if any.
    pub sni: Option<&'a str>,
}

/// Request headers, by lowercase name.
pub trait HeaderList: rpaas_policy::Headers {
    /// Calls `f` with every header (lowercase name, value).
    fn each<'s>(&'s self, f: &mut dyn FnMut(&'s str, &'s [u8]));
}

impl HeaderList for Vec<(String, String)> {
    fn each<'s>(&'s self, f: &mut dyn FnMut(&'s str, &'s [u8])) {
        for (k, v) in self {
            f(k.as_str(), v.as_bytes());
        }
    }
}

/// A request head.
pub struct Head<'a> {
    pub method: &'a str,
    /// The request target as received (`/path?query`).
    pub target: &'a [u8],
    /// The `Host` header, or the HTTP/2 `:authority` when there is none.
    pub authority: Option<&'a str>,
    pub headers: &'a dyn HeaderList,
    /// `HTTP/1.0`, `HTTP/1.1`, `HTTP/2.0` (CRS checks differ per version).
    pub protocol: &'a str,
}

/// The node's state of bans and rate limits, as the core asks it. `None` means "not known
/// here" (an offline explain).
pub trait Gates {
    /// Is the client banned?
    fn banned(&self, ip: IpAddr, now: Instant) -> Option<bool>;
    /// Takes a token from the client's `bucket` (a node) or says whether one would be taken
    /// (an explain against a node): `false` means over the rate.
    fn take(&self, ip: IpAddr, bucket: &'static str, rate: Rate, now: Instant) -> Option<bool>;
}

/// No state: bans and rate limits are unknown (`rpaas explain` without a running node).
#[derive(Debug, Clone, Copy, Default)]
pub struct Offline;

impl Gates for Offline {
    fn banned(&self, _: IpAddr, _: Instant) -> Option<bool> {
        None
    }
    fn take(&self, _: IpAddr, _: &'static str, _: Rate, _: Instant) -> Option<bool> {
        None
    }
}

/// The client address per the listener's `client_ip` rule. `X-Forwarded-For` is read only
/// from a trusted peer, right to left, skipping trusted hops.
pub fn client_ip(listener: &Listener, peer: IpAddr, headers: &dyn HeaderList) -> IpAddr {
    let peer = canonical_ip(peer);
    if listener.client_ip != ClientIpSource::XForwardedFor || !listener.trusts(peer) {
        return peer;
    }
    let mut hops: Vec<&str> = Vec::new();
    for v in headers.get_all("x-forwarded-for") {
        match std::str::from_utf8(v) {
            Ok(s) => hops.extend(s.split(',').map(str::trim).filter(|s| !s.is_empty())),
            Err(_) => return peer,
        }
    }
    let mut chosen = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            return chosen;
        };
        chosen = canonical_ip(ip);
        if !listener.trusts(chosen) {
            return chosen;
        }
    }
    chosen
}

fn parse_hop(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    s.parse::<SocketAddr>().ok().map(|sa| sa.ip())
}

/// The host a client asked for (lowercase, without trailing dot) and the port it named, if
/// any. `None` if empty or not a plausible hostname.
pub fn normalize_host(raw: &str) -> Option<(String, Option<u16>)> {
    let raw = raw.trim();
    let (host, port) = if let Some(rest) = raw.strip_prefix('[') {
        let (h, tail) = rest.split_once(']')?;
        (
            format!("[{h}]"),
            tail.strip_prefix(':').and_then(|p| p.parse().ok()),
        )
    } else {
        match raw.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => {
                (h.to_string(), p.parse().ok())
            }
            _ => (raw.to_string(), None),
        }
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.[]:_".contains(&b))
    {
        return None;
    }
    Some((host, port))
}
