//! `File*` → validated types. Each check pushes a [`ConfigError`] naming file, key and reason;
//! a load fails if any was pushed, so `rpaas check` lists every problem at once.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rpaas_spec::{DurationSpec, Files, InstanceSpec, ListenerSpec, NodeSpec};

use crate::source::Document;
use crate::{
    CertSource, ClientIpSource, Config, ConfigError, ConfigErrors, Instance, IpNet, Listener,
    LogTarget, Node, Timeouts, TlsProfile, Upstream,
};

/// Automate holds requests open for minutes; 300 s is the floor the issue asks for.
const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(300);

/// Reads and validates the config at `path` (and its `instances_dir`).
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    compile(&crate::source::read(path)?)
}

/// Validates a spec and builds the typed config: every problem at once, each with its source,
/// field path and reason. Reads the files the spec names (certificates are checked to exist,
/// secrets and rule files are read) but resolves no names and opens no sockets.
pub fn compile(doc: &Document) -> Result<Config, ConfigErrors> {
    let path = doc.source.as_path();
    let spec = &doc.spec;
    let mut v = Validator { errors: Vec::new() };
    let mut node = v.node(path, &spec.node);
    v.node_policy(path, &spec.node, &mut node);
    node.ips = v.node_ips(path, &spec.node.ips);
    node.limits = v.limits(path, &spec.node.limits);
    node.tunnel = v.tunnel_node(path, &spec.node);
    let rule_ids: std::collections::HashSet<u32> = node.ips.rules.iter().map(|r| r.id).collect();
    let listeners: Vec<Listener> = spec
        .listener
        .iter()
        .enumerate()
        .filter(|(_, l)| l.tls.as_deref() != Some("none"))
        .filter_map(|(i, l)| v.listener(path, i, l))
        .collect();
    let http_listeners: Vec<crate::HttpListener> = spec
        .listener
        .iter()
        .enumerate()
        .filter(|(_, l)| l.tls.as_deref() == Some("none"))
        .filter_map(|(i, l)| v.http_listener(path, i, l))
        .collect();
    if spec
        .listener
        .iter()
        .all(|l| l.tls.as_deref() == Some("none"))
    {
        v.err(
            path,
            "listener",
            "at least one TLS [[listener]] is required (tls = \"none\" only answers ACME HTTP-01 and redirects)",
        );
    }
    let control = spec
        .control
        .as_ref()
        .and_then(|c| v.control(path, c, &spec.node));

    let mut instances = Vec::new();
    let mut ids: HashMap<String, PathBuf> = HashMap::new();
    let mut hosts: HashMap<String, String> = HashMap::new();
    for si in &doc.instances {
        let (file, i) = (si.source.as_path(), si.position);
        let Some(inst) = v.instance(file, i, &si.spec, &node, &rule_ids) else {
            continue;
        };
        let key = format!("instance[{i}]");
        if let Some(prev) = ids.insert(inst.id.clone(), file.to_path_buf()) {
            v.err(
                file,
                format!("{key}.id"),
                format!(
                    "instance id {:?} is already used in {}",
                    inst.id,
                    prev.display()
                ),
            );
        }
        for h in &inst.hostnames {
            if let Some(owner) = hosts.insert(h.clone(), inst.id.clone()) {
                v.err(
                    file,
                    format!("{key}.hostnames"),
                    format!("hostname {h:?} is already claimed by instance {owner:?}"),
                );
            }
        }
        instances.push(inst);
    }
    for (i, l) in listeners.iter().enumerate() {
        if let Some(h) = &l.default_host {
            if !hosts.contains_key(h) {
                v.err(
                    path,
                    format!("listener[{i}].default_host"),
                    format!("{h:?} is not a hostname of any instance"),
                );
            }
        }
    }
    let mut relay_listen: HashMap<(bool, std::net::SocketAddr), String> = HashMap::new();
    for inst in &instances {
        let udp = inst.udp.iter().map(|u| (true, u.listen));
        let tcp = inst.tcp.iter().map(|t| (false, t.listen));
        for (is_udp, a) in udp.chain(tcp) {
            if a.port() == 0 {
                continue;
            }
            if let Some(prev) = relay_listen.insert((is_udp, a), inst.id.clone()) {
                v.err(
                    &inst.source,
                    inst.key(if is_udp { "udp" } else { "tcp" }),
                    format!("{a} is already a relay of instance {prev:?}"),
                );
            }
            if !is_udp && listeners.iter().any(|l| l.address == a) {
                v.err(
                    &inst.source,
                    inst.key("tcp"),
                    format!("{a} is also an HTTPS [[listener]]"),
                );
            }
            if is_udp && node.tunnel.as_ref().is_some_and(|t| t.address == a) {
                v.err(
                    &inst.source,
                    inst.key("udp"),
                    format!("{a} is also the node's tunnel address"),
                );
            }
        }
    }
    let mut seen = HashMap::new();
    for (i, l) in listeners.iter().enumerate() {
        // Port 0 asks the kernel for a fresh port each time, so it never collides.
        if l.address.port() == 0 {
            continue;
        }
        if let Some(prev) = seen.insert(l.address, i) {
            v.err(
                path,
                format!("listener[{i}].address"),
                format!("{} is already used by listener[{prev}]", l.address),
            );
        }
    }
    if let (true, Some((dir, pl, exclusions))) = (v.errors.is_empty(), &node.ips.crs_spec) {
        let mut levels: Vec<u8> = instances.iter().filter_map(|i| i.crs).collect();
        levels.push(*pl);
        levels.sort_unstable();
        levels.dedup();
        match crate::crs::load(dir, *pl, &levels, *exclusions) {
            Ok(c) => node.ips.crs = Some(std::sync::Arc::new(c)),
            Err(e) => v.err(path, "node.ips.crs", e),
        }
    }
    if !v.errors.is_empty() {
        return Err(ConfigErrors(v.errors));
    }
    let mut node_spec = spec.clone();
    node_spec.instance.clear();
    Ok(Config {
        source: path.to_path_buf(),
        spec: node_spec,
        node,
        listeners,
        http_listeners,
        instances,
        control,
    })
}

