use super::*;

fn rw<'a>(internal: &'a [String]) -> LocationRewrite<'a> {
    LocationRewrite {
        internal_hosts: internal,
        public_host: "052d3c3287c38201.example.net",
    }
}

#[test]
fn location_naming_internal_host_or_ip_is_rewritten() {
    let internal = vec!["automate.partner.local".to_string()];
    let r = rw(&internal);
    let cases = [
        ("http://automate.partner.local/automate/", "/automate/"),
        ("https://AUTOMATE.partner.local:8443/a?b=c", "/a?b=c"),
        ("http://10.0.0.5/aspnet_client/", "/aspnet_client/"),
        ("http://10.0.0.5", "/"),
        ("http://[fe80::1]:80/x", "/x"),
        ("http://user@10.0.0.5/x", "/x"),
        ("//192.168.1.10/x", "/x"),
        ("http://0x0a.0.0.5/x", "/x"),
        ("http://167772165/x", "/x"),
        ("http://automate.partner.local./x#f", "/x#f"),
    ];
    for (input, path) in cases {
        assert_eq!(
            r.rewrite_url(input).as_deref(),
            Some(format!("https://052d3c3287c38201.example.net{path}").as_str()),
            "{input}"
        );
    }
}

#[test]
fn public_and_relative_locations_are_left_alone() {
    let internal = vec!["automate.partner.local".to_string()];
    let r = rw(&internal);
    for v in [
        "/automate/login",
        "https://052d3c3287c38201.example.net/x",
        "https://www.connectwise.com/",
        "mailto:someone@10.0.0.1",
        "",
        "http://10.0.0.5.example.com/",
    ] {
        assert_eq!(r.rewrite_url(v), None, "{v}");
    }
}

#[test]
fn refresh_url_is_rewritten_with_quotes_kept() {
    let internal = vec![];
    let r = rw(&internal);
    assert_eq!(
        r.rewrite_refresh("5; url=http://10.1.2.3/x").as_deref(),
        Some("5; url=https://052d3c3287c38201.example.net/x")
    );
    assert_eq!(
        r.rewrite_refresh("0;URL='http://10.1.2.3/y'").as_deref(),
        Some("0;URL='https://052d3c3287c38201.example.net/y'")
    );
    assert_eq!(r.rewrite_refresh("5"), None);
    assert_eq!(r.rewrite_refresh("5; url=/local"), None);
}

#[test]
fn ip_literal_forms() {
    assert_eq!(
        parse_ip_literal("127.1"),
        Some("127.0.0.1".parse().unwrap())
    );
    assert_eq!(
        parse_ip_literal("0177.0.0.1"),
        Some("127.0.0.1".parse().unwrap())
    );
    assert_eq!(parse_ip_literal("::1"), Some("::1".parse().unwrap()));
    assert_eq!(parse_ip_literal("256.1.1.1"), None);
    assert_eq!(parse_ip_literal("example.com"), None);
    assert_eq!(parse_ip_literal("1.2.3.4.5"), None);
    assert_eq!(parse_ip_literal("09.1.1.1"), None);
}

#[test]
fn denied_methods() {
    let denied: Vec<String> = DEFAULT_DENY_METHODS.iter().map(|s| s.to_string()).collect();
    assert!(is_denied_method("OPTIONS", &denied));
    assert!(is_denied_method("TRACK", &denied));
    assert!(!is_denied_method("GET", &denied));
    assert!(is_denied_method("options", &denied));
}
