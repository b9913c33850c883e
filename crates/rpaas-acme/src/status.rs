//! What the API, the metrics and `rpaas cert status` show about an instance's certificate.

use serde::{Serialize, Serializer};

use crate::plan::Decision;
use crate::store::IssueState;

/// Where the certificate being served comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertSource {
    Acme,
    File,
    SelfSigned,
}

/// Where issuance stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertState {
    /// No certificate yet; the first order is queued or running (a self-signed one is served).
    Pending,
    /// A certificate is served and not yet due for renewal.
    Valid,
    /// A certificate is served and its renewal is due, running, or backing off after a failure.
    Renewing,
    /// No usable certificate and the last attempt failed; see `last_error` and `next_attempt`.
    Failed,
}

fn rfc3339<S: Serializer>(t: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        None => s.serialize_none(),
        Some(secs) => {
            let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(*secs);
            s.serialize_str(&humantime::format_rfc3339_seconds(time).to_string())
        }
    }
}

/// One instance's certificate state. Times are seconds since the epoch in Rust and RFC 3339
/// text in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertStatus {
    pub source: CertSource,
    pub state: CertState,
    #[serde(serialize_with = "rfc3339")]
    pub not_after: Option<u64>,
    pub last_error: Option<String>,
    #[serde(serialize_with = "rfc3339")]
    pub next_attempt: Option<u64>,
}

impl CertStatus {
    /// A certificate from files.
    pub fn file(not_after: u64) -> Self {
        Self {
            source: CertSource::File,
            state: CertState::Valid,
            not_after: Some(not_after),
            last_error: None,
            next_attempt: None,
        }
    }

    /// A self-signed certificate made by the node (no ACME, no files).
    pub fn self_signed(not_after: u64) -> Self {
        Self {
            source: CertSource::SelfSigned,
            state: CertState::Valid,
            not_after: Some(not_after),
            last_error: None,
            next_attempt: None,
        }
    }

    /// Days until `not_after` (negative once expired), for the metrics.
    pub fn days_to_expiry(&self, now: u64) -> Option<f64> {
        self.not_after.map(|t| (t as f64 - now as f64) / 86_400.0)
    }
}

/// The status of an ACME subject. `served_not_after` is set when a full pair (ECDSA and RSA)
/// is being served; `busy` while an order runs.
pub(crate) fn acme_status(
    now: u64,
    served_not_after: Option<u64>,
    state: &IssueState,
    decision: &Decision,
    busy: bool,
) -> CertStatus {
    let usable = served_not_after.is_some_and(|t| t > now);
    let due = matches!(decision, Decision::Issue { .. } | Decision::Backoff { .. });
    let cert_state = match (usable, due || busy) {
        (true, false) => CertState::Valid,
        (true, true) => CertState::Renewing,
        (false, _) if state.failures > 0 && !busy => CertState::Failed,
        (false, _) => CertState::Pending,
    };
    let next_attempt = match decision {
        Decision::Backoff { until, .. } => Some(*until),
        Decision::Valid { renew_at } => Some(*renew_at),
        Decision::Issue { .. } => state.next_attempt.filter(|t| *t > now),
    };
    CertStatus {
        source: CertSource::Acme,
        state: cert_state,
        not_after: served_not_after,
        last_error: state.last_error.clone(),
        next_attempt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Need;

    #[test]
    fn states_and_json() {
        let ok = IssueState::default();
        let failed = IssueState {
            failures: 1,
            last_error: Some("tls-alpn-01 challenge for a failed: bad".into()),
            last_attempt: Some(90),
            next_attempt: Some(160),
        };
        let backoff = Decision::Backoff {
            until: 160,
            need: Need::Missing,
        };
        let s = acme_status(100, None, &failed, &backoff, false);
        assert_eq!(s.state, CertState::Failed);
        assert_eq!(s.next_attempt, Some(160));
        let issue = Decision::Issue {
            kinds: vec![],
            need: Need::Missing,
        };
        assert_eq!(
            acme_status(100, None, &ok, &issue, true).state,
            CertState::Pending
        );
        let valid = Decision::Valid { renew_at: 500 };
        let s = acme_status(100, Some(1000), &ok, &valid, false);
        assert_eq!(s.state, CertState::Valid);
        assert_eq!(
            s.days_to_expiry(100).map(|d| (d * 86400.0) as i64),
            Some(900)
        );
        assert_eq!(
            acme_status(100, Some(1000), &failed, &backoff, false).state,
            CertState::Renewing
        );
        let json =
            serde_json::to_value(acme_status(0, Some(1_800_000_000), &ok, &valid, false)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "source": "acme", "state": "valid", "not_after": "2027-01-15T08:00:00Z",
                "last_error": null, "next_attempt": "1970-01-01T00:08:20Z"
            })
        );
        assert_eq!(
            serde_json::to_value(CertStatus::self_signed(0)).unwrap()["source"],
            "self-signed"
        );
    }
}