pub(crate) struct Validator {
    pub(crate) errors: Vec<ConfigError>,
}

impl Validator {
    pub(crate) fn err(&mut self, file: &Path, key: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(ConfigError::new(file, key, reason));
    }

    /// Paths were made absolute where the spec was read (`source`); a spec from elsewhere
    /// (the API, the store) names absolute paths.
    pub(crate) fn resolve(&self, p: &str) -> PathBuf {
        PathBuf::from(p)
    }

    pub(crate) fn duration(
        &mut self,
        file: &Path,
        key: &str,
        d: &Option<DurationSpec>,
        default: Duration,
    ) -> Duration {
        match d {
            None => default,
            Some(DurationSpec::Seconds(s)) if *s > 0 => Duration::from_secs(*s as u64),
            Some(DurationSpec::Seconds(s)) => {
                self.err(file, key, format!("must be positive, got {s}"));
                default
            }
            Some(DurationSpec::Text(t)) => match humantime::parse_duration(t) {
                Ok(d) if !d.is_zero() => d,
                Ok(_) => {
                    self.err(file, key, "must be positive");
                    default
                }
                Err(e) => {
                    self.err(
                        file,
                        key,
                        format!("bad duration {t:?}: {e} (write e.g. \"30s\" or \"5m\")"),
                    );
                    default
                }
            },
        }
    }

    fn header_names(&mut self, file: &Path, key: &str, names: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        for (i, n) in names.iter().enumerate() {
            if n.is_empty() || !n.bytes().all(is_tchar) {
                self.err(
                    file,
                    format!("{key}[{i}]"),
                    format!("{n:?} is not a header name"),
                );
            } else {
                out.push(n.to_ascii_lowercase());
            }
        }
        out
    }

