//! Per-client token buckets and the ban table. Bounded in memory (oldest entries are evicted
//! when full), sharded to keep lock hold times short, and told the time by the caller.
//! IPv6 clients are tracked per /64: one subscriber gets a whole /64 and can rotate within it.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const SHARDS: usize = 16;

/// `N/period`: N requests per period, bursts of up to N.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub burst: f64,
    pub per_sec: f64,
}

/// Why a rate (`N/period`) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateError {
    #[error("{0:?}: write N/period, e.g. \"10/1m\"")]
    Shape(String),
    #[error("{0:?}: {1:?} is not a count")]
    Count(String, String),
    #[error("{0:?}: {1:?} is not a period like 1s, 1m, 1h")]
    Period(String, String),
    #[error("{0:?}: count and period must be positive")]
    Zero(String),
}

impl Rate {
    /// Parses `"10/1m"`, `"50/1s"`, `"600/1h"`.
    pub fn parse(s: &str) -> Result<Self, RateError> {
        let (n, period) = s
            .split_once('/')
            .ok_or_else(|| RateError::Shape(s.to_string()))?;
        let n: u32 = n
            .trim()
            .parse()
            .map_err(|_| RateError::Count(s.to_string(), n.to_string()))?;
        let d = humanish(period.trim())
            .ok_or_else(|| RateError::Period(s.to_string(), period.to_string()))?;
        if n == 0 || d.is_zero() {
            return Err(RateError::Zero(s.to_string()));
        }
        Ok(Self {
            burst: n as f64,
            per_sec: n as f64 / d.as_secs_f64(),
        })
    }
}

fn humanish(s: &str) -> Option<Duration> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = if num.is_empty() { 1 } else { num.parse().ok()? };
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return None,
    };
    Some(Duration::from_secs(n * secs))
}

/// The key a client is tracked under.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

fn shard_of<K: Hash>(k: &K) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    k.hash(&mut h);
    (h.finish() as usize) % SHARDS
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets keyed by (client, bucket name).
#[derive(Debug)]
pub struct Limiter {
    shards: Vec<Mutex<HashMap<(IpAddr, &'static str), Bucket>>>,
    max_per_shard: usize,
}

impl Limiter {
    pub fn new(max_entries: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            max_per_shard: (max_entries / SHARDS).max(16),
        }
    }

    /// Takes one token; `false` means "over the rate: answer 429".
    pub fn allow(&self, ip: IpAddr, bucket: &'static str, rate: Rate, now: Instant) -> bool {
        let key = (client_key(ip), bucket);
        let Ok(mut map) = self.shards[shard_of(&key)].lock() else {
            return true;
        };
        if map.len() >= self.max_per_shard && !map.contains_key(&key) {
            // Full: drop buckets that have refilled (they carry no state), else the stalest.
            map.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * rate.per_sec
                    < rate.burst
            });
            if map.len() >= self.max_per_shard {
                if let Some(oldest) = map.iter().min_by_key(|(_, b)| b.last).map(|(k, _)| *k) {
                    map.remove(&oldest);
                }
            }
        }
        let b = map.entry(key).or_insert(Bucket {
            tokens: rate.burst,
            last: now,
        });
        let refill = now.saturating_duration_since(b.last).as_secs_f64() * rate.per_sec;
        b.tokens = (b.tokens + refill).min(rate.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether [`Limiter::allow`] would let the client through now, without taking a token
    /// (`rpaas explain` against a running node).
    pub fn peek(&self, ip: IpAddr, bucket: &'static str, rate: Rate, now: Instant) -> bool {
        let key = (client_key(ip), bucket);
        let Ok(map) = self.shards[shard_of(&key)].lock() else {
            return true;
        };
        match map.get(&key) {
            None => rate.burst >= 1.0,
            Some(b) => {
                let refill = now.saturating_duration_since(b.last).as_secs_f64() * rate.per_sec;
                (b.tokens + refill).min(rate.burst) >= 1.0
            }
        }
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|m| m.len()).unwrap_or(0))
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// When to ban.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BanPolicy {
    /// Blocked requests within `window` that earn a ban.
    pub after: u32,
    pub window: Duration,
    pub duration: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Strikes {
    count: u32,
    window_start: Instant,
    banned_until: Option<Instant>,
}

/// Clients banned after repeated blocked requests. Lives for the process, across reloads.
#[derive(Debug)]
pub struct Bans {
    shards: Vec<Mutex<HashMap<IpAddr, Strikes>>>,
    max_per_shard: usize,
}

