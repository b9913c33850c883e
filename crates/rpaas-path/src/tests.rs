use super::*;

fn ok(raw: &str) -> String {
    canonicalize(raw)
        .unwrap_or_else(|e| panic!("{raw:?} rejected: {e}"))
        .path
}

fn bad(raw: &str) -> PathError {
    match canonicalize(raw) {
        Ok(c) => panic!("{raw:?} accepted as {:?}", c.path),
        Err(e) => e,
    }
}

/// Each IIS reading rule, positively: these all name the same resource as the right column.
#[test]
fn iis_equivalent_spellings_canonicalise_together() {
    let cases: &[(&str, &str)] = &[
        ("/LabTech/Agent.aspx", "/labtech/agent.aspx"),
        ("/LABTECH/AGENT.ASPX", "/labtech/agent.aspx"),
        ("/LabTech/Agent%2Easpx", "/labtech/agent.aspx"),
        ("/%4cab%54ech/agent.aspx", "/labtech/agent.aspx"),
        ("/LabTech/Agent%u002Easpx", "/labtech/agent.aspx"),
        ("/LabTech/Agent%uFF0Easpx", "/labtech/agent.aspx"),
        ("\\LabTech\\Agent.aspx", "/labtech/agent.aspx"),
        ("/LabTech\\Agent.aspx", "/labtech/agent.aspx"),
        ("//LabTech///Agent.aspx", "/labtech/agent.aspx"),
        ("/LabTech/./Agent.aspx", "/labtech/agent.aspx"),
        ("/LabTech/x/../Agent.aspx", "/labtech/agent.aspx"),
        ("/LabTech/x/%2e%2e/Agent.aspx", "/labtech/agent.aspx"),
        ("/LabTech/Agent.aspx.", "/labtech/agent.aspx"),
        ("/LabTech/Agent.aspx%20", "/labtech/agent.aspx"),
        ("/LabTech./Agent.aspx. . ", "/labtech/agent.aspx"),
        ("/LabTech/Agent.aspx;jsessionid=1", "/labtech/agent.aspx"),
        ("/LabTech;x=1/Agent.aspx", "/labtech/agent.aspx"),
        ("/(S(abcdef123))/LabTech/Agent.aspx", "/labtech/agent.aspx"),
        ("/LabTech/(A(xyz))/(F(q))/Agent.aspx", "/labtech/agent.aspx"),
        ("/automate", "/automate"),
        ("/automate/", "/automate/"),
        ("/Automate//", "/automate/"),
        ("/", "/"),
        ("//", "/"),
        ("/./", "/"),
        ("/a/..", "/"),
        ("/WCC2/Home/Login?x=1", "/wcc2/home/login"),
        (
            "/LabTech/Transfer/My%20File.zip",
            "/labtech/transfer/my file.zip",
        ),
        ("/caf%C3%A9", "/café"),
        ("/%uD83D%uDE00", "/😀"),
        ("/CAFÉ", "/café"),
        ("/a%25b", "/a%b"),
        ("/a%25", "/a%"),
    ];
    for (raw, want) in cases {
        assert_eq!(ok(raw), *want, "{raw}");
    }
}

/// And negatively: ambiguous spellings are refused, never guessed.
#[test]
fn ambiguous_spellings_are_rejected() {
    let cases: &[(&str, PathError)] = &[
        ("/LabTech%2FAgent.aspx", PathError::EncodedSeparator),
        ("/LabTech%2fAgent.aspx", PathError::EncodedSeparator),
        ("/LabTech%5CAgent.aspx", PathError::EncodedSeparator),
        ("/LabTech%u002FAgent.aspx", PathError::EncodedSeparator),
        ("/LabTech%uFF0FAgent.aspx", PathError::EncodedSeparator),
        ("/LabTech%u2215Agent.aspx", PathError::EncodedSeparator),
        ("/LabTech%252FAgent.aspx", PathError::DoubleEncoded),
        ("/LabTech%252e%252e/x", PathError::DoubleEncoded),
        ("/LabTech%25u002e/x", PathError::DoubleEncoded),
        ("/LabTech/Agent.aspx%00.jpg", PathError::ControlChar),
        ("/a%0d%0aSet-Cookie:x", PathError::ControlChar),
        ("/a%u0000", PathError::ControlChar),
        ("/a\u{1}b", PathError::ControlChar),
        ("/%c0%af", PathError::BadUtf8),
        ("/%c0%ae%c0%ae/", PathError::BadUtf8),
        ("/%e0%80%af", PathError::BadUtf8),
        ("/%ff", PathError::BadUtf8),
        ("/%uD800", PathError::BadUtf8),
        ("/%uD800%u0041", PathError::BadUtf8),
        ("/..", PathError::EscapesRoot),
        ("/../automate/", PathError::EscapesRoot),
        ("/LabTech/../../automate/", PathError::EscapesRoot),
        ("/%2e%2e/automate", PathError::EscapesRoot),
        ("/LabTech/.../x", PathError::AmbiguousSegment),
        ("/LabTech/. /x", PathError::AmbiguousSegment),
        ("/LabTech/Agent.aspx::$DATA", PathError::AmbiguousSegment),
        ("/AUTOMA~1/", PathError::AmbiguousSegment),
        ("/LabTech/AGENT~1.ASP", PathError::AmbiguousSegment),
        ("/a%zz", PathError::BadEscape),
        ("/a%", PathError::BadEscape),
        ("/a%2", PathError::BadEscape),
        ("/a%u12", PathError::BadEscape),
        ("/a%u12zz", PathError::BadEscape),
        ("automate/", PathError::NotOriginForm),
        ("http://x/automate/", PathError::NotOriginForm),
        ("*", PathError::NotOriginForm),
        ("/a#frag", PathError::Fragment),
    ];
    for (raw, want) in cases {
        assert_eq!(bad(raw), *want, "{raw}");
    }
}

