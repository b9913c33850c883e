//! Prometheus metrics of one node, in a registry of its own (not the global one) so tests can
//! run several nodes in a process.
//!
//! Every label has a fixed, documented value set (docs/node.md "Metrics"): instance ids and
//! restriction names come from the config, rule ids from the loaded rules, countries are ISO
//! codes, methods are [`rpaas_policy::method_label`]ed, statuses are three digits. No value a
//! client chose (a method token, a path, a host, a header) ever becomes a label value.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub duration: HistogramVec,
    pub upstream_errors: IntCounterVec,
    pub tls_handshakes: IntCounterVec,
    /// Of those, the ones that resumed a session (an abbreviated handshake).
    pub tls_resumptions: IntCounterVec,
    pub tls_failures: IntCounterVec,
    pub connections: IntGauge,
    /// Of those, HTTP/1 connections parked between requests (no HTTP session held).
    pub idle_connections: IntGauge,
    pub reloads: IntCounterVec,
    pub config_generation: IntGauge,
    pub denials: IntCounterVec,
    pub instance_info: IntGaugeVec,
    pub ips_matches: IntCounterVec,
    pub rate_limited: IntCounterVec,
    pub bans: IntCounterVec,
    pub banned_clients: IntGauge,
    pub tunnel_connectors: IntGaugeVec,
    pub tunnel_refused: IntCounterVec,
    pub udp_datagrams: IntCounterVec,
    pub udp_bytes: IntCounterVec,
    pub udp_drops: IntCounterVec,
    pub udp_flows: IntGaugeVec,
    pub tcp_relays: IntCounterVec,
    pub cert_days: prometheus::GaugeVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("rpaas".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "requests_total",
                "HTTP requests by instance, traffic class and status",
            ),
            &["instance", "class", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new("request_duration_seconds", "Request latency by instance").buckets(
                vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0, 30.0, 60.0, 300.0,
                ],
            ),
            &["instance"],
        )?;
        let upstream_errors = IntCounterVec::new(
            Opts::new(
                "upstream_errors_total",
                "Failed upstream exchanges by instance and kind",
            ),
            &["instance", "kind"],
        )?;
        let tls_handshakes = IntCounterVec::new(
            Opts::new(
                "tls_handshakes_total",
                "Completed TLS handshakes by listener profile and version",
            ),
            &["profile", "version"],
        )?;
        let tls_resumptions = IntCounterVec::new(
            Opts::new(
                "tls_resumptions_total",
                "TLS handshakes that resumed a session, by listener profile and version",
            ),
            &["profile", "version"],
        )?;
        let tls_failures = IntCounterVec::new(
            Opts::new(
                "tls_handshake_failures_total",
                "Failed TLS handshakes by listener profile and reason",
            ),
            &["profile", "reason"],
        )?;
        let connections = IntGauge::new("open_connections", "Client connections currently open")?;
        let idle_connections = IntGauge::new(
            "idle_connections",
            "Client HTTP/1 connections waiting for their next request (parked: no HTTP session held)",
        )?;
        let reloads = IntCounterVec::new(
            Opts::new("config_reloads_total", "Config reloads by result"),
            &["result"],
        )?;
        let config_generation =
            IntGauge::new("config_generation", "Generation of the config being served")?;
        let denials = IntCounterVec::new(
            Opts::new(
                "denials_total",
                "Requests refused by the node, by instance, traffic class, country and reason",
            ),
            &["instance", "class", "country", "reason"],
        )?;
        let instance_info = IntGaugeVec::new(
            Opts::new("instance_info", "1 for every instance in the served config"),
            &["instance"],
        )?;
        let ips_matches = IntCounterVec::new(
            Opts::new(
                "ips_matches_total",
                "IPS rule matches by instance, rule and what was done",
            ),
            &["instance", "rule", "action"],
        )?;
        let rate_limited = IntCounterVec::new(
            Opts::new(
                "rate_limited_total",
                "Requests refused with 429, by instance and bucket",
            ),
            &["instance", "bucket"],
        )?;
        let bans = IntCounterVec::new(
            Opts::new("bans_total", "Clients banned, by instance"),
            &["instance"],
        )?;
        let banned_clients = IntGauge::new("banned_clients", "Clients banned right now")?;
        let tunnel_connectors = IntGaugeVec::new(
            Opts::new(
                "tunnel_connectors",
                "Live connector connections per instance",
            ),
            &["instance"],
        )?;
        let tunnel_refused = IntCounterVec::new(
            Opts::new(
                "tunnel_refused_total",
                "Connector connections refused, by reason",
            ),
            &["reason"],
        )?;
        let udp_datagrams = IntCounterVec::new(
            Opts::new(
                "udp_datagrams_total",
                "Relayed UDP datagrams by instance and direction",
            ),
            &["instance", "direction"],
        )?;
        let udp_bytes = IntCounterVec::new(
            Opts::new(
                "udp_bytes_total",
                "Relayed UDP payload bytes by instance and direction",
            ),
            &["instance", "direction"],
        )?;
        let udp_drops = IntCounterVec::new(
            Opts::new(
                "udp_drops_total",
                "UDP datagrams dropped, by instance and reason",
            ),
            &["instance", "reason"],
        )?;
        let udp_flows = IntGaugeVec::new(
            Opts::new("udp_flows", "Live UDP flows (agent addresses) per instance"),
            &["instance"],
        )?;
        let tcp_relays = IntCounterVec::new(
            Opts::new(
                "tcp_relay_connections_total",
                "Relayed TCP connections by instance and outcome",
            ),
            &["instance", "outcome"],
        )?;
        let cert_days = prometheus::GaugeVec::new(
            Opts::new(
                "cert_days_to_expiry",
                "Days until the served certificate of each instance expires",
            ),
            &["instance"],
        )?;
        registry.register(Box::new(cert_days.clone()))?;
        registry.register(Box::new(tunnel_connectors.clone()))?;
        registry.register(Box::new(tunnel_refused.clone()))?;
        registry.register(Box::new(udp_datagrams.clone()))?;
        registry.register(Box::new(udp_bytes.clone()))?;
        registry.register(Box::new(udp_drops.clone()))?;
        registry.register(Box::new(udp_flows.clone()))?;
        registry.register(Box::new(tcp_relays.clone()))?;
        registry.register(Box::new(ips_matches.clone()))?;
        registry.register(Box::new(rate_limited.clone()))?;
        registry.register(Box::new(bans.clone()))?;
        registry.register(Box::new(banned_clients.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(upstream_errors.clone()))?;
        registry.register(Box::new(tls_handshakes.clone()))?;
        registry.register(Box::new(tls_resumptions.clone()))?;
        registry.register(Box::new(tls_failures.clone()))?;
        registry.register(Box::new(connections.clone()))?;
        registry.register(Box::new(idle_connections.clone()))?;
        registry.register(Box::new(reloads.clone()))?;
        registry.register(Box::new(config_generation.clone()))?;
        registry.register(Box::new(denials.clone()))?;
        registry.register(Box::new(instance_info.clone()))?;
        Ok(Self {
            registry,
            requests,
            duration,
            upstream_errors,
            tls_handshakes,
            tls_resumptions,
            tls_failures,
            connections,
            idle_connections,
            reloads,
            config_generation,
            denials,
            instance_info,
            ips_matches,
            rate_limited,
            bans,
            banned_clients,
            tunnel_connectors,
            tunnel_refused,
            udp_datagrams,
            udp_bytes,
            udp_drops,
            udp_flows,
            tcp_relays,
            cert_days,
        })
    }

    /// The text exposition format.
    pub fn render(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        buf
    }
}

