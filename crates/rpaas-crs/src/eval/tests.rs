use std::path::Path;

use crate::{load_files, RequestInput, Setup};

fn rules(text: &str) -> crate::Loaded {
    load_files(
        &[("t.conf".into(), text.into())],
        Path::new("."),
        &Setup::paranoia(1),
    )
    .expect("loads")
}

#[test]
fn setvar_macros_and_capture() {
    let l = rules(
        r#"SecRule ARGS:q "@rx (a+)(b)" "id:10,phase:1,pass,capture,t:lowercase,msg:'got %{TX.1}',setvar:tx.score=+%{tx.critical_anomaly_score},setvar:tx.cap=%{tx.2}"
SecAction "id:11,phase:1,pass,nolog,setvar:tx.score=+1"
SecRule TX:score "@eq 6" "id:12,phase:2,deny,msg:'score %{tx.score} cap %{tx.cap}'""#,
    );
    assert!(
        l.report.unsupported.is_empty(),
        "{:?}",
        l.report.unsupported
    );
    // tx.critical_anomaly_score is not set without CRS 901: the macro is kept, atoi gives 0.
    let e = l.rules.evaluate(&RequestInput::new("GET", "/?q=xAAB"));
    assert_eq!(e.matches[0].msg, "got aa");
    assert_eq!(e.matches[0].var_name, "ARGS:q");
    assert_eq!(e.matches[0].excerpt, "aab");
    assert_eq!(e.blocked_by, None);
    let l = rules(
        r#"SecAction "id:1,phase:1,pass,nolog,setvar:tx.critical_anomaly_score=5"
SecRule ARGS:q "@rx (a+)(b)" "id:10,phase:1,pass,capture,setvar:tx.score=+%{tx.critical_anomaly_score},setvar:tx.cap=%{tx.2}"
SecAction "id:11,phase:1,pass,nolog,setvar:tx.score=+1"
SecRule TX:score "@eq 6" "id:12,phase:2,deny,msg:'score %{tx.score} cap %{tx.cap}'""#,
    );
    let e = l.rules.evaluate(&RequestInput::new("GET", "/?q=aab"));
    assert_eq!(e.blocked_by, Some(12));
    assert_eq!(
        e.matches.last().map(|m| m.msg.as_str()),
        Some("score 6 cap b")
    );
}

#[test]
fn chains_need_every_link() {
    let l = rules(
        r#"SecRule REQUEST_METHOD "@streq POST" "id:20,phase:1,deny,chain"
    SecRule &REQUEST_HEADERS:Content-Length "@eq 0" "t:none""#,
    );
    assert!(l
        .rules
        .evaluate(&RequestInput::new("GET", "/"))
        .blocked_by
        .is_none());
    assert_eq!(
        l.rules.evaluate(&RequestInput::new("POST", "/")).blocked_by,
        Some(20)
    );
    let with_len = RequestInput::new("POST", "/").header("Content-Length", "0");
    assert!(l.rules.evaluate(&with_len).blocked_by.is_none());
}

#[test]
fn skip_after_markers_and_phases() {
    let l = rules(
        r#"SecRule ARGS:skip "@eq 1" "id:30,phase:2,pass,nolog,skipAfter:END"
SecRule ARGS "@contains x" "id:31,phase:2,deny"
SecMarker END
SecRule ARGS "@contains y" "id:32,phase:2,deny"
SecRule RESPONSE_BODY "@contains z" "id:33,phase:4,deny""#,
    );
    assert_eq!(l.report.response_phase.len(), 1);
    assert_eq!(l.report.response_phase[0].rule_id, 33);
    assert_eq!(
        l.rules
            .evaluate(&RequestInput::new("GET", "/?a=x"))
            .blocked_by,
        Some(31)
    );
    assert_eq!(
        l.rules
            .evaluate(&RequestInput::new("GET", "/?a=x&skip=1"))
            .blocked_by,
        None
    );
    assert_eq!(
        l.rules
            .evaluate(&RequestInput::new("GET", "/?a=y&skip=1"))
            .blocked_by,
        Some(32)
    );
}

#[test]
fn exclusions_and_ctl_removals() {
    let l = rules(
        r#"SecRule REQUEST_FILENAME "@endsWith /login" "id:40,phase:1,pass,nolog,ctl:ruleRemoveTargetById=42;ARGS:pwd,ctl:ruleRemoveById=43"
SecRule ARGS|!ARGS:safe "@contains evil" "id:41,phase:2,block,msg:'41'"
SecRule ARGS "@contains evil" "id:42,phase:2,block,msg:'42'"
SecRule ARGS "@contains evil" "id:43,phase:2,block,msg:'43'"
SecRule ARGS "@contains evil" "id:44,phase:2,block,tag:'noisy',msg:'44'"
SecAction "id:45,phase:1,pass,nolog,ctl:ruleRemoveByTag=noisy""#,
    );
    let ids = |uri: &str| -> Vec<u32> {
        l.rules
            .evaluate(&RequestInput::new("GET", uri))
            .matches
            .iter()
            .map(|m| m.id)
            .collect()
    };
    assert_eq!(
        ids("/x?safe=evil"),
        Vec::<u32>::new()
            .into_iter()
            .chain([42, 43])
            .collect::<Vec<_>>()
    );
    assert_eq!(ids("/x?a=evil"), vec![41, 42, 43]);
    assert_eq!(ids("/login?pwd=evil"), vec![41]);
    assert_eq!(ids("/login?user=evil"), vec![41, 42]);
}