#[test]
fn query_is_kept_raw_and_dot_segments_are_flagged() {
    let c = canonicalize("/LabTech/Deployment.aspx?InstallerToken=a%2Fb&x").expect("ok");
    assert_eq!(c.path, "/labtech/deployment.aspx");
    assert_eq!(c.query.as_deref(), Some("InstallerToken=a%2Fb&x"));
    assert!(!c.had_dot_segments);
    let c = canonicalize("/LabTech/Updates/../Agent.aspx").expect("ok");
    assert!(c.had_dot_segments);
    assert_eq!(
        naive_path("/LabTech\\Updates/../x?q"),
        "/labtech/updates/../x"
    );
}

/// Whatever the input, canonicalisation either fails or yields a path with no separator
/// tricks left; and it is idempotent.
#[test]
fn output_is_stable_for_generated_inputs() {
    let alphabet = [
        "/",
        "\\",
        ".",
        "..",
        "%2e",
        "%2f",
        "%5c",
        "%25",
        "%u002e",
        "a",
        "A",
        " ",
        ";x",
        "(S(1))",
        "%00",
        "~1",
        "%c0",
        "%af",
        "?",
        "labtech",
        "agent.aspx",
    ];
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    for _ in 0..20_000 {
        let mut s = String::from("/");
        for _ in 0..(seed % 7 + 1) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            s.push_str(alphabet[(seed % alphabet.len() as u64) as usize]);
        }
        if let Ok(c) = canonicalize(&s) {
            let p = &c.path;
            assert!(p.starts_with('/'), "{s:?} -> {p:?}");
            assert!(
                !p.contains("//") && !p.contains('\\') && !p.contains('\0'),
                "{s:?} -> {p:?}"
            );
            assert!(
                !p.split('/').any(|seg| seg == "." || seg == ".."),
                "{s:?} -> {p:?}"
            );
            assert_eq!(p.to_lowercase(), *p);
            let again = canonicalize(p).map(|c| c.path);
            // A canonical path containing a literal '%' may legitimately not round-trip.
            if !p.contains('%') {
                assert_eq!(again.as_deref(), Ok(p.as_str()), "not idempotent: {s:?}");
            }
        }
    }
}

/// Every spelling of the same code points gets the same verdict: `%uXXXX` (either case),
/// UTF-8 percent-encoded (either hex case), raw UTF-8, mixed per character. Look-alike dots
/// and slashes (full-width, division/fraction slash, set minus) included; overlong UTF-8 forms
/// of ASCII are refused whatever they spell.
#[test]
fn every_encoding_of_a_code_point_gets_the_same_verdict() {
    let lookalikes = [
        '\u{ff0e}', '\u{ff0f}', '\u{ff3c}', '\u{2215}', '\u{2044}', '\u{2216}', '\u{fe68}',
        '\u{ff41}', '\u{ff21}', '\u{ff05}', '\u{ff1a}', '\u{ff5e}', 'é', '\u{4e2d}',
    ];
    let plain = ['a', 'L', '.', '-', '_', '~', '1'];
    let spell = |c: char, how: u64| -> String {
        let mut utf8 = [0u8; 4];
        let bytes = c.encode_utf8(&mut utf8).as_bytes().to_vec();
        match how % 5 {
            0 if !c.is_ascii() || c.is_ascii_alphanumeric() => c.to_string(),
            1 => format!("%u{:04X}", c as u32),
            2 => format!("%u{:04x}", c as u32),
            3 => bytes.iter().map(|b| format!("%{b:02X}")).collect(),
            _ => bytes.iter().map(|b| format!("%{b:02x}")).collect(),
        }
    };
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut spellings = 0;
    for _ in 0..5_000 {
        // A path of 1-4 segments of 1-4 characters, some of them look-alikes.
        let mut chars: Vec<Vec<char>> = Vec::new();
        for _ in 0..(next() % 4 + 1) {
            let seg = (0..(next() % 4 + 1))
                .map(|_| {
                    if next() % 3 == 0 {
                        lookalikes[(next() % lookalikes.len() as u64) as usize]
                    } else {
                        plain[(next() % plain.len() as u64) as usize]
                    }
                })
                .collect();
            chars.push(seg);
        }
        let reference = {
            let mut s = String::new();
            for seg in &chars {
                s.push('/');
                for c in seg {
                    s.push_str(&format!("%u{:04X}", *c as u32));
                }
            }
            canonicalize(&s)
        };
        for _ in 0..4 {
            let mut s = String::new();
            for seg in &chars {
                s.push('/');
                for c in seg {
                    s.push_str(&spell(*c, next()));
                }
            }
            spellings += 1;
            assert_eq!(
                canonicalize(&s),
                reference,
                "{s:?} and the %u spelling differ"
            );
        }
    }
    assert!(spellings >= 20_000);
    // Overlong forms of '.', '/' and 'a' are never read as those characters.
    for overlong in [
        "%c0%ae",
        "%e0%80%ae",
        "%c0%af",
        "%e0%80%af",
        "%c1%a1",
        "%f0%80%80%ae",
    ] {
        assert_eq!(
            canonicalize(&format!("/labtech/{overlong}")).map(|c| c.path),
            Err(PathError::BadUtf8),
            "{overlong}"
        );
    }
}
