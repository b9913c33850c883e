//! ACME in the node: the `rpaas_acme` manager keeps a certificate pair (ECDSA and RSA) issued
//! and renewed for every instance with `cert = "acme"`; each new pair is swapped into the
//! certificate store live (no connection dropped). TLS-ALPN-01 validations arrive on the
//! node's own TLS listeners: the accept loop sends a ClientHello that offers `acme-tls/1` to
//! [`Acme::acceptor`], which answers with the pending challenge certificate and nothing else.
//! Until a pair is issued the instance serves a self-signed one (and its status says so).

use std::path::PathBuf;
use std::sync::Arc;

use openssl::ssl::SslAcceptor;
use rpaas_acme::store::CertName;
use rpaas_acme::{AcmeConfig, Challenges, DirStore, Manager, Options, Subject};
use rpaas_config::{CertSource, Config};

use crate::certs::CertStore;
use crate::tls::CertKey;

/// The node's ACME machinery.
pub struct Acme {
    pub manager: Manager,
    pub challenges: Arc<Challenges>,
    pub acceptor: SslAcceptor,
    certs: Arc<CertStore>,
    /// With `wildcard = true`: the one `*.base_domain` subject.
    wildcard: Option<Subject>,
    /// The instances the wildcard pair is served for (set at every sync).
    covered: Arc<arc_swap::ArcSwap<Vec<String>>>,
}

/// Stored names of wildcard certificates start with this (see `CertName::wildcard`).
const WILDCARD_PREFIX: &str = "wildcard.";

/// The wildcard subject of `[acme] wildcard = true`, which needs `[control] base_domain`.
fn wildcard_subject(
    config: &Config,
    acme: &AcmeConfig,
) -> Result<Option<Subject>, (String, String)> {
    if !acme.wildcard {
        return Ok(None);
    }
    let base = config
        .control
        .as_ref()
        .and_then(|c| c.base_domain.as_deref())
        .ok_or_else(|| {
            (
                "acme.wildcard".to_string(),
                "needs [control] base_domain (the certificate is *.base_domain)".to_string(),
            )
        })?;
    Subject::wildcard(base)
        .map(Some)
        .map_err(|e| ("control.base_domain".to_string(), e.to_string()))
}

impl std::fmt::Debug for Acme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Acme")
    }
}

fn pair_key(u: &rpaas_acme::CertUpdate) -> Result<CertKey, crate::tls::CertError> {
    CertKey::load_pairs(&[
        (u.ecdsa.chain_pem.as_bytes(), u.ecdsa.key_pem.as_bytes()),
        (u.rsa.chain_pem.as_bytes(), u.rsa.key_pem.as_bytes()),
    ])
}

/// The `[acme]` table as the ACME crate reads it; the error names the field.
pub fn acme_config(config: &Config) -> Result<Option<AcmeConfig>, (String, String)> {
    let Some(spec) = &config.spec.acme else {
        return Ok(None);
    };
    let value = serde_json::to_value(spec).map_err(|e| ("acme".to_string(), e.to_string()))?;
    let mut c: AcmeConfig =
        serde_json::from_value(value).map_err(|e| ("acme".into(), e.to_string()))?;
    // `ca` and `dns_hook` are relative to the config file, like every other path in it.
    if let Some(dir) = config.source.parent() {
        c.resolve_paths(dir);
    }
    if let Some(e) = c.validate().into_iter().next() {
        return Err((format!("acme.{}", e.path), e.reason));
    }
    Ok(Some(c))
}

/// What `rpaas check` (and start) verifies about `[acme]` beyond its own validation: where
/// the state is kept, the wildcard's base domain, the CA file, the DNS hook, a plain listener
/// for http-01. The error names the field.
pub fn check(config: &Config) -> Result<(), (String, String)> {
    let Some(acme) = acme_config(config)? else {
        return Ok(());
    };
    if config.control.is_none() && config.spec.node.data_dir.is_none() {
        return Err((
            "node.data_dir".into(),
            "is required with [acme] and no [control] store (the account and certificates \
             are kept there)"
                .into(),
        ));
    }
    wildcard_subject(config, &acme)?;
    if let Some(ca) = &acme.ca {
        let pem = std::fs::read(ca).map_err(|e| {
            (
                "acme.ca".to_string(),
                format!("cannot read {}: {e}", ca.display()),
            )
        })?;
        if openssl::x509::X509::stack_from_pem(&pem).map_or(true, |c| c.is_empty()) {
            return Err((
                "acme.ca".into(),
                format!("{} holds no PEM certificate", ca.display()),
            ));
        }
    }
    if let Some(hook) = &acme.dns_hook {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(hook).map_err(|e| {
            (
                "acme.dns_hook".to_string(),
                format!("{}: {e}", hook.display()),
            )
        })?;
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            return Err((
                "acme.dns_hook".into(),
                format!("{} is not an executable file", hook.display()),
            ));
        }
    }
    if acme.challenge == rpaas_acme::ChallengeKind::Http01 && config.http_listeners.is_empty() {
        return Err((
            "acme.challenge".into(),
            "http-01 needs a [[listener]] with tls = \"none\" (the CA asks on port 80)".into(),
        ));
    }
    Ok(())
}