/// Increments a labelled counter. A label-count mismatch is a bug, but never a reason to
/// take a request down with a panic (`with_label_values` would).
pub fn inc(c: &IntCounterVec, labels: &[&str]) {
    if let Ok(m) = c.get_metric_with_label_values(labels) {
        m.inc();
    }
}

pub fn inc_by(c: &IntCounterVec, labels: &[&str], v: u64) {
    if let Ok(m) = c.get_metric_with_label_values(labels) {
        m.inc_by(v);
    }
}

pub fn observe(h: &HistogramVec, labels: &[&str], v: f64) {
    if let Ok(m) = h.get_metric_with_label_values(labels) {
        m.observe(v);
    }
}

pub fn set(g: &IntGaugeVec, labels: &[&str], v: i64) {
    if let Ok(m) = g.get_metric_with_label_values(labels) {
        m.set(v);
    }
}

/// A response status as a label: the code when it is 100-599, `0` for no response, else
/// `other` (an origin can send any three digits).
pub fn status_label(status: u16) -> &'static str {
    match status {
        0 => "0",
        100..=599 => STATUS_TEXT[(status - 100) as usize],
        _ => "other",
    }
}

/// The three-digit codes 100-599, as text.
const STATUS_TEXT: [&str; 500] = status_text();

const fn status_text() -> [&'static str; 500] {
    const ALL: &str = ALL_CODES;
    let mut t = [""; 500];
    let mut i = 0;
    while i < 500 {
        let (_, rest) = ALL.as_bytes().split_at(i * 3);
        let (code, _) = rest.split_at(3);
        t[i] = match std::str::from_utf8(code) {
            Ok(s) => s,
            Err(_) => "other",
        };
        i += 1;
    }
    t
}

