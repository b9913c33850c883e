//! The background task that keeps every subject's certificate pair issued and renewed.
//!
//! One loop, one order at a time: for each subject it reads the store (what this or another
//! node issued, the failure state), asks [`plan::decide`](crate::plan::decide) what to do, and
//! runs the orders that are due under the subject's issuer lock. A complete pair (ECDSA and
//! RSA) is handed to the caller's callback whenever it changes, so the node can swap it in.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use instant_acme::{Account, AccountCredentials, NewAccount};
use tokio::sync::Notify;

use crate::challenge::Challenges;
use crate::config::{AcmeConfig, ChallengeKind};
use crate::dns::DnsHook;
use crate::error::AcmeError;
use crate::order::OrderCtx;
use crate::plan::{self, Backoff, Decision};
use crate::status::{acme_status, CertStatus};
use crate::store::{AcmeStore, CertName, IssueState, KeyKind, StoredCert};
use crate::subject::Subject;

/// A chain (leaf first) and its private key, PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct PemPair {
    pub chain_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for PemPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PemPair").finish_non_exhaustive()
    }
}

/// A subject's current pair, as given to the callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertUpdate {
    pub name: CertName,
    pub hostnames: Vec<String>,
    pub ecdsa: PemPair,
    pub rsa: PemPair,
    /// The earlier of the two `notAfter`s, seconds since the epoch.
    pub not_after: u64,
}

/// Called from the manager's task for every new or changed pair; must not block.
pub type UpdateSink = Arc<dyn Fn(&CertUpdate) + Send + Sync>;

/// Knobs with defaults that suit a CA in production; tests shorten them.
#[derive(Debug, Clone)]
pub struct Options {
    /// Who holds issuer locks (unique per node).
    pub node_id: String,
    pub backoff: Backoff,
    /// The longest one order (both key types) may take.
    pub order_timeout: Duration,
    /// The longest the CA may take to validate or to issue.
    pub poll_timeout: Duration,
    /// How often the store is read for certificates issued by other nodes.
    pub sync_interval: Duration,
    /// An issuer lock left by a crashed node frees itself after this.
    pub lock_ttl: Duration,
    /// When another node holds the lock, look again after this.
    pub lock_retry: Duration,
}

impl Default for Options {
    fn default() -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "node".into());
        Self {
            node_id: format!("{host}:{}", std::process::id()),
            backoff: Backoff::default(),
            order_timeout: Duration::from_secs(600),
            poll_timeout: Duration::from_secs(120),
            sync_interval: Duration::from_secs(300),
            lock_ttl: Duration::from_secs(900),
            lock_retry: Duration::from_secs(60),
        }
    }
}

struct Entry {
    subject: Subject,
    certs: BTreeMap<KeyKind, StoredCert>,
    state: IssueState,
    forced: bool,
    busy: bool,
    synced: Option<Instant>,
    /// Another node holds the lock: nothing before this.
    lock_wait: Option<u64>,
}

impl Entry {
    fn new(subject: Subject) -> Self {
        Self {
            subject,
            certs: BTreeMap::new(),
            state: IssueState::default(),
            forced: false,
            busy: false,
            synced: None,
            lock_wait: None,
        }
    }

    fn decide(&self, now: u64, renew_before: Duration) -> Decision {
        let certs: Vec<(KeyKind, Option<&StoredCert>)> = KeyKind::ALL
            .iter()
            .map(|k| (*k, self.certs.get(k)))
            .collect();
        plan::decide(
            now,
            &self.subject.hostnames,
            &certs,
            &self.state,
            renew_before,
            self.forced,
        )
    }

