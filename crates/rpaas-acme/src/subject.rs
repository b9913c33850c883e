//! What certificates are for: a stored name and the DNS names it must cover.

use crate::error::AcmeError;
use crate::store::CertName;

/// One managed certificate pair: an instance (its id, its hostnames) or the wildcard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub name: CertName,
    /// Lowercase, no trailing dot, sorted, without duplicates.
    pub hostnames: Vec<String>,
}

/// A DNS name we can order: LDH labels of 1-63 characters, at least two labels, at most 253
/// characters; `*.` allowed as the first label.
fn check_hostname(h: &str) -> Result<(), String> {
    let body = h.strip_prefix("*.").unwrap_or(h);
    if h.len() > 253 || body.is_empty() {
        return Err(format!("{h:?} is not a DNS name"));
    }
    let labels: Vec<&str> = body.split('.').collect();
    if labels.len() < 2 {
        return Err(format!("{h:?} is not a fully qualified name"));
    }
    for l in labels {
        let ok = (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return Err(format!("{h:?} is not a DNS name"));
        }
    }
    Ok(())
}

impl Subject {
    /// A subject for `hostnames` (normalised; each must be a DNS name, at most 100 as CAs
    /// allow).
    pub fn new(name: CertName, hostnames: &[String]) -> Result<Self, AcmeError> {
        let mut hs: Vec<String> = hostnames
            .iter()
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
            .collect();
        hs.sort();
        hs.dedup();
        if hs.is_empty() || hs.len() > 100 {
            return Err(AcmeError::Config(format!(
                "{name}: a certificate needs 1 to 100 hostnames"
            )));
        }
        for h in &hs {
            check_hostname(h).map_err(|r| AcmeError::Config(format!("{name}: {r}")))?;
        }
        Ok(Self {
            name,
            hostnames: hs,
        })
    }

    /// The one `*.base_domain` certificate (dns-01 only).
    pub fn wildcard(base_domain: &str) -> Result<Self, AcmeError> {
        let base = base_domain.trim_end_matches('.').to_ascii_lowercase();
        let name = CertName::wildcard(&base).map_err(|e| AcmeError::Config(e.to_string()))?;
        Self::new(name, &[format!("*.{base}")])
    }

    /// Whether the certificate covers `host` (exact, or one label under a wildcard).
    pub fn covers(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hostnames.iter().any(|h| match h.strip_prefix("*.") {
            Some(base) => host
                .strip_suffix(base)
                .and_then(|l| l.strip_suffix('.'))
                .is_some_and(|l| !l.is_empty() && !l.contains('.')),
            None => *h == host,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> CertName {
        CertName::new(s).unwrap()
    }

    #[test]
    fn hostnames_are_normalised_and_checked() {
        let s = Subject::new(
            n("a"),
            &[
                "B.example.net.".into(),
                "a.example.net".into(),
                "b.example.net".into(),
            ],
        )
        .unwrap();
        assert_eq!(s.hostnames, ["a.example.net", "b.example.net"]);
        for bad in [
            "localhost",
            "a..b",
            "-a.b",
            "a_b.example",
            "*.",
            "a.*.b",
            "",
        ] {
            assert!(Subject::new(n("x"), &[bad.to_string()]).is_err(), "{bad}");
        }
        assert!(Subject::new(n("x"), &[]).is_err());
    }

    #[test]
    fn wildcards_cover_one_label() {
        let w = Subject::wildcard("Example.NET").unwrap();
        assert_eq!(w.name.as_str(), "wildcard.example.net");
        assert_eq!(w.hostnames, ["*.example.net"]);
        assert!(w.covers("052d3c3287c38201.example.net"));
        assert!(!w.covers("example.net"));
        assert!(!w.covers("a.b.example.net"));
        assert!(!w.covers("aexample.net"));
    }
}
