use super::*;

fn t(name: &str, input: &[u8]) -> Vec<u8> {
    let Some(TransformName::Apply(f)) = TransformName::parse(name) else {
        panic!("unknown transform {name}")
    };
    f.apply(input).unwrap_or_else(|| input.to_vec())
}

fn ts(name: &str, input: &str) -> String {
    String::from_utf8_lossy(&t(name, input.as_bytes())).into_owned()
}

#[test]
fn names_resolve_case_insensitively_with_aliases() {
    assert_eq!(TransformName::parse("none"), Some(TransformName::None));
    assert_eq!(
        TransformName::parse("urlDecodeUni"),
        Some(TransformName::Apply(Transform::UrlDecodeUni))
    );
    assert_eq!(
        TransformName::parse("normalisePath"),
        TransformName::parse("normalizePath")
    );
    assert_eq!(
        TransformName::parse("base64decode"),
        Some(TransformName::Apply(Transform::Base64Decode))
    );
    assert_eq!(TransformName::parse("parityEven7bit"), None);
}

#[test]
fn url_decoding() {
    assert_eq!(ts("urlDecode", "a%20b+c%2"), "a b c%2");
    assert_eq!(ts("urlDecode", "%zz%41"), "%zzA");
    assert_eq!(ts("urlDecode", "%u0041"), "%u0041");
    // %u: the low byte; full-width ASCII gains 0x20.
    assert_eq!(ts("urlDecodeUni", "%u0041%uff1c%u003cscript"), "A<<script");
    assert_eq!(ts("urlDecodeUni", "%u00zz%u12"), "%u00zz%u12");
    assert_eq!(t("urlDecodeUni", b"%c0%af"), vec![0xc0, 0xaf]);
    assert_eq!(Transform::UrlDecode.apply(b"plain"), None);
}

#[test]
fn html_entities() {
    assert_eq!(
        ts(
            "htmlEntityDecode",
            "&lt;script&gt;&#x41;&#66;&quot;&amp;&nbsp"
        ),
        "<script>AB\"&\u{fffd}"
    );
    assert_eq!(t("htmlEntityDecode", b"&nbsp;"), vec![0xa0]);
    assert_eq!(ts("htmlEntityDecode", "&#x6a&#97;vascript"), "javascript");
    assert_eq!(
        ts("htmlEntityDecode", "&foo; &#; &#x; &"),
        "&foo; &#; &#x; &"
    );
    assert_eq!(ts("htmlEntityDecode", "&LT;"), "<");
}