    fn node(&mut self, file: &Path, n: &NodeSpec) -> Node {
        let admin = match &n.admin {
            None => None,
            Some(a) => match a.parse::<SocketAddr>() {
                Ok(sa) => Some(sa),
                Err(_) => {
                    self.err(
                        file,
                        "node.admin",
                        format!("{a:?} is not an address like 127.0.0.1:9901"),
                    );
                    None
                }
            },
        };
        let log = match n.log.as_deref() {
            None | Some("stdout") => LogTarget::Stdout,
            Some("") => {
                self.err(file, "node.log", "must be \"stdout\" or a file path");
                LogTarget::Stdout
            }
            Some(p) => LogTarget::File(self.resolve(p)),
        };
        let strip_headers = match &n.strip_headers {
            Some(v) => self.header_names(file, "node.strip_headers", v),
            None => rpaas_harden::DEFAULT_STRIP
                .iter()
                .map(|s| s.to_string())
                .collect(),
        };
        let deny_methods = match &n.deny_methods {
            Some(v) => {
                let mut out = Vec::new();
                for (i, m) in v.iter().enumerate() {
                    if m.is_empty() || !m.bytes().all(is_tchar) {
                        self.err(
                            file,
                            format!("node.deny_methods[{i}]"),
                            format!("{m:?} is not an HTTP method"),
                        );
                    } else {
                        out.push(m.to_ascii_uppercase());
                    }
                }
                out
            }
            None => rpaas_harden::DEFAULT_DENY_METHODS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        };
        let hsts = match n.hsts.as_deref() {
            None => Some(rpaas_harden::DEFAULT_HSTS.to_string()),
            Some("") | Some("off") => None,
            Some(v) => {
                if v.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                    Some(v.to_string())
                } else {
                    self.err(file, "node.hsts", "must be printable ASCII");
                    None
                }
            }
        };
        let threads = match n.threads {
            None => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            Some(t) if (1..=256).contains(&t) => t as usize,
            Some(t) => {
                self.err(file, "node.threads", format!("must be 1..=256, got {t}"));
                1
            }
        };
        Node {
            admin,
            log,
            strip_headers,
            deny_methods,
            hsts,
            drain_timeout: self.duration(
                file,
                "node.drain_timeout",
                &n.drain_timeout,
                Duration::from_secs(10),
            ),
            threads,
            handshake_timeout: self.duration(
                file,
                "node.handshake_timeout",
                &n.handshake_timeout,
                Duration::from_secs(10),
            ),
            keepalive_timeout: self.duration(
                file,
                "node.keepalive_timeout",
                &n.keepalive_timeout,
                Duration::from_secs(60),
            ),
            header_timeout: self.duration(
                file,
                "node.header_timeout",
                &n.header_timeout,
                Duration::from_secs(15),
            ),
            body_read_timeout: self.duration(
                file,
                "node.body_read_timeout",
                &n.body_read_timeout,
                Duration::from_secs(60),
            ),
            resolve_interval: self.duration(
                file,
                "node.resolve_interval",
                &n.resolve_interval,
                Duration::from_secs(30),
            ),
            geoip_db: None,
            default_countries: Vec::new(),
            unknown_country: rpaas_policy::UnknownCountry::Deny,
            deny: Vec::new(),
            networks: Default::default(),
            ips: crate::ips::NodeIps {
                crs_spec: None,
                crs: None,
                rules: Vec::new(),
                rule_files: Vec::new(),
                builtin: true,
                body_limit: 65536,
                response_limit: 65536,
            },
            tunnel: None,
            limits: crate::ips::Limits {
                login: None,
                classes: Vec::new(),
                ban: None,
                ban_action: crate::ips::BanAction::Forbidden,
                max_tracked: 100_000,
            },
        }
    }

    /// A `tls = "none"` listener: an address, and nothing TLS or proxy-related.
    fn http_listener(
        &mut self,
        file: &Path,
        i: usize,
        l: &ListenerSpec,
    ) -> Option<crate::HttpListener> {
        let key = format!("listener[{i}]");
        let address = match l.address.as_deref().map(str::parse::<SocketAddr>) {
            Some(Ok(a)) => a,
            Some(Err(_)) | None => {
                self.err(
                    file,
                    format!("{key}.address"),
                    "is required, an address like 0.0.0.0:80",
                );
                return None;
            }
        };
        if l.http2.is_some() || l.default_host.is_some() {
            self.err(
                file,
                format!("{key}.tls"),
                "a tls = \"none\" listener proxies nothing: it takes only an address",
            );
        }
        Some(crate::HttpListener { address })
    }

    fn listener(&mut self, file: &Path, i: usize, l: &ListenerSpec) -> Option<Listener> {
        let key = format!("listener[{i}]");
        let before = self.errors.len();
        let address = match l.address.as_deref() {
            None => {
                self.err(file, format!("{key}.address"), "is required");
                None
            }
            Some(a) => match a.parse::<SocketAddr>() {
                Ok(sa) => Some(sa),
                Err(_) => {
                    self.err(
                        file,
                        format!("{key}.address"),
                        format!("{a:?} is not an address like 0.0.0.0:443"),
                    );
                    None
                }
            },
        };
        let tls = match l.tls.as_deref().unwrap_or("intermediate") {
            "modern" => TlsProfile::Modern,
            "intermediate" => TlsProfile::Intermediate,
            "legacy" => TlsProfile::Legacy,
            other => {
                self.err(
                    file,
                    format!("{key}.tls"),
                    format!(
                        "unknown TLS profile {other:?} (expected \"modern\", \"intermediate\", \"legacy\" or \"none\")"
                    ),
                );
                TlsProfile::Intermediate
            }
        };
        let client_ip = match l.client_ip.as_deref().unwrap_or("socket") {
            "socket" => ClientIpSource::Socket,
            "x-forwarded-for" => ClientIpSource::XForwardedFor,
            "proxy-protocol" => ClientIpSource::ProxyProtocol,
            other => {
                self.err(
                    file,
                    format!("{key}.client_ip"),
                    format!(
                        "unknown client_ip source {other:?} (expected \"socket\", \"x-forwarded-for\" or \"proxy-protocol\")"
                    ),
                );
                ClientIpSource::Socket
            }
        };
        let trusted_proxies =
            self.cidrs(file, &format!("{key}.trusted_proxies"), &l.trusted_proxies);
        if client_ip != ClientIpSource::Socket && l.trusted_proxies.is_empty() {
            self.err(
                file,
                format!("{key}.trusted_proxies"),
                "is required when client_ip is not \"socket\" (who may supply the client address?)",
            );
        }
        let default_host = l.default_host.as_ref().map(|h| h.to_ascii_lowercase());
        if self.errors.len() > before {
            return None;
        }
        Some(Listener {
            address: address?,
            tls,
            client_ip,
            trusted_proxies,
            http2: l.http2.unwrap_or(true),
            default_host,
        })
    }

    pub(crate) fn cidrs(&mut self, file: &Path, key: &str, list: &[String]) -> Vec<IpNet> {
        let mut out = Vec::new();
        for (i, s) in list.iter().enumerate() {
            match parse_cidr(s) {
                Ok(n) => out.push(n),
                Err(reason) => self.err(file, format!("{key}[{i}]"), reason),
            }
        }
        out
    }

    fn instance(
        &mut self,
        file: &Path,
        i: usize,
        f: &InstanceSpec,
        node: &Node,
        rule_ids: &std::collections::HashSet<u32>,
    ) -> Option<Instance> {
        let key = format!("instance[{i}]");
        let before = self.errors.len();
        let id = match f.id.as_deref() {
            None => {
                self.err(file, format!("{key}.id"), "is required");
                String::new()
            }
            Some(id) => {
                if id.is_empty()
                    || id.len() > 64
                    || !id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                {
                    self.err(
                        file,
                        format!("{key}.id"),
                        format!("{id:?} must be 1-64 characters of [A-Za-z0-9_-]"),
                    );
                }
                id.to_string()
            }
        };
        if f.hostnames.is_empty() {
            self.err(
                file,
                format!("{key}.hostnames"),
                "at least one hostname is required",
            );
        }
        let mut hostnames = Vec::new();
        for (j, h) in f.hostnames.iter().enumerate() {
            let lower = h.to_ascii_lowercase();
            if !is_hostname(&lower) {
                self.err(
                    file,
                    format!("{key}.hostnames[{j}]"),
                    format!("{h:?} is not a DNS hostname"),
                );
            } else if hostnames.contains(&lower) {
                self.err(
                    file,
                    format!("{key}.hostnames[{j}]"),
                    format!("{h:?} is listed twice"),
                );
            } else {
                hostnames.push(lower);
            }
        }
        let cert = self.cert_source(file, &key, f);
        let upstream = match f.upstream.as_deref() {
            None => {
                self.err(file, format!("{key}.upstream"), "is required");
                None
            }
            Some(u) => match parse_upstream(u) {
                Ok(up) => Some(up),
                Err(reason) => {
                    self.err(file, format!("{key}.upstream"), reason);
                    None
                }
            },
        };
        let upstream_host = f.upstream_host.as_ref().map(|h| h.to_ascii_lowercase());
        if let Some(h) = &upstream_host {
            if !is_hostname(h) && h.parse::<IpAddr>().is_err() {
                self.err(
                    file,
                    format!("{key}.upstream_host"),
                    format!("{h:?} is not a hostname"),
                );
            }
        }
        let upstream_ca = f.upstream_ca.as_deref().map(|p| self.resolve(p));
        if let Some(p) = &upstream_ca {
            if !p.is_file() {
                self.err(
                    file,
                    format!("{key}.upstream_ca"),
                    format!("file {} does not exist", p.display()),
                );
            }
        }
        let bind = match f.bind.as_deref() {
            None => None,
            Some(b) => match b.parse::<IpAddr>() {
                Ok(ip) => Some(ip),
                Err(_) => {
                    self.err(
                        file,
                        format!("{key}.bind"),
                        format!("{b:?} is not an IP address"),
                    );
                    None
                }
            },
        };
        let timeouts = Timeouts {
            connect: self.duration(
                file,
                &format!("{key}.connect_timeout"),
                &f.connect_timeout,
                Duration::from_secs(10),
            ),
            read: self.duration(
                file,
                &format!("{key}.read_timeout"),
                &f.read_timeout,
                DEFAULT_READ_TIMEOUT,
            ),
            write: self.duration(
                file,
                &format!("{key}.write_timeout"),
                &f.write_timeout,
                DEFAULT_READ_TIMEOUT,
            ),
            idle: self.duration(
                file,
                &format!("{key}.idle_timeout"),
                &f.idle_timeout,
                Duration::from_secs(60),
            ),
        };
        let strip_headers = match &f.strip_headers {
            Some(v) => self.header_names(file, &format!("{key}.strip_headers"), v),
            None => Vec::new(),
        };
        let hsts = match f.hsts.as_deref() {
            None => None,
            Some("") | Some("off") => Some(None),
            Some(v) => Some(Some(v.to_string())),
        };
        let policy = self.instance_policy(file, &key, f, node);
        let ips = self.instance_ips(file, &key, &f.ips, rule_ids);
        let crs = self.instance_crs(file, &key, &f.ips, &node.ips);
        let (connector_secret, udp, tcp) = self.relays(file, &key, f, node.tunnel.as_ref());
        if self.errors.len() > before {
            return None;
        }
        Some(Instance {
            policy,
            ips,
            crs,
            connector_secret,
            udp,
            tcp,
            id,
            hostnames,
            cert,
            upstream: upstream?,
            upstream_host,
            upstream_ca,
            upstream_verify: !f.dangerous_skip_upstream_verify.unwrap_or(false),
            bind,
            timeouts,
            strip_headers,
            hsts,
            source: file.to_path_buf(),
            position: i,
            spec: f.clone(),
        })
    }
}

