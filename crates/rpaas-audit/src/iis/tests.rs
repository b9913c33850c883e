use super::*;

const HARDENED: &str = include_str!("../../tests/fixtures/applicationHost.hardened.config");
const DEFAULT: &str = include_str!("../../tests/fixtures/applicationHost.default.config");

fn checks(text: &str) -> Vec<Check> {
    judge_iis(&IisConfig::parse(text).expect("parse"))
}

fn get<'a>(cs: &'a [Check], id: &str) -> &'a Check {
    cs.iter().find(|c| c.id == id).expect("check present")
}

/// A config with one site holding the five Automate applications, plus `extra` at the root.
fn with(extra: &str) -> String {
    format!(
        r#"<configuration>
  <system.applicationHost><sites><site name="Default Web Site" id="1">
    <application path="/" /><application path="/LabTech" /><application path="/LabTech/LegacyCCASMX" />
    <application path="/cwa" /><application path="/automate" /><application path="/WCC2" />
  </site></sites></system.applicationHost>
  {extra}
</configuration>"#
    )
}

const ADMIN_LOCKED: &str = r#"
  <location path="Default Web Site/cwa"><system.webServer><security>
    <ipSecurity allowUnlisted="false"><add ipAddress="203.0.113.5" allowed="true" /></ipSecurity>
  </security></system.webServer></location>
  <location path="Default Web Site/automate"><system.webServer><security>
    <ipSecurity allowUnlisted="false"><add ipAddress="203.0.113.5" allowed="true" /></ipSecurity>
  </security></system.webServer></location>
  <location path="Default Web Site/LabTech/LegacyCCASMX"><system.webServer><security>
    <ipSecurity allowUnlisted="false"><add ipAddress="203.0.113.5" allowed="true" /></ipSecurity>
  </security></system.webServer></location>"#;

#[test]
fn hardened_fixture_passes_everything() {
    let cs = checks(HARDENED);
    for c in &cs {
        assert_eq!(c.status, Status::Pass, "{}: {}", c.id, c.detail);
    }
    let ip = get(&cs, ids::IIS_IP);
    assert!(
        ip.detail
            .contains("Default Web Site/cwa: restricted, 2 allowed address(es)"),
        "{}",
        ip.detail
    );
    // The location path is written in another case: IIS paths are case-insensitive.
    assert!(
        ip.detail
            .contains("Default Web Site/LabTech/LegacyCCASMX: restricted"),
        "{}",
        ip.detail
    );
    assert!(ip
        .detail
        .contains("Default Web Site/WCC2: open, as it must be"));
    assert!(get(&cs, ids::IIS_OPTIONS)
        .detail
        .contains("TRACE denied, TRACK denied"));
}

#[test]
fn default_fixture_fails_everything() {
    let cs = checks(DEFAULT);
    for c in &cs {
        assert_eq!(c.status, Status::Fail, "{}: {}", c.id, c.detail);
    }
    assert!(get(&cs, ids::IIS_SERVER_HEADER)
        .detail
        .contains("Default Web Site (IIS default)"));
    assert!(get(&cs, ids::IIS_OPTIONS)
        .detail
        .contains("not listed, allowUnlisted=\"true\" (server-wide)"));
    let ip = &get(&cs, ids::IIS_IP).detail;
    assert!(
        ip.contains("Default Web Site/cwa: OPEN to unspecified clients (allowUnlisted=\"true\", server-wide)"),
        "{ip}"
    );
}

