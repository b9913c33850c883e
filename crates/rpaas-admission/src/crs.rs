//! The OWASP CRS beside the shipped rules: the request as CRS reads it (method, target as
//! received, headers, body, client address, and the traffic class as `TX:rpaas_class` for the
//! Automate exclusion set), judged at the instance's paranoia level. A request whose body is
//! judged is evaluated twice: on its head first (so an attack in the URL or a header never
//! reaches the upstream while the body arrives), then with its body.

use std::net::IpAddr;

use rpaas_crs::{Evaluation, RequestInput, RuleSet};
use rpaas_policy::TrafficClass;

use crate::facts::Head;

/// What CRS found in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrsFinding {
    /// The paranoia level it ran at.
    pub paranoia: u8,
    /// Every rule that matched (ids from the loaded rules: a bounded set), with its message
    /// and the variable it matched in.
    pub matches: Vec<(u32, String, String)>,
    /// The inbound anomaly score and the threshold it is compared with.
    pub score: i64,
    pub threshold: i64,
    /// CRS would block (949110), attributed to this detection rule.
    pub blocked: Option<u32>,
}

/// CRS's detection rules (911-944); setup, initialisation, blocking evaluation (949) and
/// correlation rules are not what a request is refused "for".
fn is_detection(id: u32) -> bool {
    (911_000..=944_999).contains(&id)
}

/// The request head as CRS reads it.
pub(crate) fn input(
    head: &Head<'_>,
    target: &str,
    client: IpAddr,
    class: TrafficClass,
) -> RequestInput {
    let mut req = RequestInput::new(head.method, target);
    req.protocol = head.protocol.to_string();
    head.headers.each(&mut |k, v| {
        req.headers.push((k.to_string(), v.to_vec()));
    });
    req.remote_addr = client.to_string();
    req.tx("rpaas_class", class.as_str())
}

/// Runs `rules` on `req`.
pub(crate) fn judge(rules: &RuleSet, req: &RequestInput, paranoia: u8) -> CrsFinding {
    finding(rules.evaluate(req), paranoia)
}

fn finding(e: Evaluation, paranoia: u8) -> CrsFinding {
    let blocked = e.would_block().then(|| {
        e.matches
            .iter()
            .filter(|m| is_detection(m.id))
            .min_by_key(|m| m.severity.map_or(u8::MAX, |s| s as u8))
            .or(e.matches.first())
            .map_or(e.blocked_by.unwrap_or(949_110), |m| m.id)
    });
    CrsFinding {
        paranoia,
        matches: e
            .matches
            .into_iter()
            .map(|m| (m.id, m.msg, m.var_name))
            .collect(),
        score: e.anomaly_score,
        threshold: e.threshold,
        blocked,
    }
}
