//! Port reachability: what a connect-only TCP probe and one small UDP datagram can tell, and
//! the pure verdicts for `ports-closed` and `ports-expected`.

use crate::check::{ids, Check, Status};

/// What a TCP connect saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortState {
    Open,
    /// RST: nothing listens.
    Refused,
    /// No answer within the timeout: filtered (a firewall drops it) or the host is away.
    NoAnswer,
    Error(String),
    /// Not probed: the audit's overall time limit was reached first.
    Late,
}

/// What the UDP probe saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UdpState {
    /// A datagram came back.
    Answered(usize),
    /// ICMP port unreachable: closed.
    Refused,
    /// Silence: open or filtered (cannot be told apart without the heartbeat protocol).
    NoAnswer,
    Error(String),
    /// `--udp-port 0`.
    NotProbed,
    /// The audit's overall time limit was reached first.
    Late,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortsObserved {
    /// The address probed (for the detail).
    pub host: String,
    pub closed: Vec<(u16, PortState)>,
    pub expected: Vec<(u16, PortState)>,
    pub optional: Vec<(u16, PortState)>,
    pub udp: (u16, UdpState),
}

/// What the guide's ports are.
pub fn service(port: u16) -> Option<&'static str> {
    Some(match port {
        70 => "redirector",
        135 => "RPC",
        139 => "NetBIOS",
        443 => "HTTPS",
        445 => "SMB",
        3306 => "MySQL",
        3389 => "RDP",
        8002 => "mediator",
        8484 => "Solution Center",
        12413 => "file service",
        40000..=40050 => "Automate 40000-40050",
        _ => return None,
    })
}

fn named(port: u16) -> String {
    match service(port) {
        Some(s) => format!("{port} ({s})"),
        None => port.to_string(),
    }
}

pub fn judge_ports(o: &PortsObserved) -> Vec<Check> {
    vec![closed_check(o), expected_check(o)]
}

fn closed_check(o: &PortsObserved) -> Check {
    if o.closed.is_empty() {
        return Check::skip(ids::PORTS_CLOSED, "no port to check (--closed-ports none)");
    }
    let open: Vec<String> = o
        .closed
        .iter()
        .filter(|(_, s)| *s == PortState::Open)
        .map(|(p, _)| named(*p))
        .collect();
    let count = |want: fn(&PortState) -> bool| o.closed.iter().filter(|(_, s)| want(s)).count();
    let refused = count(|s| *s == PortState::Refused);
    let silent = count(|s| *s == PortState::NoAnswer);
    let errors = count(|s| matches!(s, PortState::Error(_)));
    let late = count(|s| *s == PortState::Late);
    let mut tally = format!("{refused} refused, {silent} no answer (filtered)");
    if errors > 0 {
        tally.push_str(&format!(", {errors} error(s)"));
    }
    if late > 0 {
        tally.push_str(&format!(", {late} not probed (time limit)"));
    }
    if !open.is_empty() {
        return Check::new(
            ids::PORTS_CLOSED,
            Status::Fail,
            format!(
                "open on {}: {}; of {} checked: {tally}",
                o.host,
                open.join(", "),
                o.closed.len()
            ),
        );
    }
    if errors + late == o.closed.len() {
        return Check::skip(
            ids::PORTS_CLOSED,
            format!("no port could be probed on {}: {tally}", o.host),
        );
    }
    Check::new(
        ids::PORTS_CLOSED,
        Status::Pass,
        format!("none of {} open on {}: {tally}", o.closed.len(), o.host),
    )
}

fn state_text(s: &PortState) -> String {
    match s {
        PortState::Open => "open".into(),
        PortState::Refused => "closed (refused)".into(),
        PortState::NoAnswer => "no answer (filtered)".into(),
        PortState::Error(e) => format!("error: {e}"),
        PortState::Late => "not probed (time limit)".into(),
    }
}

