use super::*;
use std::fs;

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        Self(tempfile::tempdir().expect("tempdir"))
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.path().join(name);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).expect("mkdir");
        }
        fs::write(&p, text).expect("write");
        p
    }
}

const GOOD: &str = r#"
[node]
admin = "127.0.0.1:9901"
log = "stdout"
instances_dir = "instances"

[[listener]]
address = "0.0.0.0:443"
tls = "intermediate"

[[listener]]
address = "0.0.0.0:8443"
tls = "legacy"
client_ip = "proxy-protocol"
trusted_proxies = ["10.0.0.0/8", "2001:db8::/32", "192.0.2.1"]

[[instance]]
id = "052d3c3287c38201"
hostnames = ["052d3c3287c38201.Example.net"]
upstream = "https://127.0.0.1:8443"
upstream_host = "automate.partner.example"
bind = "127.0.0.1"
read_timeout = "10m"
"#;

#[test]
fn good_config_loads_with_defaults() {
    let d = Dir::new();
    let p = d.write("rpaas.toml", GOOD);
    d.write(
        "instances/b.toml",
        "[[instance]]\nid = \"b\"\nhostnames = [\"b.example.net\"]\nupstream = \"http://127.0.0.1:8080\"\n",
    );
    let c = load(&p).expect("loads");
    assert_eq!(c.listeners.len(), 2);
    assert_eq!(c.listeners[1].tls, TlsProfile::Legacy);
    assert!(c.listeners[1].trusts("10.1.2.3".parse().unwrap()));
    assert!(c.listeners[1].trusts("::ffff:10.1.2.3".parse().unwrap()));
    assert!(!c.listeners[1].trusts("11.1.2.3".parse().unwrap()));
    assert_eq!(c.instances.len(), 2);
    let a = &c.instances[0];
    assert_eq!(a.hostnames, vec!["052d3c3287c38201.example.net"]);
    assert!(a.upstream.tls);
    assert_eq!(a.timeouts.read, Duration::from_secs(600));
    assert_eq!(c.instances[1].timeouts.read, Duration::from_secs(300));
    assert_eq!(c.instances[1].source, d.0.path().join("instances/b.toml"));
    assert_eq!(c.node.hsts.as_deref(), Some("max-age=31536000"));
    assert!(c.node.strip_headers.contains(&"x-powered-by".to_string()));
    assert_eq!(
        a.internal_hosts(),
        vec![
            "127.0.0.1".to_string(),
            "automate.partner.example".to_string()
        ]
    );
}

/// Each broken config must fail with the file, the key and a reason a human can act on.
#[test]
fn broken_configs_name_file_key_and_reason() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "bad CIDR",
            "trusted_proxies = [\"10.0.0.0/33\"]",
            "listener[0].trusted_proxies[0]",
            "not a CIDR",
        ),
        (
            "host bits",
            "trusted_proxies = [\"10.0.0.1/8\"]",
            "listener[0].trusted_proxies[0]",
            "host bits",
        ),
        (
            "unknown TLS profile",
            "tls = \"ancient\"",
            "listener[0].tls",
            "unknown TLS profile \"ancient\"",
        ),
        (
            "unknown client_ip",
            "client_ip = \"header\"",
            "listener[0].client_ip",
            "unknown client_ip",
        ),
        (
            "proxy without trust",
            "client_ip = \"proxy-protocol\"",
            "listener[0].trusted_proxies",
            "is required",
        ),
        (
            "bad listen address",
            "address = \"0.0.0.0\"",
            "listener[0].address",
            "not an address",
        ),
        (
            "unknown listener key",
            "tls_profile = \"modern\"",
            "listener[0].tls_profile",
            "unknown field",
        ),
    ];
    for (what, listener_extra, key, reason) in cases {
        let d = Dir::new();
        let mut text = String::from("[[listener]]\n");
        if !listener_extra.starts_with("address") {
            text.push_str("address = \"127.0.0.1:0\"\n");
        }
        text.push_str(listener_extra);
        text.push_str("\n[[instance]]\nid = \"a\"\nhostnames = [\"a.example\"]\nupstream = \"http://127.0.0.1:1\"\n");
        let p = d.write("rpaas.toml", &text);
        let err = load(&p).expect_err(what);
        let msg = err.to_string();
        assert!(msg.contains(&p.display().to_string()), "{what}: {msg}");
        assert!(msg.contains(key), "{what}: expected key {key} in {msg}");
        assert!(msg.contains(reason), "{what}: expected {reason:?} in {msg}");
    }
}

