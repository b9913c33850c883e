use super::*;

fn parts(method: &str, uri: &str, headers: &[(&str, &str)], data: &str) -> RequestSpec {
    RequestSpec::Parts(Parts {
        method: method.into(),
        uri: uri.into(),
        version: "HTTP/1.1".into(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        data: data.as_bytes().to_vec(),
        stop_magic: false,
    })
}

#[test]
fn builds_the_request_line_and_headers_as_given() {
    let spec = parts(
        "     GET",
        "/a?b=<c>",
        &[
            ("User-Agent", "ModSecurity CRS 3 Tests"),
            ("Host", "localhost"),
            ("x", ""),
        ],
        "",
    );
    assert_eq!(
        build(&spec, "node.example"),
        b"     GET /a?b=<c> HTTP/1.1\r\nUser-Agent: ModSecurity CRS 3 Tests\r\nHost: node.example\r\nx: \r\n\r\n"
    );
}

#[test]
fn only_localhost_is_replaced() {
    let spec = parts("GET", "/", &[("Host", "127.0.0.1")], "");
    assert_eq!(
        build(&spec, "node.example"),
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    );
    let spec = parts("GET", "/", &[], "");
    assert_eq!(build(&spec, "node.example"), b"GET / HTTP/1.1\r\n\r\n");
}

#[test]
fn a_body_gets_ftw_content_type_and_length_unless_stop_magic() {
    let spec = parts("POST", "/", &[("Host", "localhost")], "a=1 2");
    assert_eq!(
        build(&spec, "h"),
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 5\r\n\r\na=1 2"
    );
    // Given headers win, even when they lie.
    let spec = parts(
        "POST",
        "/",
        &[("content-length", "99"), ("Content-Type", "text/plain")],
        "x",
    );
    assert_eq!(
        build(&spec, "h"),
        b"POST / HTTP/1.1\r\ncontent-length: 99\r\nContent-Type: text/plain\r\n\r\nx"
    );
    let RequestSpec::Parts(mut p) = parts("POST", "/", &[], "x") else {
        unreachable!()
    };
    p.stop_magic = true;
    assert_eq!(
        build(&RequestSpec::Parts(p), "h"),
        b"POST / HTTP/1.1\r\n\r\nx"
    );
}

#[test]
fn raw_requests_keep_every_byte_but_the_host() {
    let raw = b"POST / HTTP/1.0\r\nHOST:localhost\r\nX: Host: localhost\r\n\r\nHost: localhost\r\n\xac\xed".to_vec();
    assert_eq!(
        build(&RequestSpec::Raw(raw), "node.example"),
        b"POST / HTTP/1.0\r\nHOST: node.example\r\nX: Host: localhost\r\n\r\nHost: localhost\r\n\xac\xed"
    );
    // Bare LF line endings stay bare.
    let raw = b"GET / HTTP/1.1\nHost: localhost\n\n".to_vec();
    assert_eq!(
        build(&RequestSpec::Raw(raw), "h"),
        b"GET / HTTP/1.1\nHost: h\n\n"
    );
    // The request line is never taken for a header.
    let raw = b"Host: localhost\r\n\r\n".to_vec();
    assert_eq!(build(&RequestSpec::Raw(raw.clone()), "h"), raw);
}