    /// The pair to serve: both key types present, for the current names.
    fn update(&self) -> Option<CertUpdate> {
        let e = self.certs.get(&KeyKind::Ecdsa)?;
        let r = self.certs.get(&KeyKind::Rsa)?;
        if e.names != self.subject.hostnames || r.names != self.subject.hostnames {
            return None;
        }
        Some(CertUpdate {
            name: self.subject.name.clone(),
            hostnames: self.subject.hostnames.clone(),
            ecdsa: PemPair {
                chain_pem: e.chain_pem.clone(),
                key_pem: e.key_pem.clone(),
            },
            rsa: PemPair {
                chain_pem: r.chain_pem.clone(),
                key_pem: r.key_pem.clone(),
            },
            not_after: e.not_after.min(r.not_after),
        })
    }
}

struct Inner {
    config: AcmeConfig,
    store: Arc<dyn AcmeStore>,
    challenges: Arc<Challenges>,
    dns: Option<DnsHook>,
    on_update: UpdateSink,
    options: Options,
    entries: Mutex<BTreeMap<CertName, Entry>>,
    current: RwLock<HashMap<CertName, Arc<CertUpdate>>>,
    account: tokio::sync::Mutex<Option<Account>>,
    wake: Notify,
    stop: AtomicBool,
}

