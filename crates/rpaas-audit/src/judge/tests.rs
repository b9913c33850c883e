use super::*;

fn resp(status: u16, headers: &[(&str, &str)], body: &str) -> Outcome {
    Ok(Response {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.as_bytes().to_vec(),
    })
}

const IIS: &[(&str, &str)] = &[
    ("Server", "Microsoft-IIS/10.0"),
    ("X-Powered-By", "ASP.NET"),
    ("X-AspNet-Version", "4.0.30319"),
];

/// What a default IIS in front of Automate answers.
fn leaky() -> HttpObserved {
    HttpObserved {
        host: "automate.partner.example".into(),
        root: resp(200, IIS, "<html>IIS</html>"),
        options: resp(
            200,
            &[
                ("Server", "Microsoft-IIS/10.0"),
                ("Allow", "OPTIONS, TRACE, GET, HEAD, POST"),
                ("Public", "OPTIONS, TRACE, GET, HEAD, POST"),
            ],
            "",
        ),
        trace: resp(
            200,
            IIS,
            "TRACE / HTTP/1.1\r\nX-Rpaas-Audit: trace-probe\r\n",
        ),
        track: resp(501, IIS, ""),
        aspnet: vec![
            resp(
                301,
                &[("Location", "http://10.20.30.40/aspnet_client/")],
                "",
            ),
            resp(
                301,
                &[
                    (
                        "Location",
                        "http://win-automate01.corp.local/aspnet_client/",
                    ),
                    ("Refresh", "0; url=http://10.20.30.40/aspnet_client/"),
                ],
                "",
            ),
        ],
        admin: vec![
            resp(200, IIS, "<title>ConnectWise Automate</title>"),
            resp(302, &[("Location", "/automate/login")], ""),
            resp(200, IIS, "ControlCenter Web Service"),
        ],
        agent: resp(200, IIS, "LabTech|240.120"),
        wcc2: resp(200, IIS, "<html><footer>Version 2024.1.120</footer></html>"),
    }
}

/// What an rpaas node with an agent-only instance answers an untrusted address.
fn hardened() -> HttpObserved {
    let hsts = &[("Strict-Transport-Security", "max-age=31536000")];
    HttpObserved {
        host: "052d3c3287c38201.example.net".into(),
        root: resp(403, hsts, "refused"),
        options: resp(405, hsts, ""),
        trace: resp(405, hsts, ""),
        track: resp(405, hsts, ""),
        aspnet: vec![resp(400, hsts, ""), resp(400, hsts, "")],
        admin: vec![
            resp(403, hsts, ""),
            resp(403, hsts, ""),
            resp(403, hsts, ""),
        ],
        agent: resp(200, hsts, "LabTech|240.120"),
        wcc2: resp(403, hsts, ""),
    }
}

fn by_id(cs: &[Check], id: &str) -> Check {
    cs.iter()
        .find(|c| c.id == id)
        .cloned()
        .expect("check present")
}

