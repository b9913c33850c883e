use std::path::Path;

use super::*;

fn load(name: &str, text: &str) -> Loaded {
    let mut out = Loaded::default();
    load_file(Path::new(name), text, &mut out).expect("loads");
    out
}

const FILE: &str = r#"---
  meta:
    author: "csanders-git"
    enabled: true
    name: "920100.yaml"
  tests:
    -
      test_title: 920100-2
      stages:
        -
          stage:
            input:
              dest_addr: "127.0.0.1"
              method: "     GET"
              port: 80
              headers:
                  User-Agent: "ModSecurity CRS 3 Tests"
                  Host: "localhost"
                  Content-Length: 0
              uri: "/"
              version: "HTTP/1.1"
            output:
              status: [403, 400]
    -
      test_title: 920100-6
      stages:
        - stage:
            input:
              method: "CONNECT"
              uri: "www.cnn.com:80"
            output:
              log_contains: "id \"920100\""
    -
      test_title: bare-stage
      stages:
        - input:
            method: POST
            data:
              - "7"
              - "foo=bar"
          output:
            no_log_contains: id "920100"
        - input:
            encoded_request: "R0VUIC8gSFRUUC8xLjENCg0K"
          output:
            expect_error: true
"#;

#[test]
fn reads_stages_wrapped_and_bare_in_order() {
    let l = load("x/REQUEST-920/920100.yaml", FILE);
    assert!(l.errors.is_empty());
    let titles: Vec<_> = l.cases.iter().map(|c| c.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "920100-2",
            "920100-6",
            "bare-stage/stage1",
            "bare-stage/stage2"
        ]
    );
    assert!(l.cases.iter().all(|c| c.file_rule == 920100));
    assert_eq!(l.cases[0].expect, Expect::Status(vec![403, 400]));
    assert_eq!(l.cases[1].expect, Expect::Fires(920100));
    assert_eq!(l.cases[2].expect, Expect::Silent(920100));
    assert_eq!(l.cases[3].expect, Expect::Error);
}

#[test]
fn keeps_parts_as_written_and_in_order() {
    let l = load("920100.yaml", FILE);
    let RequestSpec::Parts(p) = &l.cases[0].request else {
        panic!("parts expected")
    };
    assert_eq!(p.method, "     GET");
    assert_eq!(
        p.headers,
        [
            (
                "User-Agent".to_string(),
                "ModSecurity CRS 3 Tests".to_string()
            ),
            ("Host".to_string(), "localhost".to_string()),
            ("Content-Length".to_string(), "0".to_string()),
        ]
    );
    // Defaults: ftw's GET / HTTP/1.1.
    let RequestSpec::Parts(p) = &l.cases[1].request else {
        panic!("parts expected")
    };
    assert_eq!(
        (p.uri.as_str(), p.version.as_str()),
        ("www.cnn.com:80", "HTTP/1.1")
    );
    assert!(p.headers.is_empty() && p.data.is_empty());
    // A data list is joined with CRLF.
    let RequestSpec::Parts(p) = &l.cases[2].request else {
        panic!("parts expected")
    };
    assert_eq!(p.data, b"7\r\nfoo=bar");
    assert_eq!(
        l.cases[3].request,
        RequestSpec::Raw(b"GET / HTTP/1.1\r\n\r\n".to_vec())
    );
}

#[test]
fn raw_request_characters_up_to_ff_are_single_bytes() {
    let text = "tests:\n  - test_title: t\n    stages:\n      - stage:\n          input:\n            raw_request: \"POST / HTTP/1.0\\r\\n\\r\\ntest=\\xac\\xed\\x00\\x05\"\n          output:\n            no_log_contains: id \"944200\"\n";
    let l = load("944200.yaml", text);
    assert_eq!(
        l.cases[0].request,
        RequestSpec::Raw(b"POST / HTTP/1.0\r\n\r\ntest=\xac\xed\x00\x05".to_vec())
    );
}

#[test]
fn rule_ids_in_the_spellings_the_tests_use() {
    assert_eq!(rule_id(r#"id "920100""#), Some(920100));
    assert_eq!(rule_id(r#"id "942100"#), Some(942100));
    assert_eq!(rule_id("id:941100"), Some(941100));
    assert_eq!(rule_id("932160"), Some(932160));
    assert_eq!(rule_id("id 12"), None);
}

#[test]
fn disabled_files_and_unchecked_stages_are_counted_not_replayed() {
    let l = load(
        "913100.yaml",
        "meta:\n  enabled: false\ntests:\n  - test_title: a\n    stages: []\n",
    );
    assert_eq!((l.cases.len(), l.disabled), (0, 1));
    let l = load(
        "913100.yaml",
        "tests:\n  - test_title: a\n    stages:\n      - stage:\n          input: {}\n          output:\n            response_contains: x\n",
    );
    assert_eq!((l.cases.len(), l.unchecked), (0, 1));
}

#[test]
fn a_bad_file_name_or_document_is_an_error() {
    let mut out = Loaded::default();
    assert!(matches!(
        load_file(Path::new("readme.yaml"), FILE, &mut out),
        Err(FileError::Name(_))
    ));
    assert!(matches!(
        load_file(Path::new("920100.yaml"), "tests: [", &mut out),
        Err(FileError::Yaml { .. })
    ));
}