impl Validator {
    /// `cert`/`key`: absent (self-signed), `"acme"`, one file each, or lists of the same length
    /// (ECDSA and RSA side by side).
    fn cert_source(&mut self, file: &Path, key: &str, f: &InstanceSpec) -> CertSource {
        let acme = matches!(&f.cert, Some(Files::One(c)) if c == "acme");
        match (&f.cert, &f.key) {
            (None, None) => CertSource::SelfSigned,
            (Some(_), _) if acme => {
                if f.key.is_some() {
                    self.err(
                        file,
                        format!("{key}.key"),
                        "cert = \"acme\" takes no key: the node makes and keeps its own",
                    );
                }
                CertSource::Acme
            }
            (Some(_), None) => {
                self.err(file, format!("{key}.key"), "cert is set but key is not");
                CertSource::SelfSigned
            }
            (None, Some(_)) => {
                self.err(file, format!("{key}.cert"), "key is set but cert is not");
                CertSource::SelfSigned
            }
            (Some(c), Some(k)) => {
                let (c, k) = (c.list(), k.list());
                if c.len() != k.len() || c.is_empty() {
                    self.err(
                        file,
                        format!("{key}.key"),
                        format!(
                            "{} certificate file(s) but {} key file(s): list one key per certificate, in the same order",
                            c.len(),
                            k.len()
                        ),
                    );
                    return CertSource::SelfSigned;
                }
                let mut pairs = Vec::new();
                for (i, (c, k)) in c.iter().zip(&k).enumerate() {
                    let suffix = if matches!(f.cert, Some(Files::Many(_))) {
                        format!("[{i}]")
                    } else {
                        String::new()
                    };
                    for (name, p) in [("cert", c), ("key", k)] {
                        if !Path::new(p).is_file() {
                            self.err(
                                file,
                                format!("{key}.{name}{suffix}"),
                                format!("file {p} does not exist"),
                            );
                        }
                    }
                    pairs.push((self.resolve(c), self.resolve(k)));
                }
                CertSource::Files(pairs)
            }
        }
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A DNS hostname: labels of letters, digits and hyphens, not starting or ending with a hyphen.
pub(crate) fn is_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && h.parse::<IpAddr>().is_err()
}

/// Parses `a.b.c.d/n`, `v6/n`, or a bare address (a host route).
pub fn parse_cidr(s: &str) -> Result<IpNet, String> {
    if let Ok(n) = s.parse::<IpNet>() {
        if n.trunc() != n {
            return Err(format!(
                "{s:?} has host bits set (did you mean {}?)",
                n.trunc()
            ));
        }
        return Ok(n);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    Err(format!(
        "{s:?} is not a CIDR like 203.0.113.0/24 or 2001:db8::/32"
    ))
}

fn parse_upstream(u: &str) -> Result<Upstream, String> {
    let (tls, rest, default_port) = if let Some(r) = u.strip_prefix("https://") {
        (true, r, 443)
    } else if let Some(r) = u.strip_prefix("http://") {
        (false, r, 80)
    } else {
        return Err(format!("{u:?} must start with http:// or https://"));
    };
    let rest = rest.trim_end_matches('/');
    if rest.contains(['/', '?', '#', '@']) || rest.is_empty() {
        return Err(format!(
            "{u:?} must be scheme://host[:port] with no path, query or userinfo"
        ));
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (h, p) = v6
            .split_once(']')
            .ok_or_else(|| format!("{u:?} has an unclosed IPv6 bracket"))?;
        let port = match p.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| format!("{u:?} has a bad port"))?,
            None if p.is_empty() => default_port,
            None => return Err(format!("{u:?} has junk after the IPv6 address")),
        };
        (h.to_string(), port)
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse::<u16>()
                    .map_err(|_| format!("{u:?} has a bad port {p:?}"))?,
            ),
            None => (rest.to_string(), default_port),
        }
    };
    if port == 0 {
        return Err(format!("{u:?}: port 0 is not allowed"));
    }
    let host = host.to_ascii_lowercase();
    if host.parse::<IpAddr>().is_err() && !is_hostname(&host) {
        return Err(format!("{u:?}: {host:?} is not a hostname or IP address"));
    }
    Ok(Upstream { tls, host, port })
}