#[test]
fn broken_instances_name_file_key_and_reason() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "missing cert file",
            "cert = \"nope.pem\"\nkey = \"nope.key\"",
            "instance[0].cert",
            "does not exist",
        ),
        (
            "cert without key",
            "cert = \"rpaas.toml\"",
            "instance[0].key",
            "cert is set but key is not",
        ),
        (
            "bad upstream scheme",
            "upstream = \"ftp://x\"",
            "instance[0].upstream",
            "http:// or https://",
        ),
        (
            "upstream with path",
            "upstream = \"http://127.0.0.1/x\"",
            "instance[0].upstream",
            "no path",
        ),
        (
            "bad bind",
            "bind = \"999.1.1.1\"",
            "instance[0].bind",
            "not an IP",
        ),
        (
            "bad duration",
            "read_timeout = \"soon\"",
            "instance[0].read_timeout",
            "bad duration",
        ),
        (
            "bad hostname",
            "hostnames = [\"bad host\"]",
            "instance[0].hostnames[0]",
            "not a DNS hostname",
        ),
        ("bad id", "id = \"a b\"", "instance[0].id", "must be"),
        (
            "wrong type",
            "hostnames = \"a.example\"",
            "instance[0].hostnames",
            "invalid type",
        ),
    ];
    for (what, extra, key, reason) in cases {
        let d = Dir::new();
        let mut lines: Vec<String> = vec![
            "[[listener]]".into(),
            "address = \"127.0.0.1:0\"".into(),
            "[[instance]]".into(),
        ];
        let overridden: Vec<&str> = extra
            .lines()
            .map(|l| l.split('=').next().unwrap_or("").trim())
            .collect();
        for (k, v) in [
            ("id", "\"a\""),
            ("hostnames", "[\"a.example\"]"),
            ("upstream", "\"http://127.0.0.1:1\""),
        ] {
            if !overridden.contains(&k) {
                lines.push(format!("{k} = {v}"));
            }
        }
        lines.push(extra.to_string());
        let p = d.write("rpaas.toml", &lines.join("\n"));
        let msg = load(&p).expect_err(what).to_string();
        assert!(msg.contains("rpaas.toml"), "{what}: {msg}");
        assert!(msg.contains(key), "{what}: expected key {key} in {msg}");
        assert!(msg.contains(reason), "{what}: expected {reason:?} in {msg}");
    }
}

#[test]
fn two_instances_claiming_one_hostname() {
    let d = Dir::new();
    let p = d.write(
        "rpaas.toml",
        "[node]\ninstances_dir = \"i\"\n[[listener]]\naddress = \"127.0.0.1:0\"\n[[instance]]\nid = \"a\"\nhostnames = [\"x.example\"]\nupstream = \"http://127.0.0.1:1\"\n",
    );
    d.write(
        "i/b.toml",
        "[[instance]]\nid = \"b\"\nhostnames = [\"X.example\"]\nupstream = \"http://127.0.0.1:1\"\n",
    );
    let msg = load(&p).expect_err("dup").to_string();
    assert!(msg.contains("b.toml: instance[0].hostnames"), "{msg}");
    assert!(msg.contains("already claimed by instance \"a\""), "{msg}");
}

#[test]
fn syntax_error_reports_line() {
    let d = Dir::new();
    let p = d.write("rpaas.toml", "[[listener]]\naddress = \n");
    let msg = load(&p).expect_err("syntax").to_string();
    assert!(msg.contains("line 2"), "{msg}");
}

#[test]
fn missing_file_and_listener() {
    let msg = load(Path::new("/nonexistent/rpaas.toml"))
        .expect_err("missing")
        .to_string();
    assert!(msg.contains("cannot read file"), "{msg}");
    let d = Dir::new();
    let p = d.write("rpaas.toml", "[node]\n");
    let msg = load(&p).expect_err("no listener").to_string();
    assert!(msg.contains("listener: at least one"), "{msg}");
}

#[test]
fn cidr_forms() {
    assert!(parse_cidr("203.0.113.0/24").is_ok());
    assert!(parse_cidr("2001:db8::/32").is_ok());
    assert_eq!(parse_cidr("192.0.2.7").map(|n| n.prefix_len()), Ok(32));
    assert!(parse_cidr("192.0.2.0/24/1").is_err());
    assert!(parse_cidr("example.com").is_err());
}