impl Acme {
    /// Builds the manager for `config` (not started); `None` without `[acme]`. With a control
    /// store (a fleet's PostgreSQL, or the node's SQLite) the ACME state lives there, so every
    /// node answers challenges and serves what any of them obtained; without one, under
    /// `<node.data_dir>/acme`.
    pub fn new(
        config: &Config,
        certs: Arc<CertStore>,
        control: Option<rpaas_control::Store>,
    ) -> Result<Option<Acme>, (String, String)> {
        let Some(acme) = acme_config(config)? else {
            return Ok(None);
        };
        let store: Arc<dyn rpaas_acme::store::AcmeStore> = match control {
            Some(s) => Arc::new(s),
            None => {
                let dir = config
                    .spec
                    .node
                    .data_dir
                    .as_ref()
                    .map(|d| PathBuf::from(d).join("acme"))
                    .ok_or_else(|| {
                        (
                            "node.data_dir".to_string(),
                            "is required with [acme] and no [control] store (the account and \
                             certificates are kept there)"
                                .to_string(),
                        )
                    })?;
                Arc::new(DirStore::open(&dir).map_err(|e| ("node.data_dir".into(), e.to_string()))?)
            }
        };
        let wildcard = wildcard_subject(config, &acme)?;
        let challenges = Challenges::shared(store.clone());
        let sink_certs = certs.clone();
        let covered = Arc::new(arc_swap::ArcSwap::from_pointee(Vec::<String>::new()));
        let sink_covered = covered.clone();
        let on_update: rpaas_acme::UpdateSink = Arc::new(move |u| match pair_key(u) {
            Ok(ck) => {
                if u.name.as_str().starts_with(WILDCARD_PREFIX) {
                    for id in sink_covered.load().iter() {
                        sink_certs.replace(id, ck.clone());
                    }
                } else {
                    sink_certs.replace(u.name.as_str(), ck);
                }
                tracing::info!(target: "rpaas::acme", event = "certificate_installed", instance = %u.name.as_str(), not_after = u.not_after, "ACME certificate swapped in");
            }
            Err(e) => {
                tracing::error!(target: "rpaas::acme", instance = %u.name.as_str(), error = %e, "the CA's certificate cannot be loaded; the old one stays")
            }
        });
        let options = Options {
            node_id: config.control.as_ref().map_or_else(
                || Options::default().node_id,
                |c| format!("{}:{}", c.node_id, std::process::id()),
            ),
            // While another node of the fleet issues, look for its result every few seconds
            // (one store read per waiting name), so every node serves it soon after.
            lock_retry: std::time::Duration::from_secs(5),
            ..Options::default()
        };
        let manager = Manager::new(acme, store, challenges.clone(), on_update, options)
            .map_err(|e| ("acme".to_string(), e.to_string()))?;
        let responder_challenges = challenges.clone();
        let responder: crate::tls::AcmeTlsResponder = Arc::new(move |name: &str| {
            let c = responder_challenges.tls_alpn01(name)?;
            CertKey::load_pairs(&[(c.cert_pem.as_bytes(), c.key_pem.as_bytes())]).ok()
        });
        let acceptor = crate::tls::acme_tls_acceptor(responder)
            .map_err(|e| ("acme".to_string(), e.to_string()))?;
        Ok(Some(Acme {
            manager,
            challenges,
            acceptor,
            certs,
            wildcard,
            covered,
        }))
    }

