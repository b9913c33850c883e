use super::*;

fn s(v: &[u8]) -> &str {
    std::str::from_utf8(v).expect("utf-8")
}

#[test]
fn request_line_pieces() {
    let mut r = RequestInput::new("GET", "http://h.example/a/b.php?x=1&y=%27#frag");
    r.protocol = "HTTP/1.1".into();
    let l = Line::new(&r);
    assert_eq!(s(&l.request_uri), "/a/b.php?x=1&y=%27#frag");
    assert_eq!(s(&l.filename), "/a/b.php");
    assert_eq!(s(&l.basename), "b.php");
    assert_eq!(l.query.as_deref().map(s), Some("x=1&y=%27#frag"));
    assert_eq!(
        s(&l.request_line),
        "GET http://h.example/a/b.php?x=1&y=%27#frag HTTP/1.1"
    );
}

#[test]
fn urlencoded_and_cookies() {
    let a = parse_urlencoded(b"a=1&&b&c=x+y%20z&%71=%");
    let a: Vec<(&str, &str)> = a.iter().map(|(n, v)| (s(n), s(v))).collect();
    assert_eq!(a, vec![("a", "1"), ("b", ""), ("c", "x y z"), ("q", "%")]);
    let mut c = Vec::new();
    parse_cookies(b"sid=abc%20; theme=dark;flag", &mut c);
    let c: Vec<(&str, &str)> = c.iter().map(|(n, v)| (s(n), s(v))).collect();
    assert_eq!(c, vec![("sid", "abc%20"), ("theme", "dark"), ("flag", "")]);
}

#[test]
fn json_args_are_named_by_path() {
    let b = parse_body(
        BodyProcessor::Json,
        b"application/json",
        br#"{"a":{"b":"x\u0041"},"l":[1,true,null],"n":-1.5e3}"#,
    );
    assert_eq!(b.error, None);
    let a: Vec<(&str, &str)> = b.args.iter().map(|(n, v)| (s(n), s(v))).collect();
    assert_eq!(
        a,
        vec![
            ("json.a.b", "xA"),
            ("json.l.array_0", "1"),
            ("json.l.array_1", "true"),
            ("json.l.array_2", ""),
            ("json.n", "-1.5e3"),
        ]
    );
    assert!(parse_body(BodyProcessor::Json, b"", b"{\"a\":")
        .error
        .is_some());
    assert!(parse_body(BodyProcessor::Json, b"", b"{} x")
        .error
        .is_some());
    let deep = "[".repeat(10_000);
    assert!(parse_body(BodyProcessor::Json, b"", deep.as_bytes())
        .error
        .is_some());
}

#[test]
fn multipart_parts_and_files() {
    let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nvalue\r\n--XyZ\r\n\
Content-Disposition: form-data; name=\"up\"; filename=\"a.php\"\r\nContent-Type: text/plain\r\n\r\n<?php ?>\r\n--XyZ--\r\n";
    let b = parse_body(
        BodyProcessor::Multipart,
        b"multipart/form-data; boundary=XyZ",
        body,
    );
    assert_eq!(b.error, None);
    assert!(!b.multipart_strict_error);
    assert_eq!(b.args, vec![(b"f".to_vec(), b"value".to_vec())]);
    assert_eq!(b.files, vec![(b"up".to_vec(), b"a.php".to_vec())]);
    assert_eq!(b.part_headers.len(), 3);
    assert_eq!(s(&b.part_headers[2].1), "Content-Type: text/plain");
    let broken = parse_body(
        BodyProcessor::Multipart,
        b"multipart/form-data; boundary=XyZ",
        b"--XyZ\r\nx",
    );
    assert!(broken.multipart_strict_error);
    let none = parse_body(BodyProcessor::Multipart, b"multipart/form-data", body);
    assert!(none.error.is_some());
}

#[test]
fn xml_text_and_processor_choice() {
    let b = parse_body(
        BodyProcessor::Xml,
        b"text/xml",
        b"<a x='1'><b>hi &amp; <![CDATA[<raw>]]></b><!-- c --></a>",
    );
    assert_eq!(b.xml_text.as_deref().map(s), Some("hi & <raw>"));
    assert!(parse_body(BodyProcessor::Xml, b"", b"nope").error.is_some());
    assert_eq!(
        BodyProcessor::for_content_type(b"application/json; charset=utf-8"),
        Some(BodyProcessor::Json)
    );
    assert_eq!(
        BodyProcessor::for_content_type(b"Application/X-WWW-Form-Urlencoded"),
        Some(BodyProcessor::UrlEncoded)
    );
    assert_eq!(
        BodyProcessor::for_content_type(b"application/soap+xml"),
        Some(BodyProcessor::Xml)
    );
    assert_eq!(BodyProcessor::for_content_type(b"text/plain"), None);
}
