//! The node's answers to the admission core's questions about bans and rate limits: the live
//! ones take tokens, the peeking ones (an explain against the running node) take nothing.

use std::net::IpAddr;
use std::time::Instant;

use rpaas_admission::Gates;
use rpaas_ips::limits::Rate;

use crate::state::Shared;

/// Bans and rate limits as a request is served.
pub struct Live<'a>(pub &'a Shared);

impl Gates for Live<'_> {
    fn banned(&self, ip: IpAddr, now: Instant) -> Option<bool> {
        Some(self.0.bans.banned(ip, now).is_some())
    }
    fn take(&self, ip: IpAddr, bucket: &'static str, rate: Rate, now: Instant) -> Option<bool> {
        Some(self.0.limiter.allow(ip, bucket, rate, now))
    }
}

/// Bans and rate limits as they stand, for an explanation: nothing is consumed.
pub struct Peek<'a>(pub &'a Shared);

impl Gates for Peek<'_> {
    fn banned(&self, ip: IpAddr, now: Instant) -> Option<bool> {
        Some(self.0.bans.banned(ip, now).is_some())
    }
    fn take(&self, ip: IpAddr, bucket: &'static str, rate: Rate, now: Instant) -> Option<bool> {
        Some(self.0.limiter.peek(ip, bucket, rate, now))
    }
}

/// Counts a refusal toward a ban; logs and counts the ban when it happens.
pub fn strike(shared: &Shared, instance: &str, client: IpAddr, now: Instant) {
    let snap = shared.snapshot.load();
    let Some(policy) = snap.config().node.limits.ban else {
        return;
    };
    if shared.bans.strike(client, &policy, now) {
        if shared.telemetry.is_some() {
            shared.ban_outbox.share(client, policy.duration);
        }
        crate::metrics::inc(&shared.metrics.bans, &[instance]);
        tracing::warn!(
            target: "rpaas::ips",
            event = "banned",
            instance = %instance,
            client_ip = %client,
            seconds = policy.duration.as_secs(),
            "client banned after repeated blocked requests"
        );
    }
}
