//! The `[acme]` table: one typed struct that the node's config spec embeds as it is, and a pure
//! validation step that names the field of every problem.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Let's Encrypt's production directory, the default.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// How the CA checks that we control a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ChallengeKind {
    /// RFC 8737: a certificate served on the node's own TLS port for ALPN `acme-tls/1`.
    #[default]
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
    /// A token served at `http://NAME/.well-known/acme-challenge/TOKEN` (port 80).
    #[serde(rename = "http-01")]
    Http01,
    /// A TXT record at `_acme-challenge.NAME`, set by `dns_hook`. The only kind that can
    /// prove a wildcard name.
    #[serde(rename = "dns-01")]
    Dns01,
}

impl ChallengeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TlsAlpn01 => "tls-alpn-01",
            Self::Http01 => "http-01",
            Self::Dns01 => "dns-01",
        }
    }
}

impl fmt::Display for ChallengeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A duration written as `"30d"`, `"5m"` (humantime) or a number of seconds; written back as
/// humantime text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigDuration(pub Duration);

impl Serialize for ConfigDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Seconds(s) => Ok(Self(Duration::from_secs(s))),
            Raw::Text(t) => humantime::parse_duration(&t).map(Self).map_err(|e| {
                serde::de::Error::custom(format!(
                    "bad duration {t:?}: {e} (write e.g. \"30d\" or \"5m\")"
                ))
            }),
        }
    }
}

impl From<Duration> for ConfigDuration {
    fn from(d: Duration) -> Self {
        Self(d)
    }
}

const DAY: u64 = 24 * 3600;

fn default_renew_before() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(30 * DAY))
}

fn default_hook_timeout() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(60))
}

fn default_dns_delay() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(30))
}

fn default_directory() -> String {
    LETS_ENCRYPT.to_string()
}

/// The `[acme]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeConfig {
    /// The CA's directory URL (`https://`).
    #[serde(default = "default_directory")]
    pub directory: String,
    /// Contact address given to the CA when the account is made (`mailto:` is added).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// A PEM root trusted for the directory's own TLS, on top of the system's (private CAs,
    /// tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    #[serde(default)]
    pub challenge: ChallengeKind,
    /// dns-01: a program run as `HOOK add|remove NAME VALUE`, NAME = `_acme-challenge.<domain>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_hook: Option<PathBuf>,
    /// How long one hook run may take before it is killed.
    #[serde(default = "default_hook_timeout")]
    pub dns_hook_timeout: ConfigDuration,
    /// Wait after `add` before the CA is asked to look (propagation to the authoritative
    /// servers). A hook that waits for propagation itself can set `"0s"`.
    #[serde(default = "default_dns_delay")]
    pub dns_delay: ConfigDuration,
    /// Renew this long before `not_after`.
    #[serde(default = "default_renew_before")]
    pub renew_before: ConfigDuration,
    /// With dns-01: one `*.base_domain` certificate for every provisioned instance.
    #[serde(default)]
    pub wildcard: bool,
}

impl Default for AcmeConfig {
    fn default() -> Self {
        Self {
            directory: default_directory(),
            email: None,
            ca: None,
            challenge: ChallengeKind::default(),
            dns_hook: None,
            dns_hook_timeout: default_hook_timeout(),
            dns_delay: default_dns_delay(),
            renew_before: default_renew_before(),
            wildcard: false,
        }
    }
}

/// One problem in the table: the key (relative to `[acme]`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub reason: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

impl AcmeConfig {
    /// Every problem at once; empty when the table is usable. Pure: reads no file (the CA file
    /// and the hook are checked when the manager is built).
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let mut err = |path: &str, reason: String| {
            errs.push(FieldError {
                path: path.to_string(),
                reason,
            })
        };
        if let Err(r) = check_directory(&self.directory) {
            err("directory", r);
        }
        if let Some(e) = &self.email {
            if let Err(r) = check_email(e) {
                err("email", r);
            }
        }
        if self.ca.as_deref().is_some_and(|p| p.as_os_str().is_empty()) {
            err("ca", "must not be empty".into());
        }
        match (self.challenge, &self.dns_hook) {
            (ChallengeKind::Dns01, None) => {
                err("dns_hook", "required with challenge = \"dns-01\"".into())
            }
            (ChallengeKind::Dns01, Some(p)) if p.as_os_str().is_empty() => {
                err("dns_hook", "must not be empty".into())
            }
            (other, Some(_)) if other != ChallengeKind::Dns01 => err(
                "dns_hook",
                format!("only used with challenge = \"dns-01\" (challenge is \"{other}\")"),
            ),
            _ => {}
        }
        if self.wildcard && self.challenge != ChallengeKind::Dns01 {
            err(
                "wildcard",
                "a wildcard certificate can only be proven with challenge = \"dns-01\"".into(),
            );
        }
        if self.dns_hook_timeout.0.is_zero() {
            err("dns_hook_timeout", "must be positive".into());
        }
        if self.dns_delay.0 > Duration::from_secs(3600) {
            err("dns_delay", "must be at most 1h".into());
        }
        let rb = self.renew_before.0;
        if rb < Duration::from_secs(3600) || rb > Duration::from_secs(365 * DAY) {
            err("renew_before", "must be between 1h and 365d".into());
        }
        errs
    }

    /// Makes relative `ca` and `dns_hook` paths relative to `base` (the config file's
    /// directory).
    pub fn resolve_paths(&mut self, base: &Path) {
        for p in [&mut self.ca, &mut self.dns_hook].into_iter().flatten() {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    /// The account contact, `mailto:` form.
    pub fn contact(&self) -> Option<String> {
        self.email.as_ref().map(|e| format!("mailto:{e}"))
    }
}

fn check_directory(url: &str) -> Result<(), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("not a URL ({e}): {url:?}"))?;
    if uri.scheme_str() != Some("https") {
        return Err(format!("must be an https:// URL, got {url:?}"));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("has no host: {url:?}"));
    }
    Ok(())
}

