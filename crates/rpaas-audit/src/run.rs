//! The order of an audit: resolve, the HTTP probes, the TLS handshakes, the ports; each
//! operation bounded by its own timeout and by the overall deadline. Turns observations into
//! checks with the pure judges.

use std::net::SocketAddr;
use std::time::Duration;

use openssl::ssl::SslVersion;
use tokio::time::Instant;

use crate::check::{ids, Check};
use crate::error::ProbeError;
use crate::judge::{self, HttpObserved, ADMIN_PROBES, AGENT_PATH, TRACE_MARKER, WCC2_PATH};
use crate::ports::{self, PortsObserved, UdpState};
use crate::probe::{self, Offer, Prober, USER_AGENT};
use crate::target::{Connect, Target};
use crate::tls::{self, Legacy, Weak};
use crate::Options;

/// Runs the network checks for `target`. Never fails: what cannot be observed is a skip.
pub async fn network(target: &Target, connect: Option<&Connect>, opts: &Options) -> Vec<Check> {
    let deadline = Instant::now() + opts.timeout;
    let (host, port) = match connect {
        Some(c) => (c.host.clone(), c.port),
        None => (target.host.clone(), target.port),
    };
    let addr = match resolve(&host, port, opts.probe_timeout).await {
        Ok(a) => a,
        Err(e) => return skip_all(ids::NETWORK, &e.to_string()),
    };
    let prober = Prober {
        addr,
        sni: target.host.clone(),
        tls: target.tls,
        timeout: opts.probe_timeout,
        deadline,
    };
    let mut out = Vec::new();
    let http = http_probes(&prober, target).await;
    let reachable = http.root.is_ok();
    if !reachable {
        let why = match &http.root {
            Err(e) => format!("cannot reach {} at {addr}: {e}", target.url),
            Ok(_) => String::new(),
        };
        out.extend(skip_all(ids::TLS, &why));
        out.extend(skip_all(ids::HTTP, &why));
    } else {
        if target.tls {
            let (legacy, weak) = tls_probes(&prober).await;
            out.extend(tls::judge_tls(&legacy, &weak));
        } else {
            out.extend(skip_all(
                ids::TLS,
                "an http:// URL: no TLS to test (agents should reach the server over HTTPS only)",
            ));
        }
        out.extend(judge::judge_http(&http));
    }
    let obs = port_probes(addr, opts, deadline).await;
    out.extend(ports::judge_ports(&obs));
    out
}

fn skip_all(list: &[&'static str], why: &str) -> Vec<Check> {
    list.iter().map(|id| Check::skip(id, why)).collect()
}

async fn resolve(host: &str, port: u16, timeout: Duration) -> Result<SocketAddr, ProbeError> {
    let err = |reason: String| ProbeError::Resolve {
        host: host.to_string(),
        reason,
    };
    let found = tokio::time::timeout(timeout, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| err("timed out".into()))?
        .map_err(|e| err(e.to_string()))?;
    let all: Vec<SocketAddr> = found.collect();
    all.iter()
        .find(|a| a.is_ipv4())
        .or(all.first())
        .copied()
        .ok_or_else(|| err("no address".into()))
}

async fn http_probes(p: &Prober, t: &Target) -> HttpObserved {
    let host = t.host_header();
    let root = p.simple("GET", "/", &host, "").await;
    if let Err(e) = &root {
        // Nothing answers: do not spend the other probes on it.
        let e = e.clone();
        return HttpObserved {
            host: t.host.clone(),
            root,
            options: Err(e.clone()),
            trace: Err(e.clone()),
            track: Err(e.clone()),
            aspnet: vec![Err(e.clone()); judge::ASPNET_PROBES.len()],
            admin: vec![Err(e.clone()); ADMIN_PROBES.len()],
            agent: Err(e.clone()),
            wcc2: Err(e),
        };
    }
    let marker = format!("{TRACE_MARKER}\r\n");
    let options = p.simple("OPTIONS", "/", &host, "").await;
    let trace = p.simple("TRACE", "/", &host, &marker).await;
    let track = p.simple("TRACK", "/", &host, &marker).await;
    // The guide's leak: HTTP/1.0 with an empty Host (and with none), so IIS fills in its own
    // address.
    let empty_host =
        format!("GET /aspnet_client HTTP/1.0\r\nHost: \r\nUser-Agent: {USER_AGENT}\r\n\r\n");
    let no_host = format!("GET /aspnet_client HTTP/1.0\r\nUser-Agent: {USER_AGENT}\r\n\r\n");
    let aspnet = vec![
        p.request(empty_host.as_bytes()).await,
        p.request(no_host.as_bytes()).await,
    ];
    let mut admin = Vec::new();
    for (_, path) in ADMIN_PROBES {
        admin.push(p.simple("GET", path, &host, "").await);
    }
    let agent = p.simple("GET", AGENT_PATH, &host, "").await;
    let wcc2 = p.simple("GET", WCC2_PATH, &host, "").await;
    HttpObserved {
        host: t.host.clone(),
        root,
        options,
        trace,
        track,
        aspnet,
        admin,
        agent,
        wcc2,
    }
}

async fn tls_probes(p: &Prober) -> (Vec<(Legacy, tls::Handshake)>, Vec<(Weak, tls::Handshake)>) {
    let mut legacy = Vec::new();
    for v in Legacy::ALL {
        let ver = match v {
            Legacy::Tls10 => SslVersion::TLS1,
            Legacy::Tls11 => SslVersion::TLS1_1,
        };
        let offer = Offer {
            min: ver,
            max: Some(ver),
            ciphers: "ALL:@SECLEVEL=0",
        };
        legacy.push((v, p.handshake(offer).await));
    }
    let mut weak = Vec::new();
    for w in Weak::ALL {
        let offer = Offer {
            min: if w.tls12_only() {
                SslVersion::TLS1_2
            } else {
                SslVersion::TLS1
            },
            max: Some(SslVersion::TLS1_2),
            ciphers: w.cipher_list(),
        };
        weak.push((w, p.handshake(offer).await));
    }
    (legacy, weak)
}

async fn port_probes(addr: SocketAddr, opts: &Options, deadline: Instant) -> PortsObserved {
    let ip = addr.ip();
    let t = opts.probe_timeout.min(Duration::from_secs(2));
    let closed = probe::tcp_ports(ip, &opts.closed_ports, t, deadline).await;
    let expected = probe::tcp_ports(ip, &opts.expected_ports, t, deadline).await;
    let optional = probe::tcp_ports(ip, &opts.optional_ports, t, deadline).await;
    let udp = if opts.udp_port == 0 {
        UdpState::NotProbed
    } else if Instant::now() >= deadline {
        UdpState::Late
    } else {
        let left = deadline.saturating_duration_since(Instant::now());
        probe::udp_port(SocketAddr::new(ip, opts.udp_port), t.min(left)).await
    };
    PortsObserved {
        host: ip.to_string(),
        closed,
        expected,
        optional,
        udp: (opts.udp_port, udp),
    }
}
