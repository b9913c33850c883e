//! Automate's traffic classes and the map from canonical paths to them.

use std::fmt;

/// Who a request is for, by the part of Automate it reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TrafficClass {
    /// Agent check-in, updates, transfers, agent installers/uninstallers.
    Agent,
    /// `Deployment.aspx` installers.
    Deployment,
    /// The thick-client Control Center (`/LabTech/*.asmx`).
    ControlCenter,
    /// The Web Control Center (`/automate`, the `cwa` app).
    WebControlCenter,
    /// The REST API (`/cwa/api/...`).
    Api,
    /// The legacy web portal and contact logins (`/WCC2`).
    Portal,
    /// Anything else.
    Other,
}

impl TrafficClass {
    pub const ALL: [TrafficClass; 7] = [
        TrafficClass::Agent,
        TrafficClass::Deployment,
        TrafficClass::ControlCenter,
        TrafficClass::WebControlCenter,
        TrafficClass::Api,
        TrafficClass::Portal,
        TrafficClass::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Deployment => "deployment",
            Self::ControlCenter => "control_center",
            Self::WebControlCenter => "web_control_center",
            Self::Api => "api",
            Self::Portal => "portal",
            Self::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for TrafficClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The default Automate path map, on canonical (lowercase) paths. A segment after a handler
/// page (`/labtech/agent.aspx/x`) is ASP.NET path info: the page still runs, so the class is
/// the page's.
pub fn default_class(path: &str) -> TrafficClass {
    if let Some(rest) = path.strip_prefix("/labtech/") {
        let first = rest.split('/').next().unwrap_or("");
        return match first {
            "agent.aspx" => TrafficClass::Agent,
            "updates" | "transfer" | "service" if rest.len() > first.len() => TrafficClass::Agent,
            "deployment.aspx" => TrafficClass::Deployment,
            f if f.ends_with(".asmx") => TrafficClass::ControlCenter,
            _ => TrafficClass::Other,
        };
    }
    if under(path, "/automate") {
        return TrafficClass::WebControlCenter;
    }
    if under(path, "/cwa/api") {
        return TrafficClass::Api;
    }
    if under(path, "/cwa") {
        return TrafficClass::WebControlCenter;
    }
    if under(path, "/wcc2") {
        return TrafficClass::Portal;
    }
    TrafficClass::Other
}

/// `path` is `dir` or below it.
fn under(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Why a path pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("{0:?} must start with '/'")]
    NotAbsolute(String),
    #[error("{0:?}: write the canonical path (no '\\', '?', '#', '%' or control characters)")]
    NotCanonical(String),
}

/// A path pattern on canonical paths: lowercase; `*` matches within a segment, `**` across
/// segments; a pattern ending in `/` matches that directory and everything below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    text: String,
}

impl PathPattern {
    pub fn parse(s: &str) -> Result<Self, PatternError> {
        if !s.starts_with('/') {
            return Err(PatternError::NotAbsolute(s.to_string()));
        }
        if s.contains(['\\', '?', '#', '%']) || s.chars().any(char::is_control) {
            return Err(PatternError::NotCanonical(s.to_string()));
        }
        let mut text = s.to_lowercase();
        if text.ends_with('/') && text.len() > 1 {
            text.push_str("**");
        }
        Ok(Self { text })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn matches(&self, path: &str) -> bool {
        let p = self.text.as_bytes();
        // "/dir/**" also matches "/dir" itself.
        if let Some(dir) = self.text.strip_suffix("/**") {
            if path == dir {
                return true;
            }
        }
        glob(p, path.as_bytes())
    }
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(b'*') if p.get(1) == Some(&b'*') => {
            let rest = &p[2..];
            (0..=s.len()).any(|i| glob(rest, &s[i..]))
        }
        Some(b'*') => {
            let rest = &p[1..];
            let mut i = 0;
            loop {
                if glob(rest, &s[i..]) {
                    return true;
                }
                if i == s.len() || s[i] == b'/' {
                    return false;
                }
                i += 1;
            }
        }
        Some(c) => s.first() == Some(c) && glob(&p[1..], &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TrafficClass::*;

    #[test]
    fn default_map() {
        let cases = [
            ("/labtech/agent.aspx", Agent),
            ("/labtech/agent.aspx/extra", Agent),
            ("/labtech/updates/agent.zip", Agent),
            ("/labtech/transfer/scripts/x.ps1", Agent),
            ("/labtech/service/labtechremoteagent.msi", Agent),
            ("/labtech/service/labuninstall.exe", Agent),
            ("/labtech/updates", Other),
            ("/labtech/deployment.aspx", Deployment),
            ("/labtech/controlcenter.asmx", ControlCenter),
            ("/labtech/controlcenter.asmx/getversion", ControlCenter),
            ("/labtech/other.asmx", ControlCenter),
            ("/labtech/", Other),
            ("/labtech/agentx.aspx", Other),
            ("/automate", WebControlCenter),
            ("/automate/", WebControlCenter),
            ("/automate/login", WebControlCenter),
            ("/automatex", Other),
            ("/cwa/api/v1/apitoken", Api),
            ("/cwa/api", Api),
            ("/cwa/", WebControlCenter),
            ("/wcc2/", Portal),
            ("/wcc2/home/login", Portal),
            ("/wcc2x", Other),
            ("/", Other),
            ("/setupwizard.aspx", Other),
        ];
        for (p, c) in cases {
            assert_eq!(default_class(p), c, "{p}");
        }
    }

    #[test]
    fn patterns() {
        let p = PathPattern::parse("/Custom/").unwrap();
        assert!(p.matches("/custom"));
        assert!(p.matches("/custom/"));
        assert!(p.matches("/custom/a/b"));
        assert!(!p.matches("/customx"));
        let p = PathPattern::parse("/labtech/*.ashx").unwrap();
        assert!(p.matches("/labtech/x.ashx"));
        assert!(!p.matches("/labtech/a/x.ashx"));
        let p = PathPattern::parse("/a/**/z").unwrap();
        assert!(p.matches("/a/b/c/z"));
        let p = PathPattern::parse("/exact").unwrap();
        assert!(p.matches("/exact") && !p.matches("/exact/"));
        assert!(PathPattern::parse("relative").is_err());
        assert!(PathPattern::parse("/a%2f").is_err());
    }
}
