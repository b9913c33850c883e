use super::*;

fn one(text: &str) -> DirectiveKind {
    let mut d = parse_file("t.conf", text).expect("parses");
    assert_eq!(d.len(), 1, "{d:?}");
    d.remove(0).kind
}

fn rule(text: &str) -> RuleDef {
    match one(text) {
        DirectiveKind::Rule(r) => r,
        other => panic!("not a rule: {other:?}"),
    }
}

#[test]
fn continuation_lines_are_joined_and_located_at_their_first_line() {
    let text = "# comment\n\nSecRule ARGS \"@rx a\" \\\n    \"id:1,\\\n    phase:2,\\\n    pass\"\nSecMarker END\n";
    let d = parse_file("x.conf", text).expect("parses");
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].location.line, 3);
    assert_eq!(d[1].location.line, 7);
    assert_eq!(d[1].kind, DirectiveKind::Marker("END".into()));
    let DirectiveKind::Rule(r) = &d[0].kind else {
        panic!("rule")
    };
    assert_eq!(
        r.actions,
        vec![
            Action::Id(1),
            Action::Phase(2),
            Action::Disruptive(Disruptive::Pass)
        ]
    );
}

#[test]
fn trailing_whitespace_after_backslash_still_continues() {
    let r = rule("SecRule ARGS \"@rx a\" \\   \n \"id:5\"");
    assert_eq!(r.actions, vec![Action::Id(5)]);
}

