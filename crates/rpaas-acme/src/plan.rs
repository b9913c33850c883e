//! What to do about one subject, decided by pure functions of the time, the stored
//! certificates and the issuance state: no I/O, no clock (the manager passes `now`).

use std::time::Duration;

use crate::store::{IssueState, KeyKind, StoredCert};

/// Why certificates are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    /// `not_after - renew_before` has passed.
    RenewalDue,
    /// The operator asked for a new certificate.
    Forced,
    /// The subject's names are not the ones the certificate was ordered for.
    NamesChanged,
    /// Past `not_after`.
    Expired,
    /// There is none of this key type yet.
    Missing,
}

impl Need {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RenewalDue => "renewal due",
            Self::Forced => "forced",
            Self::NamesChanged => "names changed",
            Self::Expired => "expired",
            Self::Missing => "no certificate yet",
        }
    }
}

/// The decision for one subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Order these key types now.
    Issue { kinds: Vec<KeyKind>, need: Need },
    /// Something is needed but an earlier failure holds attempts off until `until`.
    Backoff { until: u64, need: Need },
    /// Nothing to do before `renew_at`.
    Valid { renew_at: u64 },
}

/// Certificates of the same subject whose renewal falls this close are renewed together, so
/// the pair stays in step.
const TOGETHER: u64 = 24 * 3600;

fn need_of(
    now: u64,
    names: &[String],
    cert: Option<&StoredCert>,
    renew_before: Duration,
) -> (Option<Need>, u64) {
    let Some(c) = cert else {
        return (Some(Need::Missing), now);
    };
    let renew_at = c.not_after.saturating_sub(renew_before.as_secs());
    let need = if c.names != names {
        Some(Need::NamesChanged)
    } else if c.not_after <= now {
        Some(Need::Expired)
    } else if renew_at <= now {
        Some(Need::RenewalDue)
    } else {
        None
    };
    (need, renew_at)
}

/// Decides for one subject. `names` sorted; `certs` holds the stored certificate of each key
/// type; `forced` is an operator's request (it skips the backoff once).
pub fn decide(
    now: u64,
    names: &[String],
    certs: &[(KeyKind, Option<&StoredCert>)],
    state: &IssueState,
    renew_before: Duration,
    forced: bool,
) -> Decision {
    let per_kind: Vec<(KeyKind, Option<Need>, u64)> = certs
        .iter()
        .map(|(k, c)| {
            let (n, at) = need_of(now, names, *c, renew_before);
            (*k, n, at)
        })
        .collect();
    if forced {
        return Decision::Issue {
            kinds: certs.iter().map(|(k, _)| *k).collect(),
            need: Need::Forced,
        };
    }
    let worst = per_kind.iter().filter_map(|(_, n, _)| *n).max();
    let Some(need) = worst else {
        let renew_at = per_kind.iter().map(|(_, _, at)| *at).min().unwrap_or(now);
        return Decision::Valid { renew_at };
    };
    if let Some(until) = state.next_attempt.filter(|t| *t > now) {
        return Decision::Backoff { until, need };
    }
    let kinds = per_kind
        .iter()
        .filter(|(_, n, at)| n.is_some() || *at <= now + TOGETHER)
        .map(|(k, _, _)| *k)
        .collect();
    Decision::Issue { kinds, need }
}

/// Exponential backoff between failed attempts: `min` doubling per failure up to `max`, less
/// up to a fifth at random so that many nodes or names do not retry in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub min: Duration,
    pub max: Duration,
    /// The least wait after the CA's rate limit when it names no time.
    pub rate_limited: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            min: Duration::from_secs(60),
            max: Duration::from_secs(6 * 3600),
            rate_limited: Duration::from_secs(3600),
        }
    }
}

/// The longest a retry time named by the CA is honoured.
const MAX_CA_RETRY: u64 = 7 * 24 * 3600;

impl Backoff {
    /// The wait after `failures` failures in a row (1 = the first); `jitter` in `[0, 1)`.
    pub fn delay(&self, failures: u32, jitter: f64) -> Duration {
        let exp = failures.saturating_sub(1).min(30);
        let base = self
            .min
            .saturating_mul(1u32 << exp.min(20))
            .min(self.max)
            .max(self.min);
        base.mul_f64(1.0 - 0.2 * jitter.clamp(0.0, 1.0))
    }

