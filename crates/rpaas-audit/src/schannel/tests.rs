use super::*;

const HARDENED_UTF16: &[u8] = include_bytes!("../../tests/fixtures/schannel.hardened.reg");
const DEFAULT_UTF8: &[u8] = include_bytes!("../../tests/fixtures/schannel.default.reg");

fn checks(text: &str) -> Vec<Check> {
    judge_schannel(&Schannel::parse(text).expect("parse"))
}

const P: &str =
    r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols";

fn reg(body: &str) -> String {
    format!(
        "Windows Registry Editor Version 5.00\r\n\r\n[{P}]\r\n\r\n{}",
        body.replace("PROTO", P)
    )
}

#[test]
fn the_hardened_export_is_utf16_and_passes() {
    assert_eq!(&HARDENED_UTF16[..2], &[0xFF, 0xFE], "fixture keeps its BOM");
    let text = crate::files::decode(HARDENED_UTF16).expect("utf-16");
    let cs = checks(&text);
    assert_eq!(cs.len(), 2);
    for c in &cs {
        assert_eq!(c.status, Status::Pass, "{}: {}", c.id, c.detail);
    }
    assert_eq!(
        cs[0].detail,
        "TLS 1.0\\Server: Enabled=0x0, DisabledByDefault=0x1: disabled"
    );
}

#[test]
fn the_default_export_fails_both() {
    let text = crate::files::decode(DEFAULT_UTF8).expect("utf-8");
    let cs = checks(&text);
    assert_eq!(cs[0].id, ids::SCHANNEL_TLS10);
    assert_eq!(cs[0].status, Status::Fail);
    assert!(
        cs[0].detail.starts_with("no TLS 1.0\\Server key"),
        "{}",
        cs[0].detail
    );
    assert_eq!(cs[1].status, Status::Fail);
    assert_eq!(
        cs[1].detail,
        "TLS 1.1\\Server: Enabled=0x1, DisabledByDefault=0x0: enabled"
    );
}

#[test]
fn enabled_and_disabled_by_default_combinations() {
    let case = |vals: &str| {
        let t = reg(&format!("[PROTO\\TLS 1.0\\Server]\r\n{vals}\r\n"));
        checks(&t).remove(0)
    };
    assert_eq!(case("\"Enabled\"=dword:00000000").status, Status::Pass);
    assert!(case("\"Enabled\"=dword:00000000")
        .detail
        .contains("set DisabledByDefault=1 too"));
    assert_eq!(
        case("\"DisabledByDefault\"=dword:00000001").status,
        Status::Pass
    );
    assert_eq!(
        case("\"Enabled\"=dword:ffffffff\r\n\"DisabledByDefault\"=dword:00000001").status,
        Status::Warn
    );
    assert_eq!(case("\"Enabled\"=dword:00000001").status, Status::Fail);
    let c = case("");
    assert_eq!(c.status, Status::Fail);
    assert!(
        c.detail
            .contains("neither Enabled nor DisabledByDefault set"),
        "{}",
        c.detail
    );
    // A string "0" is not a DWORD: Windows ignores it, so the protocol stays on.
    let c = case("\"Enabled\"=\"0\"");
    assert_eq!(c.status, Status::Fail);
    assert!(c.detail.contains("Enabled is not a DWORD"), "{}", c.detail);
    // Names and key paths are matched without case; the last value written wins.
    assert_eq!(
        case("\"enabled\"=dword:00000001\r\n\"ENABLED\"=dword:0").status,
        Status::Pass
    );
    let lower = reg("[proto\\tls 1.0\\server]\r\n\"Enabled\"=dword:0\r\n")
        .replace("proto", &P.to_lowercase());
    assert_eq!(checks(&lower)[0].status, Status::Pass);
}

#[test]
fn client_keys_and_deleted_keys_do_not_count() {
    let t = reg("[PROTO\\TLS 1.0\\Client]\r\n\"Enabled\"=dword:0\r\n\r\n[-PROTO\\TLS 1.1\\Server]\r\n\"Enabled\"=dword:0\r\n");
    let cs = checks(&t);
    assert_eq!(cs[0].status, Status::Fail);
    assert_eq!(cs[1].status, Status::Fail);
}

#[test]
fn values_of_every_kind_parse() {
    let t = "REGEDIT4\n\n[HKEY_LOCAL_MACHINE\\X]\n@=\"default\"\n\"Quote\\\"d\"=\"a\\\\b\"\n\"Bin\"=hex:01,02,\\\n  03,04\n\"Multi\"=hex(7):41,00,00,00\n\"Gone\"=-\n; a comment\n\"N\"=dword:0000000a\n";
    let keys = parse_reg(t).expect("parse");
    assert_eq!(keys.len(), 1);
    let k = &keys[0];
    assert_eq!(k.value("@"), Some(&Value::String("default".into())));
    assert_eq!(k.value("quote\"d"), Some(&Value::String("a\\b".into())));
    assert_eq!(k.value("Bin"), Some(&Value::Hex("hex:01,02,03,04".into())));
    assert_eq!(k.value("Gone"), Some(&Value::Delete));
    assert_eq!(k.value("N"), Some(&Value::Dword(10)));
}

#[test]
fn not_a_schannel_export() {
    let t = "Windows Registry Editor Version 5.00\r\n\r\n[HKEY_CURRENT_USER\\Software\\X]\r\n\"A\"=dword:1\r\n";
    let cs = checks(t);
    assert!(cs.iter().all(|c| c.status == Status::Skip), "{cs:?}");
    assert!(cs[0].detail.contains("reg export"), "{}", cs[0].detail);
}

#[test]
fn malformed_files_name_the_line() {
    let bad = |t: &str| parse_reg(t).expect_err(t);
    assert_eq!(bad("").reason, "empty file");
    assert_eq!(bad("<configuration/>").line, 1);
    let e = bad("REGEDIT4\n\"A\"=dword:1\n");
    assert_eq!((e.line, e.reason), (2, "a value before any [key]"));
    let e = bad("REGEDIT4\n[K]\n\"A\"=dword:123456789\n");
    assert_eq!(e.line, 3);
    assert_eq!(bad("REGEDIT4\n[K\n").reason, "a key line must end with ]");
    assert_eq!(bad("REGEDIT4\n[K]\nA=1\n").line, 3);
    assert_eq!(bad("REGEDIT4\n[K]\n\"A\"=nonsense\n").line, 3);
    assert_eq!(bad("REGEDIT4\n[K]\n\"A\n").line, 3);
}
