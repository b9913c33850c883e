//! Large bodies stream through the node in both directions without being held in memory.

mod common;

use std::io::{BufReader, Read, Write};
use std::time::Duration;

use common::*;

const GIB: u64 = 1 << 30;
/// The node's peak RSS must stay under this while 1 GiB goes each way.
const PEAK_LIMIT_KIB: u64 = 64 * 1024;

#[test]
fn one_gib_each_way_with_bounded_memory() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let node = Node::start(bin(), fx.path(), &fx.two_instances(up.addr, ""));
    let addr = node.listeners[0];

    // Download.
    let mut c = client::connect(addr, &fx.tls(HOST_A)).expect("connect");
    c.get_mut()
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    write!(
        c,
        "GET /big?bytes={GIB} HTTP/1.1\r\nHost: {HOST_A}\r\nConnection: close\r\n\r\n"
    )
    .expect("req");
    let mut rd = BufReader::with_capacity(1 << 16, c);
    let mut head = String::new();
    loop {
        let mut l = String::new();
        std::io::BufRead::read_line(&mut rd, &mut l).expect("head");
        if l == "\r\n" || l.is_empty() {
            break;
        }
        head.push_str(&l);
    }
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = rd.read(&mut buf).expect("body");
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    assert_eq!(total, GIB);

    // Upload.
    let mut c = client::connect(addr, &fx.tls(HOST_A)).expect("connect");
    c.get_mut()
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    write!(c, "POST /upload HTTP/1.1\r\nHost: {HOST_A}\r\nContent-Length: {GIB}\r\nConnection: close\r\n\r\n").expect("req");
    let chunk = vec![b'u'; 1 << 16];
    let mut sent = 0u64;
    while sent < GIB {
        c.write_all(&chunk).expect("upload");
        sent += chunk.len() as u64;
    }
    let mut rd = BufReader::new(c);
    let r = client::read_response(&mut rd, false).expect("response");
    assert_eq!(r.status, 404); // the stand-in has no /upload page, but it read every byte
    let seen = up.seen_path("/upload");
    assert_eq!(seen[0].body_len, GIB);

    let peak = node.peak_rss_kib();
    eprintln!("rpaas peak RSS after 2 GiB through: {} MiB", peak / 1024);
    assert!(peak > 0 && peak < PEAK_LIMIT_KIB, "peak RSS {peak} KiB");
}