#[test]
fn a_site_wide_deny_locks_out_agents_unless_labtech_reopens() {
    let deny_site = r#"<location path="Default Web Site"><system.webServer><security>
        <ipSecurity allowUnlisted="false"><add ipAddress="203.0.113.5" allowed="true" /></ipSecurity>
        </security></system.webServer></location>"#;
    let cs = checks(&with(deny_site));
    let ip = get(&cs, ids::IIS_IP);
    assert_eq!(ip.status, Status::Fail);
    assert!(ip
        .detail
        .contains("Default Web Site/LabTech: unspecified clients denied"));
    assert!(
        ip.detail.contains("agents cannot check in"),
        "{}",
        ip.detail
    );
    assert!(
        ip.detail.contains("contacts cannot log in"),
        "{}",
        ip.detail
    );
    assert!(
        ip.detail
            .contains("Default Web Site/cwa: restricted, 1 allowed"),
        "{}",
        ip.detail
    );

    let reopen = r#"
      <location path="Default Web Site/LabTech"><system.webServer><security>
        <ipSecurity allowUnlisted="true" /></security></system.webServer></location>
      <location path="Default Web Site/WCC2"><system.webServer><security>
        <ipSecurity allowUnlisted="true" /></security></system.webServer></location>"#;
    let cs = checks(&with(&format!("{deny_site}{reopen}")));
    // LegacyCCASMX lives below LabTech: the nearer location (LabTech, open) wins for it.
    let ip = get(&cs, ids::IIS_IP);
    assert_eq!(ip.status, Status::Fail, "{}", ip.detail);
    assert!(
        ip.detail
            .contains("Default Web Site/LabTech/LegacyCCASMX: OPEN"),
        "{}",
        ip.detail
    );
    let cs = checks(&with(&format!("{deny_site}{reopen}{ADMIN_LOCKED}")));
    assert_eq!(
        get(&cs, ids::IIS_IP).status,
        Status::Pass,
        "{}",
        get(&cs, ids::IIS_IP).detail
    );
}

#[test]
fn inherit_in_child_applications_false_stops_at_the_site() {
    let x = r#"<location path="Default Web Site" inheritInChildApplications="false"><system.webServer><security>
        <ipSecurity allowUnlisted="false"><add ipAddress="203.0.113.5" allowed="true" /></ipSecurity>
        <requestFiltering removeServerHeader="true" />
        </security></system.webServer></location>"#;
    let cs = checks(&with(x));
    let ip = get(&cs, ids::IIS_IP);
    assert_eq!(ip.status, Status::Fail);
    assert!(
        ip.detail.contains("Default Web Site/cwa: OPEN"),
        "{}",
        ip.detail
    );
    assert!(ip
        .detail
        .contains("Default Web Site/LabTech: open, as it must be"));
    let sh = get(&cs, ids::IIS_SERVER_HEADER);
    assert_eq!(sh.status, Status::Fail);
    assert!(
        sh.detail.contains("Default Web Site/cwa (IIS default)"),
        "{}",
        sh.detail
    );
    assert!(
        !sh.detail.contains("Default Web Site (IIS default)"),
        "{}",
        sh.detail
    );
}

#[test]
fn verbs_merge_add_remove_clear_and_allow_unlisted() {
    // Denied by allowUnlisted="false" with no OPTIONS entry.
    let closed = r#"<system.webServer><security><requestFiltering>
        <verbs allowUnlisted="false"><add verb="GET" allowed="true" /><add verb="POST" allowed="true" /></verbs>
        </requestFiltering></security></system.webServer>"#;
    assert_eq!(
        get(&checks(&with(closed)), ids::IIS_OPTIONS).status,
        Status::Pass
    );

    // Denied server-wide, re-allowed for one application by removing the entry.
    let reopened = r#"<system.webServer><security><requestFiltering>
        <verbs allowUnlisted="true"><add verb="OPTIONS" allowed="false" /></verbs>
        </requestFiltering></security></system.webServer>
      <location path="Default Web Site/WCC2"><system.webServer><security><requestFiltering>
        <verbs><remove verb="options" /></verbs></requestFiltering></security></system.webServer></location>"#;
    let c = get(&checks(&with(reopened)), ids::IIS_OPTIONS).clone();
    assert_eq!(c.status, Status::Fail);
    assert!(
        c.detail
            .starts_with("OPTIONS allowed for Default Web Site/WCC2"),
        "{}",
        c.detail
    );
    assert!(
        c.detail.contains("TRACE not denied everywhere"),
        "{}",
        c.detail
    );

    let cleared = r#"<system.webServer><security><requestFiltering>
        <verbs allowUnlisted="true"><add verb="OPTIONS" allowed="false" /></verbs>
        </requestFiltering></security></system.webServer>
      <location path="Default Web Site/cwa"><system.webServer><security><requestFiltering>
        <verbs><clear /></verbs></requestFiltering></security></system.webServer></location>"#;
    let c = get(&checks(&with(cleared)), ids::IIS_OPTIONS).clone();
    assert_eq!(c.status, Status::Fail);
    assert!(c.detail.contains("Default Web Site/cwa"), "{}", c.detail);
}