    /// When to try next after a failure at `now`; a rate limit waits for the time the CA
    /// named (up to a week) or at least `rate_limited`.
    pub fn next_attempt(
        &self,
        now: u64,
        failures: u32,
        rate_limited: Option<Option<u64>>,
        jitter: f64,
    ) -> u64 {
        let backoff = now + self.delay(failures, jitter).as_secs().max(1);
        match rate_limited {
            None => backoff,
            Some(named) => {
                let floor = now + self.rate_limited.as_secs();
                let named = named.map_or(0, |t| t.min(now + MAX_CA_RETRY));
                backoff.max(floor).max(named)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 24 * 3600;
    const NOW: u64 = 1_800_000_000;

    fn names() -> Vec<String> {
        vec!["a.example.net".to_string()]
    }

    fn cert(not_after: u64) -> StoredCert {
        StoredCert {
            chain_pem: String::new(),
            key_pem: String::new(),
            not_after,
            not_before: not_after - 90 * DAY,
            names: names(),
        }
    }

    fn d(
        e: Option<&StoredCert>,
        r: Option<&StoredCert>,
        st: &IssueState,
        forced: bool,
    ) -> Decision {
        decide(
            NOW,
            &names(),
            &[(KeyKind::Ecdsa, e), (KeyKind::Rsa, r)],
            st,
            Duration::from_secs(30 * DAY),
            forced,
        )
    }

    #[test]
    fn issue_when_missing_renew_when_due_wait_when_valid() {
        let none = IssueState::default();
        assert_eq!(
            d(None, None, &none, false),
            Decision::Issue {
                kinds: vec![KeyKind::Ecdsa, KeyKind::Rsa],
                need: Need::Missing
            }
        );
        let fresh = cert(NOW + 80 * DAY);
        assert_eq!(
            d(Some(&fresh), Some(&fresh), &none, false),
            Decision::Valid {
                renew_at: NOW + 50 * DAY
            }
        );
        // Only the missing one is ordered when the other is good for long.
        assert_eq!(
            d(Some(&fresh), None, &none, false),
            Decision::Issue {
                kinds: vec![KeyKind::Rsa],
                need: Need::Missing
            }
        );
        let due = cert(NOW + 29 * DAY);
        assert_eq!(
            d(Some(&due), Some(&fresh), &none, false),
            Decision::Issue {
                kinds: vec![KeyKind::Ecdsa],
                need: Need::RenewalDue
            }
        );
        // The pair renews together when their dates are close.
        let due_tomorrow = cert(NOW + 30 * DAY + 3600);
        assert_eq!(
            d(Some(&due), Some(&due_tomorrow), &none, false),
            Decision::Issue {
                kinds: vec![KeyKind::Ecdsa, KeyKind::Rsa],
                need: Need::RenewalDue
            }
        );
        let expired = cert(NOW - 1);
        assert_eq!(
            d(Some(&expired), Some(&due), &none, false),
            Decision::Issue {
                kinds: vec![KeyKind::Ecdsa, KeyKind::Rsa],
                need: Need::Expired
            }
        );
        let mut other = fresh.clone();
        other.names = vec!["b.example.net".into()];
        assert_eq!(
            d(Some(&other), Some(&fresh), &none, false),
            Decision::Issue {
                kinds: vec![KeyKind::Ecdsa],
                need: Need::NamesChanged
            }
        );
    }

    #[test]
    fn backoff_holds_attempts_and_force_skips_it() {
        let st = IssueState {
            failures: 2,
            last_error: Some("x".into()),
            last_attempt: Some(NOW - 10),
            next_attempt: Some(NOW + 100),
        };
        assert_eq!(
            d(None, None, &st, false),
            Decision::Backoff {
                until: NOW + 100,
                need: Need::Missing
            }
        );
        let passed = IssueState {
            next_attempt: Some(NOW),
            ..st.clone()
        };
        assert!(matches!(
            d(None, None, &passed, false),
            Decision::Issue { .. }
        ));
        let fresh = cert(NOW + 80 * DAY);
        assert_eq!(
            d(Some(&fresh), Some(&fresh), &st, true),
            Decision::Issue {
                kinds: vec![KeyKind::Ecdsa, KeyKind::Rsa],
                need: Need::Forced
            }
        );
        // A valid pair is valid whatever the failure state says.
        assert!(matches!(
            d(Some(&fresh), Some(&fresh), &st, false),
            Decision::Valid { .. }
        ));
    }

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        let b = Backoff::default();
        let secs = |f, j| b.delay(f, j).as_secs();
        assert_eq!(secs(1, 0.0), 60);
        assert_eq!(secs(2, 0.0), 120);
        assert_eq!(secs(3, 0.0), 240);
        assert_eq!(secs(10, 0.0), 6 * 3600);
        assert_eq!(secs(1000, 0.0), 6 * 3600);
        assert_eq!(secs(1, 0.999_999), 48);
        assert!((48..=60).contains(&secs(1, 0.5)));
        assert_eq!(secs(0, 0.0), 60);
    }

    #[test]
    fn rate_limits_wait_for_the_ca() {
        let b = Backoff::default();
        assert_eq!(b.next_attempt(NOW, 1, None, 0.0), NOW + 60);
        assert_eq!(b.next_attempt(NOW, 1, Some(None), 0.0), NOW + 3600);
        assert_eq!(
            b.next_attempt(NOW, 1, Some(Some(NOW + 5 * 3600)), 0.0),
            NOW + 5 * 3600
        );
        assert_eq!(
            b.next_attempt(NOW, 1, Some(Some(NOW + 365 * DAY)), 0.0),
            NOW + 7 * DAY
        );
    }
}
