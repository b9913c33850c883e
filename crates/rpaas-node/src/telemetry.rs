//! What the node tells the control store about its traffic: every refusal (for "why was this
//! IP refused?"), and per instance and minute the requests, refusals by reason, class and
//! country, and TLS versions. Requests never wait for the store: the access-log phase hands
//! events to a bounded channel (dropped and counted when full), and one task batches them into
//! the store every second. It also keeps, per instance, the agent addresses seen in the last
//! hour (bounded).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rpaas_control::{DecisionRow, Store, TrafficRow};
use tokio::sync::mpsc;

/// One request, as the telemetry sees it.
#[derive(Debug, Clone)]
pub struct Event {
    pub time_ms: i64,
    pub instance: String,
    pub ip: IpAddr,
    pub country: String,
    pub method: String,
    pub path: String,
    /// Path and query as received (kept only in the bounded preview sample).
    pub target: String,
    pub host: String,
    pub class: &'static str,
    /// The refusal reason code, empty when forwarded.
    pub reason: String,
    pub status: u16,
    pub request_id: String,
    pub tls: String,
}

/// Events waiting for the writer at most.
const QUEUE: usize = 20_000;
/// Refusals written per second at most (an attack must not turn into a write storm).
const MAX_DECISIONS_PER_FLUSH: usize = 2_000;
/// Agent addresses remembered per instance at most.
const MAX_AGENTS: usize = 100_000;
/// Longest path and method kept in a refusal row.
const MAX_PATH: usize = 512;
const MAX_METHOD: usize = 16;

/// Recent requests kept per instance for an ACL preview, at most.
const MAX_SAMPLES: usize = 1_000;
/// Longest target kept in the sample.
const MAX_TARGET: usize = 2_048;

/// One recent request, to replay under a proposed ACL.
#[derive(Debug, Clone)]
pub struct Sample {
    pub time_ms: i64,
    pub ip: IpAddr,
    pub method: String,
    pub target: String,
    pub host: String,
    pub refused: bool,
}

/// The node's telemetry handle.
pub struct Telemetry {
    tx: mpsc::Sender<Event>,
    agents: Mutex<HashMap<String, HashMap<IpAddr, i64>>>,
    samples: Mutex<HashMap<String, std::collections::VecDeque<Sample>>>,
    pub dropped: AtomicU64,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Telemetry")
    }
}

