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
