//! The control store as the ACME state of a fleet, on both backends (a SQLite file and a
//! throwaway cluster of Debian's PostgreSQL): what one node writes another reads; the issuer
//! lease has one holder at a time, is re-entrant for its holder, frees itself when it runs out
//! and is released only by its holder; challenge responses past their expiry are not served;
//! a shared secret is the first node's for every node.

use std::sync::Arc;
use std::time::Duration;

use rpaas_acme::store::{AcmeStore, CertName, ChallengeRecord, ChallengeSlot, KeyKind};
use rpaas_acme::{IssueState, StoredCert};
use rpaas_control::Store;
use test_support::postgres::Postgres;

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn contract(url: &str) {
    // Two handles on one database: two nodes.
    let a: Arc<dyn AcmeStore> = Arc::new(Store::open(url).await.expect("open a"));
    let b: Arc<dyn AcmeStore> = Arc::new(Store::open(url).await.expect("open b"));
    let dir = "https://ca.test/dir";
    assert_eq!(a.account(dir).await.expect("account"), None);
    a.put_account(dir, r#"{"id":"1"}"#).await.expect("put");
    a.put_account(dir, r#"{"id":"2"}"#).await.expect("replace");
    assert_eq!(
        b.account(dir).await.expect("account").as_deref(),
        Some(r#"{"id":"2"}"#)
    );

    let name = CertName::new("052d3c3287c38201").expect("name");
    let cert = StoredCert {
        chain_pem: "-----BEGIN CERTIFICATE-----\n...".into(),
        key_pem: "-----BEGIN PRIVATE KEY-----\n...".into(),
        not_after: 2_000_000_000,
        not_before: 1_900_000_000,
        names: vec!["052d3c3287c38201.rpaas.test".into()],
    };
    assert_eq!(a.cert(&name, KeyKind::Ecdsa).await.expect("cert"), None);
    a.put_cert(&name, KeyKind::Ecdsa, &cert).await.expect("put");
    assert_eq!(
        b.cert(&name, KeyKind::Ecdsa).await.expect("cert"),
        Some(cert.clone())
    );
    assert_eq!(b.cert(&name, KeyKind::Rsa).await.expect("cert"), None);

    let state = IssueState {
        failures: 2,
        last_error: Some("rate limited by the CA".into()),
        last_attempt: Some(10),
        next_attempt: Some(20),
    };
    a.put_issue_state(&name, &state).await.expect("put");
    assert_eq!(b.issue_state(&name).await.expect("state"), Some(state));

    // A challenge placed by one node is answered by the other until it expires.
    let rec = ChallengeRecord {
        slot: ChallengeSlot::TlsAlpn01,
        key: "052d3c3287c38201.rpaas.test".into(),
        key_authorization: "token.thumbprint".into(),
        expires: now_secs() + 300,
    };
    a.put_challenge(&rec).await.expect("put");
    assert_eq!(
        b.challenge(ChallengeSlot::TlsAlpn01, &rec.key)
            .await
            .expect("challenge"),
        Some(rec.clone())
    );
    assert_eq!(
        b.challenge(ChallengeSlot::Http01, &rec.key)
            .await
            .expect("challenge"),
        None,
        "slots are separate"
    );
    let old = ChallengeRecord {
        key: "token-that-ran-out".into(),
        slot: ChallengeSlot::Http01,
        expires: now_secs().saturating_sub(5),
        ..rec.clone()
    };
    a.put_challenge(&old).await.expect("put");
    assert_eq!(
        b.challenge(ChallengeSlot::Http01, &old.key)
            .await
            .expect("challenge"),
        None
    );
    b.delete_challenge(ChallengeSlot::TlsAlpn01, &rec.key)
        .await
        .expect("delete");
    assert_eq!(
        a.challenge(ChallengeSlot::TlsAlpn01, &rec.key)
            .await
            .expect("challenge"),
        None
    );

    // The issuer lease: one holder; re-entrant; not released by another; frees itself.
    let ttl = Duration::from_secs(60);
    assert!(a.try_lock(&name, "node-a", ttl).await.expect("lock"));
    assert!(!b.try_lock(&name, "node-b", ttl).await.expect("lock"));
    assert!(a.try_lock(&name, "node-a", ttl).await.expect("again"));
    b.unlock(&name, "node-b").await.expect("unlock by another");
    assert!(!b.try_lock(&name, "node-b", ttl).await.expect("still held"));
    a.unlock(&name, "node-a").await.expect("unlock");
    assert!(b.try_lock(&name, "node-b", ttl).await.expect("free now"));
    let short = CertName::new("short").expect("name");
    assert!(a
        .try_lock(&short, "node-a", Duration::from_millis(200))
        .await
        .expect("lock"));
    assert!(!b.try_lock(&short, "node-b", ttl).await.expect("held"));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        b.try_lock(&short, "node-b", ttl).await.expect("expired"),
        "a lease whose holder died frees itself"
    );

    // Many nodes racing for one free name: exactly one wins.
    let race = CertName::new("race").expect("name");
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        let race = race.clone();
        tasks.push(tokio::spawn(async move {
            s.try_lock(&race, &format!("node-{i}"), ttl)
                .await
                .expect("lock")
        }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.expect("task"));
    }
    assert_eq!(winners, 1);

    // The fleet's TLS ticket secret: the first node's stays, every other reads it.
    let s1 = Store::open(url).await.expect("open");
    let s2 = Store::open(url).await.expect("open");
    let first = s1.shared_secret("tls_tickets", "aa").await.expect("secret");
    assert_eq!(first, "aa");
    assert_eq!(
        s2.shared_secret("tls_tickets", "bb").await.expect("secret"),
        "aa"
    );
    assert_eq!(s2.shared_secret("other", "cc").await.expect("secret"), "cc");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_state_in_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    contract(&format!(
        "sqlite:{}",
        dir.path().join("control.db").display()
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_state_in_postgresql() {
    let pg = tokio::task::spawn_blocking(Postgres::start)
        .await
        .expect("postgres");
    contract(&pg.url).await;
}