const ALL_CODES: &str = concat!(
    "100101102103104105106107108109110111112113114115116117118119",
    "120121122123124125126127128129130131132133134135136137138139",
    "140141142143144145146147148149150151152153154155156157158159",
    "160161162163164165166167168169170171172173174175176177178179",
    "180181182183184185186187188189190191192193194195196197198199",
    "200201202203204205206207208209210211212213214215216217218219",
    "220221222223224225226227228229230231232233234235236237238239",
    "240241242243244245246247248249250251252253254255256257258259",
    "260261262263264265266267268269270271272273274275276277278279",
    "280281282283284285286287288289290291292293294295296297298299",
    "300301302303304305306307308309310311312313314315316317318319",
    "320321322323324325326327328329330331332333334335336337338339",
    "340341342343344345346347348349350351352353354355356357358359",
    "360361362363364365366367368369370371372373374375376377378379",
    "380381382383384385386387388389390391392393394395396397398399",
    "400401402403404405406407408409410411412413414415416417418419",
    "420421422423424425426427428429430431432433434435436437438439",
    "440441442443444445446447448449450451452453454455456457458459",
    "460461462463464465466467468469470471472473474475476477478479",
    "480481482483484485486487488489490491492493494495496497498499",
    "500501502503504505506507508509510511512513514515516517518519",
    "520521522523524525526527528529530531532533534535536537538539",
    "540541542543544545546547548549550551552553554555556557558559",
    "560561562563564565566567568569570571572573574575576577578579",
    "580581582583584585586587588589590591592593594595596597598599",
);

/// An upstream error kind as a label (a fixed set).
pub fn error_kind(e: &pingora::ErrorType) -> &'static str {
    use pingora::ErrorType as E;
    match e {
        E::ConnectTimedout => "connect_timeout",
        E::ConnectRefused => "connect_refused",
        E::ConnectNoRoute => "connect_no_route",
        E::ConnectError | E::BindError | E::SocketError => "connect_error",
        E::TLSHandshakeFailure | E::TLSHandshakeTimedout | E::InvalidCert | E::HandshakeError => {
            "tls"
        }
        E::ReadTimedout => "read_timeout",
        E::WriteTimedout => "write_timeout",
        E::ReadError => "read_error",
        E::WriteError => "write_error",
        E::ConnectionClosed => "closed",
        E::InvalidHTTPHeader | E::H1Error | E::H2Error | E::H2Downgrade | E::InvalidH2 => {
            "protocol"
        }
        _ => "other",
    }
}
