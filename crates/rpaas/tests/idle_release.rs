//! An idle keep-alive connection has its buffers released after 5 s (OpenSSL's record
//! buffers, the buffers under TLS, the gathered writes: docs/node.md) and still serves its
//! next request, as an agent's connection does between check-ins.

mod common;

use std::io::{BufReader, Write};
use std::time::Duration;

use common::*;

#[test]
fn a_connection_serves_again_after_idling_past_the_release() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let node = Node::start(bin(), fx.path(), &fx.two_instances(up.addr, ""));
    let conn = client::connect(node.listeners[0], &fx.tls(HOST_A)).expect("connect");
    let mut r = BufReader::new(conn);
    let mut bodies = Vec::new();
    for round in 0..3 {
        write!(
            r.get_mut(),
            "GET /LabTech/Agent.aspx HTTP/1.1\r\nHost: {HOST_A}\r\n\r\n"
        )
        .expect("write");
        let resp = client::read_response(&mut r, false).expect("response");
        assert_eq!(resp.status, 200, "round {round}: {}", resp.text());
        bodies.push(resp.body);
        // Past the 5 s release (bounded: two waits).
        if round < 2 {
            std::thread::sleep(Duration::from_millis(6500));
        }
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "same answer each time"
    );
    // A request body after the release: the buffers under TLS come back for reading too.
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
