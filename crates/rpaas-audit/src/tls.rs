//! TLS: which handshakes the probes try (versions and cipher classes) and the pure verdicts
//! over their results.
//!
//! Fail or warn: TLS 1.0/1.1, RC4, 3DES (Sweet32), NULL, anonymous and export suites are all
//! things the guide (or Microsoft's own baseline) turns off, so accepting any of them fails.
//! CBC suites with SHA-1 on TLS 1.2 are not broken, only old (no AEAD, Lucky13-class timing
//! risk) and still needed by some old agents: accepting them is a warning.

use crate::check::{ids, Check, Status};
use crate::error::ProbeError;
use crate::judge::shown;

/// A protocol version tried on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Legacy {
    Tls10,
    Tls11,
}

impl Legacy {
    pub const ALL: [Legacy; 2] = [Legacy::Tls10, Legacy::Tls11];

    pub fn label(self) -> &'static str {
        match self {
            Self::Tls10 => "TLS 1.0",
            Self::Tls11 => "TLS 1.1",
        }
    }
}

/// A class of weak cipher suites offered on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weak {
    Rc4,
    TripleDes,
    Null,
    Anonymous,
    Export,
    /// AES-CBC with SHA-1 MACs, offered on TLS 1.2 only.
    CbcSha1Tls12,
}

impl Weak {
    pub const ALL: [Weak; 6] = [
        Weak::Rc4,
        Weak::TripleDes,
        Weak::Null,
        Weak::Anonymous,
        Weak::Export,
        Weak::CbcSha1Tls12,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Rc4 => "RC4",
            Self::TripleDes => "3DES",
            Self::Null => "NULL",
            Self::Anonymous => "anonymous",
            Self::Export => "export",
            Self::CbcSha1Tls12 => "CBC-SHA1 on TLS 1.2",
        }
    }

    /// The OpenSSL cipher string that offers this class and nothing else.
    pub fn cipher_list(self) -> &'static str {
        match self {
            Self::Rc4 => "RC4:@SECLEVEL=0",
            Self::TripleDes => "3DES:!aNULL:!eNULL:@SECLEVEL=0",
            Self::Null => "eNULL:!aNULL:@SECLEVEL=0",
            Self::Anonymous => "aNULL:@SECLEVEL=0",
            Self::Export => "EXP:@SECLEVEL=0",
            Self::CbcSha1Tls12 => "AES+SHA1:!aNULL:!eNULL:@SECLEVEL=0",
        }
    }

    /// Only TLS 1.2 for the CBC class (below 1.2 CBC is all there is; that is the legacy check).
    pub fn tls12_only(self) -> bool {
        self == Self::CbcSha1Tls12
    }

    /// The status when the server accepts the class.
    pub fn accepted_status(self) -> Status {
        if self == Self::CbcSha1Tls12 {
            Status::Warn
        } else {
            Status::Fail
        }
    }
}

/// What one handshake did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handshake {
    Accepted { version: String, cipher: String },
    Failed(ProbeError),
}

fn local(h: &Handshake) -> bool {
    matches!(h, Handshake::Failed(ProbeError::LocalTls(_)))
}

/// Cut short by the audit's overall time limit: says nothing about the server.
fn cut(hs: &[Handshake]) -> bool {
    let accepted = hs.iter().any(|h| matches!(h, Handshake::Accepted { .. }));
    !accepted
        && hs
            .iter()
            .any(|h| matches!(h, Handshake::Failed(ProbeError::Deadline)))
}

fn refused_text(e: &ProbeError) -> String {
    match e {
        ProbeError::Tls(_) | ProbeError::Refused | ProbeError::Reset => "refused".to_string(),
        ProbeError::LocalTls(_) => "not testable with the local OpenSSL".to_string(),
        other => format!("not accepted ({})", shown(&other.to_string(), 80)),
    }
}

/// `tls-legacy-protocols` and `tls-weak-ciphers`.
pub fn judge_tls(legacy: &[(Legacy, Handshake)], weak: &[(Weak, Handshake)]) -> Vec<Check> {
    vec![legacy_check(legacy), weak_check(weak)]
}

fn legacy_check(legacy: &[(Legacy, Handshake)]) -> Check {
    if legacy.is_empty() || legacy.iter().all(|(_, h)| local(h)) {
        return Check::skip(
            ids::TLS_LEGACY,
            "the local OpenSSL cannot offer TLS 1.0/1.1",
        );
    }
    let hs: Vec<Handshake> = legacy.iter().map(|(_, h)| h.clone()).collect();
    if cut(&hs) {
        return Check::skip(ids::TLS_LEGACY, ProbeError::Deadline.to_string());
    }
    let mut status = Status::Pass;
    let parts: Vec<String> = legacy
        .iter()
        .map(|(v, h)| match h {
            Handshake::Accepted { cipher, .. } => {
                status = Status::Fail;
                format!("{} accepted ({})", v.label(), shown(cipher, 60))
            }
            Handshake::Failed(e) => format!("{} {}", v.label(), refused_text(e)),
        })
        .collect();
    Check::new(ids::TLS_LEGACY, status, parts.join("; "))
}

