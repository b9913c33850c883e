//! Why the node refused a request, as a bounded enum. Every value of every variant comes from
//! a fixed set or from the config (restriction names, rule ids, countries): a value the client
//! chose never becomes a code, so codes are safe as metric labels.

use std::borrow::Cow;
use std::fmt;

/// A refusal reason. [`Reason::code`] is the stable string form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// No `Host` (or `:authority`), or not a plausible hostname.
    HostMissing,
    /// No instance serves the host.
    HostUnknown,
    /// The host belongs to another instance than the TLS connection's SNI.
    HostMismatch,
    /// The request target is not origin-form (`/...`) or not UTF-8.
    TargetInvalid,
    /// One of the node's `deny_methods` (the configured spelling, uppercase).
    DeniedMethod(&'static str),
    /// The client is banned.
    Ban,
    /// The instance's access policy.
    Policy(rpaas_policy::Reason),
    /// Over a rate limit: `login` or a traffic class's bucket.
    Rate(&'static str),
    /// The IPS blocked it (head or body), attributed to this rule.
    Ips(u32),
    /// The OWASP CRS blocked it (its anomaly score reached the threshold), attributed to the
    /// most severe detection rule that matched.
    Crs(u32),
    /// The listener the connection came in on is gone from the config.
    ListenerGone,
    /// The upstream could not be reached or failed.
    Upstream,
}

impl Reason {
    /// The stable code: `host:missing`, `host:unknown`, `host:mismatch`, `target:invalid`,
    /// `method:<M>`, `ban`, the policy's codes (`path:invalid`, `deny-list`, `method:<M>`,
    /// `restrict:<name>`, `acl:<class>`, `geoip:<CC>`, `geoip:unknown`), `rate:<bucket>`,
    /// `ips:<id>`, `crs:<id>`, `listener:gone`, `upstream:error`.
    pub fn code(&self) -> Cow<'static, str> {
        match self {
            Self::HostMissing => "host:missing".into(),
            Self::HostUnknown => "host:unknown".into(),
            Self::HostMismatch => "host:mismatch".into(),
            Self::TargetInvalid => "target:invalid".into(),
            Self::DeniedMethod(m) => format!("method:{m}").into(),
            Self::Ban => "ban".into(),
            Self::Policy(r) => r.code().into(),
            Self::Rate(b) => format!("rate:{b}").into(),
            Self::Ips(id) => format!("ips:{id}").into(),
            Self::Crs(id) => format!("crs:{id}").into(),
            Self::ListenerGone => "listener:gone".into(),
            Self::Upstream => "upstream:error".into(),
        }
    }

    /// The HTTP status the client gets.
    pub fn status(&self) -> u16 {
        match self {
            Self::HostMissing | Self::TargetInvalid => 400,
            Self::HostUnknown | Self::HostMismatch => 421,
            Self::DeniedMethod(_) => 405,
            Self::Rate(_) => 429,
            Self::ListenerGone => 503,
            Self::Upstream => 502,
            Self::Policy(r) => r.status(),
            Self::Ban | Self::Ips(_) | Self::Crs(_) => 403,
        }
    }

    /// Whether the refusal counts as a strike toward a ban (the client did something an
    /// attacker does: an IPS block, a rate limit, an ambiguous path).
    pub fn is_strike(&self) -> bool {
        matches!(
            self,
            Self::Ips(_)
                | Self::Crs(_)
                | Self::Rate(_)
                | Self::Policy(rpaas_policy::Reason::PathInvalid)
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code())
    }
}
