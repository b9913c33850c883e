//! What the command line names, parsed once: the URL, where connections really go
//! (`--connect`), port lists and durations.

use std::time::Duration;

use crate::error::UsageError;

/// The server as agents reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL as given.
    pub url: String,
    pub tls: bool,
    /// Host without brackets, lowercase: the SNI name and what a `Location` may name.
    pub host: String,
    pub port: u16,
}

impl Target {
    pub fn parse(url: &str) -> Result<Self, UsageError> {
        let bad = |reason| UsageError::Url {
            url: url.to_string(),
            reason,
        };
        let uri: http::Uri = url.parse().map_err(|_| bad("not a URL"))?;
        let tls = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("https") => true,
            Some(s) if s.eq_ignore_ascii_case("http") => false,
            _ => return Err(bad("write it as https://host[:port]/ (or http://)")),
        };
        let host = uri.host().ok_or_else(|| bad("no host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        if port == 0 {
            return Err(bad("port 0"));
        }
        Ok(Self {
            url: url.to_string(),
            tls,
            host,
            port,
        })
    }

    /// The `Host` header value.
    pub fn host_header(&self) -> String {
        let h = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.tls { 443 } else { 80 };
        if self.port == default {
            h
        } else {
            format!("{h}:{}", self.port)
        }
    }
}

/// `--connect HOST:PORT`: where the connection goes instead of the URL's host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    pub host: String,
    pub port: u16,
}

impl Connect {
    pub fn parse(s: &str) -> Result<Self, UsageError> {
        let bad = |reason| UsageError::Connect {
            value: s.to_string(),
            reason,
        };
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| bad("write it as HOST:PORT"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port: u16 = port.parse().map_err(|_| bad("not a port number"))?;
        if port == 0 {
            return Err(bad("port 0"));
        }
        Ok(Self {
            host: host.to_string(),
            port,
        })
    }
}

impl std::fmt::Display for Connect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The most ports one list may name: the audit is a check, not a scan.
pub const MAX_PORTS: usize = 1024;

/// The guide's closed list.
pub const GUIDE_CLOSED: &str = "3306,12413,3389,135,139,445,70,8002,40000-40050";
/// The guide's open TCP port.
pub const GUIDE_EXPECTED: &str = "443";
/// Open only when the Solution Center is used.
pub const GUIDE_OPTIONAL: &str = "8484";

/// Parses `3306,12413,40000-40050` (or `none`) into a sorted list without duplicates.
pub fn parse_ports(flag: &'static str, s: &str) -> Result<Vec<u16>, UsageError> {
    let bad = |reason: String| UsageError::Ports {
        flag,
        value: s.to_string(),
        reason,
    };
    let t = s.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    let port = |p: &str| -> Result<u16, UsageError> {
        match p.trim().parse::<u16>() {
            Ok(0) | Err(_) => Err(bad(format!("{p:?} is not a port (1-65535)"))),
            Ok(n) => Ok(n),
        }
    };
    let mut out = Vec::new();
    for part in t.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (port(a)?, port(b)?);
                if a > b {
                    return Err(bad(format!("range {part:?} runs backwards")));
                }
                if usize::from(b - a) >= MAX_PORTS {
                    return Err(bad(format!("more than {MAX_PORTS} ports")));
                }
                out.extend(a..=b);
            }
            None => out.push(port(part)?),
        }
        if out.len() > MAX_PORTS {
            return Err(bad(format!("more than {MAX_PORTS} ports")));
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// `30s`, `500ms`, `2m`, or a number of seconds.
pub fn parse_duration(flag: &'static str, s: &str) -> Result<Duration, UsageError> {
    let bad = |reason| UsageError::Duration {
        flag,
        value: s.to_string(),
        reason,
    };
    let t = s.trim();
    let (num, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| bad("write it as 30s, 500ms or 2m"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        _ => return Err(bad("units are ms, s or m")),
    };
    if d.is_zero() {
        return Err(bad("must be more than zero"));
    }
    if d > Duration::from_secs(3600) {
        return Err(bad("at most an hour"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Target::parse("https://Automate.Example.com/").expect("url");
        assert_eq!(
            (t.tls, t.host.as_str(), t.port),
            (true, "automate.example.com", 443)
        );
        assert_eq!(t.host_header(), "automate.example.com");
        let t = Target::parse("http://[::1]:8080").expect("url");
        assert_eq!((t.tls, t.host.as_str(), t.port), (false, "::1", 8080));
        assert_eq!(t.host_header(), "[::1]:8080");
        for bad in ["ftp://x/", "automate.example.com", "https://", ""] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn connect_addresses() {
        assert_eq!(
            Connect::parse("127.0.0.1:8443").expect("c"),
            Connect {
                host: "127.0.0.1".into(),
                port: 8443
            }
        );
        assert_eq!(
            Connect::parse("[::1]:443").expect("c").to_string(),
            "[::1]:443"
        );
        for bad in ["127.0.0.1", ":443", "h:0", "h:x"] {
            assert!(Connect::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn port_lists() {
        let guide = parse_ports("closed-ports", GUIDE_CLOSED).expect("guide");
        assert_eq!(guide.len(), 8 + 51);
        assert_eq!(&guide[..4], &[70, 135, 139, 445]);
        assert!(guide.contains(&40000) && guide.contains(&40050) && !guide.contains(&40051));
        assert_eq!(parse_ports("p", "443, 443,80").expect("p"), vec![80, 443]);
        assert!(parse_ports("p", "none").expect("p").is_empty());
        for bad in ["0", "70000", "10-5", "1-2000", "x", "1,,2"] {
            assert!(parse_ports("p", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("t", "30s").expect("d"),
            Duration::from_secs(30)
        );
        assert_eq!(
            parse_duration("t", "250ms").expect("d"),
            Duration::from_millis(250)
        );
        assert_eq!(
            parse_duration("t", "2m").expect("d"),
            Duration::from_secs(120)
        );
        assert_eq!(parse_duration("t", "5").expect("d"), Duration::from_secs(5));
        for bad in ["0", "5h", "s", "-1s"] {
            assert!(parse_duration("t", bad).is_err(), "{bad}");
        }
    }
}
