use super::*;
use crate::ftw::RequestSpec;

#[test]
fn verdicts() {
    let fires = Expect::Fires(942100);
    assert_eq!(judge(&fires, &Outcome::Status(403)), Verdict::Blocked);
    assert_eq!(judge(&fires, &Outcome::Status(400)), Verdict::Refused);
    assert_eq!(judge(&fires, &Outcome::Closed), Verdict::Refused);
    assert_eq!(judge(&fires, &Outcome::Status(200)), Verdict::NotBlocked);
    assert_eq!(judge(&fires, &Outcome::Timeout), Verdict::NotBlocked);
    assert_eq!(
        judge(&fires, &Outcome::Connect("refused".into())),
        Verdict::Unreached
    );
    let silent = Expect::Silent(920100);
    assert_eq!(judge(&silent, &Outcome::Status(404)), Verdict::Passed);
    assert_eq!(judge(&silent, &Outcome::Status(400)), Verdict::Passed);
    assert_eq!(judge(&silent, &Outcome::Status(403)), Verdict::Failed);
    let status = Expect::Status(vec![403, 400]);
    assert_eq!(judge(&status, &Outcome::Status(400)), Verdict::Passed);
    assert_eq!(judge(&status, &Outcome::Closed), Verdict::Passed);
    assert_eq!(judge(&status, &Outcome::Status(200)), Verdict::Failed);
    assert_eq!(
        judge(&Expect::Status(vec![200]), &Outcome::Closed),
        Verdict::Failed
    );
    assert_eq!(judge(&Expect::Error, &Outcome::Closed), Verdict::Passed);
}

fn case(title: &str, expect: Expect) -> Case {
    Case {
        title: title.into(),
        file_rule: 942100,
        request: RequestSpec::Raw(Vec::new()),
        expect,
    }
}

#[test]
fn sums_per_family_and_level_and_lists_misses() {
    let results = vec![
        CaseResult::new(
            &case("942100-1", Expect::Fires(942100)),
            Some(1),
            Outcome::Status(403),
        ),
        CaseResult::new(
            &case("942100-2", Expect::Fires(942100)),
            Some(1),
            Outcome::Status(200),
        ),
        CaseResult::new(
            &case("942100-3", Expect::Silent(942100)),
            Some(1),
            Outcome::Status(200),
        ),
        CaseResult::new(
            &case("942101-1", Expect::Fires(942101)),
            Some(2),
            Outcome::Closed,
        ),
        CaseResult::new(
            &case("920100-1", Expect::Fires(920100)),
            None,
            Outcome::Status(400),
        ),
    ];
    let r = Report::new(results, vec!["x.yaml: bad".into()], 1, 0);
    let keys: Vec<_> = r
        .rows
        .iter()
        .map(|r| (r.family.as_str(), r.paranoia))
        .collect();
    assert_eq!(keys, [("920", None), ("942", Some(1)), ("942", Some(2))]);
    let pl1 = &r.rows[1];
    assert_eq!(
        (
            pl1.attacks,
            pl1.blocked_403,
            pl1.negatives,
            pl1.negatives_passed
        ),
        (2, 1, 1, 1)
    );
    assert_eq!(r.rows[2].refused_400_or_closed, 1);
    assert_eq!(
        (
            r.total.attacks,
            r.total.blocked_403,
            r.total.refused_400_or_closed
        ),
        (4, 1, 2)
    );
    let missed: Vec<_> = r.not_blocked().map(|c| c.title.as_str()).collect();
    assert_eq!(missed, ["942100-2"]);
    let md = r.markdown();
    assert!(
        md.contains("| 942 | 1 | 1 | 0 | 2 | 1 | 1 | 0 | 0 | 0 |"),
        "{md}"
    );
    assert!(md.contains("| all | all | 1 | 2 | 4 |"), "{md}");
    assert!(
        md.contains("- 942100-2 (rule 942100, family 942, PL1): status 200"),
        "{md}"
    );
    assert!(md.contains("x.yaml: bad"));
    let json = serde_json::to_value(&r).expect("json");
    assert_eq!(json["results"][1]["verdict"], "not_blocked");
    assert_eq!(json["results"][1]["outcome"]["detail"], 200);
}