impl Bans {
    pub fn new(max_entries: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            max_per_shard: (max_entries / SHARDS).max(16),
        }
    }

    /// Time left on the client's ban, if banned.
    pub fn banned(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let key = client_key(ip);
        let map = self.shards[shard_of(&key)].lock().ok()?;
        let until = map.get(&key)?.banned_until?;
        (until > now).then(|| until - now)
    }

    /// Records a blocked request; returns `true` if this one earned a ban.
    pub fn strike(&self, ip: IpAddr, policy: &BanPolicy, now: Instant) -> bool {
        let key = client_key(ip);
        let Ok(mut map) = self.shards[shard_of(&key)].lock() else {
            return false;
        };
        if map.len() >= self.max_per_shard && !map.contains_key(&key) {
            map.retain(|_, s| {
                s.banned_until.is_some_and(|u| u > now)
                    || now.saturating_duration_since(s.window_start) < policy.window
            });
            if map.len() >= self.max_per_shard {
                // Evict the entry closest to being forgotten: strikes before bans.
                let victim = map
                    .iter()
                    .min_by_key(|(_, s)| {
                        (
                            s.banned_until.is_some(),
                            s.banned_until.unwrap_or(s.window_start),
                        )
                    })
                    .map(|(k, _)| *k);
                if let Some(v) = victim {
                    map.remove(&v);
                }
            }
        }
        let s = map.entry(key).or_insert(Strikes {
            count: 0,
            window_start: now,
            banned_until: None,
        });
        if s.banned_until.is_some_and(|u| u > now) {
            return false;
        }
        if now.saturating_duration_since(s.window_start) >= policy.window {
            s.count = 0;
            s.window_start = now;
            s.banned_until = None;
        }
        s.count += 1;
        if s.count >= policy.after {
            s.banned_until = Some(now + policy.duration);
            s.count = 0;
            s.window_start = now;
            return true;
        }
        false
    }

    /// Bans the client until `until` (a ban another node decided); a longer ban stays.
    pub fn ban(&self, ip: IpAddr, until: Instant) {
        let key = client_key(ip);
        let now = Instant::now();
        let Ok(mut map) = self.shards[shard_of(&key)].lock() else {
            return;
        };
        if map.len() >= self.max_per_shard && !map.contains_key(&key) {
            // Strikes make room for a ban; bans already in force stay.
            map.retain(|_, s| s.banned_until.is_some_and(|u| u > now));
            if map.len() >= self.max_per_shard {
                return;
            }
        }
        let s = map.entry(key).or_insert(Strikes {
            count: 0,
            window_start: now,
            banned_until: None,
        });
        if s.banned_until.is_none_or(|u| u < until) {
            s.banned_until = Some(until);
        }
    }

    /// Number of clients currently banned.
    pub fn banned_count(&self, now: Instant) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .map(|m| {
                        m.values()
                            .filter(|v| v.banned_until.is_some_and(|u| u > now))
                            .count()
                    })
                    .unwrap_or(0)
            })
            .sum()
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|m| m.len()).unwrap_or(0))
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn rates() {
        let r = Rate::parse("10/1m").unwrap();
        assert_eq!(r.burst, 10.0);
        assert!((r.per_sec - 10.0 / 60.0).abs() < 1e-9);
        assert!(Rate::parse("10").is_err());
        assert!(Rate::parse("0/1s").is_err());
        assert!(Rate::parse("5/1d").is_err());
        assert_eq!(Rate::parse("5/s").unwrap().per_sec, 5.0);
    }

    #[test]
    fn bucket_refills() {
        let l = Limiter::new(1000);
        let r = Rate::parse("3/1s").unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.allow(ip("192.0.2.1"), "login", r, t0));
        }
        assert!(!l.allow(ip("192.0.2.1"), "login", r, t0));
        assert!(
            l.allow(ip("192.0.2.2"), "login", r, t0),
            "other clients unaffected"
        );
        assert!(
            l.allow(ip("192.0.2.1"), "agent", r, t0),
            "other buckets unaffected"
        );
        assert!(l.allow(ip("192.0.2.1"), "login", r, t0 + Duration::from_millis(400)));
        assert!(!l.allow(ip("192.0.2.1"), "login", r, t0 + Duration::from_millis(400)));
        // IPv6 clients share their /64.
        for _ in 0..3 {
            assert!(l.allow(ip("2001:db8::1"), "login", r, t0));
        }
        assert!(!l.allow(ip("2001:db8::ffff"), "login", r, t0));
    }

    #[test]
    fn bans_after_strikes_and_expire() {
        let b = Bans::new(1000);
        let p = BanPolicy {
            after: 3,
            window: Duration::from_secs(60),
            duration: Duration::from_secs(600),
        };
        let t0 = Instant::now();
        let c = ip("198.51.100.9");
        assert!(!b.strike(c, &p, t0));
        assert!(!b.strike(c, &p, t0));
        assert!(b.strike(c, &p, t0 + Duration::from_secs(1)));
        assert!(b.banned(c, t0 + Duration::from_secs(2)).is_some());
        assert!(b.banned(c, t0 + Duration::from_secs(602)).is_none());
        // Strikes spread beyond the window do not add up.
        let d = ip("198.51.100.10");
        for i in 0..10 {
            assert!(!b.strike(d, &p, t0 + Duration::from_secs(61 * i)));
        }
    }

    #[test]
    fn tables_stay_bounded() {
        let b = Bans::new(1600);
        let l = Limiter::new(1600);
        let p = BanPolicy {
            after: 1,
            window: Duration::from_secs(60),
            duration: Duration::from_secs(600),
        };
        let r = Rate::parse("1/1h").unwrap();
        let t0 = Instant::now();
        for i in 0..20_000u32 {
            let c = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            b.strike(c, &p, t0);
            l.allow(c, "x", r, t0);
        }
        assert!(b.len() <= 1600, "{}", b.len());
        assert!(l.len() <= 1600, "{}", l.len());
    }
}