    /// Tells the manager which instances need certificates (after every config change, once
    /// the certificate store holds the config's entries), and serves the pairs already issued.
    pub fn sync(&self, config: &Config) {
        let mut subjects = Vec::new();
        let mut covered = Vec::new();
        for inst in &config.instances {
            if inst.cert != CertSource::Acme {
                continue;
            }
            // Under the wildcard: served the one `*.base_domain` pair, no order of its own.
            if let Some(w) = &self.wildcard {
                if !inst.hostnames.is_empty() && inst.hostnames.iter().all(|h| w.covers(h)) {
                    covered.push(inst.id.clone());
                    continue;
                }
            }
            let subject = CertName::new(inst.id.clone())
                .map_err(|e| e.to_string())
                .and_then(|n| Subject::new(n, &inst.hostnames).map_err(|e| e.to_string()));
            match subject {
                Ok(s) => {
                    if let Some(cur) = self.manager.current(&s.name) {
                        if let Ok(ck) = pair_key(&cur) {
                            self.certs.replace(&inst.id, ck);
                        }
                    }
                    subjects.push(s);
                }
                Err(e) => {
                    tracing::error!(target: "rpaas::acme", instance = %inst.id, error = %e, "cannot manage this instance's certificate")
                }
            }
        }
        if let Some(w) = &self.wildcard {
            if let Some(ck) = self
                .manager
                .current(&w.name)
                .and_then(|c| pair_key(&c).ok())
            {
                for id in &covered {
                    self.certs.replace(id, ck.clone());
                }
            }
            subjects.push(w.clone());
        }
        self.covered.store(Arc::new(covered));
        self.manager.set_subjects(subjects);
    }

    /// The subject that holds instance `id`'s certificate: the wildcard for an instance under
    /// it, else its own.
    fn subject_name(&self, id: &str) -> Option<CertName> {
        if let Some(w) = &self.wildcard {
            if self.covered.load().iter().any(|c| c == id) {
                return Some(w.name.clone());
            }
        }
        CertName::new(id.to_string()).ok()
    }

    /// Orders a new pair for instance `id` now; `false` if ACME does not manage it.
    pub fn force_renew(&self, id: &str) -> bool {
        self.subject_name(id)
            .is_some_and(|n| self.manager.force_renew(&n))
    }

    /// Revokes instance `id`'s pair at the CA and orders a new one now (the wildcard's, for
    /// an instance under it).
    pub async fn revoke(&self, id: &str) -> Result<usize, String> {
        let name = self
            .subject_name(id)
            .ok_or_else(|| format!("{id:?} is not an instance id"))?;
        self.manager.revoke(&name).await.map_err(|e| e.to_string())
    }

    /// The certificate status of instance `id`, if ACME manages it.
    pub fn status(&self, id: &str) -> Option<rpaas_acme::CertStatus> {
        self.manager.status(&self.subject_name(id)?)
    }
}

/// Seconds since the epoch of the earliest `notAfter` among `ck`'s leaf certificates.
fn not_after(ck: &CertKey) -> Option<u64> {
    let epoch = openssl::asn1::Asn1Time::from_unix(0).ok()?;
    ck.pairs
        .iter()
        .filter_map(|p| {
            let leaf = p.chain.first()?;
            let d = epoch.diff(leaf.not_after()).ok()?;
            Some(d.days as i64 * 86_400 + d.secs as i64)
        })
        .min()
        .and_then(|s| u64::try_from(s).ok())
}

/// The certificate status of instance `id` on this node, as the API shows it.
pub fn cert_status(shared: &crate::state::Shared, id: &str) -> Option<serde_json::Value> {
    if let Some(s) = shared.acme.as_ref().and_then(|a| a.status(id)) {
        return serde_json::to_value(s).ok();
    }
    let ck = shared.certs.get(id)?;
    let t = not_after(&ck).unwrap_or(0);
    let s = if ck.self_signed {
        rpaas_acme::CertStatus::self_signed(t)
    } else {
        rpaas_acme::CertStatus::file(t)
    };
    serde_json::to_value(s).ok()
}

/// Sets the days-to-expiry gauge of every served instance (instance ids come from the
/// operator's config, never from clients).
pub fn publish_expiry(shared: &crate::state::Shared) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    shared.metrics.cert_days.reset();
    let snap = shared.snapshot.load();
    for i in &snap.instances {
        let Some(ck) = shared.certs.get(&i.cfg.id) else {
            continue;
        };
        if let Some(t) = not_after(&ck) {
            shared
                .metrics
                .cert_days
                .with_label_values(&[i.cfg.id.as_str()])
                .set((t as f64 - now as f64) / 86_400.0);
        }
    }
}
