//! The certificate store: each instance's certificates by instance id, behind one `ArcSwap`.
//! The SNI callback reads it on every handshake; replacing one instance's certificate (a
//! reload that changed its files, an ACME renewal) swaps in a map that shares every other
//! instance's entry, and touches no other state.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use rpaas_config::{CertSource, Instance};

use crate::tls::CertKey;

/// Where an entry came from, to tell whether a reload must load it again.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    /// These files with these modification times and sizes.
    Files(Vec<(PathBuf, Option<SystemTime>, u64)>),
    /// Made here for these hostnames.
    SelfSigned(Vec<String>),
    /// Issued by ACME (or a self-signed stand-in until it is).
    Acme(Vec<String>),
}

/// One instance's certificates.
#[derive(Debug, Clone)]
pub struct CertEntry {
    pub cert: Arc<CertKey>,
    origin: Origin,
}

/// Certificates by instance id.
#[derive(Debug, Default)]
pub struct CertStore {
    map: ArcSwap<HashMap<String, CertEntry>>,
}

fn stamp(p: &PathBuf) -> (PathBuf, Option<SystemTime>, u64) {
    let m = std::fs::metadata(p).ok();
    (
        p.clone(),
        m.as_ref().and_then(|m| m.modified().ok()),
        m.map_or(0, |m| m.len()),
    )
}

fn origin(inst: &Instance) -> Origin {
    match &inst.cert {
        CertSource::Files(pairs) => Origin::Files(
            pairs
                .iter()
                .flat_map(|(c, k)| [stamp(c), stamp(k)])
                .collect(),
        ),
        CertSource::SelfSigned => Origin::SelfSigned(inst.hostnames.clone()),
        CertSource::Acme => Origin::Acme(inst.hostnames.clone()),
    }
}

/// Loads (or makes) the certificates of `inst`; the error names the field.
pub fn load(inst: &Instance) -> Result<CertKey, (String, String)> {
    match &inst.cert {
        CertSource::Files(pairs) => {
            let mut pems = Vec::new();
            for (i, (c, k)) in pairs.iter().enumerate() {
                let field = |f: &str| {
                    if pairs.len() > 1 {
                        format!("{f}[{i}]")
                    } else {
                        f.to_string()
                    }
                };
                let cert = std::fs::read(c)
                    .map_err(|e| (field("cert"), format!("cannot read {}: {e}", c.display())))?;
                let key = std::fs::read(k)
                    .map_err(|e| (field("key"), format!("cannot read {}: {e}", k.display())))?;
                pems.push((cert, key));
            }
            let refs: Vec<(&[u8], &[u8])> = pems
                .iter()
                .map(|(c, k)| (c.as_slice(), k.as_slice()))
                .collect();
            CertKey::load_pairs(&refs).map_err(|r| ("cert".to_string(), r.to_string()))
        }
        CertSource::SelfSigned => CertKey::self_signed(&inst.hostnames).map_err(|e| {
            (
                "cert".to_string(),
                format!("cannot make a self-signed certificate: {e}"),
            )
        }),
        CertSource::Acme => CertKey::self_signed_dual(&inst.hostnames).map_err(|e| {
            (
                "cert".to_string(),
                format!("cannot make a self-signed certificate: {e}"),
            )
        }),
    }
}

/// A certificate that cannot be loaded: the instance's index, the field, the reason.
pub type CertProblem = (usize, String, String);

impl CertStore {
    /// The certificates of instance `id`.
    pub fn get(&self, id: &str) -> Option<Arc<CertKey>> {
        self.map.load().get(id).map(|e| e.cert.clone())
    }

    /// The certificates `instances` need, reusing the current entry of every instance whose
    /// certificate source did not change (self-signed ones are not rotated by a reload).
    /// Nothing is stored: [`CertStore::commit`] does that once the whole config is good.
    pub fn prepare(
        &self,
        instances: &[Instance],
    ) -> Result<HashMap<String, CertEntry>, Vec<CertProblem>> {
        let current = self.map.load();
        let mut next = HashMap::new();
        let mut errors = Vec::new();
        for (i, inst) in instances.iter().enumerate() {
            let origin = origin(inst);
            if let Some(e) = current.get(&inst.id).filter(|e| e.origin == origin) {
                next.insert(inst.id.clone(), e.clone());
                continue;
            }
            if inst.cert == CertSource::SelfSigned {
                tracing::warn!(
                    target: "rpaas::certs",
                    instance = %inst.id,
                    "no cert/key configured: serving a self-signed certificate"
                );
            }
            match load(inst) {
                Ok(c) => {
                    next.insert(
                        inst.id.clone(),
                        CertEntry {
                            cert: Arc::new(c),
                            origin,
                        },
                    );
                }
                Err((field, reason)) => errors.push((i, field, reason)),
            }
        }
        if errors.is_empty() {
            Ok(next)
        } else {
            Err(errors)
        }
    }

    /// Makes `next` the store.
    pub fn commit(&self, next: HashMap<String, CertEntry>) {
        self.map.store(Arc::new(next));
    }

    /// Replaces one instance's certificates (e.g. an ACME issuance), sharing every other entry.
    pub fn replace(&self, id: &str, cert: CertKey) {
        self.map.rcu(|m| {
            let mut m = HashMap::clone(m);
            if let Some(e) = m.get_mut(id) {
                e.cert = Arc::new(cert.clone());
            }
            m
        });
    }
}