#[test]
fn body_processors_feed_args_post() {
    let l = rules(
        r#"SecRule ARGS_POST:json.a.b "@streq x" "id:50,phase:2,block,msg:'json'"
SecRule ARGS_POST_NAMES "@streq field" "id:51,phase:2,block,msg:'form'"
SecRule REQUEST_BODY "@contains field" "id:52,phase:2,block,msg:'body'"
SecRule FILES "@endsWith .php" "id:53,phase:2,block,msg:'file'"
SecRule REQBODY_ERROR "!@eq 0" "id:54,phase:2,block,msg:'error'"
SecRule ARGS "@unconditionalMatch" "id:55,phase:1,block,msg:'phase1 args'""#,
    );
    let ids = |r: RequestInput| -> Vec<u32> {
        l.rules.evaluate(&r).matches.iter().map(|m| m.id).collect()
    };
    assert_eq!(
        ids(RequestInput::new("POST", "/").body("application/json", r#"{"a":{"b":"x"}}"#)),
        vec![50]
    );
    assert_eq!(
        ids(RequestInput::new("POST", "/").body("application/x-www-form-urlencoded", "field=1")),
        vec![51, 52]
    );
    assert_eq!(
        ids(RequestInput::new("POST", "/").body("application/json", "{bad")),
        vec![54]
    );
    let mp = "--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.php\"\r\n\r\n<?php\r\n--B--\r\n";
    assert_eq!(
        ids(RequestInput::new("POST", "/").body("multipart/form-data; boundary=B", mp)),
        vec![53]
    );
    // Phase 1 sees query args only.
    assert_eq!(
        ids(RequestInput::new("POST", "/?q=1").body("application/x-www-form-urlencoded", "a=1")),
        vec![55]
    );
}

#[test]
fn counts_multimatch_and_matched_vars() {
    let l = rules(
        r#"SecRule &ARGS "@gt 2" "id:60,phase:2,block,msg:'many'"
SecRule ARGS "@rx ^<" "id:61,phase:2,block,multiMatch,t:urlDecode,msg:'mm'"
SecRule ARGS_NAMES "@rx ^x" "id:62,phase:2,block,chain,msg:'chain'"
    SecRule MATCHED_VARS "@streq 7" "t:none""#,
    );
    let ids = |uri: &str| -> Vec<u32> {
        l.rules
            .evaluate(&RequestInput::new("GET", uri))
            .matches
            .iter()
            .map(|m| m.id)
            .collect()
    };
    assert_eq!(ids("/?a=1&b=2&c=3"), vec![60]);
    // The query parser already decoded once; multiMatch also tries the value after t:urlDecode.
    assert_eq!(ids("/?a=%253c"), vec![61]);
    // MATCHED_VARS holds the previous link's matches: ARGS_NAMES values are the names.
    assert_eq!(ids("/?x1=7"), Vec::<u32>::new());
    let l2 = rules(
        r#"SecRule ARGS "@rx ^7$" "id:63,phase:2,block,chain,msg:'chain'"
    SecRule MATCHED_VARS_NAMES "@streq ARGS:x1" "t:none""#,
    );
    let e = l2.rules.evaluate(&RequestInput::new("GET", "/?x1=7"));
    assert_eq!(e.matches.iter().map(|m| m.id).collect::<Vec<_>>(), vec![63]);
}

#[test]
fn unsupported_rules_are_reported_not_run() {
    let l = rules(
        r#"SecRule GEO:COUNTRY_CODE "@streq XX" "id:70,phase:1,deny"
SecRule ARGS "@rbl x.example" "id:71,phase:1,deny"
SecRule ARGS "@rx a" "id:72,phase:1,deny,t:parityEven7bit"
SecRule ARGS "@rx a" "id:73,phase:1,deny,frobnicate"
SecRule ARGS "@rx a" "id:74,phase:1,pass,chain"
SecComponentSignature "x""#,
    );
    let ids: Vec<u32> = l.report.unsupported.iter().map(|u| u.rule_id).collect();
    assert_eq!(ids, vec![70, 71, 72, 73, 0]);
    assert!(l
        .report
        .unsupported
        .iter()
        .all(|u| !u.reason.is_empty() && u.line > 0));
    assert_eq!(l.report.ignored_directives.len(), 1);
    assert_eq!(l.rules.rule_count(), 3, "the three injected setup actions");
}

#[test]
fn setup_is_validated() {
    for bad in [Setup::paranoia(0), Setup::paranoia(5)] {
        assert!(load_files(&[], Path::new("."), &bad).is_err());
    }
    let mut s = Setup::paranoia(2);
    s.executing_paranoia_level = Some(1);
    assert!(load_files(&[], Path::new("."), &s).is_err());
}

#[test]
fn preset_tx_is_visible_to_rules() {
    let l = rules(
        r#"SecRule TX:rpaas_class "@streq agent" "id:80,phase:1,pass,msg:'class %{tx.rpaas_class}',ctl:ruleRemoveById=81"
SecRule ARGS "@contains x" "id:81,phase:1,deny""#,
    );
    let req = || RequestInput::new("GET", "/?a=x");
    assert_eq!(l.rules.evaluate(&req()).blocked_by, Some(81));
    let e = l
        .rules
        .evaluate(&req().tx("RPAAS_Class", "other").tx("rpaas_class", "agent"));
    assert_eq!(e.blocked_by, None);
    assert_eq!(e.matches[0].id, 80);
    assert_eq!(e.matches[0].msg, "class agent");
    assert_eq!(e.matches[0].var_name, "TX:rpaas_class");
}
