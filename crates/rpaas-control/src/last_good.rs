//! What the store last read, for reads while the database cannot be reached (a fleet's
//! PostgreSQL down): the instances, and the API keys that were checked recently. Writes still
//! fail with 503; a key read from here is trusted for at most [`KEY_GRACE_MS`] after it was
//! last checked against the database, so a key revoked before the outage stops working soon.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::store::{now_ms, StoredInstance, StoredKey};

/// How long a key checked against the database is honoured while it is unreachable.
pub const KEY_GRACE_MS: i64 = 10 * 60_000;
/// Keys remembered at most.
const MAX_KEYS: usize = 10_000;

/// After the database was found unreachable, reads go straight to what was last read (and
/// writes fail at once) for this long before the database is tried again: a read while it
/// is down answers at once instead of after a connection timeout per query.
const DOWN_MS: i64 = 3_000;

#[derive(Debug, Default)]
struct Inner {
    instances: Option<Vec<StoredInstance>>,
    keys: HashMap<String, (StoredKey, i64)>,
    down_until: i64,
}

/// Shared by every clone of a [`crate::Store`].
#[derive(Debug, Clone, Default)]
pub struct LastGood(Arc<Mutex<Inner>>);

/// Whether `e` means "the database cannot be reached" (not a query's own failure).
pub fn unreachable(e: &crate::StoreError) -> bool {
    use sqlx::Error as E;
    match e {
        crate::StoreError::Unavailable(e) => matches!(
            e,
            E::PoolTimedOut
                | E::PoolClosed
                | E::Io(_)
                | E::Tls(_)
                | E::WorkerCrashed
                | E::Protocol(_)
        ),
        crate::StoreError::Open(_) => true,
        _ => false,
    }
}

impl LastGood {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g)
    }

    /// Notes the outcome of a query: an unreachable database opens a short window in which
    /// it is not asked again.
    pub fn saw(&self, e: &crate::StoreError) {
        if unreachable(e) {
            self.with(|i| i.down_until = now_ms() + DOWN_MS);
        }
    }

    /// The database was found unreachable moments ago.
    pub fn down(&self) -> bool {
        self.with(|i| now_ms() < i.down_until)
    }

    pub fn set_instances(&self, v: &[StoredInstance]) {
        self.with(|i| i.instances = Some(v.to_vec()));
    }

    pub fn instances(&self) -> Option<Vec<StoredInstance>> {
        self.with(|i| i.instances.clone())
    }

    pub fn instance(&self, id: &str) -> Option<Option<StoredInstance>> {
        self.with(|i| {
            i.instances
                .as_ref()
                .map(|l| l.iter().find(|s| s.id == id).cloned())
        })
    }

    pub fn set_key(&self, k: &StoredKey) {
        self.with(|i| {
            if i.keys.len() >= MAX_KEYS && !i.keys.contains_key(&k.prefix) {
                let cutoff = now_ms() - KEY_GRACE_MS;
                i.keys.retain(|_, (_, at)| *at >= cutoff);
                if i.keys.len() >= MAX_KEYS {
                    return;
                }
            }
            i.keys.insert(k.prefix.clone(), (k.clone(), now_ms()));
        });
    }

    pub fn key(&self, prefix: &str) -> Option<StoredKey> {
        self.with(|i| {
            i.keys
                .get(prefix)
                .filter(|(_, at)| now_ms() - at < KEY_GRACE_MS)
                .map(|(k, _)| k.clone())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreError;

    fn key(prefix: &str) -> StoredKey {
        StoredKey {
            id: "k1".into(),
            name: "ops".into(),
            scope: "operator".into(),
            partner: None,
            prefix: prefix.into(),
            hash: "h".into(),
            created: 0,
            expires: None,
            revoked: None,
            last_used: None,
        }
    }

    #[test]
    fn only_an_unreachable_database_counts_as_down() {
        assert!(unreachable(&StoreError::Unavailable(
            sqlx::Error::PoolTimedOut
        )));
        assert!(unreachable(&StoreError::Open("refused".into())));
        assert!(!unreachable(&StoreError::Unavailable(
            sqlx::Error::RowNotFound
        )));
        assert!(!unreachable(&StoreError::Conflict("x".into())));
        let l = LastGood::default();
        l.saw(&StoreError::Conflict("x".into()));
        assert!(!l.down());
        l.saw(&StoreError::Unavailable(sqlx::Error::PoolTimedOut));
        assert!(l.down());
    }

    #[test]
    fn a_key_is_honoured_only_within_its_grace_and_instances_as_last_read() {
        let l = LastGood::default();
        assert_eq!(l.key("rpk_abc"), None);
        l.set_key(&key("rpk_abc"));
        assert_eq!(l.key("rpk_abc").map(|k| k.id), Some("k1".into()));
        l.with(|i| {
            if let Some(e) = i.keys.get_mut("rpk_abc") {
                e.1 -= KEY_GRACE_MS + 1;
            }
        });
        assert_eq!(l.key("rpk_abc"), None, "a key checked too long ago");
        assert_eq!(l.instance("x"), None, "nothing read yet");
        l.set_instances(&[]);
        assert_eq!(l.instance("x"), Some(None), "read: no such instance");
    }
}
