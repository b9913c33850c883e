//! An idle keep-alive connection has its buffers released after 5 s idle (the read buffer
//! under TLS and the gathered writes: docs/node.md), the node says so, and the connection
//! still serves its next request, as an agent's connection does between check-ins.

mod common;

use std::io::{BufReader, Write};
use std::time::Duration;

use common::*;

#[test]
fn a_connection_serves_again_after_idling_past_the_release() {
    // The node reports its releases at debug level (the only test in this binary: no other
    // thread reads the environment meanwhile).
    std::env::set_var("RPAAS_TEST_NODE_LOG", "info,rpaas::idle=debug");
    let up = Upstream::start();
    let fx = Fixture::new();
    let node = Node::start(bin(), fx.path(), &fx.two_instances(up.addr, ""));
    let conn = client::connect(node.listeners[0], &fx.tls(HOST_A)).expect("connect");
    let mut r = BufReader::new(conn);
    let get = |r: &mut BufReader<client::Conn>| {
        write!(
            r.get_mut(),
            "GET /LabTech/Agent.aspx HTTP/1.1\r\nHost: {HOST_A}\r\n\r\n"
        )
        .expect("write");
        let resp = client::read_response(r, false).expect("response");
        assert_eq!(resp.status, 200, "{}", resp.text());
        resp.body
    };
    let first = get(&mut r);
    // Released between 5 and 10 s after the last byte (the timer is re-armed lazily), and
    // reported at the next 5 s trim: bounded at 25 s.
    let released = node
        .wait_log(Duration::from_secs(25), |v| {
            v["message"] == "idle connections released their buffers"
                && v["released"].as_u64().is_some_and(|n| n >= 1)
        })
        .is_some();
    assert!(released, "the idle connection released its buffers");
    // The same connection serves on: the buffers come back for reading and writing.
    assert_eq!(get(&mut r), first, "same answer after the release");
    let body = "x".repeat(3000);
    write!(
        r.get_mut(),
        "POST /LabTech/Agent.aspx HTTP/1.1\r\nHost: {HOST_A}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let resp = client::read_response(&mut r, false).expect("response");
    assert_eq!(resp.status, 200, "{}", resp.text());
}