fn expected_check(o: &PortsObserved) -> Check {
    let mut status = Status::Pass;
    let mut parts = Vec::new();
    let mut judged = 0;
    for (p, s) in &o.expected {
        match s {
            PortState::Open => judged += 1,
            PortState::Late => {}
            _ => {
                judged += 1;
                status = Status::Fail;
            }
        }
        parts.push(format!("{}/tcp {}", named(*p), state_text(s)));
    }
    let (up, us) = &o.udp;
    match us {
        UdpState::Answered(n) => parts.push(format!("{up}/udp answered ({n} bytes)")),
        UdpState::Refused => {
            status = Status::Fail;
            parts.push(format!(
                "{up}/udp closed (ICMP port unreachable): heartbeats are not answered here"
            ));
        }
        UdpState::NoAnswer => {
            if status == Status::Pass {
                status = Status::Warn;
            }
            parts.push(format!(
                "{up}/udp no answer (open|filtered: the heartbeat protocol is not public, a \
                 server may ignore a datagram it does not understand)"
            ));
        }
        UdpState::Error(e) => {
            if status == Status::Pass {
                status = Status::Warn;
            }
            parts.push(format!("{up}/udp error: {e}"));
        }
        UdpState::NotProbed => parts.push("udp not probed (--udp-port 0)".into()),
        UdpState::Late => parts.push(format!("{up}/udp not probed (time limit)")),
    }
    if !matches!(us, UdpState::NotProbed | UdpState::Late) {
        judged += 1;
    }
    for (p, s) in &o.optional {
        parts.push(format!(
            "info: {}/tcp {} (optional)",
            named(*p),
            state_text(s)
        ));
    }
    if o.expected.is_empty() && *us == UdpState::NotProbed {
        return Check::skip(ids::PORTS_EXPECTED, "no port to check");
    }
    if judged == 0 {
        return Check::skip(
            ids::PORTS_EXPECTED,
            format!("on {}: {}", o.host, parts.join("; ")),
        );
    }
    Check::new(
        ids::PORTS_EXPECTED,
        status,
        format!("on {}: {}", o.host, parts.join("; ")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs() -> PortsObserved {
        PortsObserved {
            host: "127.0.0.1".into(),
            closed: vec![
                (3306, PortState::Refused),
                (3389, PortState::NoAnswer),
                (40001, PortState::Refused),
            ],
            expected: vec![(443, PortState::Open)],
            optional: vec![(8484, PortState::Refused)],
            udp: (75, UdpState::Answered(4)),
        }
    }

    #[test]
    fn closed_ports() {
        let c = closed_check(&obs());
        assert_eq!(c.status, Status::Pass);
        assert_eq!(
            c.detail,
            "none of 3 open on 127.0.0.1: 2 refused, 1 no answer (filtered)"
        );
        let mut o = obs();
        o.closed[0].1 = PortState::Open;
        o.closed[2].1 = PortState::Open;
        let c = closed_check(&o);
        assert_eq!(c.status, Status::Fail);
        assert!(
            c.detail
                .starts_with("open on 127.0.0.1: 3306 (MySQL), 40001 (Automate 40000-40050)"),
            "{}",
            c.detail
        );
    }

    #[test]
    fn expected_ports() {
        let c = expected_check(&obs());
        assert_eq!(c.status, Status::Pass, "{}", c.detail);
        assert!(c
            .detail
            .contains("info: 8484 (Solution Center)/tcp closed (refused)"));
        let mut o = obs();
        o.udp.1 = UdpState::NoAnswer;
        assert_eq!(expected_check(&o).status, Status::Warn);
        o.udp.1 = UdpState::Refused;
        assert_eq!(expected_check(&o).status, Status::Fail);
        let mut o = obs();
        o.expected[0].1 = PortState::Refused;
        o.udp.1 = UdpState::NoAnswer;
        let c = expected_check(&o);
        assert_eq!(c.status, Status::Fail);
        assert!(
            c.detail.contains("443 (HTTPS)/tcp closed (refused)"),
            "{}",
            c.detail
        );
    }

    #[test]
    fn ports_not_reached_before_the_time_limit_skip() {
        let mut o = obs();
        o.closed = vec![(3306, PortState::Late), (3389, PortState::Late)];
        o.expected = vec![(443, PortState::Late)];
        o.udp.1 = UdpState::NotProbed;
        let cs = judge_ports(&o);
        assert_eq!(cs[0].status, Status::Skip, "{}", cs[0].detail);
        assert!(
            cs[0].detail.contains("2 not probed (time limit)"),
            "{}",
            cs[0].detail
        );
        assert_eq!(cs[1].status, Status::Skip, "{}", cs[1].detail);
        o.closed[0].1 = PortState::Open;
        assert_eq!(judge_ports(&o)[0].status, Status::Fail);
    }
}
