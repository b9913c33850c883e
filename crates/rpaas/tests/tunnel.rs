//! rpaas-connector and the node's UDP/TCP relays end to end on loopback: a fake heartbeat
//! server behind a real connector process, many simulated agents, kill/restart, denied sources,
//! wrong secrets, a TCP relay.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

const SERVER_NAME: &str = "tunnel.node.example.net";
const SECRET: &str = "s3cret-connector-key-0001";

fn connector_bin() -> PathBuf {
    let p = Path::new(env!("CARGO_BIN_EXE_rpaas")).with_file_name("rpaas-connector");
    assert!(
        p.exists(),
        "{} is missing: build the workspace (cargo build --workspace) first",
        p.display()
    );
    p
}

/// A heartbeat server: answers `ack:<payload>` to whoever sent, and remembers payloads.
fn heartbeat_server() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = s.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            let p = String::from_utf8_lossy(&buf[..n]).to_string();
            if let Ok(mut l) = log.lock() {
                l.push(p.clone());
            }
            let _ = s.send_to(format!("ack:{p}").as_bytes(), from);
        }
    });
    (addr, seen)
}

fn tcp_echo() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut c = c;
                let mut buf = [0u8; 16384];
                while let Ok(n) = c.read(&mut buf) {
                    if n == 0 || c.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

struct Setup {
    fx: Fixture,
    node: Node,
    hb: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
    echo: SocketAddr,
    cert: PathBuf,
}

fn setup(extra_instance: &str, tcp_target: Option<SocketAddr>) -> Setup {
    let fx = Fixture::new();
    let tun = fx.ca.write_leaf(fx.path(), "tunnel", &[SERVER_NAME]);
    let (hb, seen) = heartbeat_server();
    let echo = tcp_echo();
    let cfg = format!(
        r#"
[node]
admin = "127.0.0.1:0"
tunnel = "127.0.0.1:0"
tunnel_cert = {cert:?}
tunnel_key = {key:?}

[[listener]]
address = "127.0.0.1:0"

[[instance]]
id = "a"
hostnames = ["{HOST_A}"]
upstream = "http://127.0.0.1:9"
connector_secret = "{SECRET}"
deny = ["127.0.0.2/32"]
{extra_instance}

[[instance.udp]]
listen = "127.0.0.1:0"
target = "{hb}"

[[instance.tcp]]
listen = "127.0.0.1:0"
target = "{tcp}"
access = "open"
"#,
        cert = tun.cert,
        key = tun.key,
        tcp = tcp_target.unwrap_or(echo),
    );
    let node = Node::start(bin(), fx.path(), &cfg);
    let cert = tun.cert.clone();
    Setup {
        fx,
        node,
        hb,
        seen,
        echo,
        cert,
    }
}

/// A connector process, killed and reaped when dropped.
struct Connector(Child);

impl Drop for Connector {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_connector(s: &Setup, secret: &str) -> Connector {
    let cfg = format!(
        "node = \"{}\"\nserver_name = \"{SERVER_NAME}\"\nnode_cert = {:?}\ninstance = \"a\"\nsecret = \"{secret}\"\nallow = [\"{}\", \"{}\"]\n",
        s.node.tunnel.expect("tunnel address"),
        s.cert,
        s.hb,
        s.echo
    );
    let p = s.fx.path().join("connector.toml");
    std::fs::write(&p, cfg).expect("write");
    Connector(
        Command::new(connector_bin())
            .args(["--config"])
            .arg(&p)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn connector"),
    )
}

fn wait_connected(node: &Node, n: usize) {
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        if node.log_count(|v| v["event"] == "connector_connected") >= n {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("connector did not connect");
}

/// Sends one heartbeat from `sock` and waits for its reply.
fn ping(sock: &UdpSocket, relay: SocketAddr, payload: &str) -> Option<String> {
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .ok()?;
    for _ in 0..10 {
        sock.send_to(payload.as_bytes(), relay).ok()?;
        let mut buf = [0u8; 2048];
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            return Some(String::from_utf8_lossy(&buf[..n]).to_string());
        }
    }
    None
}

#[test]
fn heartbeats_from_many_agents_each_get_their_own_replies() {
    let s = setup("", None);
    let _conn = start_connector(&s, SECRET);
    wait_connected(&s.node, 1);
    let relay = s.node.relay("udp", "a", 0);
    let agents: Vec<UdpSocket> = (0..40)
        .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind"))
        .collect();
    for round in 0..3 {
        for (i, a) in agents.iter().enumerate() {
            let payload = format!("agent{i}-round{round}");
            let reply =
                ping(a, relay, &payload).unwrap_or_else(|| panic!("no reply for {payload}"));
            assert_eq!(
                reply,
                format!("ack:{payload}"),
                "agent {i} got someone else's reply"
            );
        }
    }
    // Distinct agents were distinct flows on the connector side: the server saw 40 sources.
    let health = s.node.admin_get("/healthz");
    assert!(
        health.contains(r#""a":{"connectors":1,"up":true}"#),
        "{health}"
    );
    let metrics = s.node.admin_get("/metrics");
    assert!(
        metrics.contains(r#"rpaas_udp_datagrams_total{direction="to_agent",instance="a"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"rpaas_tunnel_connectors{instance="a"} 1"#),
        "{metrics}"
    );
}

#[test]
fn connector_restart_resumes_traffic_and_denied_sources_never_reach_the_server() {
    let s = setup("", None);
    let conn = start_connector(&s, SECRET);
    wait_connected(&s.node, 1);
    let relay = s.node.relay("udp", "a", 0);
    let agent = UdpSocket::bind("127.0.0.1:0").expect("bind");
    assert_eq!(ping(&agent, relay, "before").as_deref(), Some("ack:before"));

    // Kill the connector: the node notices (QUIC idle timeout or close) and drops datagrams.
    drop(conn);
    let restarted = Instant::now();
    let _conn = start_connector(&s, SECRET);
    wait_connected(&s.node, 2);
    let mut resumed = None;
    for _ in 0..50 {
        if ping(&agent, relay, "after").as_deref() == Some("ack:after") {
            resumed = Some(restarted.elapsed());
            break;
        }
    }
    let took = resumed.expect("traffic resumed");
    assert!(took < Duration::from_secs(15), "took {took:?}");

    // A denied source: its datagrams are dropped at the node.
    let denied = UdpSocket::bind("127.0.0.2:0").expect("bind 127.0.0.2");
    assert_eq!(ping(&denied, relay, "denied-1"), None);
    assert!(!s
        .seen
        .lock()
        .map(|l| l.iter().any(|p| p.starts_with("denied")))
        .unwrap_or(true));
    let metrics = s.node.admin_get("/metrics");
    assert!(
        metrics.contains(r#"rpaas_udp_drops_total{instance="a",reason="policy:deny-list"}"#),
        "{metrics}"
    );
}

#[test]
fn wrong_secret_is_refused_and_the_connector_exits() {
    let s = setup("", None);
    let mut conn = start_connector(&s, "not-the-right-secret-0000");
    let end = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = conn.0.try_wait().expect("wait") {
            break st;
        }
        assert!(Instant::now() < end, "connector did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(3));
    let mut err = String::new();
    let _ = conn.0.stderr.take().map(|mut e| e.read_to_string(&mut err));
    assert!(
        err.contains("the node refused this connector: unknown instance or bad secret"),
        "{err}"
    );
    assert!(
        !err.contains("not-the-right-secret"),
        "secret logged: {err}"
    );
    let line = s
        .node
        .wait_log(Duration::from_secs(5), |v| {
            v["event"] == "connector_refused"
        })
        .expect("refusal logged");
    assert!(!line.to_string().contains("not-the-right-secret"));
}

#[test]
fn tcp_relay_carries_a_bidirectional_stream() {
    let s = setup("", None);
    let _conn = start_connector(&s, SECRET);
    wait_connected(&s.node, 1);
    let relay = s.node.relay("tcp", "a", 0);
    let mut c = std::net::TcpStream::connect(relay).expect("connect relay");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let writer = {
        let mut w = c.try_clone().expect("clone");
        let data = data.clone();
        std::thread::spawn(move || w.write_all(&data))
    };
    let mut back = vec![0u8; data.len()];
    c.read_exact(&mut back).expect("echo back");
    writer.join().expect("writer").expect("write");
    assert!(back == data, "stream corrupted");
}

#[test]
fn connector_refuses_targets_outside_its_allow_list() {
    // The node asks for a TCP target the connector does not allow.
    let other = tcp_echo();
    let s = setup("", Some(other));
    let _conn = start_connector(&s, SECRET);
    wait_connected(&s.node, 1);
    let relay = s.node.relay("tcp", "a", 0);
    let mut c = std::net::TcpStream::connect(relay).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let _ = c.write_all(b"hello");
    let mut buf = [0u8; 16];
    let n = c.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the relay must close, not echo");
    assert!(s
        .node
        .wait_log(Duration::from_secs(5), |v| v["outcome"]
            == "connector_not_allowed")
        .is_some());
}

/// Bounded load: datagrams/s through the tunnel and the loss at that rate.
/// `cargo test --release -p rpaas --test tunnel -- --ignored --nocapture udp_throughput`
#[test]
#[ignore]
fn udp_throughput() {
    let s = setup("", None);
    let _conn = start_connector(&s, SECRET);
    wait_connected(&s.node, 1);
    let relay = s.node.relay("udp", "a", 0);
    let agents: Vec<Arc<UdpSocket>> = (0..8)
        .map(|_| Arc::new(UdpSocket::bind("127.0.0.1:0").expect("bind")))
        .collect();
    for a in &agents {
        assert!(ping(a, relay, "warm").is_some());
    }
    let per_agent: u64 = std::env::var("RPAAS_UDP_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40_000);
    let rate: u64 = std::env::var("RPAAS_UDP_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60_000);
    let received = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let readers: Vec<_> = agents
        .iter()
        .map(|a| {
            let a = a.clone();
            let received = received.clone();
            std::thread::spawn(move || {
                a.set_read_timeout(Some(Duration::from_secs(2)))
                    .expect("timeout");
                let mut buf = [0u8; 256];
                while a.recv_from(&mut buf).is_ok() {
                    received.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })
        })
        .collect();
    let total = per_agent * agents.len() as u64;
    let start = Instant::now();
    let payload = [b'h'; 64];
    for i in 0..total {
        let a = &agents[(i % agents.len() as u64) as usize];
        let _ = a.send_to(&payload, relay);
        // Pace to `rate` datagrams/s, sleeping between bursts (a spinning sender would take
        // the core the node needs).
        if i % 200 == 199 {
            let due = Duration::from_secs_f64((i + 1) as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    let sent_in = start.elapsed();
    for r in readers {
        let _ = r.join();
    }
    let got = received.load(std::sync::atomic::Ordering::Relaxed);
    let loss = 100.0 * (total - got.min(total)) as f64 / total as f64;
    println!(
        "UDP tunnel: sent {total} datagrams in {:.2}s ({:.0}/s offered), {got} replies back, loss {loss:.2}%",
        sent_in.as_secs_f64(),
        total as f64 / sent_in.as_secs_f64()
    );
}

#[test]
fn a_reload_adds_and_removes_an_instance_with_relays_without_a_restart() {
    let fx = Fixture::new();
    let tun = fx.ca.write_leaf(fx.path(), "tunnel", &[SERVER_NAME]);
    let (hb, _seen) = heartbeat_server();
    let echo = tcp_echo();
    let base = format!(
        r#"
[node]
admin = "127.0.0.1:0"
tunnel = "127.0.0.1:0"
tunnel_cert = {cert:?}
tunnel_key = {key:?}

[[listener]]
address = "127.0.0.1:0"

[[instance]]
id = "a"
hostnames = ["{HOST_A}"]
upstream = "http://127.0.0.1:9"
"#,
        cert = tun.cert,
        key = tun.key,
    );
    let with_b = format!(
        r#"{base}
[[instance]]
id = "b"
hostnames = ["{HOST_B}"]
upstream = "http://127.0.0.1:9"
connector_secret = "{SECRET}"

[[instance.udp]]
listen = "127.0.0.1:0"
target = "{hb}"

[[instance.tcp]]
listen = "127.0.0.1:0"
target = "{echo}"
access = "open"
"#
    );
    let node = Node::start(bin(), fx.path(), &base);
    let pid = node.pid();
    node.write_config(&with_b);
    node.signal(libc::SIGHUP);
    node.wait_log(Duration::from_secs(10), |v| v["event"] == "reloaded")
        .expect("reloaded");
    let udp = node
        .wait_relay("udp", "b", 0, Duration::from_secs(5))
        .expect("udp relay bound live");
    let tcp = node
        .wait_relay("tcp", "b", 0, Duration::from_secs(5))
        .expect("tcp relay bound live");

    let cfg = format!(
        "node = \"{}\"\nserver_name = \"{SERVER_NAME}\"\nnode_cert = {:?}\ninstance = \"b\"\nsecret = \"{SECRET}\"\nallow = [\"{hb}\", \"{echo}\"]\n",
        node.tunnel.expect("tunnel"),
        tun.cert,
    );
    let p = fx.path().join("connector-b.toml");
    std::fs::write(&p, cfg).expect("write");
    let _conn = Connector(
        Command::new(connector_bin())
            .args(["--config"])
            .arg(&p)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn connector"),
    );
    wait_connected(&node, 1);
    let agent = UdpSocket::bind("127.0.0.1:0").expect("bind");
    assert_eq!(ping(&agent, udp, "hello").as_deref(), Some("ack:hello"));
    let mut c = std::net::TcpStream::connect(tcp).expect("tcp relay");
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    c.write_all(b"through").expect("write");
    let mut buf = [0u8; 7];
    c.read_exact(&mut buf).expect("echo");
    assert_eq!(&buf, b"through");
    drop(c);

    // A broken file is refused and everything keeps working.
    node.write_config(&format!("{with_b}\n[[instance]]\nid = \"b\"\n"));
    node.signal(libc::SIGHUP);
    node.wait_log(Duration::from_secs(10), |v| v["event"] == "reload_rejected")
        .expect("rejected");
    assert_eq!(ping(&agent, udp, "still").as_deref(), Some("ack:still"));

    // Removing the instance stops its relays.
    node.write_config(&base);
    node.signal(libc::SIGHUP);
    node.wait_log(Duration::from_secs(10), |v| {
        v["event"] == "relay_stopped" && v["instance"] == "b"
    })
    .expect("relays stopped");
    let end = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(tcp).is_ok() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        std::net::TcpStream::connect(tcp).is_err(),
        "tcp relay still listening"
    );
    assert_eq!(node.pid(), pid, "no restart");
}

#[test]
fn a_connector_to_two_nodes_keeps_heartbeats_flowing_when_one_goes_away() {
    let s = setup("", None);
    let dir_b = tempfile::tempdir().expect("tempdir");
    let cfg = std::fs::read_to_string(&s.node.config).expect("config");
    let node_b = Node::start(bin(), dir_b.path(), &cfg);
    let cfg = format!(
        "node = [\"{}\", \"{}\"]\nserver_name = \"{SERVER_NAME}\"\nnode_cert = {:?}\ninstance = \"a\"\nsecret = \"{SECRET}\"\nallow = [\"{}\", \"{}\"]\n",
        s.node.tunnel.expect("tunnel address"),
        node_b.tunnel.expect("tunnel address"),
        s.cert,
        s.hb,
        s.echo
    );
    let p = s.fx.path().join("connector.toml");
    std::fs::write(&p, cfg).expect("write");
    let _conn = Connector(
        Command::new(connector_bin())
            .args(["--config"])
            .arg(&p)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn connector"),
    );
    wait_connected(&s.node, 1);
    wait_connected(&node_b, 1);
    let agent = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let (relay_a, relay_b) = (s.node.relay("udp", "a", 0), node_b.relay("udp", "a", 0));
    // Each node's relay answers through its own tunnel.
    assert_eq!(ping(&agent, relay_a, "via-a").as_deref(), Some("ack:via-a"));
    assert_eq!(ping(&agent, relay_b, "via-b").as_deref(), Some("ack:via-b"));
    // Node A goes away: the tunnel to B carries on untouched.
    let Setup { node, .. } = s;
    drop(node);
    for i in 0..20 {
        let payload = format!("after-a-{i}");
        assert_eq!(
            ping(&agent, relay_b, &payload),
            Some(format!("ack:{payload}")),
            "heartbeat {i} through B"
        );
    }
    let health = node_b.admin_get("/healthz");
    assert!(
        health.contains(r#""a":{"connectors":1,"up":true}"#),
        "{health}"
    );
}
