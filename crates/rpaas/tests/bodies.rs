//! Request bodies through a real node with the IPS holding bodies back: every size around the
//! buffer boundaries (0 to 256 KiB), sent as one write, as head then body, and byte by byte,
//! over HTTP/1.1 and HTTP/2, with and without `Content-Length`, to every traffic class. Each
//! must be answered by the origin, which must have received the whole body.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use common::*;
use test_support::h2client::{self, Pace};

/// Sizes around every buffer boundary: Pingora's 4 KiB header buffer, TLS records (16 KiB),
/// the IPS body limit (64 KiB), and the sizes between.
const SIZES: &[usize] = &[
    0, 1, 1023, 1024, 1025, 2047, 2048, 2049, 4095, 4096, 4097, 8191, 8192, 8193, 16383, 16384,
    16385, 65535, 65536, 65537, 262_144,
];

/// (class, path, content type, status the stand-in answers).
const CLASSES: &[(&str, &str, &str, u16)] = &[
    (
        "agent",
        "/LabTech/Agent.aspx",
        "application/octet-stream",
        200,
    ),
    (
        "deployment",
        "/LabTech/Deployment.aspx?InstallerToken=0f3c9a",
        "application/x-www-form-urlencoded",
        200,
    ),
    (
        "control_center",
        "/LabTech/ControlCenter.asmx",
        "text/xml; charset=utf-8",
        200,
    ),
    (
        "web_control_center",
        "/automate/api/notes",
        "application/json",
        200,
    ),
    ("api", "/cwa/api/v1/computers", "application/json", 200),
    (
        "portal",
        "/WCC2/Home/Login",
        "application/x-www-form-urlencoded",
        404,
    ),
    ("other", "/echo", "text/plain", 200),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    H1,
    H2,
}

#[derive(Debug, Clone, Copy)]
struct Case {
    proto: Proto,
    pace: Pace,
    content_length: bool,
    class: usize,
    size: usize,
}

/// A benign body of exactly `n` bytes shaped like the content type.
fn body(content_type: &str, n: usize) -> Vec<u8> {
    let fill = |k: usize| -> Vec<u8> { (0..k).map(|i| b'a' + (i % 26) as u8).collect() };
    let (pre, post): (&[u8], &[u8]) = if content_type.contains("json") {
        (b"{\"note\":\"", b"\"}")
    } else if content_type.contains("xml") {
        (b"<note>", b"</note>")
    } else if content_type.contains("form") {
        (b"note=", b"")
    } else {
        (b"", b"")
    };
    if n < pre.len() + post.len() {
        return fill(n);
    }
    let mut v = pre.to_vec();
    v.extend(fill(n - pre.len() - post.len()));
    v.extend_from_slice(post);
    v
}

fn chunked(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    // An odd chunk size so chunk boundaries fall everywhere relative to the buffers.
    for c in body.chunks(4093) {
        out.extend(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn h1(node: &Node, fx: &Fixture, c: Case) -> Result<(u16, Option<String>), String> {
    let (_, path, ct, _) = CLASSES[c.class];
    let b = body(ct, c.size);
    let framing = if c.content_length {
        format!("Content-Length: {}\r\n", b.len())
    } else {
        "Transfer-Encoding: chunked\r\n".to_string()
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {HOST_A}\r\nUser-Agent: rpaas-test\r\nContent-Type: {ct}\r\n{framing}Connection: close\r\n\r\n"
    );
    let payload = if c.content_length { b } else { chunked(&b) };
    let mut conn = client::connect(node.listeners[0], &fx.tls(HOST_A))?;
    conn.get_ref()
        .set_nodelay(true)
        .map_err(|e| e.to_string())?;
    conn.get_ref()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let w = |conn: &mut client::Conn, bytes: &[u8]| -> Result<(), String> {
        conn.write_all(bytes).map_err(|e| e.to_string())?;
        conn.flush().map_err(|e| e.to_string())
    };
    match c.pace {
        Pace::OneWrite => {
            let mut all = head.into_bytes();
            all.extend_from_slice(&payload);
            w(&mut conn, &all)?;
        }
        Pace::HeadThenBody => {
            w(&mut conn, head.as_bytes())?;
            std::thread::sleep(Duration::from_millis(20));
            w(&mut conn, &payload)?;
        }
        Pace::ByteByByte | Pace::TinyFrames => {
            // Byte by byte through the first 20 KiB (every header and body buffer boundary of
            // the node is below that), then 61-byte writes: a quarter of a million one-byte
            // TLS records costs seconds of CPU and shows nothing more.
            let all: Vec<u8> = head.as_bytes().iter().chain(&payload).copied().collect();
            let (slow, rest) = all.split_at(all.len().min(20 * 1024));
            for byte in slow {
                w(&mut conn, std::slice::from_ref(byte))?;
            }
            for part in rest.chunks(61) {
                w(&mut conn, part)?;
            }
        }
    }
    let mut r = std::io::BufReader::new(conn);
    let resp = client::read_response(&mut r, false)?;
    Ok((
        resp.status,
        resp.header("x-origin-body-len").map(str::to_string),
    ))
}

fn h2(node: &Node, fx: &Fixture, c: Case) -> Result<(u16, Option<String>), String> {
    let (_, path, ct, _) = CLASSES[c.class];
    let b = body(ct, c.size);
    let resp = h2client::request(
        node.listeners[0],
        HOST_A,
        &fx.ca_file,
        "POST",
        path,
        &[("content-type", ct), ("user-agent", "rpaas-test")],
        &b,
        c.content_length,
        c.pace,
    )?;
    Ok((
        resp.status,
        resp.header("x-origin-body-len").map(str::to_string),
    ))
}

fn config(up: std::net::SocketAddr, fx: &Fixture) -> String {
    format!(
        r#"
[node]
admin = "127.0.0.1:0"
[node.limits]
login = "off"
ban_after = 0

[[listener]]
address = "127.0.0.1:0"

[[instance]]
id = "a"
hostnames = ["{HOST_A}"]
{cert}upstream = "http://{up}"
[instance.class.deployment]
methods = ["GET", "HEAD", "POST"]
[instance.ips]
mode = "block"
"#,
        cert = fx.cert_lines("a", HOST_A)
    )
}

fn run(cases: &[Case], node: &Node, fx: &Fixture) -> Vec<String> {
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(c) = cases.get(i).copied() else {
                    return;
                };
                let (class, _, _, want) = CLASSES[c.class];
                let got = match c.proto {
                    Proto::H1 => h1(node, fx, c),
                    Proto::H2 => h2(node, fx, c),
                };
                let ok = matches!(&got, Ok((st, Some(len)))
                    if *st == want && *len == c.size.to_string());
                if !ok {
                    if let Ok(mut f) = failures.lock() {
                        f.push(format!("{class} {c:?}: {got:?}"));
                    }
                }
            });
        }
    });
    failures.into_inner().unwrap_or_default()
}

