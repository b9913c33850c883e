//! `rpaas check` as a user runs it: exit 0 on a valid config, else exit 1 and one line per
//! problem naming the file, the key and the reason.

mod common;

use std::process::Command;

use common::*;

fn check(path: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(["check", "--config"])
        .arg(path)
        .output()
        .expect("run rpaas check");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn valid_config_passes() {
    let fx = Fixture::new();
    let cfg = fx.two_instances("127.0.0.1:8080".parse().expect("addr"), "");
    let p = fx.path().join("rpaas.toml");
    std::fs::write(&p, cfg).expect("write");
    let (code, out, err) = check(&p);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("ok (1 listener(s), 2 instance(s))"), "{out}");
}

#[test]
fn broken_configs_are_rejected_with_file_key_and_reason() {
    let fx = Fixture::new();
    let a = fx.ca.write_leaf(fx.path(), "a", &[HOST_A]);
    let other = fx.ca.write_leaf(fx.path(), "other", &["other.example.net"]);
    std::fs::write(
        fx.path().join("garbage.pem"),
        "-----BEGIN CERTIFICATE-----\nnope\n",
    )
    .expect("w");
    let base_listener = "[[listener]]\naddress = \"127.0.0.1:0\"\n";
    let inst = |extra: &str| {
        format!("[[instance]]\nid = \"a\"\nhostnames = [\"{HOST_A}\"]\nupstream = \"http://127.0.0.1:8080\"\n{extra}\n")
    };
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "bad CIDR",
            format!("[[listener]]\naddress = \"127.0.0.1:0\"\nclient_ip = \"x-forwarded-for\"\ntrusted_proxies = [\"300.0.0.0/8\"]\n{}", inst("")),
            "listener[0].trusted_proxies[0]",
            "not a CIDR",
        ),
        (
            "unknown TLS profile",
            format!("[[listener]]\naddress = \"127.0.0.1:0\"\ntls = \"ssl3\"\n{}", inst("")),
            "listener[0].tls",
            "unknown TLS profile",
        ),
        (
            "missing cert file",
            format!("{base_listener}{}", inst("cert = \"missing.pem\"\nkey = \"missing.key\"")),
            "instance[0].cert",
            "does not exist",
        ),
        (
            "two instances claiming one hostname",
            format!(
                "{base_listener}{}[[instance]]\nid = \"b\"\nhostnames = [\"{HOST_A}\"]\nupstream = \"http://127.0.0.1:8081\"\n",
                inst("")
            ),
            "instance[1].hostnames",
            "already claimed by instance \"a\"",
        ),
        (
            "key does not match cert",
            format!("{base_listener}{}", inst(&format!("cert = {:?}\nkey = {:?}", a.cert, other.key))),
            "instance[0].cert",
            "does not match",
        ),
        (
            "not a PEM certificate",
            format!("{base_listener}{}", inst(&format!("cert = \"garbage.pem\"\nkey = {:?}", a.key))),
            "instance[0].cert",
            "bad PEM",
        ),
        (
            "bad upstream",
            format!("{base_listener}[[instance]]\nid = \"a\"\nhostnames = [\"{HOST_A}\"]\nupstream = \"tcp://x\"\n"),
            "instance[0].upstream",
            "http:// or https://",
        ),
        (
            "unknown key",
            format!("{base_listener}{}", inst("upstream_timeout = 5")),
            "instance[0].upstream_timeout",
            "unknown field",
        ),
        (
            "bad admin address",
            format!("[node]\nadmin = \"localhost\"\n{base_listener}{}", inst("")),
            "node.admin",
            "not an address",
        ),
        (
            "client_ip without trusted proxies",
            format!("[[listener]]\naddress = \"127.0.0.1:0\"\nclient_ip = \"proxy-protocol\"\n{}", inst("")),
            "listener[0].trusted_proxies",
            "is required",
        ),
        (
            "missing upstream CA file",
            format!("{base_listener}{}", inst("upstream_ca = \"nope-ca.pem\"")),
            "instance[0].upstream_ca",
            "does not exist",
        ),
        (
            "no listener",
            inst(""),
            "listener",
            "at least one",
        ),
    ];
    for (what, text, key, reason) in cases {
        let p = fx.path().join("rpaas.toml");
        std::fs::write(&p, &text).expect("write");
        let (code, out, err) = check(&p);
        assert_eq!(code, 1, "{what}: expected failure, got {out}{err}");
        let want = format!("{}: {key}: ", p.display());
        assert!(err.contains(&want), "{what}: expected {want:?} in {err}");
        assert!(err.contains(reason), "{what}: expected {reason:?} in {err}");
    }
}

#[test]
fn instances_dir_files_are_named_in_errors() {
    let fx = Fixture::new();
    std::fs::create_dir(fx.path().join("instances")).expect("mkdir");
    std::fs::write(
        fx.path().join("instances/p1.toml"),
        "[[instance]]\nid = \"p1\"\nhostnames = [\"p1.example.net\"]\nupstream = \"http://127.0.0.1:1\"\nbind = \"nope\"\n",
    )
    .expect("w");
    let p = fx.path().join("rpaas.toml");
    std::fs::write(
        &p,
        "[node]\ninstances_dir = \"instances\"\n[[listener]]\naddress = \"127.0.0.1:0\"\n",
    )
    .expect("w");
    let (code, _, err) = check(&p);
    assert_eq!(code, 1);
    assert!(
        err.contains("instances/p1.toml: instance[0].bind: \"nope\" is not an IP address"),
        "{err}"
    );
}