fn check_email(e: &str) -> Result<(), String> {
    let Some((local, domain)) = e.split_once('@') else {
        return Err(format!("not an email address: {e:?}"));
    };
    let bad = |c: char| c.is_whitespace() || c.is_control() || "<>,;:\"()[]\\@".contains(c);
    if local.is_empty() || domain.is_empty() || !domain.contains('.') {
        return Err(format!("not an email address: {e:?}"));
    }
    if local.chars().any(bad) || domain.chars().any(bad) {
        return Err(format!("not an email address: {e:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<AcmeConfig, String> {
        serde_json::from_value(toml_to_json(toml_text)).map_err(|e| e.to_string())
    }

    /// The tests write the table as JSON-compatible key/values (the node parses TOML; serde
    /// sees the same data model).
    fn toml_to_json(text: &str) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (k, v) = line.split_once('=').expect("k = v");
            let v: serde_json::Value = serde_json::from_str(v.trim()).expect("json value");
            m.insert(k.trim().to_string(), v);
        }
        serde_json::Value::Object(m)
    }

    fn paths(c: &AcmeConfig) -> Vec<String> {
        c.validate().into_iter().map(|e| e.path).collect()
    }

    #[test]
    fn defaults_are_valid_and_round_trip() {
        let c = parse("").unwrap();
        assert_eq!(c, AcmeConfig::default());
        assert_eq!(c.challenge, ChallengeKind::TlsAlpn01);
        assert_eq!(c.renew_before.0, Duration::from_secs(30 * DAY));
        assert!(c.validate().is_empty());
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["renew_before"], "30days");
        assert_eq!(json["challenge"], "tls-alpn-01");
        let back: AcmeConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn the_issue_example_parses() {
        let c = parse(
            r#"directory = "https://acme-v02.api.letsencrypt.org/directory"
               email = "ops@example.net"
               ca = "certs/acme-root.pem"
               challenge = "dns-01"
               dns_hook = "/usr/local/bin/dns-txt"
               renew_before = "30d"
               wildcard = true"#,
        )
        .unwrap();
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        assert_eq!(c.contact().as_deref(), Some("mailto:ops@example.net"));
        let mut r = c.clone();
        r.resolve_paths(Path::new("/etc/rpaas"));
        assert_eq!(
            r.ca.as_deref(),
            Some(Path::new("/etc/rpaas/certs/acme-root.pem"))
        );
        assert_eq!(
            r.dns_hook.as_deref(),
            Some(Path::new("/usr/local/bin/dns-txt"))
        );
        assert_eq!(
            parse("renew_before = 86400")
                .unwrap()
                .renew_before
                .0
                .as_secs(),
            86400
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(parse(r#"directroy = "https://x/""#)
            .unwrap_err()
            .contains("unknown field"));
        assert!(parse(r#"challenge = "tls-sni-01""#).is_err());
        assert!(parse(r#"renew_before = "soon""#)
            .unwrap_err()
            .contains("bad duration"));
    }

    #[test]
    fn validation_names_each_field() {
        let c = parse(
            r#"directory = "http://ca.example/dir"
               email = "not an address"
               challenge = "http-01"
               dns_hook = "/bin/true"
               wildcard = true
               renew_before = "10m"
               dns_hook_timeout = 0"#,
        )
        .unwrap();
        assert_eq!(
            paths(&c),
            [
                "directory",
                "email",
                "dns_hook",
                "wildcard",
                "dns_hook_timeout",
                "renew_before"
            ]
        );
        let msgs: Vec<String> = c.validate().iter().map(ToString::to_string).collect();
        assert!(msgs[0].contains("https://"), "{msgs:?}");
        assert!(msgs[2].contains("\"http-01\""), "{msgs:?}");
        let c = parse(r#"challenge = "dns-01""#).unwrap();
        assert_eq!(paths(&c), ["dns_hook"]);
        assert_eq!(
            paths(&parse(r#"directory = "https:///x""#).unwrap()),
            ["directory"]
        );
    }
}