#[test]
fn a_default_iis_fails_the_http_checks() {
    let cs = judge_http(&leaky());
    let expect = [
        (ids::SERVER_HEADER, Status::Fail),
        (ids::X_POWERED_BY, Status::Fail),
        (ids::ASPNET_HEADERS, Status::Fail),
        (ids::OPTIONS, Status::Fail),
        (ids::TRACE, Status::Fail),
        (ids::LOCATION, Status::Fail),
        (ids::ADMIN, Status::Fail),
        (ids::WCC2, Status::Fail),
        (ids::AGENT, Status::Warn),
        (ids::SCREENCONNECT, Status::Pass),
    ];
    assert_eq!(cs.len(), expect.len());
    for (id, st) in expect {
        let c = by_id(&cs, id);
        assert_eq!(c.status, st, "{id}: {}", c.detail);
    }
    let server = by_id(&cs, ids::SERVER_HEADER).detail;
    assert!(
        server.starts_with("Server: Microsoft-IIS/10.0 on 8 of 11"),
        "{server}"
    );
    let opt = by_id(&cs, ids::OPTIONS).detail;
    assert!(opt.contains("Allow: OPTIONS, TRACE"), "{opt}");
    let trace = by_id(&cs, ids::TRACE).detail;
    assert!(
        trace.contains("TRACE answered 200, the request was echoed back"),
        "{trace}"
    );
    assert!(trace.contains("TRACK refused (501)"), "{trace}");
    let loc = by_id(&cs, ids::LOCATION).detail;
    assert!(loc.contains("names the IP address 10.20.30.40"), "{loc}");
    assert!(
        loc.contains("names the host win-automate01.corp.local"),
        "{loc}"
    );
    assert!(
        loc.contains("Location: http://10.20.30.40/aspnet_client/: location names the IP address 10.20.30.40"),
        "{loc}"
    );
    assert!(
        loc.contains("refresh names the IP address 10.20.30.40"),
        "{loc}"
    );
    let admin = by_id(&cs, ids::ADMIN).detail;
    assert!(
        admin.contains("cwa (/cwa/) REACHABLE: 302 to /automate/login"),
        "{admin}"
    );
    assert!(
        admin.contains("LabTech (/LabTech/Agent.aspx) open (200)"),
        "{admin}"
    );
    assert!(admin.contains("auditing address only"), "{admin}");
    assert!(by_id(&cs, ids::WCC2)
        .detail
        .contains("shows version 2024.1.120"));
    assert!(by_id(&cs, ids::AGENT)
        .detail
        .contains("shows version 240.120"));
}

#[test]
fn an_rpaas_node_passes_them() {
    let cs = judge_http(&hardened());
    for c in &cs {
        let want = if c.id == ids::AGENT {
            Status::Warn
        } else {
            Status::Pass
        };
        assert_eq!(c.status, want, "{}: {}", c.id, c.detail);
    }
    let admin = by_id(&cs, ids::ADMIN).detail;
    assert!(admin.contains("WCC2 (/WCC2/) refused (403)"), "{admin}");
    assert_eq!(
        by_id(&cs, ids::LOCATION).detail,
        "GET /aspnet_client: HTTP/1.0, empty Host: 400, no Location; HTTP/1.0, no Host: 400, no Location"
    );
}

#[test]
fn nothing_answered_means_skip() {
    let mut o = hardened();
    let e = Err(ProbeError::Refused);
    o.root = e.clone();
    o.options = e.clone();
    o.trace = e.clone();
    o.track = e.clone();
    o.aspnet = vec![e.clone(), e.clone()];
    o.admin = vec![Err(ProbeError::Timeout(5000)); 3];
    o.agent = Err(ProbeError::Timeout(5000));
    o.wcc2 = Err(ProbeError::Timeout(5000));
    let cs = judge_http(&o);
    for id in [
        ids::SERVER_HEADER,
        ids::LOCATION,
        ids::ADMIN,
        ids::AGENT,
        ids::SCREENCONNECT,
    ] {
        assert_eq!(by_id(&cs, id).status, Status::Skip, "{id}");
    }
    // A refused OPTIONS connection is a refusal: the method did not get through.
    assert_eq!(by_id(&cs, ids::OPTIONS).status, Status::Pass);
}

