use super::*;

fn rs() -> RuleSet {
    RuleSet::builtin().unwrap_or_else(|e| panic!("builtin rules: {e:?}"))
}

fn req(method: &str, target: &str, class: TrafficClass) -> RequestData {
    let canon = rpaas_path::canonicalize(target).expect("canonical");
    RequestData::new(
        method,
        &canon.path,
        target,
        [("user-agent", "Mozilla/5.0")],
        class,
    )
}

#[test]
fn builtin_ruleset_compiles() {
    let r = rs();
    assert!(r.len() >= 50, "{}", r.len());
}

#[test]
fn cve_signature_blocks_on_its_own() {
    let r = rs();
    let o = inspect(
        &r,
        &Settings::default(),
        &req("POST", "/SetupWizard.aspx/x", TrafficClass::Other),
        Scope::Head,
    );
    assert_eq!(o.verdict, Verdict::Block);
    assert_eq!(o.rule, Some(100001));
}

#[test]
fn detect_mode_records_but_passes() {
    let r = rs();
    let s = Settings {
        mode: Mode::Detect,
        ..Default::default()
    };
    let o = inspect(
        &r,
        &s,
        &req(
            "GET",
            "/automate/?q=1'%20or%20'1'='1",
            TrafficClass::WebControlCenter,
        ),
        Scope::Head,
    );
    assert_eq!(o.verdict, Verdict::Detected);
    assert!(o.ids().contains(&942110), "{:?}", o.ids());
    let off = Settings {
        mode: Mode::Off,
        ..Default::default()
    };
    assert_eq!(
        inspect(
            &r,
            &off,
            &req("GET", "/SetupWizard.aspx/x", TrafficClass::Other),
            Scope::Head
        )
        .verdict,
        Verdict::Pass
    );
}

#[test]
fn disable_and_scoped_exclusions() {
    let r = rs();
    let attack = req(
        "GET",
        "/cwa/api/v1/computers?condition=x'%20or%201=1--",
        TrafficClass::Api,
    );
    let base = inspect(&r, &Settings::default(), &attack, Scope::Head);
    assert_eq!(base.verdict, Verdict::Block);
    let ids = base.ids();
    // Disabling every matched rule lets it through.
    let s = Settings {
        disabled: ids.iter().copied().collect(),
        ..Default::default()
    };
    assert_eq!(inspect(&r, &s, &attack, Scope::Head).verdict, Verdict::Pass);
    // An exclusion scoped to the argument `condition` on the API: the same payload in another
    // argument, or another class, is still blocked.
    let s = Settings {
        exclusions: vec![Exclusion {
            rules: ids.clone(),
            classes: Some(vec![TrafficClass::Api]),
            paths: Some(vec![PathPattern::parse("/cwa/api/v1/computers").unwrap()]),
            args: Some(vec!["condition".into()]),
            ..Default::default()
        }],
        ..Default::default()
    };
    assert_eq!(inspect(&r, &s, &attack, Scope::Head).verdict, Verdict::Pass);
    let other_arg = req(
        "GET",
        "/cwa/api/v1/computers?orderby=x'%20or%201=1--",
        TrafficClass::Api,
    );
    assert_eq!(
        inspect(&r, &s, &other_arg, Scope::Head).verdict,
        Verdict::Block
    );
    let other_path = req(
        "GET",
        "/cwa/api/v1/clients?condition=x'%20or%201=1--",
        TrafficClass::Api,
    );
    assert_eq!(
        inspect(&r, &s, &other_path, Scope::Head).verdict,
        Verdict::Block
    );
}

#[test]
fn threshold_adds_up_weaker_matches() {
    let rules = parse_rules(
        "t.toml",
        "[[rule]]\nid = 1\nmsg = \"a\"\nseverity = \"warning\"\ntargets = [\"args\"]\npattern = \"aaa\"\n[[rule]]\nid = 2\nmsg = \"b\"\nseverity = \"warning\"\ntargets = [\"args\"]\npattern = \"bbb\"\n",
    )
    .unwrap();
    let r = RuleSet::compile(rules).unwrap();
    let s = Settings::default();
    let one = inspect(
        &r,
        &s,
        &req("GET", "/x?a=aaa", TrafficClass::Other),
        Scope::Head,
    );
    assert_eq!((one.score, one.verdict), (3, Verdict::Pass));
    let two = inspect(
        &r,
        &s,
        &req("GET", "/x?a=aaa&b=bbb", TrafficClass::Other),
        Scope::Head,
    );
    assert_eq!((two.score, two.verdict), (6, Verdict::Block));
    let high = Settings {
        threshold: 10,
        ..Default::default()
    };
    assert_eq!(
        inspect(
            &r,
            &high,
            &req("GET", "/x?a=aaa&b=bbb", TrafficClass::Other),
            Scope::Head
        )
        .verdict,
        Verdict::Pass
    );
}

