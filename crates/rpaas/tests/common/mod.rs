//! Shared set-up for the node's integration tests: a temp dir with a CA, per-instance
//! certificates, a stand-in origin and a running `rpaas` process.
#![allow(dead_code, unused_imports)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use test_support::certs::Ca;
pub use test_support::client::{self, Tls};
pub use test_support::node::Node;
pub use test_support::upstream::Upstream;

pub const HOST_A: &str = "052d3c3287c38201.example.net";
pub const HOST_B: &str = "b7e1f0c2a9d34e55.example.net";

pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_rpaas"))
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub ca: Ca,
    pub ca_file: PathBuf,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = Ca::new("rpaas test CA");
        let ca_file = ca.write_cert(dir.path(), "ca");
        Self { dir, ca, ca_file }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a certificate for `host` and returns the `cert`/`key` config lines.
    pub fn cert_lines(&self, stem: &str, host: &str) -> String {
        let f = self.ca.write_leaf(self.path(), stem, &[host]);
        format!("cert = {:?}\nkey = {:?}\n", f.cert, f.key)
    }

    pub fn tls<'a>(&'a self, sni: &'a str) -> Tls<'a> {
        Tls::new(sni, &self.ca_file)
    }

    /// A config with one intermediate listener and two instances on `upstream`.
    pub fn two_instances(&self, upstream: SocketAddr, listener_extra: &str) -> String {
        format!(
            r#"
[node]
admin = "127.0.0.1:0"
drain_timeout = "3s"

[[listener]]
address = "127.0.0.1:0"
tls = "intermediate"
{listener_extra}

[[instance]]
id = "a"
hostnames = ["{HOST_A}"]
{cert_a}upstream = "http://{upstream}"
upstream_host = "automate.partner.local"

[[instance]]
id = "b"
hostnames = ["{HOST_B}"]
{cert_b}upstream = "http://{upstream}"
"#,
            cert_a = self.cert_lines("a", HOST_A),
            cert_b = self.cert_lines("b", HOST_B),
        )
    }
}

/// Asserts the response carries none of the headers that fingerprint the origin or proxy.
pub fn assert_hardened(r: &client::Response) {
    for h in [
        "server",
        "x-powered-by",
        "x-aspnet-version",
        "x-aspnetmvc-version",
    ] {
        assert!(r.header(h).is_none(), "{h} leaked: {:?}", r.headers);
    }
    assert_eq!(
        r.header("strict-transport-security"),
        Some("max-age=31536000"),
        "HSTS missing: {:?}",
        r.headers
    );
    let all = format!("{:?} {}", r.headers, r.text());
    for leak in [
        "10.20.30.40",
        "automate.partner.local",
        "Pingora",
        "WIN-AUTOMATE01",
    ] {
        assert!(!all.contains(leak), "{leak} leaked in {all}");
    }
}

/// Creates an API key with `rpaas key create --config CONFIG ARGS` (before or while the node
/// runs) and returns it.
pub fn cli_key(config: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(bin())
        .args(["key", "create", "--config"])
        .arg(config)
        .args(args)
        .output()
        .expect("run rpaas key create");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// An operator key named `ops`.
pub fn operator_key(config: &Path) -> String {
    cli_key(config, &["--name", "ops", "--scope", "operator"])
}

/// A port free on 127.0.0.1 now (for servers that must be told their port in advance, such as
/// pebble's validation ports).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The leaf `addr` serves for `host`, verified against the PEM roots in `root`: its serial
/// (hex) and DNS names.
pub fn served_leaf(
    addr: SocketAddr,
    host: &str,
    root: &Path,
) -> Result<(String, Vec<String>), String> {
    let mut b = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls())
        .map_err(|e| e.to_string())?;
    b.set_ca_file(root).map_err(|e| e.to_string())?;
    let tcp = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    let s = b.build().connect(host, tcp).map_err(|e| e.to_string())?;
    let cert = s.ssl().peer_certificate().ok_or("no certificate")?;
    let serial = cert
        .serial_number()
        .to_bn()
        .and_then(|b| b.to_hex_str().map(|s| s.to_string()))
        .map_err(|e| e.to_string())?;
    let names = cert
        .subject_alt_names()
        .map(|l| {
            l.iter()
                .filter_map(|n| n.dnsname().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ok((serial, names))
}

/// Waits (up to 90 s) until `addr` serves `host` a leaf that verifies against `root`.
pub fn wait_served_leaf(addr: SocketAddr, host: &str, root: &Path) -> (String, Vec<String>) {
    let t = std::time::Instant::now();
    loop {
        match served_leaf(addr, host, root) {
            Ok(v) => return v,
            Err(e) if t.elapsed() > std::time::Duration::from_secs(90) => {
                panic!("{host} never served a certificate from the CA: {e}")
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(250)),
        }
    }
}