#[test]
fn location_leaks() {
    let h = "automate.example.com";
    assert_eq!(location_leak("/aspnet_client/", h), None);
    assert_eq!(location_leak("https://Automate.Example.com./x", h), None);
    assert_eq!(
        location_leak("https://automate.example.com:8443/x", h),
        None
    );
    assert_eq!(
        location_leak("http://10.0.0.5/aspnet_client/", h).as_deref(),
        Some("names the IP address 10.0.0.5")
    );
    assert_eq!(
        location_leak("http://[fd00::5]:80/", h).as_deref(),
        Some("names the IP address fd00::5")
    );
    // Dotted forms browsers accept are IP addresses too.
    assert_eq!(
        location_leak("http://0x0a.0.0.5/", h).as_deref(),
        Some("names the IP address 10.0.0.5")
    );
    assert_eq!(
        location_leak("//internal-web/x", h).as_deref(),
        Some("names the host internal-web")
    );
    assert_eq!(
        location_leak("http://user@10.1.2.3/", h).as_deref(),
        Some("names the IP address 10.1.2.3")
    );
    // Auditing by IP: naming that same address is no news.
    assert_eq!(location_leak("http://127.0.0.1/x", "127.0.0.1"), None);
    assert_eq!(location_leak("mailto:x@y", h), None);
}

#[test]
fn admin_answers() {
    for (o, want) in [
        (resp(403, &[], ""), Reach::Restricted),
        (resp(404, &[], ""), Reach::Restricted),
        (Err(ProbeError::Refused), Reach::Restricted),
        (Err(ProbeError::Tls("alert".into())), Reach::Restricted),
        (resp(200, &[], ""), Reach::Reachable),
        (resp(302, &[], ""), Reach::Reachable),
        (resp(401, &[], ""), Reach::Reachable),
        (resp(405, &[], ""), Reach::Unclear),
        (resp(502, &[], ""), Reach::Unclear),
        (Err(ProbeError::Timeout(1)), Reach::Unclear),
    ] {
        assert_eq!(reach(&o), want, "{o:?}");
    }
    let mut o = hardened();
    o.admin[1] = resp(502, &[], "");
    assert_eq!(by_id(&judge_http(&o), ids::ADMIN).status, Status::Warn);
}

#[test]
fn version_strings() {
    assert_eq!(
        wcc2_version(b"<p>Version: 2023.11.0.52</p>").as_deref(),
        Some("2023.11.0.52")
    );
    assert_eq!(
        wcc2_version(b"<span>v240.120</span>").as_deref(),
        Some("240.120")
    );
    assert_eq!(wcc2_version(b"<b>ver. 12.0</b>").as_deref(), Some("12.0"));
    assert_eq!(
        wcc2_version(b"<script src='jquery-3.6.0.min.js'></script>"),
        None
    );
    assert_eq!(wcc2_version(b"<div style='opacity: 0.5'>Login</div>"), None);
    assert_eq!(
        agent_version(b"LabTech|240.120").as_deref(),
        Some("240.120")
    );
    assert_eq!(
        agent_version(b"2024.1.120.7").as_deref(),
        Some("2024.1.120.7")
    );
    assert_eq!(agent_version(b"from 10.20.30.40 only"), None);
    assert_eq!(agent_version(b"ok"), None);
}

#[test]
fn screenconnect_header() {
    let mut o = hardened();
    o.root = resp(200, &[("Server", "ScreenConnect/23.9.7.8804-1234")], "");
    let c = by_id(&judge_http(&o), ids::SCREENCONNECT);
    assert_eq!(c.status, Status::Fail);
    assert_eq!(c.detail, "Server: ScreenConnect/23.9.7.8804-1234");
    o.root = resp(200, &[("Server", "ScreenConnect")], "");
    assert_eq!(
        by_id(&judge_http(&o), ids::SCREENCONNECT).status,
        Status::Pass
    );
}

#[test]
fn server_text_is_escaped_and_capped() {
    assert_eq!(shown("a\u{1b}[2Jb", 20), "a\\u{1b}[2Jb");
    assert_eq!(shown("abcdef", 3), "abc…");
    let mut o = hardened();
    o.root = resp(200, &[("Server", "evil\u{1b}]0;pwned\u{7}")], "");
    let c = by_id(&judge_http(&o), ids::SERVER_HEADER);
    assert!(!c.detail.chars().any(char::is_control), "{:?}", c.detail);
}
