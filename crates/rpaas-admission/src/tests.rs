use std::cell::Cell;
use std::net::IpAddr;
use std::time::Instant;

use super::*;
use rpaas_config::{compile, spec, Document};

const SPEC: &str = r#"
[node]
deny_methods = ["OPTIONS", "TRACE", "FOO"]
[node.limits]
login = "2/1m"

[[listener]]
address = "127.0.0.1:0"
client_ip = "x-forwarded-for"
trusted_proxies = ["127.0.0.0/8"]

[[instance]]
id = "a"
hostnames = ["a.example.net"]
upstream = "http://127.0.0.1:9"
deployment = "agent-only"
trusted = ["198.51.100.0/24"]

[[instance]]
id = "b"
hostnames = ["b.example.net"]
upstream = "http://127.0.0.1:9"
"#;

fn policy() -> Policy {
    let s: spec::Spec = spec::from_toml(SPEC).expect("spec");
    let c = compile(&Document::from_spec("test", s)).expect("compiles");
    Policy::build(c, None).expect("builds")
}

struct Counting {
    banned: bool,
    tokens: Cell<u32>,
}

impl Gates for Counting {
    fn banned(&self, _: IpAddr, _: Instant) -> Option<bool> {
        Some(self.banned)
    }
    fn take(
        &self,
        _: IpAddr,
        _: &'static str,
        _: rpaas_ips::limits::Rate,
        _: Instant,
    ) -> Option<bool> {
        let t = self.tokens.get();
        self.tokens.set(t.saturating_sub(1));
        Some(t > 0)
    }
}

fn ask(
    p: &Policy,
    gates: &dyn Gates,
    sni: Option<&str>,
    host: Option<&str>,
    method: &str,
    target: &str,
    ip: &str,
) -> Decision {
    let headers: Vec<(String, String)> = vec![("x-forwarded-for".into(), ip.into())];
    admit(
        p,
        &Conn {
            listener: 0,
            peer: "127.0.0.1".parse().expect("ip"),
            sni,
        },
        &Head {
            method,
            target: target.as_bytes(),
            authority: host,
            headers: &headers,
            protocol: "HTTP/1.1",
        },
        gates,
        Instant::now(),
    )
}

fn code(d: &Decision) -> String {
    d.reason().map_or("-".into(), |r| r.code().into_owned())
}

#[test]
fn every_step_refuses_with_its_code() {
    let p = policy();
    let open = Counting {
        banned: false,
        tokens: Cell::new(100),
    };
    let a = Some("a.example.net");
    type Case<'a> = (
        Option<&'a str>,
        Option<&'a str>,
        &'a str,
        &'a str,
        &'a str,
        &'a str,
    );
    let cases: &[Case] = &[
        (a, None, "GET", "/automate/", "192.0.2.1", "host:missing"),
        (
            a,
            Some("nope.example.net"),
            "GET",
            "/",
            "192.0.2.1",
            "host:unknown",
        ),
        (
            a,
            Some("b.example.net"),
            "GET",
            "/",
            "192.0.2.1",
            "host:mismatch",
        ),
        (a, a, "options", "/", "192.0.2.1", "method:OPTIONS"),
        (a, a, "FOO", "/", "192.0.2.1", "method:other"),
        (a, a, "GET", "*", "192.0.2.1", "target:invalid"),
        (
            a,
            a,
            "GET",
            "/automate/",
            "192.0.2.1",
            "acl:web_control_center",
        ),
        (a, a, "GET", "/automate/", "198.51.100.9", "-"),
        (
            a,
            a,
            "XYZZY",
            "/LabTech/Agent.aspx",
            "192.0.2.1",
            "method:other",
        ),
        (a, a, "GET", "/LabTech/Agent.aspx", "192.0.2.1", "-"),
        (a, a, "GET", "/a%2fb", "192.0.2.1", "path:invalid"),
        (
            Some("b.example.net"),
            Some("b.example.net"),
            "GET",
            "/SetupWizard.aspx/x",
            "192.0.2.1",
            "ips:100001",
        ),
        (
            None,
            Some("b.example.net:443"),
            "GET",
            "/",
            "192.0.2.1",
            "-",
        ),
    ];
    for (sni, host, method, target, ip, want) in cases {
        let d = ask(&p, &open, *sni, *host, method, target, ip);
        assert_eq!(
            code(&d),
            *want,
            "{method} {target} from {ip} host {host:?}: {d:?}"
        );
    }
}

#[test]
fn bans_and_rate_limits_are_inputs() {
    let p = policy();
    let a = Some("a.example.net");
    let banned = Counting {
        banned: true,
        tokens: Cell::new(100),
    };
    let d = ask(&p, &banned, a, a, "GET", "/LabTech/Agent.aspx", "192.0.2.1");
    assert_eq!(code(&d), "ban");
    assert!(!d.strike());
    // Trusted networks are never banned.
    let d = ask(&p, &banned, a, a, "GET", "/automate/", "198.51.100.9");
    assert_eq!(code(&d), "-");
    let two = Counting {
        banned: false,
        tokens: Cell::new(1),
    };
    let b = Some("b.example.net");
    assert_eq!(
        code(&ask(
            &p,
            &two,
            b,
            b,
            "POST",
            "/cwa/api/v1/apitoken",
            "192.0.2.1"
        )),
        "-"
    );
    let d = ask(&p, &two, b, b, "POST", "/cwa/api/v1/apitoken", "192.0.2.1");
    assert_eq!(code(&d), "rate:login");
    assert!(d.strike());
    // Offline, the answer says what it could not know.
    let d = ask(
        &p,
        &Offline,
        b,
        b,
        "POST",
        "/cwa/api/v1/apitoken",
        "192.0.2.1",
    );
    assert_eq!(code(&d), "-");
    assert_eq!(d.unknown, vec!["bans", "rate limits"]);
}