/// Keeps certificates issued and renewed; cheap to clone.
#[derive(Clone)]
pub struct Manager {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("directory", &self.inner.config.directory)
            .finish_non_exhaustive()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Manager {
    /// Checks `config` (validation, the CA file) and builds a manager; [`Manager::start`] runs
    /// it. `challenges` is the structure the listeners answer from.
    pub fn new(
        config: AcmeConfig,
        store: Arc<dyn AcmeStore>,
        challenges: Arc<Challenges>,
        on_update: UpdateSink,
        options: Options,
    ) -> Result<Self, AcmeError> {
        if let Some(e) = config.validate().into_iter().next() {
            return Err(AcmeError::Config(e.to_string()));
        }
        // Fail now, not at the first order, on an unreadable CA file.
        crate::client::http_client(config.ca.as_deref())?;
        let dns = match (config.challenge, &config.dns_hook) {
            (ChallengeKind::Dns01, Some(p)) => Some(DnsHook::new(p, config.dns_hook_timeout.0)),
            _ => None,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                store,
                challenges,
                dns,
                on_update,
                options,
                entries: Mutex::new(BTreeMap::new()),
                current: RwLock::new(HashMap::new()),
                account: tokio::sync::Mutex::new(None),
                wake: Notify::new(),
                stop: AtomicBool::new(false),
            }),
        })
    }

    /// Replaces the managed subjects (call on every config change). Subjects no longer listed
    /// are dropped (their certificates stay in the store); new ones are read from the store
    /// first, so a restart serves what was issued before without asking the CA.
    pub fn set_subjects(&self, subjects: Vec<Subject>) {
        {
            let mut entries = self.lock_entries();
            let keep: BTreeMap<CertName, Subject> =
                subjects.into_iter().map(|s| (s.name.clone(), s)).collect();
            entries.retain(|n, _| keep.contains_key(n));
            for (name, subject) in keep {
                match entries.get_mut(&name) {
                    Some(e) => e.subject = subject,
                    None => {
                        entries.insert(name, Entry::new(subject));
                    }
                }
            }
            let mut current = self
                .inner
                .current
                .write()
                .unwrap_or_else(|e| e.into_inner());
            current.retain(|n, c| {
                entries
                    .get(n)
                    .is_some_and(|e| e.subject.hostnames == c.hostnames)
            });
        }
        self.inner.wake.notify_one();
    }

    /// Orders a new pair for `name` now, whatever its state (once; a failure backs off as
    /// usual). `false` if the name is not managed.
    pub fn force_renew(&self, name: &CertName) -> bool {
        let found = match self.lock_entries().get_mut(name) {
            Some(e) => {
                e.forced = true;
                e.lock_wait = None;
                true
            }
            None => false,
        };
        self.inner.wake.notify_one();
        found
    }

    /// The PEM chains held for `name` (`None`: not a managed name).
    pub(crate) fn held(&self, name: &CertName) -> Option<Vec<String>> {
        self.lock_entries()
            .get(name)
            .map(|e| e.certs.values().map(|c| c.chain_pem.clone()).collect())
    }

    /// The ACME account (for a revocation, outside an order).
    pub(crate) async fn account_for_revocation(&self) -> Result<Account, AcmeError> {
        self.account().await
    }

    /// The pair currently served for `name`.
    pub fn current(&self, name: &CertName) -> Option<Arc<CertUpdate>> {
        self.inner
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// The status of one subject.
    pub fn status(&self, name: &CertName) -> Option<CertStatus> {
        let now = now_secs();
        let served = self.current(name).map(|c| c.not_after);
        let entries = self.lock_entries();
        let e = entries.get(name)?;
        Some(self.status_of(e, now, served))
    }

    /// Every subject's status, by name.
    pub fn statuses(&self) -> BTreeMap<CertName, CertStatus> {
        let now = now_secs();
        let current = self
            .inner
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let entries = self.lock_entries();
        entries
            .iter()
            .map(|(n, e)| {
                let served = current.get(n).map(|c| c.not_after);
                (n.clone(), self.status_of(e, now, served))
            })
            .collect()
    }

    fn status_of(&self, e: &Entry, now: u64, served: Option<u64>) -> CertStatus {
        let mut decision = e.decide(now, self.inner.config.renew_before.0);
        if let (Some(until), Decision::Issue { need, .. }) = (e.lock_wait, &decision) {
            decision = Decision::Backoff { until, need: *need };
        }
        acme_status(now, served, &e.state, &decision, e.busy)
    }

    /// Runs the loop on the current tokio runtime until [`Manager::shutdown`].
    pub fn start(&self) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move { me.run().await })
    }

    /// Stops the loop after the order in progress, if any.
    pub fn shutdown(&self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        self.inner.wake.notify_one();
    }

    fn lock_entries(&self) -> std::sync::MutexGuard<'_, BTreeMap<CertName, Entry>> {
        self.inner.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn run(&self) {
        while !self.inner.stop.load(Ordering::SeqCst) {
            let worked = self.pass().await;
            if worked {
                continue;
            }
            let wait = self.next_wake();
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.inner.wake.notified() => {}
            }
        }
    }

    /// One look at every subject; `true` if an order ran (look again at once).
    async fn pass(&self) -> bool {
        let names: Vec<CertName> = self.lock_entries().keys().cloned().collect();
        let mut worked = false;
        for name in names {
            if self.inner.stop.load(Ordering::SeqCst) {
                break;
            }
            self.sync_if_due(&name).await;
            let now = now_secs();
            let decision = {
                let entries = self.lock_entries();
                let Some(e) = entries.get(&name) else {
                    continue;
                };
                if e.lock_wait.is_some_and(|t| t > now) {
                    continue;
                }
                e.decide(now, self.inner.config.renew_before.0)
            };
            if let Decision::Issue { kinds, need } = decision {
                tracing::info!(target: "rpaas::acme", name = %name, reason = need.as_str(), "ordering certificates");
                self.attempt(&name, kinds).await;
                worked = true;
            }
        }
        worked
    }

    /// How long to sleep: until the earliest backoff end, renewal time or lock retry, and at
    /// most the store sync interval.
    fn next_wake(&self) -> Duration {
        let now = now_secs();
        let sync = self.inner.options.sync_interval;
        let entries = self.lock_entries();
        let next = entries
            .values()
            .map(|e| {
                let t = match e.decide(now, self.inner.config.renew_before.0) {
                    Decision::Backoff { until, .. } => until,
                    Decision::Valid { renew_at } => renew_at,
                    Decision::Issue { .. } => e.lock_wait.unwrap_or(now),
                };
                t.max(e.lock_wait.unwrap_or(0))
            })
            .min();
        match next {
            Some(t) => {
                Duration::from_secs(t.saturating_sub(now)).clamp(Duration::from_millis(200), sync)
            }
            None => sync,
        }
    }

    async fn sync_if_due(&self, name: &CertName) {
        let due = self.lock_entries().get(name).is_some_and(|e| {
            e.synced
                .is_none_or(|t| t.elapsed() >= self.inner.options.sync_interval)
        });
        if due {
            if let Err(e) = self.sync(name).await {
                tracing::warn!(target: "rpaas::acme", name = %name, error = %e, "cannot read the certificate store");
            }
        }
    }

    /// Reads `name`'s certificates and issuance state from the store; newer certificates
    /// (issued by this node earlier or by another node) replace the ones held.
    async fn sync(&self, name: &CertName) -> Result<(), AcmeError> {
        let store = &self.inner.store;
        let mut certs = BTreeMap::new();
        for kind in KeyKind::ALL {
            if let Some(c) = store.cert(name, kind).await? {
                certs.insert(kind, c);
            }
        }
        let state = store.issue_state(name).await?;
        {
            let mut entries = self.lock_entries();
            let Some(e) = entries.get_mut(name) else {
                return Ok(());
            };
            for (kind, c) in certs {
                let newer = e.certs.get(&kind).is_none_or(|have| {
                    (c.not_after, c.not_before) > (have.not_after, have.not_before)
                        || (c.names == e.subject.hostnames && have.names != e.subject.hostnames)
                });
                if newer {
                    e.certs.insert(kind, c);
                }
            }
            if let Some(s) = state {
                if !e.busy {
                    e.state = s;
                }
            }
            e.synced = Some(Instant::now());
        }
        self.publish(name);
        Ok(())
    }

    /// Hands the pair to the callback if it changed.
    fn publish(&self, name: &CertName) {
        let update = self.lock_entries().get(name).and_then(Entry::update);
        let Some(update) = update else { return };
        {
            let mut current = self
                .inner
                .current
                .write()
                .unwrap_or_else(|e| e.into_inner());
            if current.get(name).is_some_and(|c| **c == update) {
                return;
            }
            current.insert(name.clone(), Arc::new(update.clone()));
        }
        tracing::info!(target: "rpaas::acme", name = %name, not_after = update.not_after, "certificate pair in service");
        (self.inner.on_update)(&update);
    }

    async fn attempt(&self, name: &CertName, kinds: Vec<KeyKind>) {
        let holder = self.inner.options.node_id.clone();
        let store = self.inner.store.clone();
        match store
            .try_lock(name, &holder, self.inner.options.lock_ttl)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                // Another node is issuing: its result reaches us through the store.
                let retry = now_secs() + self.inner.options.lock_retry.as_secs().max(1);
                if let Some(e) = self.lock_entries().get_mut(name) {
                    e.lock_wait = Some(retry);
                    e.synced = None;
                }
                return;
            }
            Err(e) => {
                self.record(name, Err(AcmeError::Store(e))).await;
                return;
            }
        }
        // Another node may have finished just before we took the lock.
        let _ = self.sync(name).await;
        let plan = {
            let mut entries = self.lock_entries();
            let Some(e) = entries.get_mut(name) else {
                return;
            };
            let d = e.decide(now_secs(), self.inner.config.renew_before.0);
            e.forced = false;
            e.lock_wait = None;
            match d {
                Decision::Issue { kinds: now_due, .. } => {
                    e.busy = true;
                    Some((
                        e.subject.clone(),
                        if now_due.is_empty() { kinds } else { now_due },
                    ))
                }
                _ => None,
            }
        };
        if let Some((subject, kinds)) = plan {
            let result = match tokio::time::timeout(
                self.inner.options.order_timeout,
                self.order(&subject, &kinds),
            )
            .await
            {
                Ok(r) => r,
                Err(_) => Err(AcmeError::Timeout("the order took too long")),
            };
            self.record(name, result).await;
        }
        if let Err(e) = store.unlock(name, &holder).await {
            tracing::warn!(target: "rpaas::acme", name = %name, error = %e, "cannot release the issuer lock");
        }
    }

    /// Orders each key type in turn; each certificate is stored as soon as it arrives, so a
    /// failure of the second does not waste the first.
    async fn order(&self, subject: &Subject, kinds: &[KeyKind]) -> Result<(), AcmeError> {
        let account = self.account().await?;
        let ctx = OrderCtx {
            account: &account,
            challenge: self.inner.config.challenge,
            challenges: &self.inner.challenges,
            store: self.inner.store.as_ref(),
            dns: self.inner.dns.as_ref(),
            dns_delay: self.inner.config.dns_delay.0,
            poll_timeout: self.inner.options.poll_timeout,
        };
        for kind in kinds {
            let cert = ctx.issue(&subject.hostnames, *kind).await?;
            self.inner
                .store
                .put_cert(&subject.name, *kind, &cert)
                .await?;
            if let Some(e) = self.lock_entries().get_mut(&subject.name) {
                e.certs.insert(*kind, cert);
            }
            tracing::info!(target: "rpaas::acme", name = %subject.name, key = kind.as_str(), "certificate issued");
        }
        Ok(())
    }

    /// Keeps the outcome: failures count up and back off, a success clears them.
    async fn record(&self, name: &CertName, result: Result<(), AcmeError>) {
        let now = now_secs();
        let state = {
            let mut entries = self.lock_entries();
            let Some(e) = entries.get_mut(name) else {
                return;
            };
            e.busy = false;
            e.state.last_attempt = Some(now);
            match &result {
                Ok(()) => {
                    e.state.failures = 0;
                    e.state.last_error = None;
                    e.state.next_attempt = None;
                }
                Err(err) => {
                    e.state.failures = e.state.failures.saturating_add(1);
                    let rate = match err {
                        AcmeError::RateLimited { retry_after, .. } => Some(*retry_after),
                        _ => None,
                    };
                    e.state.next_attempt = Some(self.inner.options.backoff.next_attempt(
                        now,
                        e.state.failures,
                        rate,
                        fastrand::f64(),
                    ));
                    e.state.last_error = Some(err.to_string());
                }
            }
            e.state.clone()
        };
        if let Err(err) = &result {
            tracing::warn!(target: "rpaas::acme", name = %name, error = %err, failures = state.failures, next_attempt = state.next_attempt, "certificate order failed");
        }
        if let Err(e) = self.inner.store.put_issue_state(name, &state).await {
            tracing::warn!(target: "rpaas::acme", name = %name, error = %e, "cannot save the issuance state");
        }
        self.publish(name);
    }

    /// The ACME account: from the store, else made (and stored) on first use.
    async fn account(&self) -> Result<Account, AcmeError> {
        let mut slot = self.inner.account.lock().await;
        if let Some(a) = slot.as_ref() {
            return Ok(a.clone());
        }
        let dir = &self.inner.config.directory;
        let http = crate::client::http_client(self.inner.config.ca.as_deref())?;
        let builder = Account::builder_with_http(http);
        let account = match self.inner.store.account(dir).await? {
            Some(json) => {
                let creds: AccountCredentials = serde_json::from_str(&json)
                    .map_err(|e| AcmeError::Internal(format!("stored account credentials: {e}")))?;
                builder
                    .from_credentials(creds)
                    .await
                    .map_err(AcmeError::from_acme)?
            }
            None => {
                let contact = self.inner.config.contact();
                let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
                let (account, creds) = builder
                    .create(
                        &NewAccount {
                            contact: &contacts,
                            terms_of_service_agreed: true,
                            only_return_existing: false,
                        },
                        dir.clone(),
                        None,
                    )
                    .await
                    .map_err(AcmeError::from_acme)?;
                let json = serde_json::to_string(&creds)
                    .map_err(|e| AcmeError::Internal(format!("account credentials: {e}")))?;
                self.inner.store.put_account(dir, &json).await?;
                account
            }
        };
        *slot = Some(account.clone());
        Ok(account)
    }
}