#[test]
fn js_decoding() {
    assert_eq!(ts("jsDecode", r"\x3cscript\x3e"), "<script>");
    assert_eq!(ts("jsDecode", r"\u0061\uff1c"), "a<");
    assert_eq!(ts("jsDecode", r"\141\7\477"), "a\u{7}'7");
    assert_eq!(ts("jsDecode", r"\n\t\'\q\"), "\n\t'q\\");
}

#[test]
fn css_decoding() {
    assert_eq!(ts("cssDecode", r"\6a avascript"), "javascript");
    assert_eq!(ts("cssDecode", r"\000041\41"), "AA");
    assert_eq!(ts("cssDecode", r"\ff3c"), "\\");
    assert_eq!(ts("cssDecode", "a\\\nb\\z\\"), "abz");
}

#[test]
fn cmd_line() {
    assert_eq!(ts("cmdLine", r#"C^A"T  /e't'c/p\asswd"#), "cat/etc/passwd");
    assert_eq!(ts("cmdLine", "echo;,ls  ( x"), "echo ls( x");
    assert_eq!(ts("cmdLine", "A,B"), "a b");
}

#[test]
fn whitespace_and_nulls() {
    assert_eq!(
        t("compressWhitespace", b"a \t\n\xa0b  c"),
        b"a b c".to_vec()
    );
    assert_eq!(t("removeWhitespace", b" a\tb\xa0c "), b"abc".to_vec());
    assert_eq!(t("removeNulls", b"a\0b\0"), b"ab".to_vec());
    assert_eq!(t("replaceNulls", b"a\0b"), b"a b".to_vec());
    assert_eq!(ts("trim", " \t x y \n"), "x y");
    assert_eq!(ts("trimLeft", "  x "), "x ");
    assert_eq!(ts("trimRight", "  x "), "  x");
}

#[test]
fn comments() {
    assert_eq!(
        ts("replaceComments", "UNION/**/SELECT/* x"),
        "UNION SELECT "
    );
    assert_eq!(ts("removeComments", "a/*x*/b<!--y-->c-- tail"), "abc");
    assert_eq!(ts("removeComments", "a#b"), "a");
    assert_eq!(ts("removeCommentsChar", "a/*b*/c<!--d-->e--f#g"), "abcdefg");
}

#[test]
fn paths() {
    assert_eq!(ts("normalizePath", "/a/b/../c/./d//e"), "/a/c/d/e");
    assert_eq!(ts("normalizePath", "../../etc/passwd"), "../../etc/passwd");
    assert_eq!(ts("normalizePath", "/../../etc/passwd"), "/etc/passwd");
    assert_eq!(ts("normalizePath", "/a/b/"), "/a/b/");
    assert_eq!(ts("normalizePath", "a/.."), "");
    assert_eq!(
        ts("normalizePathWin", r"C:\windows\..\boot.ini"),
        "C:/boot.ini"
    );
}

#[test]
fn base64_hex_sha1_length() {
    assert_eq!(ts("base64Decode", "VGVzdENhc2U="), "TestCase");
    assert_eq!(ts("base64Decode", "VGVz.dENhc2U="), "Tes");
    assert_eq!(ts("base64DecodeExt", "VGVz.dENh\nc2U="), "TestCase");
    assert_eq!(ts("hexDecode", "414243"), "ABC");
    assert_eq!(ts("hexEncode", "AB\n"), "41420a");
    assert_eq!(ts("sqlHexDecode", "SELECT 0x616263, 0x"), "SELECT abc, 0x");
    assert_eq!(ts("length", "hello"), "5");
    assert_eq!(t("sha1", b"abc").len(), 20);
    let hex = t("hexEncode", &t("sha1", b"abc"));
    assert_eq!(
        String::from_utf8_lossy(&hex),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
}

#[test]
fn utf8_to_unicode() {
    assert_eq!(
        ts("utf8toUnicode", "a\u{e9}\u{ff1c}\u{1f600}"),
        "a%u00e9%uff1c%u1f600"
    );
    assert_eq!(t("utf8toUnicode", b"\xc3x"), b"\xc3x".to_vec());
    // With urlDecodeUni after it, full-width `<` becomes `<`, as CRS relies on.
    let v = t(
        "urlDecodeUni",
        &t("utf8toUnicode", "\u{ff1c}script".as_bytes()),
    );
    assert_eq!(v, b"<script".to_vec());
}

#[test]
fn escape_sequences_and_lowercase() {
    assert_eq!(ts("escapeSeqDecode", r"\x41\101\n\q\\"), "AA\nq\\");
    assert_eq!(ts("lowercase", "SeLeCt"), "select");
    assert_eq!(Transform::Lowercase.apply(b"already"), None);
}

#[test]
fn chains_borrow_when_unchanged() {
    let chain = [Transform::Lowercase, Transform::UrlDecodeUni];
    assert!(matches!(apply_chain(&chain, b"abc"), Cow::Borrowed(_)));
    // Order matters: lowercase runs before the decode produces `B`.
    assert_eq!(&*apply_chain(&chain, b"A%42"), b"aB");
}

/// The "would it change anything" checks agree with the copying functions, on short strings
/// over the bytes that matter to them.
#[test]
fn keep_checks_agree_with_the_functions() {
    const ALPHABET: &[u8] = b" /.\\(a,;\"'^\tB\r\n\x0b\xa0";
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..200_000 {
        let len = (next() % 7) as usize;
        let input: Vec<u8> = (0..len)
            .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
            .collect();
        assert_eq!(
            super::cmd_line_keeps(&input),
            super::cmd_line(&input) == input,
            "cmdLine {input:?}"
        );
        assert_eq!(
            super::compress_whitespace_keeps(&input),
            super::compress_whitespace(&input) == input,
            "compressWhitespace {input:?}"
        );
        for win in [false, true] {
            if super::normalize_path_keeps(&input, win) {
                assert_eq!(super::normalize_path(&input, win), input, "{input:?} {win}");
            }
        }
    }
}

/// [`Transform::keeps`] claims "unchanged" only where `apply` says so, and
/// [`apply_chain_known`] gives what [`apply_chain`] gives.
#[test]
fn keeps_only_what_apply_keeps() {
    use crate::bytes::ByteSet;
    let all = [
        "lowercase",
        "urlDecode",
        "urlDecodeUni",
        "htmlEntityDecode",
        "jsDecode",
        "cssDecode",
        "cmdLine",
        "compressWhitespace",
        "removeWhitespace",
        "removeNulls",
        "replaceNulls",
        "replaceComments",
        "removeComments",
        "removeCommentsChar",
        "normalizePath",
        "normalizePathWin",
        "base64Decode",
        "base64DecodeExt",
        "hexDecode",
        "sqlHexDecode",
        "utf8toUnicode",
        "length",
        "sha1",
        "hexEncode",
        "trim",
        "trimLeft",
        "trimRight",
        "escapeSeqDecode",
    ];
    let fs: Vec<Transform> = all
        .iter()
        .map(|n| match TransformName::parse(n) {
            Some(TransformName::Apply(f)) => f,
            _ => panic!("{n}"),
        })
        .collect();
    let alphabet = b"aZ0x X/.\\%+&;#*-<!>'\"^,\t\r\n\x00\xa0\xc3\xa9u2f=(";
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..30_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let v: Vec<u8> = (0..(seed % 10))
            .map(|i| alphabet[((seed >> (i * 6)) % alphabet.len() as u64) as usize])
            .collect();
        let bytes = ByteSet::of(&v);
        for &f in &fs {
            if f.keeps(&v, &bytes) {
                assert_eq!(f.apply(&v), None, "{f:?} on {v:?}");
            }
        }
        let chain = [
            fs[(seed % 28) as usize],
            fs[((seed >> 8) % 28) as usize],
            fs[1],
        ];
        let (out, out_bytes) = apply_chain_known(&chain, &v, bytes);
        assert_eq!(out, apply_chain(&chain, &v), "{chain:?} on {v:?}");
        assert_eq!(out_bytes, ByteSet::of(&out));
    }
}