fn weak_check(weak: &[(Weak, Handshake)]) -> Check {
    if weak.is_empty() || weak.iter().all(|(_, h)| local(h)) {
        return Check::skip(
            ids::TLS_WEAK,
            "the local OpenSSL cannot offer any weak suite",
        );
    }
    let hs: Vec<Handshake> = weak.iter().map(|(_, h)| h.clone()).collect();
    if cut(&hs) {
        return Check::skip(ids::TLS_WEAK, ProbeError::Deadline.to_string());
    }
    let mut status = Status::Pass;
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    let mut untested = Vec::new();
    for (w, h) in weak {
        match h {
            Handshake::Accepted { version, cipher } => {
                let s = w.accepted_status();
                if s == Status::Fail || status == Status::Pass {
                    status = s;
                }
                accepted.push(format!(
                    "{} accepted ({} {})",
                    w.label(),
                    shown(version, 10),
                    shown(cipher, 60)
                ));
            }
            Handshake::Failed(ProbeError::LocalTls(_)) => untested.push(w.label()),
            Handshake::Failed(_) => refused.push(w.label()),
        }
    }
    let mut parts = accepted;
    if !refused.is_empty() {
        parts.push(format!("refused: {}", refused.join(", ")));
    }
    if !untested.is_empty() {
        parts.push(format!(
            "not testable with the local OpenSSL: {}",
            untested.join(", ")
        ));
    }
    Check::new(ids::TLS_WEAK, status, parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(c: &str) -> Handshake {
        Handshake::Accepted {
            version: "TLSv1.2".into(),
            cipher: c.into(),
        }
    }
    fn no() -> Handshake {
        Handshake::Failed(ProbeError::Tls("alert protocol version".into()))
    }
    fn untestable() -> Handshake {
        Handshake::Failed(ProbeError::LocalTls("no cipher match".into()))
    }

    #[test]
    fn legacy_versions() {
        let c = legacy_check(&[
            (Legacy::Tls10, ok("ECDHE-ECDSA-AES128-SHA")),
            (Legacy::Tls11, no()),
        ]);
        assert_eq!(c.status, Status::Fail);
        assert_eq!(
            c.detail,
            "TLS 1.0 accepted (ECDHE-ECDSA-AES128-SHA); TLS 1.1 refused"
        );
        let c = legacy_check(&[(Legacy::Tls10, no()), (Legacy::Tls11, no())]);
        assert_eq!(c.status, Status::Pass);
        let c = legacy_check(&[
            (Legacy::Tls10, Handshake::Failed(ProbeError::Timeout(3000))),
            (Legacy::Tls11, no()),
        ]);
        assert_eq!(c.status, Status::Pass);
        assert!(
            c.detail.contains("not accepted (no answer within 3000 ms)"),
            "{}",
            c.detail
        );
        let late = legacy_check(&[
            (Legacy::Tls10, no()),
            (Legacy::Tls11, Handshake::Failed(ProbeError::Deadline)),
        ]);
        assert_eq!(late.status, Status::Skip);
        assert_eq!(late.detail, "the audit's overall time limit was reached");
        assert_eq!(
            legacy_check(&[(Legacy::Tls10, untestable()), (Legacy::Tls11, untestable())]).status,
            Status::Skip
        );
    }

    #[test]
    fn weak_suites_fail_cbc_warns() {
        let all_no: Vec<(Weak, Handshake)> = Weak::ALL.iter().map(|w| (*w, no())).collect();
        assert_eq!(weak_check(&all_no).status, Status::Pass);

        let mut v = all_no.clone();
        v[5].1 = ok("ECDHE-ECDSA-AES128-SHA");
        let c = weak_check(&v);
        assert_eq!(c.status, Status::Warn);
        assert!(
            c.detail.starts_with("CBC-SHA1 on TLS 1.2 accepted"),
            "{}",
            c.detail
        );

        v[1].1 = ok("ECDHE-ECDSA-DES-CBC3-SHA");
        let c = weak_check(&v);
        assert_eq!(c.status, Status::Fail);
        assert!(c.detail.contains("3DES accepted"), "{}", c.detail);

        let mut v = all_no;
        v[0].1 = untestable();
        v[4].1 = untestable();
        let c = weak_check(&v);
        assert_eq!(c.status, Status::Pass);
        assert!(
            c.detail
                .ends_with("not testable with the local OpenSSL: RC4, export"),
            "{}",
            c.detail
        );
        let mut late = v.clone();
        late[2].1 = Handshake::Failed(ProbeError::Deadline);
        assert_eq!(weak_check(&late).status, Status::Skip);
        late[3].1 = ok("ADH-AES256-GCM-SHA384");
        assert_eq!(
            weak_check(&late).status,
            Status::Fail,
            "an acceptance still counts"
        );
        let none: Vec<(Weak, Handshake)> = Weak::ALL.iter().map(|w| (*w, untestable())).collect();
        assert_eq!(weak_check(&none).status, Status::Skip);
    }
}
