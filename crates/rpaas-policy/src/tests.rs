use super::*;
use rpaas_geoip::writer::{build, RecordShape};

fn geo() -> GeoDb {
    GeoDb::from_bytes(
        build(
            RecordShape::IpLocationDb,
            &[
                ("8.8.8.0/24", "US"),
                ("1.1.1.0/24", "CN"),
                ("203.0.113.0/24", "CN"),
                ("2001:db8::/32", "US"),
            ],
        )
        .unwrap(),
    )
    .unwrap()
}

fn cc(s: &str) -> CountryCode {
    CountryCode::parse(s).unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

const CLASSES: [(TrafficClass, &str, &str); 7] = [
    (TrafficClass::Agent, "GET", "/LabTech/Agent.aspx"),
    (
        TrafficClass::Deployment,
        "GET",
        "/LabTech/Deployment.aspx?InstallerToken=abc",
    ),
    (
        TrafficClass::ControlCenter,
        "POST",
        "/LabTech/ControlCenter.asmx",
    ),
    (TrafficClass::WebControlCenter, "GET", "/automate/"),
    (TrafficClass::Api, "GET", "/cwa/api/v1/computers"),
    (TrafficClass::Portal, "GET", "/WCC2/"),
    (TrafficClass::Other, "GET", "/foo"),
];

/// (ip, trusted?, country state)
const CLIENTS: [(&str, bool, &str); 4] = [
    ("203.0.113.9", true, "CN"), // trusted network; its country would be refused
    ("8.8.8.8", false, "US"),    // allowed country
    ("1.1.1.1", false, "CN"),    // refused country
    ("192.0.2.1", false, "--"),  // unknown country
];

fn decide_simple(p: &InstancePolicy, g: &GeoDb, ip: &str, method: &str, target: &str) -> Decision {
    let headers: Vec<(String, String)> = Vec::new();
    decide(
        p,
        Some(g),
        &RequestView {
            ip: ip.parse().unwrap(),
            method,
            target,
            headers: &headers,
        },
    )
}

/// What the issue says must happen, written independently of `decide`.
fn expected(access: Access, trusted: bool, country: &str, allowed: &[&str]) -> Option<String> {
    match access {
        Access::Deny => return Some("acl".into()),
        Access::Trusted if !trusted => return Some("acl".into()),
        _ => {}
    }
    if trusted {
        return None;
    }
    match country {
        "--" => Some("geoip:unknown".into()),
        c if allowed.contains(&c) => None,
        c => Some(format!("geoip:{c}")),
    }
}

#[test]
fn decision_matrix() {
    let g = geo();
    let models = [
        Deployment::AllTraffic,
        Deployment::AgentOnly,
        Deployment::Mixed,
    ];
    let overrides: [Option<Access>; 4] = [
        None,
        Some(Access::Open),
        Some(Access::Trusted),
        Some(Access::Deny),
    ];
    let mut checked = 0;
    for model in models {
        for (oclass, _, _) in CLASSES {
            for ov in overrides {
                let mut spec = PolicySpec {
                    deployment: model,
                    trusted: vec![net("203.0.113.0/24")],
                    countries: vec![cc("US")],
                    ..Default::default()
                };
                if let Some(a) = ov {
                    spec.overrides.push((
                        oclass,
                        ClassOverride {
                            access: Some(a),
                            ..Default::default()
                        },
                    ));
                }
                let p = InstancePolicy::new(spec);
                for (class, method, target) in CLASSES {
                    let access = if class == oclass {
                        ov.unwrap_or(model.access(class))
                    } else {
                        model.access(class)
                    };
                    for (ip, trusted, country) in CLIENTS {
                        let d = decide_simple(&p, &g, ip, method, target);
                        assert_eq!(d.class, Some(class), "{target}");
                        assert_eq!(d.trusted, trusted);
                        let want = expected(access, trusted, country, &["US"]).map(|w| {
                            if w == "acl" {
                                format!("acl:{class}")
                            } else {
                                w
                            }
                        });
                        let got = match &d.verdict {
                            Verdict::Allow => None,
                            Verdict::Deny(r) => Some(r.code()),
                        };
                        assert_eq!(
                            got, want,
                            "model {model:?} override {oclass}={ov:?} class {class} ip {ip}: {:?}",
                            d.why
                        );
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, 3 * 7 * 4 * 7 * 4);
}

#[test]
fn models_give_the_documented_defaults() {
    use crate::Deployment as Model;
    use TrafficClass::*;
    for c in TrafficClass::ALL {
        assert_eq!(Model::AllTraffic.access(c), Access::Open);
    }
    for c in [Agent, Deployment] {
        assert_eq!(Model::AgentOnly.access(c), Access::Open);
        assert_eq!(Model::Mixed.access(c), Access::Open);
    }
    for c in [ControlCenter, WebControlCenter, Api, Portal] {
        assert_eq!(Model::AgentOnly.access(c), Access::Trusted);
        assert_eq!(Model::Mixed.access(c), Access::Trusted);
    }
    assert_eq!(Model::AgentOnly.access(Other), Access::Deny);
    assert_eq!(Model::Mixed.access(Other), Access::Trusted);
}

#[test]
fn no_countries_means_no_geoip_and_unknown_can_be_allowed() {
    let g = geo();
    let p = InstancePolicy::new(PolicySpec::default());
    assert!(decide_simple(&p, &g, "1.1.1.1", "GET", "/automate/").is_allow());
    assert!(decide_simple(&p, &g, "192.0.2.1", "GET", "/automate/").is_allow());
    let p = InstancePolicy::new(PolicySpec {
        countries: vec![cc("US")],
        unknown_country: UnknownCountry::Allow,
        ..Default::default()
    });
    assert!(decide_simple(&p, &g, "192.0.2.1", "GET", "/automate/").is_allow());
    assert_eq!(
        decide_simple(&p, &g, "1.1.1.1", "GET", "/automate/").verdict,
        Verdict::Deny(Reason::Geo(cc("CN")))
    );
    // Without a database every address is unknown.
    let d = decide(
        &p,
        None,
        &RequestView {
            ip: "8.8.8.8".parse().unwrap(),
            method: "GET",
            target: "/",
            headers: &Vec::<(String, String)>::new(),
        },
    );
    assert!(d.is_allow());
}

#[test]
fn class_countries_replace_the_instance_list() {
    let g = geo();
    let p = InstancePolicy::new(PolicySpec {
        countries: vec![cc("US")],
        overrides: vec![(
            TrafficClass::Agent,
            ClassOverride {
                countries: Some(vec![cc("CN")]),
                ..Default::default()
            },
        )],
        ..Default::default()
    });
    assert!(decide_simple(&p, &g, "1.1.1.1", "GET", "/LabTech/Agent.aspx").is_allow());
    assert_eq!(
        decide_simple(&p, &g, "8.8.8.8", "GET", "/LabTech/Agent.aspx").verdict,
        Verdict::Deny(Reason::Geo(cc("US")))
    );
    assert!(decide_simple(&p, &g, "8.8.8.8", "GET", "/automate/").is_allow());
}

#[test]
fn deny_list_methods_and_invalid_paths() {
    let g = geo();
    let p = InstancePolicy::new(PolicySpec {
        trusted: vec![net("203.0.113.0/24")],
        deny: vec![net("203.0.113.9/32")],
        ..Default::default()
    });
    assert_eq!(
        decide_simple(&p, &g, "203.0.113.9", "GET", "/LabTech/Agent.aspx").verdict,
        Verdict::Deny(Reason::DenyList)
    );
    assert_eq!(
        decide_simple(&p, &g, "8.8.8.8", "PUT", "/LabTech/Agent.aspx").verdict,
        Verdict::Deny(Reason::Method("PUT"))
    );
    assert_eq!(
        decide_simple(&p, &g, "8.8.8.8", "POST", "/LabTech/Deployment.aspx").verdict,
        Verdict::Deny(Reason::Method("POST"))
    );
    for t in [
        "/LabTech%2FAgent.aspx",
        "/../automate",
        "/LabTech/Agent.aspx%00",
    ] {
        let d = decide_simple(&p, &g, "8.8.8.8", "GET", t);
        assert_eq!(d.verdict, Verdict::Deny(Reason::PathInvalid), "{t}");
        assert_eq!(Reason::PathInvalid.status(), 400);
    }
    // A traversal that lands in another class is refused, even on an open instance.
    let d = decide_simple(&p, &g, "8.8.8.8", "GET", "/LabTech/Updates/../../automate/");
    assert_eq!(d.verdict, Verdict::Deny(Reason::PathInvalid), "{:?}", d.why);
    // One that stays in its class is fine.
    assert!(decide_simple(&p, &g, "8.8.8.8", "GET", "/LabTech/Updates/x/../a.zip").is_allow());
}

#[test]
fn encoding_tricks_cannot_reach_a_denied_class() {
    let g = geo();
    let p = InstancePolicy::new(PolicySpec {
        deployment: Deployment::AgentOnly,
        ..Default::default()
    });
    for t in [
        "/automate/",
        "/AUTOMATE/",
        "/%61utomate/",
        "/%u0061utomate/",
        "/automate./",
        "/automate%20/",
        "\\automate\\",
        "/(S(x))/automate/",
        "/automate;x/",
        "//automate",
        "/LabTech/Agent.aspx/../../automate/",
        "/cwa/api/v1/apitoken",
        "/Cwa/Api/V1/ApiToken",
        "/LabTech/ControlCenter.asmx",
        "/labtech/controlcenter.asmx.",
    ] {
        let d = decide_simple(&p, &g, "8.8.8.8", "GET", t);
        assert!(!d.is_allow(), "{t} allowed: {d:?}");
    }
    assert!(decide_simple(&p, &g, "8.8.8.8", "GET", "/LabTech/Agent.aspx").is_allow());
    assert!(decide_simple(&p, &g, "8.8.8.8", "GET", "/labtech/agent.aspx").is_allow());
}

fn headers(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn restrictions() {
    let g = geo();
    let p = InstancePolicy::new(PolicySpec {
        deployment: Deployment::Mixed,
        restrictions: vec![
            Restriction {
                name: "splash".into(),
                kind: RestrictionKind::Block {
                    paths: vec![
                        PathPattern::parse("/wcc2").unwrap(),
                        PathPattern::parse("/wcc2/").unwrap(),
                    ],
                },
            },
            Restriction {
                name: "login".into(),
                kind: RestrictionKind::RequireSecret {
                    paths: vec![PathPattern::parse("/labtech/transfer/secret/").unwrap()],
                    param: "authtoken".into(),
                    cookie: "rpaas_login".into(),
                    secret: "s3cr et".into(),
                },
            },
            Restriction {
                name: "psa".into(),
                kind: RestrictionKind::AdmitHeader {
                    header: "x-integration-key".into(),
                    secret: "k3y".into(),
                    classes: vec![TrafficClass::Api],
                },
            },
        ],
        ..Default::default()
    });
    let run = |target: &str, h: &[(&str, &str)]| {
        let hs = headers(h);
        decide(
            &p,
            Some(&g),
            &RequestView {
                ip: "8.8.8.8".parse().unwrap(),
                method: "GET",
                target,
                headers: &hs,
            },
        )
    };
    assert_eq!(
        run("/WCC2/", &[]).verdict,
        Verdict::Deny(Reason::Restrict("splash".into()))
    );
    assert_eq!(
        run("/wcc2", &[]).verdict,
        Verdict::Deny(Reason::Restrict("splash".into()))
    );
    let target = "/LabTech/Transfer/secret/x.zip";
    assert_eq!(
        run(target, &[]).verdict,
        Verdict::Deny(Reason::Restrict("login".into()))
    );
    assert_eq!(
        run(&format!("{target}?authtoken=wrong"), &[]).verdict,
        Verdict::Deny(Reason::Restrict("login".into()))
    );
    let ok = run(&format!("{target}?authtoken=s3cr+et"), &[]);
    assert!(ok.is_allow(), "{ok:?}");
    assert_eq!(
        ok.set_cookie,
        Some(("rpaas_login".into(), "s3cr et".into()))
    );
    assert!(run(&format!("{target}?AuthToken=s3cr%20et"), &[]).is_allow());
    let by_cookie = run(target, &[("Cookie", "a=b; rpaas_login=s3cr et")]);
    assert!(by_cookie.is_allow());
    assert_eq!(by_cookie.set_cookie, None);
    // The API is trusted-only under `mixed`; the integration header admits it.
    assert_eq!(
        run("/cwa/api/v1/computers", &[]).verdict,
        Verdict::Deny(Reason::Acl(TrafficClass::Api))
    );
    assert!(run("/cwa/api/v1/computers", &[("X-Integration-Key", "k3y")]).is_allow());
    assert!(!run("/cwa/api/v1/computers", &[("X-Integration-Key", "k3y ")]).is_allow());
    // ...but not into a class it was not configured for.
    assert!(!run("/automate/", &[("X-Integration-Key", "k3y")]).is_allow());
}

#[test]
fn extra_paths_override_the_default_map() {
    let p = InstancePolicy::new(PolicySpec {
        overrides: vec![(
            TrafficClass::Agent,
            ClassOverride {
                paths: vec![PathPattern::parse("/labtech/plugins/*.aspx").unwrap()],
                ..Default::default()
            },
        )],
        ..Default::default()
    });
    assert_eq!(p.classify("/labtech/plugins/x.aspx"), TrafficClass::Agent);
    assert_eq!(p.classify("/labtech/plugins/a/x.aspx"), TrafficClass::Other);
}
