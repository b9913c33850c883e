//! The store against a real SQLite file.
use super::*;

#[tokio::test]
async fn trim_keeps_audit_rows_for_their_own_retention() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&format!("sqlite:{}", dir.path().join("t.db").display()))
        .await
        .expect("open");
    let actor = Actor {
        name: "ops".into(),
        source_ip: "127.0.0.1".into(),
    };
    store
        .audit_event(&actor, "partner.create", Some("p1"), None)
        .await
        .expect("audit");
    let now = now_ms();
    // Refusals and traffic trimmed up to now; audit rows kept (older than a year only).
    store
        .trim(now + 1, 1000, now - 365 * 86_400_000)
        .await
        .expect("trim");
    assert_eq!(store.audit(None, None, 10).await.expect("audit").len(), 1);
    store.trim(now + 1, 1000, now + 1).await.expect("trim");
    assert!(store.audit(None, None, 10).await.expect("audit").is_empty());
}