#[test]
fn body_scope_and_merge() {
    let r = rs();
    let mut d = req(
        "POST",
        "/LabTech/ControlCenter.asmx",
        TrafficClass::ControlCenter,
    );
    d.set_body("text/xml", br#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///c:/windows/win.ini">]><r>&x;</r>"#);
    let head = inspect(&r, &Settings::default(), &d, Scope::Head);
    assert_eq!(head.verdict, Verdict::Pass);
    let body = inspect(&r, &Settings::default(), &d, Scope::Body);
    assert_eq!(body.verdict, Verdict::Block);
    let mut all = head;
    all.merge(body, &Settings::default());
    assert_eq!(all.verdict, Verdict::Block);
    assert!(all.ids().contains(&100006));
}

#[test]
fn response_leakage() {
    let r = rs();
    let ysod = "<html><head><title>Runtime Error</title></head><body><h1>Server Error in '/LabTech' Application.</h1></body></html>";
    let o = inspect_response(
        &r,
        &Settings::default(),
        TrafficClass::Other,
        "GET",
        "/x",
        &[],
        ysod,
    );
    assert_eq!(o.verdict, Verdict::Block);
    let ok = inspect_response(
        &r,
        &Settings::default(),
        TrafficClass::Other,
        "GET",
        "/x",
        &[],
        "<html>Not found</html>",
    );
    assert_eq!(ok.verdict, Verdict::Pass);
}

#[test]
fn an_argument_exclusion_does_not_hide_the_same_attack_in_another_argument() {
    let r = rs();
    let attack = "x'%20or%201=1--";
    let base = inspect(
        &r,
        &Settings::default(),
        &req(
            "GET",
            &format!("/cwa/api/v1/computers?condition={attack}"),
            TrafficClass::Api,
        ),
        Scope::Head,
    );
    let s = Settings {
        exclusions: vec![Exclusion {
            rules: base.ids(),
            args: Some(vec!["condition".into()]),
            ..Default::default()
        }],
        ..Default::default()
    };
    // Tuned away where it is expected...
    let one = req(
        "GET",
        &format!("/cwa/api/v1/computers?condition={attack}"),
        TrafficClass::Api,
    );
    assert_eq!(inspect(&r, &s, &one, Scope::Head).verdict, Verdict::Pass);
    // ...but the same payload in a second argument of the same request is still seen, in
    // that argument and in the raw query.
    let both = req(
        "GET",
        &format!("/cwa/api/v1/computers?condition={attack}&orderby={attack}"),
        TrafficClass::Api,
    );
    let o = inspect(&r, &s, &both, Scope::Head);
    assert_eq!(o.verdict, Verdict::Block, "{:?}", o.matches);
    assert!(o
        .matches
        .iter()
        .any(|m| m.name.as_deref() == Some("orderby")));
}

/// ASP.NET joins `id=a&id=b` into "a,b": a payload split across duplicates is judged whole,
/// the same halves under different names are not.
#[test]
fn a_payload_split_across_duplicate_arguments_is_judged_joined() {
    let r = rs();
    let s = Settings::default();
    let split = "/automate/reports?id=1%20union%20/*&ID=*/%20select%201,2,3";
    let o = inspect(&r, &s, &req("GET", split, TrafficClass::Other), Scope::Head);
    assert!(o.ids().contains(&942100), "{:?}", o.matches);
    assert!(o
        .matches
        .iter()
        .any(|m| m.id == 942100 && m.target == "args" && m.name.as_deref() == Some("id")));
    let apart = "/automate/reports?a=1%20union%20/*&b=*/%20select%201,2,3";
    let o = inspect(&r, &s, &req("GET", apart, TrafficClass::Other), Scope::Head);
    assert!(!o.ids().contains(&942100), "{:?}", o.matches);
}

fn with_body(method: &str, target: &str, class: TrafficClass, ct: &str, body: &str) -> RequestData {
    let mut r = req(method, target, class);
    r.set_body(ct, body.as_bytes());
    r
}

fn verdict(s: &Settings, r: &RequestData) -> Verdict {
    let rs = rs();
    let mut o = inspect(&rs, s, r, Scope::Head);
    o.merge(inspect(&rs, s, r, Scope::Body), s);
    o.verdict
}

#[test]
fn tag_exclusions_cover_every_rule_of_the_family_in_their_scope_only() {
    let cmd = r#"{"Command":{"Id":2},"parameters":["cat /etc/os-release; uname -a"]}"#;
    let ok = with_body(
        "POST",
        "/cwa/api/v1/Computers/12/CommandExecute",
        TrafficClass::Api,
        "application/json",
        cmd,
    );
    // Shipped: the argument name matches without case, as ASP.NET binds it.
    assert_eq!(verdict(&Settings::default(), &ok), Verdict::Pass);
    let bare = Settings {
        exclusions: Vec::new(),
        ..Default::default()
    };
    assert_eq!(verdict(&bare, &ok), Verdict::Block, "the rules do fire");
    // Another family in the same argument is still read.
    let xss = with_body(
        "POST",
        "/cwa/api/v1/Computers/12/CommandExecute",
        TrafficClass::Api,
        "application/json",
        r#"{"Parameters":["<script>alert(1)</script>"]}"#,
    );
    assert_eq!(verdict(&Settings::default(), &xss), Verdict::Block);
    // A target restriction: the Control Center's body, not its query.
    let soap_body = with_body(
        "POST",
        "/LabTech/ControlCenter.asmx",
        TrafficClass::ControlCenter,
        "text/xml",
        r"<x><parameters>type C:\Windows\Temp\setup.log</parameters></x>",
    );
    assert_eq!(verdict(&Settings::default(), &soap_body), Verdict::Pass);
    assert_eq!(verdict(&bare, &soap_body), Verdict::Block);
    let soap_query = req(
        "GET",
        "/LabTech/ControlCenter.asmx?f=../../windows/win.ini",
        TrafficClass::ControlCenter,
    );
    assert_eq!(verdict(&Settings::default(), &soap_query), Verdict::Block);
}
