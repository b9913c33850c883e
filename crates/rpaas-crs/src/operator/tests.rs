use std::path::Path;

use super::*;
use crate::macros::MacroRef;
use crate::parse::parse_operator;

struct Ctx;
impl Resolve for Ctx {
    fn resolve(&self, r: &MacroRef, out: &mut Vec<u8>) -> bool {
        match r.key.as_deref() {
            Some("allowed_methods") => out.extend_from_slice(b"GET HEAD POST OPTIONS"),
            Some("limit") => out.extend_from_slice(b"10"),
            Some("charset") => out.extend_from_slice(b"utf-8|iso-8859-1"),
            _ => return false,
        }
        true
    }
}

fn op(text: &str) -> Operator {
    Operator::compile(&parse_operator(text), Path::new("/nonexistent")).expect("compiles")
}

fn hit(text: &str, value: &[u8]) -> bool {
    op(text).run(value, false, &Ctx).is_some()
}

#[test]
fn rx_runs_on_bytes_with_modsecurity_flags() {
    assert!(hit("@rx ^a.b$", b"a\nb"), "dotall");
    assert!(!hit("@rx ^ab$", b"ab\n"), "dollar end only");
    assert!(hit("@rx (?i)select", b"SeLeCt"));
    assert!(hit(r"@rx \w+\xff", b"ab\xff"), "non-UTF-8 bytes");
    assert!(!hit(r"@rx ^\w$", "\u{e9}".as_bytes()), "\\w is ASCII");
    assert!(hit("!@rx ^x", b"y"));
    let caps = op(r"@rx (\d+)-(\d+)")
        .run(b"a 12-34", true, &Ctx)
        .expect("matches");
    assert_eq!(
        caps,
        vec![b"12-34".to_vec(), b"12".to_vec(), b"34".to_vec()]
    );
}

#[test]
fn rx_pcre_syntax_that_the_regex_crate_reads_differently() {
    assert!(hit(r"@rx (?:{|\$\{)x", b"${x"), "literal brace");
    assert!(hit(r"@rx a{2}", b"aa"));
    assert!(hit(r"@rx \<script\>", b"<script>"));
    assert!(hit(r"@rx [[&&]x", b"&x"));
    assert!(hit(r"@rx []a]", b"]"));
    assert!(hit(r"@rx [\b]", b"\x08"));
    assert!(hit(r"@rx x\Z", b"x\n"));
}

#[test]
fn rx_backtracking_fallback_for_lookaround_and_backrefs() {
    let o = op(r"@rx (\w)\1");
    assert!(o.uses_backtracking());
    assert!(o.run(b"xaay", false, &Ctx).is_some());
    assert!(o.run(b"xay", false, &Ctx).is_none());
    assert!(hit(r"@rx (?<!&amp);", b"a;"));
    assert!(!hit(r"@rx (?<!&amp);", b"&amp;"));
    assert!(hit(r"@rx \xe9", b"\xe9"));
    // Non-ASCII pattern characters are their UTF-8 bytes, also inside classes.
    assert!(hit("@rx [´’]", "’".as_bytes()));
    assert!(hit("@rx [´’]", b"\xb4"), "any byte of the class");
}

#[test]
fn rx_with_macro_is_expanded_when_run() {
    assert!(hit("@rx ^%{tx.charset}$", b"utf-8"));
    assert!(!hit("@rx ^%{tx.charset}$", b"utf-7"));
}

#[test]
fn string_operators() {
    assert!(hit("@beginsWith /adm", b"/admin"));
    assert!(hit("@endsWith .php", b"/x.php"));
    assert!(hit("@contains dav", b"/remote.php/dav/x"));
    assert!(!hit("@contains DAV", b"/dav"), "case-sensitive");
    assert!(hit("@containsWord cat", b"a cat!"));
    assert!(!hit("@containsWord cat", b"concat"));
    assert!(hit("@streq POST", b"POST"));
    assert!(!hit("@streq POST", b"POSTX"));
    assert!(hit("@within %{tx.allowed_methods}", b"GET"));
    assert!(hit("!@within %{tx.allowed_methods}", b"TRACE"));
}

#[test]
fn numeric_operators_use_atoi() {
    assert!(hit("@eq 0", b""));
    assert!(hit("@eq 0", b"abc"));
    assert!(hit("@eq 12", b" 12abc"));
    assert!(hit("@gt %{tx.limit}", b"11"));
    assert!(hit("@lt 1", b"-3"));
    assert!(hit("@ge 1", b"1"));
    assert!(hit("@le 1", b"1"));
    assert!(!hit("@lt 1", b"1"));
}

#[test]
fn pm_is_case_insensitive_and_captures_the_phrase() {
    let o = op("@pm document.cookie <!-- --> <![cdata[");
    assert_eq!(
        o.run(b"x=DOCUMENT.Cookie", true, &Ctx),
        Some(vec![b"DOCUMENT.Cookie".to_vec()])
    );
    assert!(o.run(b"benign", false, &Ctx).is_none());
}

