//! PROXY protocol v1 and v2 (<https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt>).
//!
//! Only the source and destination addresses are kept; TLVs are skipped. A `LOCAL` command (v2)
//! or `UNKNOWN` family (v1) means "use the socket address", shown as [`ProxyHeader::Local`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The v2 signature: `\r\n\r\n\0\r\nQUIT\n`.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// A v1 header is at most 107 bytes including the CRLF.
pub const V1_MAX_LEN: usize = 107;
/// Upper bound we accept for a v2 header (16-byte fixed part plus addresses and TLVs).
pub const V2_MAX_LEN: usize = 16 + 1024;

/// What the header says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyHeader {
    /// A proxied connection: the real client and the address it connected to.
    Proxied {
        source: SocketAddr,
        destination: SocketAddr,
    },
    /// Health checks and the like from the balancer itself: keep the socket addresses.
    Local,
}

/// Outcome of feeding a prefix of the stream to [`parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A complete header that used `len` bytes; the rest belongs to the application protocol.
    Done { header: ProxyHeader, len: usize },
    /// The bytes so far are a valid prefix; read more.
    Incomplete,
}

/// Why a header was refused. The connection is closed on any of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    #[error("no PROXY protocol header at the start of the stream")]
    Missing,
    #[error("PROXY v1 header is malformed: {0}")]
    BadV1(&'static str),
    #[error("PROXY v2 header is malformed: {0}")]
    BadV2(&'static str),
    #[error("PROXY header is longer than allowed")]
    TooLong,
}

/// Parses a PROXY header (v1 or v2) at the start of `buf`.
pub fn parse(buf: &[u8]) -> Result<Parsed, ProxyError> {
    if buf.is_empty() {
        return Ok(Parsed::Incomplete);
    }
    let n = buf.len().min(V2_SIGNATURE.len());
    if buf[..n] == V2_SIGNATURE[..n] {
        if buf.len() < V2_SIGNATURE.len() {
            return Ok(Parsed::Incomplete);
        }
        return parse_v2(buf);
    }
    let n = buf.len().min(6);
    if buf[..n] == b"PROXY "[..n] {
        if buf.len() < 6 {
            return Ok(Parsed::Incomplete);
        }
        return parse_v1(buf);
    }
    Err(ProxyError::Missing)
}

fn parse_v1(buf: &[u8]) -> Result<Parsed, ProxyError> {
    let limit = buf.len().min(V1_MAX_LEN);
    let Some(end) = buf[..limit].windows(2).position(|w| w == b"\r\n") else {
        return if buf.len() >= V1_MAX_LEN {
            Err(ProxyError::TooLong)
        } else if buf[..limit].contains(&b'\n') || buf[..limit].contains(&0) {
            Err(ProxyError::BadV1("bare LF or NUL in header"))
        } else {
            Ok(Parsed::Incomplete)
        };
    };
    // Refused here too, not only while the CRLF is missing: otherwise `PROXY UNKNOWN \n\r\n`
    // would be an error or a header depending on how the stream was cut into reads.
    if buf[..end].contains(&b'\n') || buf[..end].contains(&0) {
        return Err(ProxyError::BadV1("bare LF or NUL in header"));
    }
    let line = std::str::from_utf8(&buf[..end]).map_err(|_| ProxyError::BadV1("not ASCII"))?;
    let mut parts = line.split(' ');
    let _proxy = parts.next();
    let family = parts.next().ok_or(ProxyError::BadV1("no family"))?;
    let len = end + 2;
    if family == "UNKNOWN" {
        return Ok(Parsed::Done {
            header: ProxyHeader::Local,
            len,
        });
    }
    let (src, dst, sport, dport) = (parts.next(), parts.next(), parts.next(), parts.next());
    if parts.next().is_some() {
        return Err(ProxyError::BadV1("too many fields"));
    }
    let (Some(src), Some(dst), Some(sport), Some(dport)) = (src, dst, sport, dport) else {
        return Err(ProxyError::BadV1("missing fields"));
    };
    let (src, dst): (IpAddr, IpAddr) = match family {
        "TCP4" => (
            IpAddr::V4(
                src.parse()
                    .map_err(|_| ProxyError::BadV1("bad IPv4 source"))?,
            ),
            IpAddr::V4(
                dst.parse()
                    .map_err(|_| ProxyError::BadV1("bad IPv4 destination"))?,
            ),
        ),
        "TCP6" => (
            IpAddr::V6(
                src.parse()
                    .map_err(|_| ProxyError::BadV1("bad IPv6 source"))?,
            ),
            IpAddr::V6(
                dst.parse()
                    .map_err(|_| ProxyError::BadV1("bad IPv6 destination"))?,
            ),
        ),
        _ => return Err(ProxyError::BadV1("unknown family")),
    };
    let sport = parse_port(sport)?;
    let dport = parse_port(dport)?;
    Ok(Parsed::Done {
        header: ProxyHeader::Proxied {
            source: SocketAddr::new(src, sport),
            destination: SocketAddr::new(dst, dport),
        },
        len,
    })
}

fn parse_port(s: &str) -> Result<u16, ProxyError> {
    // The spec forbids leading zeros and signs; `u16::from_str` would accept "+80" and "080".
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ProxyError::BadV1("bad port"));
    }
    if s.len() > 1 && s.starts_with('0') {
        return Err(ProxyError::BadV1("port with leading zero"));
    }
    s.parse().map_err(|_| ProxyError::BadV1("bad port"))
}

