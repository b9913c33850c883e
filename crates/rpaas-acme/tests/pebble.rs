//! The manager against a real ACME CA (Debian's pebble, challtestsrv as its DNS): every
//! challenge kind issues an ECDSA and an RSA certificate that verify against pebble's root; a
//! forced renewal and a due renewal swap in new ones; a failing challenge or hook backs off
//! with a clear error that survives a restart.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use openssl::pkey::{Id, PKey};
use openssl::ssl::{SslAcceptor, SslConnector, SslMethod, SslVerifyMode};
use openssl::x509::X509;
use rpaas_acme::{
    AcmeStore, CertName, CertSource, CertState, CertUpdate, ChallengeKind, Challenges, DirStore,
    PemPair,
};
use support::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

/// Checks both certificates of `u`: chain to `root`, key type, names, key matches.
fn check_pair(u: &CertUpdate, root: &X509, names: &[&str]) {
    for (pair, id) in [(&u.ecdsa, Id::EC), (&u.rsa, Id::RSA)] {
        let leaf = verify_chain(&pair.chain_pem, root);
        let public = leaf.public_key().expect("public key");
        assert_eq!(public.id(), id);
        if id == Id::RSA {
            assert_eq!(public.bits(), 2048);
        }
        let key = PKey::private_key_from_pem(pair.key_pem.as_bytes()).expect("key");
        assert!(public.public_eq(&key), "key does not match the leaf");
        assert_eq!(dns_sans(&leaf), names);
    }
    assert_eq!(u.hostnames, names);
}