fn matrix(proto: Proto) -> Vec<Case> {
    let mut cases = Vec::new();
    for pace in [Pace::OneWrite, Pace::HeadThenBody, Pace::ByteByByte] {
        for content_length in [true, false] {
            for class in 0..CLASSES.len() {
                for &size in SIZES {
                    cases.push(Case {
                        proto,
                        pace,
                        content_length,
                        class,
                        size,
                    });
                }
            }
        }
    }
    cases
}

#[test]
fn head_and_a_4_to_9_kib_body_in_one_tls_write_are_answered() {
    // The shape most HTTP libraries produce: the whole request in one buffer, so the first
    // read holds the head and part of the body.
    let up = Upstream::start();
    let fx = Fixture::new();
    let node = Node::start(bin(), fx.path(), &config(up.addr, &fx));
    let cases: Vec<Case> = [4097, 5000, 6000, 7000, 8000, 9000, 9216]
        .into_iter()
        .flat_map(|size| {
            [3usize, 4, 5].map(|class| Case {
                proto: Proto::H1,
                pace: Pace::OneWrite,
                content_length: true,
                class,
                size,
            })
        })
        .collect();
    let failures = run(&cases, &node, &fx);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_body_size_pace_and_framing_over_http1() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let node = Node::start(bin(), fx.path(), &config(up.addr, &fx));
    let cases = matrix(Proto::H1);
    let failures = run(&cases, &node, &fx);
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn every_body_size_pace_and_framing_over_http2() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let node = Node::start(bin(), fx.path(), &config(up.addr, &fx));
    let cases = matrix(Proto::H2);
    let failures = run(&cases, &node, &fx);
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn a_flood_of_tiny_http2_data_frames_is_refused_not_served() {
    // One-byte DATA frames cost the node a frame each: the HTTP/2 layer allows a budget of
    // them and then ends the connection (GOAWAY ENHANCE_YOUR_CALM) instead of serving.
    let up = Upstream::start();
    let fx = Fixture::new();
    let node = Node::start(bin(), fx.path(), &config(up.addr, &fx));
    let r = h2client::request(
        node.listeners[0],
        HOST_A,
        &fx.ca_file,
        "POST",
        "/echo",
        &[("content-type", "text/plain")],
        &vec![b'a'; 4096],
        true,
        Pace::TinyFrames,
    );
    assert!(r.is_err(), "{r:?}");
    // When the node got as far as the request, its line says it was never answered. (Under
    // load the connection can end before the request reaches the proxy phases at all.)
    std::thread::sleep(Duration::from_millis(300));
    if let Some(line) = node.wait_log(Duration::from_secs(2), |v| v["path"] == "/echo") {
        assert_eq!(line["status"], 0, "{line}");
    }
    // The request head may have been forwarded already; the body never completes.
    assert!(
        up.seen_path("/echo").iter().all(|s| s.body_len < 4096),
        "the flood was served"
    );
}