#[test]
fn pm_from_file_reads_beside_the_rules() {
    let dir = std::env::temp_dir().join(format!("rpaas-crs-pmf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("w.data"),
        "# comment\n\netc/passwd\n  boot.ini  \n",
    )
    .expect("write");
    let o = Operator::compile(&parse_operator("@pmFromFile w.data"), &dir).expect("compiles");
    assert!(o.run(b"../../ETC/passwd", false, &Ctx).is_some());
    assert!(o.run(b"c:/boot.ini", false, &Ctx).is_some());
    assert!(o.run(b"comment", false, &Ctx).is_none());
    let missing = Operator::compile(&parse_operator("@pmFromFile nope.data"), &dir);
    assert!(matches!(missing, Err(OperatorError::Invalid { .. })));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn validators() {
    assert!(hit("@validateByteRange 32-126", b"ab\x01"));
    assert!(!hit("@validateByteRange 32-126", b"ab c"));
    assert!(hit("@validateByteRange 1-255", b"a\0"));
    assert!(hit("@validateUrlEncoding", b"a%zz"));
    assert!(hit("@validateUrlEncoding", b"a%2"));
    assert!(!hit("@validateUrlEncoding", b"a%20b"));
    assert!(hit("@validateUtf8Encoding", b"\xc0\xaf"), "overlong");
    assert!(!hit("@validateUtf8Encoding", "\u{e9}".as_bytes()));
}

#[test]
fn libinjection() {
    let o = op("@detectSQLi");
    let caps = o.run(b"' or 1=1--", true, &Ctx).expect("sqli");
    assert_eq!(caps[0], b"s&1c".to_vec(), "fingerprint captured");
    assert!(o.run(b"hello world", false, &Ctx).is_none());
    assert!(hit("@detectXSS", b"<script>alert(1)</script>"));
    assert!(!hit("@detectXSS", b"just text"));
}

#[test]
fn ip_match_and_trivial() {
    assert!(hit("@ipMatch 127.0.0.1,::1", b"127.0.0.1"));
    assert!(hit("@ipMatch 10.0.0.0/8", b"10.1.2.3"));
    assert!(!hit("@ipMatch 10.0.0.0/8", b"11.1.2.3"));
    assert!(hit("@ipMatch ::1", b"::1"));
    assert!(!hit("@ipMatch ::1", b"nonsense"));
    assert!(hit("@unconditionalMatch", b""));
    assert!(!hit("@noMatch", b"x"));
}

#[test]
fn unsupported_and_invalid() {
    let r = Operator::compile(&parse_operator("@rbl sbl.spamhaus.org"), Path::new("."));
    assert_eq!(r.err(), Some(OperatorError::Unsupported("rbl".into())));
    assert!(Operator::compile(&parse_operator("@validateByteRange 9-x"), Path::new(".")).is_err());
    assert!(Operator::compile(&parse_operator("@rx (unclosed"), Path::new(".")).is_err());
}

/// `@detectSQLi` and `@detectXSS` skip values made of word characters only
/// ([`super::cannot_inject`]); libinjection must agree. Checked on every SQL keyword
/// libinjection knows (in three cases, with digits around, and in pairs) and on generated
/// words.
#[test]
fn libinjection_finds_nothing_in_words() {
    let keywords: Vec<String> = libinjectionrs::sqli::sqli_data::SQL_KEYWORDS
        .iter()
        .map(|k| k.word.to_string())
        .filter(|w| super::cannot_inject(w.as_bytes()))
        .collect();
    assert!(keywords.len() > 100, "{} keywords", keywords.len());
    let mut words: Vec<String> = vec![String::new(), "_".into(), "__".into()];
    for k in &keywords {
        let lower = k.to_ascii_lowercase();
        let mut mixed = lower.clone();
        mixed.replace_range(..1, &lower[..1].to_ascii_uppercase());
        for w in [k.clone(), lower, mixed] {
            words.extend([
                format!("1{w}"),
                format!("{w}1"),
                format!("0x{w}"),
                format!("{w}_"),
                w.clone(),
            ]);
        }
    }
    for a in keywords.iter().step_by(4) {
        for b in keywords.iter().step_by(3) {
            words.push(format!("{a}{b}"));
        }
    }
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";
    for _ in 0..20_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let len = 1 + (seed % 12) as usize;
        let w: String = (0..len)
            .map(|i| alphabet[((seed >> (i * 5)) % alphabet.len() as u64) as usize] as char)
            .collect();
        words.push(w);
    }
    words.extend((0..5_000).map(|n| n.to_string()));
    for w in &words {
        assert!(super::cannot_inject(w.as_bytes()), "{w}");
        assert!(
            !libinjectionrs::detect_sqli(w.as_bytes()).is_injection(),
            "SQLi in {w:?}"
        );
        assert!(
            !libinjectionrs::detect_xss(w.as_bytes()).is_injection(),
            "XSS in {w:?}"
        );
    }
}

/// [`Operator::required_bytes`] of `@detectXSS`: without a `<` and a `=` libinjection reports
/// nothing, on attack-like pieces glued together with every other kind of byte.
#[test]
fn libinjection_xss_needs_lt_or_eq() {
    let pieces: [&[u8]; 24] = [
        b"onerror",
        b"onload",
        b"javascript:",
        b"style",
        b"src",
        b"href",
        b"script",
        b"svg",
        b"!doctype",
        b"!--",
        b"-->",
        b"[if",
        b"xml",
        b"import",
        b"entity",
        b"`",
        b"'",
        b"\"",
        b">",
        b"/",
        b" ",
        b"\t",
        b"&#x3a;",
        b"\x00",
    ];
    let other: Vec<u8> = (0..=255u8).filter(|&b| b != b'<' && b != b'=').collect();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..40_000 {
        let mut v = Vec::new();
        for _ in 0..(1 + seed % 8) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            if seed.is_multiple_of(3) {
                v.push(other[(seed >> 8) as usize % other.len()]);
            } else {
                v.extend_from_slice(pieces[(seed >> 8) as usize % pieces.len()]);
            }
        }
        assert!(
            !libinjectionrs::detect_xss(&v).is_injection(),
            "XSS without < or = in {:?}",
            String::from_utf8_lossy(&v)
        );
    }
    // The gate is not vacuous: with them, the same pieces are found.
    assert!(libinjectionrs::detect_xss(b"x onerror=alert(1)").is_injection());
    assert!(libinjectionrs::detect_xss(b"<script>").is_injection());
}
