//! Why an issuance failed. The `Display` text is what an operator reads in `last_error`, so
//! each variant says which side failed: the CA, our challenge responder or hook, the network,
//! or this node.

use crate::store::StoreError;

/// A failure of the manager or of one order.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AcmeError {
    /// The CA refused because a rate limit was hit (`urn:ietf:params:acme:error:rateLimited`).
    #[error("rate limited by the CA: {detail}")]
    RateLimited {
        detail: String,
        /// When the CA said to retry, if it said (seconds since the epoch).
        retry_after: Option<u64>,
    },
    /// The CA tried our challenge response and did not accept it.
    #[error("{kind} challenge for {name} failed: {detail}")]
    Challenge {
        kind: &'static str,
        name: String,
        detail: String,
    },
    /// The CA does not offer the configured challenge kind for a name.
    #[error("the CA offers no {kind} challenge for {name}")]
    NoChallenge { kind: &'static str, name: String },
    /// Any other refusal by the CA (a problem document).
    #[error("the CA refused: {0}")]
    Ca(String),
    /// The directory could not be reached or answered badly.
    #[error("cannot talk to the ACME directory: {0}")]
    Transport(String),
    /// The order did not settle in time.
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// The dns-01 hook failed.
    #[error("dns hook `{action} {name}` failed: {detail}")]
    DnsHook {
        action: &'static str,
        name: String,
        detail: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Configuration that could only be checked when the manager was built (CA file).
    #[error("config: {0}")]
    Config(String),
    /// A key, CSR or certificate could not be made or read.
    #[error("internal: {0}")]
    Internal(String),
}

impl AcmeError {
    /// Maps instant-acme's error; problem documents keep their type so rate limits stand out.
    pub(crate) fn from_acme(e: instant_acme::Error) -> Self {
        match e {
            instant_acme::Error::Api(p) => Self::from_problem(&p),
            instant_acme::Error::Timeout(_) => Self::Timeout("the CA did not finish the order"),
            instant_acme::Error::Http(e) => Self::Transport(e.to_string()),
            instant_acme::Error::Hyper(e) => Self::Transport(e.to_string()),
            instant_acme::Error::InvalidUri(e) => Self::Transport(e.to_string()),
            instant_acme::Error::Json(e) => Self::Transport(format!("bad JSON from the CA: {e}")),
            instant_acme::Error::Other(e) => Self::Transport(error_chain(e.as_ref())),
            other => Self::Ca(other.to_string()),
        }
    }

    pub(crate) fn from_problem(p: &instant_acme::Problem) -> Self {
        let kind = p.r#type.as_deref().unwrap_or("");
        let detail = problem_text(p);
        if kind.ends_with(":rateLimited") {
            let retry_after = retry_after_in(&detail);
            return Self::RateLimited {
                detail,
                retry_after,
            };
        }
        Self::Ca(detail)
    }

    /// Whether this is the CA's rate limit.
    pub fn is_rate_limited(&self) -> bool {
        matches!(self, Self::RateLimited { .. })
    }
}

/// `detail (type)` with the `urn:ietf:params:acme:error:` prefix dropped, and subproblems.
pub(crate) fn problem_text(p: &instant_acme::Problem) -> String {
    let short = |t: &str| {
        t.strip_prefix("urn:ietf:params:acme:error:")
            .unwrap_or(t)
            .to_string()
    };
    let mut s = p.detail.clone().unwrap_or_else(|| "no detail".into());
    if let Some(t) = &p.r#type {
        s.push_str(&format!(" ({})", short(t)));
    }
    for sp in &p.subproblems {
        s.push_str("; ");
        if let Some(id) = &sp.identifier {
            s.push_str(&format!("{}: ", id.authorized(false)));
        }
        s.push_str(sp.detail.as_deref().unwrap_or("no detail"));
    }
    s
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// Let's Encrypt writes `retry after 2025-01-01 00:00:00 UTC` in rate-limit details.
fn retry_after_in(detail: &str) -> Option<u64> {
    let lower = detail.to_ascii_lowercase();
    let at = lower.find("retry after ")? + "retry after ".len();
    let rest = detail.get(at..)?;
    let stamp: String = rest.chars().take(19).collect();
    let t = humantime::parse_rfc3339_weak(&stamp).ok()?;
    t.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(json: &str) -> instant_acme::Problem {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn rate_limits_are_reported_as_such() {
        let p = problem(
            r#"{"type":"urn:ietf:params:acme:error:rateLimited","status":429,
                "detail":"too many certificates (5) already issued for this exact set of identifiers in the last 168h0m0s, retry after 2030-01-02 03:04:05 UTC: see https://letsencrypt.org/docs/rate-limits/"}"#,
        );
        let e = AcmeError::from_problem(&p);
        assert!(e.is_rate_limited());
        let text = e.to_string();
        assert!(
            text.starts_with("rate limited by the CA: too many certificates"),
            "{text}"
        );
        assert!(text.ends_with("(rateLimited)"), "{text}");
        let AcmeError::RateLimited { retry_after, .. } = e else {
            unreachable!()
        };
        assert_eq!(retry_after, Some(1_893_553_445));
    }

    #[test]
    fn other_problems_keep_type_and_subproblems() {
        let p = problem(
            r#"{"type":"urn:ietf:params:acme:error:rejectedIdentifier","detail":"Error creating new order",
                "subproblems":[{"type":"urn:ietf:params:acme:error:rejectedIdentifier","detail":"blocked name",
                "identifier":{"type":"dns","value":"x.example"}}]}"#,
        );
        let e = AcmeError::from_problem(&p);
        assert!(!e.is_rate_limited());
        assert_eq!(
            e.to_string(),
            "the CA refused: Error creating new order (rejectedIdentifier); x.example: blocked name"
        );
    }
}