/// A TLS handshake with `pair` served and a client that trusts only pebble's root and checks
/// the host name, as a browser would.
async fn handshake(pair: &PemPair, root: &X509, host: &str) {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).expect("acceptor");
    for c in X509::stack_from_pem(pair.chain_pem.as_bytes())
        .expect("chain")
        .into_iter()
        .enumerate()
    {
        match c {
            (0, leaf) => b.set_certificate(&leaf).expect("leaf"),
            (_, ca) => b.add_extra_chain_cert(ca).expect("chain"),
        }
    }
    b.set_private_key(&PKey::private_key_from_pem(pair.key_pem.as_bytes()).expect("key"))
        .expect("key");
    let acceptor = b.build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let ssl = openssl::ssl::Ssl::new(acceptor.context()).expect("ssl");
        let mut s = tokio_openssl::SslStream::new(ssl, tcp).expect("stream");
        let _ = std::pin::Pin::new(&mut s).accept().await;
    });
    let mut c = SslConnector::builder(SslMethod::tls_client()).expect("connector");
    let mut store = openssl::x509::store::X509StoreBuilder::new().expect("store");
    store.add_cert(root.clone()).expect("root");
    c.set_verify_cert_store(store.build()).expect("store");
    c.set_verify(SslVerifyMode::PEER);
    let ssl = c
        .build()
        .configure()
        .expect("cfg")
        .into_ssl(host)
        .expect("ssl");
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut s = tokio_openssl::SslStream::new(ssl, tcp).expect("stream");
    tokio::time::timeout(WAIT, std::pin::Pin::new(&mut s).connect())
        .await
        .expect("handshake in time")
        .expect("handshake verifies against pebble's root");
    let _ = server.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_alpn01_issues_a_pair_renews_when_forced_or_due_and_survives_a_restart() {
    let challenges = Challenges::new();
    let alpn = AlpnResponder::start(challenges.clone()).await;
    let pebble = Pebble::start(alpn.addr.port(), free_port());
    let root = pebble.root();
    let store_dir = tempfile::tempdir().expect("tempdir");
    let names = ["a.rpaas.test", "www.a.rpaas.test"];
    let name = CertName::new("a").unwrap();

    let (m, mut rx) = manager(
        pebble.config(ChallengeKind::TlsAlpn01),
        store_dir.path(),
        challenges.clone(),
        "node1",
    );
    m.set_subjects(vec![subject("a", &names)]);
    assert_eq!(m.status(&name).unwrap().state, CertState::Pending);
    let task = m.start();
    let first = next_update(&mut rx).await;
    check_pair(&first, &root, &names);
    handshake(&first.ecdsa, &root, "www.a.rpaas.test").await;
    handshake(&first.rsa, &root, "a.rpaas.test").await;
    let st = wait_status(&m, "a", |s| s.state == CertState::Valid).await;
    assert_eq!(st.source, CertSource::Acme);
    assert_eq!(st.not_after, Some(first.not_after));
    assert_eq!(st.last_error, None);
    // pebble issues for 200 days here; renewal is due 30 days before the end.
    let renew_at = st.next_attempt.expect("renewal time");
    assert_eq!(renew_at, first.not_after - 30 * 24 * 3600);
    assert!(first.not_after > now_secs() + 190 * 24 * 3600);
    for h in names {
        assert!(challenges.tls_alpn01(h).is_none(), "challenge left behind");
    }

    // Forced renewal: a new pair, and `current` follows.
    assert!(m.force_renew(&name));
    assert!(!m.force_renew(&CertName::new("nobody").unwrap()));
    let forced = next_update(&mut rx).await;
    check_pair(&forced, &root, &names);
    assert_ne!(forced.ecdsa.chain_pem, first.ecdsa.chain_pem);
    assert_ne!(forced.rsa.chain_pem, first.rsa.chain_pem);
    assert_ne!(forced.ecdsa.key_pem, first.ecdsa.key_pem);
    assert_eq!(m.current(&name).as_deref(), Some(&forced));
    m.shutdown();
    tokio::time::timeout(WAIT, task)
        .await
        .expect("stops in time")
        .expect("task");

    // Restart on the same store: the stored pair is served at once, nothing is ordered.
    let (m2, mut rx2) = manager(
        pebble.config(ChallengeKind::TlsAlpn01),
        store_dir.path(),
        challenges.clone(),
        "node1",
    );
    m2.set_subjects(vec![subject("a", &names)]);
    let task2 = m2.start();
    assert_eq!(next_update(&mut rx2).await, forced);
    let st = wait_status(&m2, "a", |s| s.state == CertState::Valid).await;
    assert_eq!(st.not_after, Some(forced.not_after));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        rx2.try_recv().is_err(),
        "a valid stored pair was re-ordered"
    );
    m2.shutdown();
    let _ = tokio::time::timeout(WAIT, task2).await;

    // With renew_before longer than what is left, the stored pair is due: it is renewed.
    let mut cfg = pebble.config(ChallengeKind::TlsAlpn01);
    cfg.renew_before = Duration::from_secs(300 * 24 * 3600).into();
    let (m3, mut rx3) = manager(cfg, store_dir.path(), challenges.clone(), "node1");
    m3.set_subjects(vec![subject("a", &names)]);
    let _task3 = m3.start();
    assert_eq!(next_update(&mut rx3).await, forced, "served until replaced");
    let renewed = next_update(&mut rx3).await;
    check_pair(&renewed, &root, &names);
    assert_ne!(renewed.ecdsa.chain_pem, forced.ecdsa.chain_pem);
    m3.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http01_issues_a_pair() {
    let challenges = Challenges::new();
    let http = start_http_responder(challenges.clone(), false).await;
    let pebble = Pebble::start(free_port(), http.port());
    let store_dir = tempfile::tempdir().expect("tempdir");
    let (m, mut rx) = manager(
        pebble.config(ChallengeKind::Http01),
        store_dir.path(),
        challenges.clone(),
        "node1",
    );
    m.set_subjects(vec![subject("h", &["h.rpaas.test"])]);
    let _task = m.start();
    let u = next_update(&mut rx).await;
    check_pair(&u, &pebble.root(), &["h.rpaas.test"]);
    wait_status(&m, "h", |s| s.state == CertState::Valid).await;
    m.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns01_issues_a_wildcard_pair_through_the_hook() {
    let pebble = Pebble::start(free_port(), free_port());
    let mut cfg = pebble.config(ChallengeKind::Dns01);
    cfg.dns_hook = Some(pebble.dns_hook(false));
    cfg.wildcard = true;
    let store_dir = tempfile::tempdir().expect("tempdir");
    let (m, mut rx) = manager(cfg, store_dir.path(), Challenges::new(), "node1");
    let wildcard = rpaas_acme::Subject::wildcard("rpaas.test").unwrap();
    assert!(wildcard.covers("052d3c3287c38201.rpaas.test"));
    m.set_subjects(vec![wildcard]);
    let _task = m.start();
    let u = next_update(&mut rx).await;
    assert_eq!(u.name.as_str(), "wildcard.rpaas.test");
    check_pair(&u, &pebble.root(), &["*.rpaas.test"]);
    m.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_challenge_backs_off_with_the_cas_reason_across_a_restart() {
    let challenges = Challenges::new();
    let alpn = AlpnResponder::start(challenges.clone()).await;
    alpn.sabotage.store(true, Ordering::SeqCst);
    let pebble = Pebble::start(alpn.addr.port(), free_port());
    let store_dir = tempfile::tempdir().expect("tempdir");
    let (m, _rx) = manager(
        pebble.config(ChallengeKind::TlsAlpn01),
        store_dir.path(),
        challenges.clone(),
        "node1",
    );
    m.set_subjects(vec![subject("bad", &["bad.rpaas.test"])]);
    let task = m.start();
    let st = wait_status(&m, "bad", |s| s.state == CertState::Failed).await;
    let err = st.last_error.clone().expect("last_error");
    eprintln!("last_error: {err}");
    assert!(
        err.starts_with("tls-alpn-01 challenge for bad.rpaas.test failed: "),
        "{err}"
    );
    assert!(err.ends_with("(unauthorized)"), "{err}");
    let next = st.next_attempt.expect("next_attempt");
    let now = now_secs();
    assert!(
        next > now + 30 && next <= now + 61,
        "backoff of about a minute: {next} vs {now}"
    );
    assert_eq!(st.not_after, None);
    assert!(challenges.tls_alpn01("bad.rpaas.test").is_none());
    m.shutdown();
    let _ = tokio::time::timeout(WAIT, task).await;

    // A restart keeps the failure and its backoff: no new attempt before next_attempt.
    let (m2, _rx2) = manager(
        pebble.config(ChallengeKind::TlsAlpn01),
        store_dir.path(),
        challenges.clone(),
        "node1",
    );
    m2.set_subjects(vec![subject("bad", &["bad.rpaas.test"])]);
    let _task2 = m2.start();
    let st2 = wait_status(&m2, "bad", |s| s.last_error.is_some()).await;
    assert_eq!(st2.state, CertState::Failed);
    assert_eq!(st2.last_error.as_deref(), Some(err.as_str()));
    assert_eq!(st2.next_attempt, Some(next));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let store = DirStore::open(store_dir.path()).unwrap();
    let state = store
        .issue_state(&CertName::new("bad").unwrap())
        .await
        .unwrap()
        .expect("state");
    assert_eq!(state.failures, 1, "retried during the backoff");
    m2.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_dns_hook_is_reported_with_its_stderr() {
    let pebble = Pebble::start(free_port(), free_port());
    let mut cfg = pebble.config(ChallengeKind::Dns01);
    cfg.dns_hook = Some(pebble.dns_hook(true));
    let store_dir = tempfile::tempdir().expect("tempdir");
    let (m, _rx) = manager(cfg, store_dir.path(), Challenges::new(), "n");
    m.set_subjects(vec![subject("d", &["d.rpaas.test"])]);
    let _task = m.start();
    let st = wait_status(&m, "d", |s| s.state == CertState::Failed).await;
    assert_eq!(
        st.last_error.as_deref(),
        Some(
            "dns hook `add _acme-challenge.d.rpaas.test` failed: exit status 1: \
             zone for _acme-challenge.d.rpaas.test is not managed here"
        )
    );
    assert!(st.next_attempt.is_some_and(|t| t > now_secs()));
    m.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_issues_once_answers_from_any_node_and_serves_the_same_pair() {
    // Two issuing nodes share one store; the CA's HTTP-01 requests go to a third node that
    // placed nothing itself and answers from the store.
    let store_dir = tempfile::tempdir().expect("tempdir");
    let shared_store: Arc<dyn AcmeStore> = Arc::new(DirStore::open(store_dir.path()).unwrap());
    let answering = Challenges::shared(shared_store);
    let http = start_http_responder(answering, true).await;
    let pebble = Pebble::start(free_port(), http.port());
    let fleet_options = |node: &str| rpaas_acme::Options {
        lock_retry: Duration::from_secs(1),
        ..options(node)
    };
    let subjects = || vec![subject("f", &["f.rpaas.test"])];
    let (m1, mut rx1) = manager_with(
        pebble.config(ChallengeKind::Http01),
        store_dir.path(),
        Challenges::new(),
        fleet_options("node1"),
    );
    let (m2, mut rx2) = manager_with(
        pebble.config(ChallengeKind::Http01),
        store_dir.path(),
        Challenges::new(),
        fleet_options("node2"),
    );
    m1.set_subjects(subjects());
    m2.set_subjects(subjects());
    let _t1 = m1.start();
    let _t2 = m2.start();
    let u1 = next_update(&mut rx1).await;
    let u2 = next_update(&mut rx2).await;
    assert_eq!(u1, u2, "both nodes serve the one pair issued");
    check_pair(&u1, &pebble.root(), &["f.rpaas.test"]);
    for m in [&m1, &m2] {
        let st = wait_status(m, "f", |s| s.state == CertState::Valid).await;
        assert_eq!(st.last_error, None);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        rx1.try_recv().is_err() && rx2.try_recv().is_err(),
        "issued twice"
    );
    m1.shutdown();
    m2.shutdown();
}