#[test]
fn restricted_with_nobody_allowed_warns() {
    let x = ADMIN_LOCKED.replace(r#"<add ipAddress="203.0.113.5" allowed="true" />"#, "");
    let c = get(&checks(&with(&x)), ids::IIS_IP).clone();
    assert_eq!(c.status, Status::Warn, "{}", c.detail);
    assert!(c.detail.contains("technicians are locked out too"));
}

#[test]
fn missing_apps_and_non_automate_configs() {
    let only_labtech = r#"<configuration><system.applicationHost><sites><site name="S">
        <application path="/LabTech" /></site></sites></system.applicationHost></configuration>"#;
    let c = get(&checks(only_labtech), ids::IIS_IP).clone();
    assert_eq!(c.status, Status::Pass, "{}", c.detail);
    assert!(c.detail.contains("cwa: not in this config"));
    let none = "<configuration><system.webServer/></configuration>";
    assert_eq!(get(&checks(none), ids::IIS_IP).status, Status::Skip);
    // With no <sites>, server-wide settings are judged for the server itself.
    let sh = get(&checks(none), ids::IIS_SERVER_HEADER).clone();
    assert_eq!(
        sh.detail,
        "the Server header is sent for the server (IIS default)"
    );
}

#[test]
fn bad_xml_is_an_error_with_a_position() {
    assert!(IisConfig::parse("<web><x></web>").is_err());
    let e = IisConfig::parse("<configuration><a></b></configuration>").expect_err("mismatch");
    assert!(e.position > 0, "{e:?}");
    let e = IisConfig::parse("<settings/>").expect_err("wrong root");
    assert!(e.reason.contains("not an applicationHost.config"), "{e:?}");
    assert!(IisConfig::parse("").is_err());
    assert!(IisConfig::parse("<configuration>").is_err());
    assert!(IisConfig::parse("<configuration/><configuration/>").is_err());
    let deep = "<a>".repeat(100) + &"</a>".repeat(100);
    assert!(parse_xml(&deep)
        .expect_err("deep")
        .reason
        .contains("deeper"));
}

#[test]
fn entities_are_not_expanded() {
    let x = r#"<?xml version="1.0"?>
<!DOCTYPE configuration [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<configuration><system.webServer><security><requestFiltering removeServerHeader="&xxe;" />
</security></system.webServer></configuration>"#;
    let c = IisConfig::parse(x).expect("parse");
    let e = c.effective(&[], REQUEST_FILTERING, "removeServerHeader");
    assert_eq!(e.value.as_deref(), Some("&xxe;"));
}

#[test]
fn server_chosen_text_is_escaped() {
    let x = r#"<configuration><system.applicationHost><sites><site name="S&#27;[31m">
        <application path="/cwa" /></site></sites></system.applicationHost></configuration>"#;
    let c = get(&checks(x), ids::IIS_IP).clone();
    assert!(
        c.detail.contains(r"S\u{1b}[31m/cwa: OPEN"),
        "{:?}",
        c.detail
    );
    assert!(!c.detail.contains('\u{1b}'), "{:?}", c.detail);
}