fn parse_v2(buf: &[u8]) -> Result<Parsed, ProxyError> {
    if buf.len() < 16 {
        return Ok(Parsed::Incomplete);
    }
    let ver_cmd = buf[12];
    if ver_cmd >> 4 != 2 {
        return Err(ProxyError::BadV2("version is not 2"));
    }
    let command = ver_cmd & 0x0f;
    let fam = buf[13];
    let addr_len = u16::from_be_bytes([buf[14], buf[15]]) as usize;
    let len = 16 + addr_len;
    if len > V2_MAX_LEN {
        return Err(ProxyError::TooLong);
    }
    if buf.len() < len {
        return Ok(Parsed::Incomplete);
    }
    let body = &buf[16..len];
    match command {
        0 => Ok(Parsed::Done {
            header: ProxyHeader::Local,
            len,
        }),
        1 => {
            let header = match fam {
                // TCP over IPv4
                0x11 => {
                    if body.len() < 12 {
                        return Err(ProxyError::BadV2("short IPv4 address block"));
                    }
                    let src = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
                    let dst = Ipv4Addr::new(body[4], body[5], body[6], body[7]);
                    let sport = u16::from_be_bytes([body[8], body[9]]);
                    let dport = u16::from_be_bytes([body[10], body[11]]);
                    ProxyHeader::Proxied {
                        source: SocketAddr::new(src.into(), sport),
                        destination: SocketAddr::new(dst.into(), dport),
                    }
                }
                // TCP over IPv6
                0x21 => {
                    if body.len() < 36 {
                        return Err(ProxyError::BadV2("short IPv6 address block"));
                    }
                    let mut s = [0u8; 16];
                    let mut d = [0u8; 16];
                    s.copy_from_slice(&body[0..16]);
                    d.copy_from_slice(&body[16..32]);
                    let sport = u16::from_be_bytes([body[32], body[33]]);
                    let dport = u16::from_be_bytes([body[34], body[35]]);
                    ProxyHeader::Proxied {
                        source: SocketAddr::new(Ipv6Addr::from(s).into(), sport),
                        destination: SocketAddr::new(Ipv6Addr::from(d).into(), dport),
                    }
                }
                // UNSPEC: the receiver must use the socket addresses.
                0x00 => ProxyHeader::Local,
                _ => return Err(ProxyError::BadV2("unsupported address family")),
            };
            Ok(Parsed::Done { header, len })
        }
        _ => Err(ProxyError::BadV2("unknown command")),
    }
}

/// Encodes a v1 header; used by tests and by clients of our own test listeners.
pub fn encode_v1(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let fam = if source.is_ipv4() { "TCP4" } else { "TCP6" };
    format!(
        "PROXY {fam} {} {} {} {}\r\n",
        source.ip(),
        destination.ip(),
        source.port(),
        destination.port()
    )
    .into_bytes()
}

/// Encodes a v2 `PROXY` header with no TLVs. Both addresses must be of the same family.
pub fn encode_v2(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.push(0x21);
    match (source.ip(), destination.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            out.push(0x11);
            out.extend_from_slice(&12u16.to_be_bytes());
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
        (s, d) => {
            let v6 = |ip: IpAddr| match ip {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            };
            out.push(0x21);
            out.extend_from_slice(&36u16.to_be_bytes());
            out.extend_from_slice(&v6(s).octets());
            out.extend_from_slice(&v6(d).octets());
        }
    }
    out.extend_from_slice(&source.port().to_be_bytes());
    out.extend_from_slice(&destination.port().to_be_bytes());
    out
}

#[cfg(test)]
mod tests;
