//! Slow clients: a request head trickled in (slowloris) is cut off after `header_timeout`,
//! while other clients keep being served.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;

#[test]
fn slow_request_head_is_cut_off_and_others_are_served() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let cfg = fx.two_instances(up.addr, "").replace(
        "drain_timeout = \"3s\"",
        "drain_timeout = \"3s\"\nheader_timeout = \"2s\"",
    );
    let node = Node::start(bin(), fx.path(), &cfg);
    let addr = node.listeners[0];

    let mut slow = client::connect(addr, &fx.tls(HOST_A)).expect("connect");
    slow.write_all(format!("GET /automate/ HTTP/1.1\r\nHost: {HOST_A}\r\n").as_bytes())
        .expect("start head");
    let started = Instant::now();
    let mut cut_off = None;
    for i in 0..40 {
        std::thread::sleep(Duration::from_millis(250));
        // Other clients are served meanwhile.
        if i % 4 == 0 {
            let r = client::get(addr, &fx.tls(HOST_A), HOST_A, "/automate/", "")
                .expect("normal client");
            assert_eq!(r.status, 200);
        }
        if slow
            .write_all(format!("X-Slow-{i}: a\r\n").as_bytes())
            .is_err()
        {
            cut_off = Some(started.elapsed());
            break;
        }
        let _ = slow
            .get_mut()
            .set_read_timeout(Some(Duration::from_millis(10)));
        let mut b = [0u8; 1];
        if let Ok(0) = slow.read(&mut b) {
            cut_off = Some(started.elapsed());
            break;
        }
    }
    let t = cut_off.expect("the slow client was never cut off");
    assert!(
        t >= Duration::from_millis(1500) && t < Duration::from_secs(6),
        "cut off after {t:?}"
    );
    assert!(up
        .seen_path("/automate/")
        .iter()
        .all(|s| s.header("x-slow-0").is_none()));
}

/// Reads until the node closes the connection; the time it took, or None within `limit`.
fn closed_within(conn: &mut client::Conn, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let _ = conn
        .get_mut()
        .set_read_timeout(Some(Duration::from_millis(200)));
    let mut b = [0u8; 64];
    while started.elapsed() < limit {
        match conn.read(&mut b) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(started.elapsed()),
        }
    }
    None
}

fn gauge(node: &Node, name: &str) -> i64 {
    let m = node.admin_get("/metrics");
    m.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {m}"))
}

/// Between requests an HTTP/1 connection is parked outside any HTTP session (what an idle
/// agent costs): the node counts it, serves the next request from the byte that woke it, and
/// closes it after `keepalive_timeout`; a connection that never sends a request is closed
/// after `header_timeout`, and a parked one at once on shutdown.
#[test]
fn parked_connections_serve_on_and_time_out() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let cfg = fx.two_instances(up.addr, "").replace(
        "drain_timeout = \"3s\"",
        "drain_timeout = \"3s\"\nheader_timeout = \"2s\"\nkeepalive_timeout = \"3s\"",
    );
    let mut node = Node::start(bin(), fx.path(), &cfg);
    let addr = node.listeners[0];
    let request = format!("GET /LabTech/Agent.aspx HTTP/1.1\r\nHost: {HOST_A}\r\n\r\n");

    // Never used: parked under the head deadline.
    let mut unused = client::connect(addr, &fx.tls(HOST_A)).expect("connect");
    let t = closed_within(&mut unused, Duration::from_secs(8)).expect("never closed");
    assert!(t >= Duration::from_millis(1500), "closed after {t:?}");

    let mut r = std::io::BufReader::new(client::connect(addr, &fx.tls(HOST_A)).expect("connect"));
    for i in 0..5 {
        // Requests written byte by byte and whole: the byte that ends the park is the head's
        // first, handed to the session with the rest.
        if i % 2 == 0 {
            r.get_mut().write_all(request.as_bytes()).expect("write");
        } else {
            for b in request.as_bytes() {
                r.get_mut().write_all(&[*b]).expect("write");
                r.get_mut().flush().expect("flush");
            }
        }
        let resp = client::read_response(&mut r, false).expect("response");
        assert_eq!(resp.status, 200, "{}", resp.text());
        std::thread::sleep(Duration::from_millis(1200));
        assert_eq!(
            gauge(&node, "rpaas_idle_connections"),
            1,
            "parked after {i}"
        );
    }
    let t = closed_within(r.get_mut(), Duration::from_secs(10)).expect("keep-alive not applied");
    assert!(
        t >= Duration::from_millis(1500) && t < Duration::from_secs(6),
        "closed after {t:?} of idling (+1.2 s before)"
    );
    assert_eq!(gauge(&node, "rpaas_idle_connections"), 0);
    let seen = up.seen_path("/LabTech/Agent.aspx");
    assert_eq!(seen.len(), 5, "every request reached the origin once");

    // Shutdown closes a parked connection at once, not at the end of the drain.
    let mut r = std::io::BufReader::new(client::connect(addr, &fx.tls(HOST_A)).expect("connect"));
    r.get_mut().write_all(request.as_bytes()).expect("write");
    let resp = client::read_response(&mut r, false).expect("response");
    assert_eq!(resp.status, 200);
    let started = Instant::now();
    node.signal(libc::SIGTERM);
    let t = closed_within(r.get_mut(), Duration::from_secs(3)).expect("not closed on shutdown");
    assert!(t < Duration::from_secs(2), "closed after {t:?}");
    assert!(node.wait_exit(Duration::from_secs(5)).is_some());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "drain waited for it"
    );
}