#[test]
fn invented_methods_never_become_codes() {
    let p = policy();
    let a = Some("a.example.net");
    let mut codes = std::collections::BTreeSet::new();
    for i in 0..2000 {
        let m = format!("M{i}X");
        codes.insert(code(&ask(
            &p,
            &Offline,
            a,
            a,
            &m,
            "/LabTech/Agent.aspx",
            "192.0.2.1",
        )));
    }
    assert_eq!(codes.into_iter().collect::<Vec<_>>(), vec!["method:other"]);
}

#[test]
fn bodies_are_judged_with_the_head() {
    let p = policy();
    let b = Some("b.example.net");
    let headers: Vec<(String, String)> = vec![("content-type".into(), "application/json".into())];
    let mut d = admit(
        &p,
        &Conn {
            listener: 0,
            peer: "192.0.2.7".parse().expect("ip"),
            sni: b,
        },
        &Head {
            method: "POST",
            target: b"/cwa/api/v1/computers",
            authority: b,
            headers: &headers,
            protocol: "HTTP/1.1",
        },
        &Offline,
        Instant::now(),
    );
    assert_eq!(d.verdict, Verdict::Forward);
    let mut plan = d.body.take().expect("body inspection armed");
    let mut o = d.ips.take().expect("head inspected");
    let r = judge_body(
        &p,
        d.instance.expect("instance"),
        &mut plan,
        &mut o,
        br#"{"condition":"1' union select password from users--"}"#,
    );
    assert!(matches!(r, Some(Reason::Ips(_))), "{r:?}");
}

mod client_and_host {
    use super::*;
    use rpaas_config::{ClientIpSource, IpNet, Listener};

    fn listener(mode: ClientIpSource, trusted: &[&str]) -> Listener {
        Listener {
            address: "127.0.0.1:0".parse().expect("addr"),
            tls: rpaas_config::TlsProfile::Intermediate,
            client_ip: mode,
            trusted_proxies: trusted
                .iter()
                .map(|s| s.parse::<IpNet>().expect("cidr"))
                .collect(),
            http2: true,
            default_host: None,
        }
    }

    fn xff(v: &[&str]) -> Vec<(String, String)> {
        v.iter()
            .map(|s| ("x-forwarded-for".to_string(), s.to_string()))
            .collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn xff_ignored_from_untrusted_peer_and_on_socket_listeners() {
        let l = listener(ClientIpSource::XForwardedFor, &["10.0.0.0/8"]);
        assert_eq!(
            client_ip(&l, ip("192.0.2.1"), &xff(&["203.0.113.5"])),
            ip("192.0.2.1")
        );
        let s = listener(ClientIpSource::Socket, &["10.0.0.0/8"]);
        assert_eq!(
            client_ip(&s, ip("10.0.0.1"), &xff(&["203.0.113.5"])),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn xff_from_trusted_peer_takes_rightmost_untrusted() {
        let l = listener(ClientIpSource::XForwardedFor, &["10.0.0.0/8"]);
        let cases: &[(&str, &[&str], &str)] = &[
            (
                "10.0.0.1",
                &["198.51.100.1, 203.0.113.5, 10.9.9.9"],
                "203.0.113.5",
            ),
            ("10.0.0.1", &["198.51.100.1", "203.0.113.5"], "203.0.113.5"),
            ("10.0.0.1", &["[2001:db8::1]:443"], "2001:db8::1"),
            // Garbage stops the walk at the last address we could trust.
            ("10.0.0.1", &["junk, 10.2.2.2"], "10.2.2.2"),
            ("10.0.0.1", &[], "10.0.0.1"),
            ("::ffff:10.0.0.1", &["203.0.113.9"], "203.0.113.9"),
        ];
        for (peer, hops, want) in cases {
            assert_eq!(client_ip(&l, ip(peer), &xff(hops)), ip(want), "{hops:?}");
        }
    }

    #[test]
    fn host_parsing() {
        let host = |s: &str| normalize_host(s).map(|(h, _)| h);
        assert_eq!(host("A.Example.NET:443").as_deref(), Some("a.example.net"));
        assert_eq!(host("a.example.net.").as_deref(), Some("a.example.net"));
        assert_eq!(host(""), None);
        assert_eq!(host("a b"), None);
        assert_eq!(
            normalize_host("[::1]:443"),
            Some(("[::1]".to_string(), Some(443)))
        );
        assert_eq!(
            normalize_host("a.example.net:8443"),
            Some(("a.example.net".to_string(), Some(8443)))
        );
    }
}