#[test]
fn quoting_follows_apache() {
    let r = rule(r#"SecRule ARGS "@rx [\\\\'\"\^]x\d" "id:1""#);
    // `\\` -> `\`, `\"` -> `"`, other backslashes are kept for the regex.
    assert_eq!(r.operator.argument, r#"[\\'"\^]x\d"#);
    assert_eq!(r.operator.name, "rx");
    let words = split_words(r#"a 'b c' "d\"e" f\\g"#).expect("words");
    assert_eq!(words, vec!["a", "b c", "d\"e", "f\\g"]);
    assert!(split_words("\"open").is_err());
}

#[test]
fn unterminated_quote_is_an_error_with_location() {
    let err = parse_file("bad.conf", "\nSecRule ARGS \"@rx a").expect_err("fails");
    assert_eq!(err.location.line, 2);
    assert_eq!(&*err.location.file, "bad.conf");
    assert!(err.reason.contains("unterminated"), "{}", err.reason);
    assert!(err.to_string().starts_with("bad.conf:2:"));
}

#[test]
fn operators() {
    assert_eq!(
        parse_operator("!@within %{tx.allowed_methods}"),
        OperatorDef {
            name: "within".into(),
            negated: true,
            argument: "%{tx.allowed_methods}".into()
        }
    );
    assert_eq!(
        parse_operator("^foo$"),
        OperatorDef {
            name: "rx".into(),
            negated: false,
            argument: "^foo$".into()
        }
    );
    assert_eq!(
        parse_operator("@detectSQLi"),
        OperatorDef {
            name: "detectsqli".into(),
            negated: false,
            argument: "".into()
        }
    );
}

#[test]
fn variables_with_selectors_negation_and_count() {
    let v = parse_variables("REQUEST_COOKIES|!REQUEST_COOKIES:/__utm/|&TX:x|XML:/*|REQUEST_HEADERS:User-Agent|ARGS:/^(a|b)$/")
        .expect("parses");
    assert_eq!(v.len(), 6);
    assert_eq!(
        v[0],
        Variable {
            collection: "REQUEST_COOKIES".into(),
            selector: None,
            negated: false,
            count: false
        }
    );
    assert_eq!(v[1].selector, Some(Selector::Regex("__utm".into())));
    assert!(v[1].negated);
    assert!(v[2].count);
    assert_eq!(v[2].selector, Some(Selector::Name("x".into())));
    assert_eq!(v[3].selector, Some(Selector::XPath("/*".into())));
    assert_eq!(v[4].selector, Some(Selector::Name("User-Agent".into())));
    assert_eq!(v[5].selector, Some(Selector::Regex("^(a|b)$".into())));
    assert!(parse_variables("ARGS|").is_ok());
    assert!(parse_variables("AR GS!").is_err());
    assert!(parse_variables("ARGS:/unterminated").is_err());
}

#[test]
fn actions_quoting_setvar_ctl() {
    let a = parse_actions(
        "id:942100, phase:2,block,capture,t:none,t:urlDecodeUni,msg:'SQL \\'x\\', y',\
         setvar:'tx.anomaly_score_pl1=+%{tx.critical_anomaly_score}',setvar:!tx.foo,setvar:tx.flag,\
         ctl:ruleRemoveTargetById=942100;ARGS:pwd,ctl:ruleRemoveById=1-3 7,ctl:ruleEngine=Off,\
         ctl:auditLogParts=+E,severity:'CRITICAL',multiMatch,skipAfter:END-X,chain",
    )
    .expect("parses");
    assert_eq!(a[0], Action::Id(942100));
    assert_eq!(a[1], Action::Phase(2));
    assert_eq!(a[2], Action::Disruptive(Disruptive::Block));
    assert_eq!(a[3], Action::Capture);
    assert_eq!(a[4], Action::Transform("none".into()));
    assert_eq!(a[6], Action::Msg("SQL 'x', y".into()));
    assert_eq!(
        a[7],
        Action::SetVar(SetVar {
            collection: "tx".into(),
            key: "anomaly_score_pl1".into(),
            op: SetVarOp::Add("%{tx.critical_anomaly_score}".into())
        })
    );
    assert_eq!(
        a[8],
        Action::SetVar(SetVar {
            collection: "tx".into(),
            key: "foo".into(),
            op: SetVarOp::Delete
        })
    );
    assert_eq!(
        a[9],
        Action::SetVar(SetVar {
            collection: "tx".into(),
            key: "flag".into(),
            op: SetVarOp::Set("1".into())
        })
    );
    let Action::Ctl(Ctl::RuleRemoveTargetById(ids, targets)) = &a[10] else {
        panic!("{:?}", a[10])
    };
    assert_eq!(
        ids,
        &vec![IdRange {
            first: 942100,
            last: 942100
        }]
    );
    assert_eq!(targets[0].selector, Some(Selector::Name("pwd".into())));
    assert_eq!(
        a[11],
        Action::Ctl(Ctl::RuleRemoveById(vec![
            IdRange { first: 1, last: 3 },
            IdRange { first: 7, last: 7 }
        ]))
    );
    assert_eq!(a[12], Action::Ctl(Ctl::RuleEngine(EngineMode::Off)));
    assert!(matches!(a[13], Action::Ctl(Ctl::Other { .. })));
    assert_eq!(a[14], Action::Severity(Severity::Critical));
    assert_eq!(a[15], Action::MultiMatch);
    assert_eq!(a[16], Action::SkipAfter("END-X".into()));
    assert_eq!(a[17], Action::Chain);
}

#[test]
fn bad_actions_are_errors() {
    assert!(parse_actions("id:abc").is_err());
    assert!(parse_actions("phase:9").is_err());
    assert!(parse_actions("msg:'open").is_err());
    assert!(parse_actions("setvar:nocollection=1").is_err());
    assert!(matches!(
        parse_actions("frobnicate:1").expect("parses")[0],
        Action::Unknown { .. }
    ));
}

#[test]
fn chains_are_separate_directives_and_other_directives_are_kept() {
    let text = "SecRule REQUEST_METHOD \"@streq POST\" \"id:1,phase:2,deny,chain\"\n\
                \tSecRule &REQUEST_HEADERS:Content-Length \"@eq 0\" \"t:none\"\n\
                SecComponentSignature \"OWASP_CRS/3.3.4\"\n\
                SecAction \"id:2,phase:1,pass,nolog\"\n";
    let d = parse_file("c.conf", text).expect("parses");
    assert_eq!(d.len(), 4);
    let DirectiveKind::Rule(r) = &d[0].kind else {
        panic!()
    };
    assert!(r.actions.contains(&Action::Chain));
    let DirectiveKind::Rule(r2) = &d[1].kind else {
        panic!()
    };
    assert!(r2.variables[0].count);
    assert_eq!(
        d[2].kind,
        DirectiveKind::Other {
            name: "SecComponentSignature".into(),
            args: vec!["OWASP_CRS/3.3.4".into()]
        }
    );
    assert!(matches!(d[3].kind, DirectiveKind::Action(_)));
}

#[test]
fn wrong_argument_counts_are_errors() {
    assert!(parse_file("a", "SecRule ARGS").is_err());
    assert!(parse_file("a", "SecAction").is_err());
    assert!(parse_file("a", "SecMarker a b").is_err());
}