/// `s` cut to at most `n` bytes on a character boundary, in place.
fn truncated(mut s: String, n: usize) -> String {
    if s.len() > n {
        let mut end = n;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

impl Telemetry {
    /// The handle, and the receiving end for [`run`].
    pub fn new() -> (Telemetry, mpsc::Receiver<Event>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (
            Telemetry {
                tx,
                agents: Mutex::new(HashMap::new()),
                samples: Mutex::new(HashMap::new()),
                dropped: AtomicU64::new(0),
            },
            rx,
        )
    }

    /// Records one request (never blocks).
    pub fn record(&self, mut e: Event) {
        if e.class == "agent" {
            if let Ok(mut a) = self.agents.lock() {
                let minute = e.time_ms / 60_000;
                let set = a.entry(e.instance.clone()).or_default();
                if set.len() >= MAX_AGENTS && !set.contains_key(&e.ip) {
                    set.retain(|_, m| *m >= minute - 60);
                }
                if set.len() < MAX_AGENTS || set.contains_key(&e.ip) {
                    set.insert(e.ip, minute);
                }
            }
        }
        e.path = truncated(std::mem::take(&mut e.path), MAX_PATH);
        e.method = truncated(std::mem::take(&mut e.method), MAX_METHOD);
        let sample = Sample {
            time_ms: e.time_ms,
            ip: e.ip,
            method: e.method.clone(),
            target: truncated(std::mem::take(&mut e.target), MAX_TARGET),
            host: std::mem::take(&mut e.host),
            refused: !e.reason.is_empty(),
        };
        if let Ok(mut s) = self.samples.lock() {
            // The instance's queue exists after its first request: no key copy per request.
            if !s.contains_key(&e.instance) {
                s.insert(e.instance.clone(), std::collections::VecDeque::new());
            }
            if let Some(q) = s.get_mut(&e.instance) {
                if q.len() >= MAX_SAMPLES {
                    q.pop_front();
                }
                q.push_back(sample);
            }
        }
        if self.tx.try_send(e).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The sample of `instance`'s requests in the last hour (oldest first).
    pub fn samples(&self, instance: &str, now_ms: i64) -> Vec<Sample> {
        self.samples.lock().map_or_else(
            |_| Vec::new(),
            |s| {
                s.get(instance).map_or_else(Vec::new, |q| {
                    q.iter()
                        .filter(|x| x.time_ms >= now_ms - 3_600_000)
                        .cloned()
                        .collect()
                })
            },
        )
    }

    /// Distinct agent addresses of `instance` in the last hour.
    pub fn agents_seen(&self, instance: &str, now_ms: i64) -> u64 {
        let minute = now_ms / 60_000;
        self.agents.lock().map_or(0, |a| {
            a.get(instance).map_or(0, |s| {
                s.values().filter(|m| **m >= minute - 60).count() as u64
            })
        })
    }
}

#[derive(Default)]
struct Minute {
    requests: i64,
    refusals: i64,
    counts: HashMap<(&'static str, String), i64>,
}

/// Batches events into the store until the channel closes. `retention` (refusals and
/// traffic, audit rows) trims old rows.
pub async fn run(
    mut rx: mpsc::Receiver<Event>,
    store: Store,
    node: String,
    retention: (Duration, Duration),
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut trims = 0u32;
    let mut minutes: HashMap<(String, i64), Minute> = HashMap::new();
    let mut decisions: Vec<DecisionRow> = Vec::new();
    loop {
        tokio::select! {
            e = rx.recv() => {
                let Some(e) = e else { break };
                let m = minutes.entry((e.instance.clone(), e.time_ms / 60_000)).or_default();
                m.requests += 1;
                if !e.tls.is_empty() {
                    *m.counts.entry(("tls", e.tls.clone())).or_default() += 1;
                }
                if !e.reason.is_empty() {
                    m.refusals += 1;
                    *m.counts.entry(("reason", e.reason.clone())).or_default() += 1;
                    *m.counts.entry(("class", e.class.to_string())).or_default() += 1;
                    *m.counts.entry(("country", if e.country.is_empty() { "--".into() } else { e.country.clone() })).or_default() += 1;
                    if decisions.len() < MAX_DECISIONS_PER_FLUSH {
                        decisions.push(DecisionRow {
                            time: e.time_ms,
                            instance: e.instance,
                            node: node.clone(),
                            ip: e.ip.to_string(),
                            country: e.country,
                            method: e.method,
                            path: e.path,
                            class: e.class.to_string(),
                            reason: e.reason,
                            status: i64::from(e.status),
                            request_id: e.request_id,
                        });
                    }
                }
            }
            _ = tick.tick() => {
                let rows: Vec<TrafficRow> = minutes
                    .drain()
                    .map(|((instance, minute), m)| TrafficRow {
                        instance,
                        node: node.clone(),
                        minute,
                        requests: m.requests,
                        refusals: m.refusals,
                        counts: m
                            .counts
                            .into_iter()
                            .map(|((k, key), n)| (k.to_string(), key, n))
                            .collect(),
                    })
                    .collect();
                let batch = std::mem::take(&mut decisions);
                if let Err(e) = store.record_decisions(&batch).await {
                    tracing::warn!(target: "rpaas::control", error = %e, lost = batch.len(), "cannot record refusals");
                }
                if let Err(e) = store.add_traffic(&rows).await {
                    tracing::warn!(target: "rpaas::control", error = %e, "cannot record traffic");
                }
                trims += 1;
                if trims >= 600 {
                    trims = 0;
                    let now = rpaas_control::store::now_ms();
                    let before = now - retention.0.as_millis() as i64;
                    let audit_before = now - retention.1.as_millis() as i64;
                    if let Err(e) = store.trim(before, 1_000_000, audit_before).await {
                        tracing::warn!(target: "rpaas::control", error = %e, "cannot trim old rows");
                    }
                }
            }
        }
    }
}
