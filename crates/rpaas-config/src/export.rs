//! `rpaas config export`: a config back to its effective spec, the one a node could be
//! started from again. The spec as written, instances of every file merged, paths absolute,
//! and every default a value took filled in (so a reader sees what the node does without
//! knowing the defaults).

use std::time::Duration;

use rpaas_spec::{DurationSpec, ListenerSpec, Spec};

use crate::{BanAction, ClientIpSource, Config, LogTarget};

fn dur(d: Duration) -> Option<DurationSpec> {
    Some(DurationSpec::Text(
        humantime::format_duration(d).to_string(),
    ))
}

/// The effective spec of `c`.
pub fn export(c: &Config) -> Spec {
    let mut s = c.spec.clone();
    let n = &c.node;
    let ns = &mut s.node;
    ns.instances_dir = None;
    ns.log = Some(match &n.log {
        LogTarget::Stdout => "stdout".into(),
        LogTarget::File(p) => p.display().to_string(),
    });
    ns.strip_headers = Some(n.strip_headers.clone());
    ns.deny_methods = Some(n.deny_methods.clone());
    ns.hsts = Some(n.hsts.clone().unwrap_or_else(|| "off".into()));
    ns.drain_timeout = dur(n.drain_timeout);
    ns.threads = Some(n.threads as i64);
    ns.handshake_timeout = dur(n.handshake_timeout);
    ns.keepalive_timeout = dur(n.keepalive_timeout);
    ns.header_timeout = dur(n.header_timeout);
    ns.body_read_timeout = dur(n.body_read_timeout);
    ns.resolve_interval = dur(n.resolve_interval);
    ns.default_countries = Some(n.default_countries.iter().map(|c| c.to_string()).collect());
    ns.unknown_country = Some(
        match n.unknown_country {
            rpaas_policy::UnknownCountry::Deny => "deny",
            rpaas_policy::UnknownCountry::Allow => "allow",
        }
        .into(),
    );
    ns.ips.builtin = Some(n.ips.builtin);
    ns.ips.body_limit = Some(n.ips.body_limit as i64);
    ns.ips.response_limit = Some(n.ips.response_limit as i64);
    let l = &mut ns.limits;
    if l.login.is_none() {
        l.login = Some(if n.limits.login.is_some() {
            crate::ips::DEFAULT_LOGIN_RATE.into()
        } else {
            "off".into()
        });
    }
    l.ban_after = Some(n.limits.ban.map_or(0, |b| b.after as i64));
    if let Some(b) = n.limits.ban {
        l.ban_window = dur(b.window);
        l.ban_time = dur(b.duration);
    }
    l.ban_action = Some(
        match n.limits.ban_action {
            BanAction::Forbidden => "403",
            BanAction::Close => "close",
        }
        .into(),
    );
    l.max_tracked = Some(n.limits.max_tracked as i64);
    if let Some(t) = &n.tunnel {
        ns.tunnel_max_connectors = Some(t.max_connectors as i64);
        ns.udp_flow_idle = dur(t.flow_idle);
        ns.udp_max_flows = Some(t.max_flows as i64);
    }
    s.listener = c
        .listeners
        .iter()
        .map(|l| ListenerSpec {
            address: Some(l.address.to_string()),
            tls: Some(l.tls.as_str().into()),
            client_ip: Some(
                match l.client_ip {
                    ClientIpSource::Socket => "socket",
                    ClientIpSource::XForwardedFor => "x-forwarded-for",
                    ClientIpSource::ProxyProtocol => "proxy-protocol",
                }
                .into(),
            ),
            trusted_proxies: l.trusted_proxies.iter().map(|n| n.to_string()).collect(),
            http2: Some(l.http2),
            default_host: l.default_host.clone(),
        })
        .collect();
    s.instance = c
        .instances
        .iter()
        .map(|i| {
            let mut is = i.spec.clone();
            is.hostnames = i.hostnames.clone();
            is.connect_timeout = dur(i.timeouts.connect);
            is.read_timeout = dur(i.timeouts.read);
            is.write_timeout = dur(i.timeouts.write);
            is.idle_timeout = dur(i.timeouts.idle);
            is.dangerous_skip_upstream_verify = Some(!i.upstream_verify);
            is.strip_headers = Some(i.strip_headers.clone());
            is.deployment = Some(i.policy.deployment.as_str().into());
            is.ips.mode = Some(
                match i.ips.mode {
                    rpaas_ips::Mode::Block => "block",
                    rpaas_ips::Mode::Detect => "detect",
                    rpaas_ips::Mode::Off => "off",
                }
                .into(),
            );
            is.ips.threshold = Some(i.ips.threshold as i64);
            is
        })
        .collect();
    s
}
