//! TLS session resumption on a real node: a session resumes on the instance it was made for
//! (TLS 1.3 tickets, TLS 1.2 tickets, TLS 1.2 session ids), never on another instance of the
//! same listener, and with `node.data_dir` a ticket still resumes after a restart.
// Offering a kept session is `unsafe` in the openssl bindings (`SslRef::set_session`).
#![allow(unsafe_code)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::*;
use openssl::ssl::{SslConnector, SslMethod, SslOptions, SslSession, SslVersion};

#[derive(Clone, Copy, Debug)]
enum Client {
    Tls13,
    Tls12Tickets,
    Tls12SessionId,
}

struct Done {
    resumed: bool,
    session: SslSession,
    /// The DNS names of the certificate the node presented (none when resumed).
    leaf: Vec<String>,
}

/// One request over a fresh connection offering `session`; the response is read to the end so
/// the TLS 1.3 tickets have arrived.
fn request(
    fx: &Fixture,
    addr: SocketAddr,
    client: Client,
    host: &str,
    session: Option<&SslSession>,
) -> Done {
    let mut b = SslConnector::builder(SslMethod::tls_client()).expect("connector");
    b.set_ca_file(&fx.ca_file).expect("ca");
    match client {
        Client::Tls13 => b.set_min_proto_version(Some(SslVersion::TLS1_3)),
        Client::Tls12Tickets => b.set_max_proto_version(Some(SslVersion::TLS1_2)),
        Client::Tls12SessionId => {
            b.set_options(SslOptions::NO_TICKET);
            b.set_max_proto_version(Some(SslVersion::TLS1_2))
        }
    }
    .expect("version");
    let mut ssl = b
        .build()
        .configure()
        .expect("configure")
        .into_ssl(host)
        .expect("ssl");
    if let Some(s) = session {
        // SAFETY: a session this test got from the same kind of connector.
        unsafe { ssl.set_session(s).expect("set_session") };
    }
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(20))).ok();
    let mut tls = openssl::ssl::SslStream::new(ssl, tcp).expect("stream");
    tls.connect().expect("handshake");
    let leaf = tls
        .ssl()
        .peer_certificate()
        .and_then(|c| c.subject_alt_names())
        .map(|l| {
            l.iter()
                .filter_map(|n| n.dnsname().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    write!(
        tls,
        "GET /LabTech/Agent.aspx HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut body = Vec::new();
    let _ = tls.read_to_end(&mut body);
    assert!(
        body.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let done = Done {
        resumed: tls.ssl().session_reused(),
        session: tls.ssl().session().expect("session").to_owned(),
        leaf,
    };
    // A client that ends without close_notify marks its session not resumable (OpenSSL).
    let _ = tls.shutdown();
    done
}

#[test]
fn sessions_resume_on_their_own_instance_only() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let node = Node::start(bin(), fx.path(), &fx.two_instances(up.addr, ""));
    let addr = node.listeners[0];
    for client in [Client::Tls13, Client::Tls12Tickets, Client::Tls12SessionId] {
        let first = request(&fx, addr, client, HOST_A, None);
        assert!(!first.resumed);
        assert_eq!(first.leaf, vec![HOST_A.to_string()]);
        let again = request(&fx, addr, client, HOST_A, Some(&first.session));
        assert!(again.resumed, "{client:?}: A's session resumes on A");
        let other = request(&fx, addr, client, HOST_B, Some(&again.session));
        assert!(
            !other.resumed,
            "{client:?}: A's session must not resume on B"
        );
        assert_eq!(
            other.leaf,
            vec![HOST_B.to_string()],
            "{client:?}: B's own certificate, in a full handshake"
        );
    }
    let metrics = node.admin_get("/metrics");
    for v in ["TLSv1.3", "TLSv1.2"] {
        assert!(
            metrics.contains(&format!(
                "rpaas_tls_resumptions_total{{profile=\"intermediate\",version=\"{v}\"}}"
            )),
            "{metrics}"
        );
    }
}

#[test]
fn tickets_survive_a_restart_with_a_data_dir() {
    let up = Upstream::start();
    let fx = Fixture::new();
    let data = fx.path().join("state");
    let config = fx.two_instances(up.addr, "").replacen(
        "[node]\n",
        &format!("[node]\ndata_dir = {data:?}\n"),
        1,
    );
    let node = Node::start(bin(), fx.path(), &config);
    let first = request(&fx, node.listeners[0], Client::Tls13, HOST_A, None);
    drop(node);
    let node = Node::start(bin(), fx.path(), &config);
    let again = request(
        &fx,
        node.listeners[0],
        Client::Tls13,
        HOST_A,
        Some(&first.session),
    );
    assert!(again.resumed, "the ticket keys come from node.data_dir");
    assert!(data.join("tls-ticket-secret").exists());
}
