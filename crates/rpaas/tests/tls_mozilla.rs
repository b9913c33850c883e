//! The TLS profiles as an outside scanner sees them: sslyze (`scripts/deps.sh` installs it)
//! checks each listener of a real `rpaas serve` against Mozilla's configuration of the same
//! name (`modern`, `intermediate`, and `old` for our `legacy`), trusting the test's CAs.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Where scripts/deps.sh puts sslyze (or `$RPAAS_SSLYZE`).
fn sslyze() -> PathBuf {
    if let Some(p) = std::env::var_os("RPAAS_SSLYZE") {
        return PathBuf::from(p);
    }
    let tools = std::env::var_os("RPAAS_TOOLS")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/rpaas")))
        .expect("HOME or RPAAS_TOOLS");
    let p = tools.join("sslyze/bin/sslyze");
    assert!(
        p.exists(),
        "{} is missing: run scripts/deps.sh (it installs sslyze)",
        p.display()
    );
    p
}

struct Scan {
    compliant: bool,
    stdout: String,
    /// `server_scan_results[0].scan_result` of the JSON output.
    result: serde_json::Value,
}

/// Runs `sslyze --mozilla_config=<profile>` against `addr` as `host`, trusting `ca`.
fn scan(dir: &Path, addr: std::net::SocketAddr, host: &str, profile: &str, ca: &Path) -> Scan {
    let json = dir.join(format!("sslyze-{profile}.json"));
    let mut child = Command::new(sslyze())
        .arg(format!("--mozilla_config={profile}"))
        .arg("--certinfo_ca_file")
        .arg(ca)
        .arg("--json_out")
        .arg(&json)
        .arg(format!("{host}:{}{{{}}}", addr.port(), addr.ip()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sslyze");
    let deadline = Instant::now() + Duration::from_secs(240);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait sslyze") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("sslyze took longer than 240 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = child.wait_with_output().expect("sslyze output");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let text = std::fs::read_to_string(&json).unwrap_or_else(|e| {
        panic!(
            "no JSON from sslyze ({e}): {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let v: serde_json::Value =
        serde_json::from_str(&quote_big_numbers(&text)).expect("sslyze JSON");
    let server = &v["server_scan_results"][0];
    assert_eq!(server["scan_status"], "COMPLETED", "{stdout}");
    Scan {
        compliant: status.success() && stdout.contains("OK - Compliant."),
        stdout,
        result: server["scan_result"].clone(),
    }
}

impl Scan {
    fn curves(&self) -> BTreeSet<String> {
        self.result["elliptic_curves"]["result"]["supported_curves"]
            .as_array()
            .expect("curves")
            .iter()
            .map(|c| c["name"].as_str().unwrap_or("").to_string())
            .collect()
    }

    fn versions(&self) -> Vec<&'static str> {
        [
            ("ssl_2_0_cipher_suites", "SSLv2"),
            ("ssl_3_0_cipher_suites", "SSLv3"),
            ("tls_1_0_cipher_suites", "TLSv1"),
            ("tls_1_1_cipher_suites", "TLSv1.1"),
            ("tls_1_2_cipher_suites", "TLSv1.2"),
            ("tls_1_3_cipher_suites", "TLSv1.3"),
        ]
        .into_iter()
        .filter(|(k, _)| self.result[*k]["result"]["is_tls_version_supported"] == true)
        .map(|(_, v)| v)
        .collect()
    }

    /// The leaf key algorithm of each certificate deployment, all verified against the CA.
    fn verified_leaf_keys(&self) -> BTreeSet<String> {
        let deployments = self.result["certificate_info"]["result"]["certificate_deployments"]
            .as_array()
            .expect("deployments");
        deployments
            .iter()
            .map(|d| {
                assert!(
                    !d["verified_certificate_chain"].is_null(),
                    "chain not verified: {}",
                    self.stdout
                );
                d["received_certificate_chain"][0]["public_key"]["algorithm"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect()
    }

    /// The `* key: reason` lines of a failed compliance check.
    fn issues(&self) -> BTreeSet<String> {
        self.stdout
            .lines()
            .filter_map(|l| l.trim().strip_prefix("* "))
            .filter_map(|l| l.split_once(':').map(|(k, _)| k.to_string()))
            .filter(|k| !k.contains(' '))
            .collect()
    }
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

const MOZILLA_CURVES: &[&str] = &["X25519", "secp256r1", "secp384r1"];

fn config(up: std::net::SocketAddr, cert_lines: &str) -> String {
    format!(
        r#"
[node]
admin = "127.0.0.1:0"
[[listener]]
address = "127.0.0.1:0"
tls = "modern"
[[listener]]
address = "127.0.0.1:0"
tls = "intermediate"
[[listener]]
address = "127.0.0.1:0"
tls = "legacy"
[[instance]]
id = "a"
hostnames = ["{HOST_A}"]
{cert_lines}upstream = "http://{up}"
"#
    )
}

#[test]
fn modern_and_intermediate_listeners_pass_mozilla_compliance() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let node = Node::start(
        bin(),
        fx.path(),
        &config(up.addr, &fx.cert_lines("a", HOST_A)),
    );
    for (addr, profile, versions) in [
        (node.listeners[0], "modern", &["TLSv1.3"][..]),
        (
            node.listeners[1],
            "intermediate",
            &["TLSv1.2", "TLSv1.3"][..],
        ),
    ] {
        let s = scan(fx.path(), addr, HOST_A, profile, &fx.ca_file);
        assert!(s.compliant, "{profile}: {}", s.stdout);
        assert_eq!(s.curves(), set(MOZILLA_CURVES), "{profile}");
        assert_eq!(s.versions(), versions, "{profile}");
        assert_eq!(s.verified_leaf_keys(), set(&["ECPublicKey"]), "{profile}");
    }
}

/// Until instances can list several certificates, the legacy listener serves the ECDSA one
/// only; Mozilla `old` then fails on the certificate type alone, everything else complies.
#[test]
fn legacy_listener_meets_mozilla_old_but_for_the_rsa_certificate() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let node = Node::start(
        bin(),
        fx.path(),
        &config(up.addr, &fx.cert_lines("a", HOST_A)),
    );
    let s = scan(fx.path(), node.listeners[2], HOST_A, "old", &fx.ca_file);
    assert!(!s.compliant);
    assert_eq!(
        s.issues(),
        set(&["certificate_types", "certificate_signatures"]),
        "{}",
        s.stdout
    );
    assert_eq!(s.curves(), set(MOZILLA_CURVES));
    assert_eq!(s.versions(), ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]);
}

/// sslyze writes RSA moduli as JSON integers of hundreds of digits; they become strings here
/// (outside string literals, any run of more than 18 digits).
fn quote_big_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_str, mut escaped) = (false, false);
    let mut digits = String::new();
    let flush = |out: &mut String, digits: &mut String| {
        if digits.len() > 18 {
            out.push('"');
            out.push_str(digits);
            out.push('"');
        } else {
            out.push_str(digits);
        }
        digits.clear();
    };
    for c in text.chars() {
        if in_str {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        flush(&mut out, &mut digits);
        if c == '"' {
            in_str = true;
        }
        out.push(c);
    }
    flush(&mut out, &mut digits);
    out
}

/// The legacy listener with an ECDSA and an RSA certificate side by side (the RSA one signed
/// by an RSA CA, as `old` wants `sha256WithRSAEncryption`).
#[test]
fn legacy_listener_with_ecdsa_and_rsa_passes_mozilla_old() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let rsa_ca = Ca::new_rsa("rpaas test RSA CA");
    let ecdsa = fx.ca.write_leaf(fx.path(), "a-ecdsa", &[HOST_A]);
    let rsa = rsa_ca.write_leaf_rsa(fx.path(), "a-rsa", &[HOST_A]);
    let both_cas = fx.path().join("both-cas.pem");
    let mut pem = std::fs::read(&fx.ca_file).expect("ca");
    pem.extend(rsa_ca.cert.to_pem().expect("pem"));
    std::fs::write(&both_cas, pem).expect("write");
    let lines = format!(
        "cert = [{:?}, {:?}]\nkey = [{:?}, {:?}]\n",
        ecdsa.cert, rsa.cert, ecdsa.key, rsa.key
    );
    let node = Node::start(bin(), fx.path(), &config(up.addr, &lines));
    let s = scan(fx.path(), node.listeners[2], HOST_A, "old", &both_cas);
    assert!(s.compliant, "{}", s.stdout);
    assert_eq!(
        s.verified_leaf_keys(),
        set(&["ECPublicKey", "RSAPublicKey"])
    );
    assert_eq!(s.curves(), set(MOZILLA_CURVES));
    // The other profiles stay compliant with the pair.
    for (addr, profile) in [
        (node.listeners[0], "modern"),
        (node.listeners[1], "intermediate"),
    ] {
        let s = scan(fx.path(), addr, HOST_A, profile, &both_cas);
        assert!(s.compliant, "{profile}: {}", s.stdout);
    }
}
