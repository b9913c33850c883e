//! The control API's OpenAPI document as an outside tool sees it: fetched without a key from a
//! real node's `/v1/openapi.json`, checked by openapi-spec-validator (`scripts/deps.sh` installs
//! it), and listing every path of the API.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use test_support::api::Api;

/// The paths the document must describe: the control-plane issue's list, and `/v1/audit`.
const PATHS: &[&str] = &[
    "/v1/audit",
    "/v1/partners",
    "/v1/instances",
    "/v1/instances/{id}",
    "/v1/instances/{id}/acl",
    "/v1/instances/{id}/status",
    "/v1/instances/{id}/decisions",
    "/v1/instances/{id}/explain",
    "/v1/instances/{id}/audit",
    "/v1/keys",
    "/v1/keys/{id}",
];

/// Where scripts/deps.sh puts openapi-spec-validator (or `$RPAAS_OPENAPI_VALIDATOR`).
fn validator() -> PathBuf {
    if let Some(p) = std::env::var_os("RPAAS_OPENAPI_VALIDATOR") {
        return PathBuf::from(p);
    }
    let tools = std::env::var_os("RPAAS_TOOLS")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/rpaas")))
        .expect("HOME or RPAAS_TOOLS");
    let p = tools.join("openapi-spec-validator/bin/openapi-spec-validator");
    assert!(
        p.exists(),
        "{} is missing: run scripts/deps.sh (it installs openapi-spec-validator)",
        p.display()
    );
    p
}

fn config(fx: &Fixture, up: SocketAddr) -> String {
    format!(
        r#"
[node]
admin = "127.0.0.1:0"
data_dir = {data:?}

[[listener]]
address = "127.0.0.1:0"

[control]
listen = "127.0.0.1:0"
base_domain = "rpaas.test"

[[instance]]
id = "fromfile"
hostnames = ["{HOST_A}"]
{cert}upstream = "http://{up}"
"#,
        data = fx.path().join("data"),
        cert = fx.cert_lines("a", HOST_A)
    )
}

/// The control API's address. Its `listening` line comes just after `started`, so it may not
/// have been read yet when `Node::start` returns.
fn control_addr(node: &Node) -> SocketAddr {
    node.control
        .or_else(|| {
            node.wait_log(Duration::from_secs(10), |v| {
                v["event"] == "listening" && v["listener"] == "control"
            })
            .and_then(|v| v["address"].as_str().and_then(|a| a.parse().ok()))
        })
        .expect("the control API's listening line")
}

#[test]
fn the_openapi_document_is_valid_3_1_and_lists_every_path() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let node = Node::start(bin(), fx.path(), &config(&fx, up.addr));
    let anonymous = Api {
        addr: control_addr(&node),
        key: None,
    };

    // No key needed: clients fetch the document before they have one.
    let doc = anonymous.get("/v1/openapi.json");
    assert_eq!(doc.status, 200, "{}", doc.text);
    assert!(
        doc.json["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "openapi is {}, not 3.1.x",
        doc.json["openapi"]
    );
    let paths = doc.json["paths"].as_object().expect("a paths object");
    let missing: Vec<&&str> = PATHS.iter().filter(|p| !paths.contains_key(**p)).collect();
    assert!(
        missing.is_empty(),
        "the document lacks {missing:?}; it has {:?}",
        paths.keys().collect::<Vec<_>>()
    );

    // The document exactly as served, checked against the OpenAPI 3.1 schema.
    let file = fx.path().join("openapi.json");
    std::fs::write(&file, &doc.text).expect("write openapi.json");
    let out = Command::new(validator())
        .args(["--schema", "3.1"])
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .expect("run openapi-spec-validator");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(": OK"),
        "openapi-spec-validator rejected the document ({}):\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
