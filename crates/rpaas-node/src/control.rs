//! The node's side of the control plane: where its config comes from (the files, plus the
//! store's instances when `[control]` is set), and the hooks the API calls (apply a committed
//! change now, explain a request on this node, what this node saw).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rpaas_config::{Config, ConfigError, ConfigErrors, Document, Sourced};
use rpaas_control::{ExplainQuery, HookError, NodeHooks, Store};

use crate::lifecycle::Node;

/// Where the node's config comes from.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub store: Option<Store>,
    /// The last snapshot read from the store, on local disk (`[control] cache`).
    pub cache: Option<PathBuf>,
}

fn store_error(e: rpaas_control::StoreError) -> ConfigErrors {
    ConfigError::new(std::path::Path::new("store"), "-", e.to_string()).into()
}

/// What the cache file holds: the store's instances at one revision.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Cached {
    revision: i64,
    instances: Vec<CachedInstance>,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct CachedInstance {
    id: String,
    partner: String,
    spec: rpaas_config::spec::InstanceSpec,
}

impl Source {
    /// The files' part of the config.
    pub fn base(&self) -> Result<Document, ConfigErrors> {
        rpaas_config::source::read(&self.path)
    }

    /// The store's instances and revision; from the cache when the store cannot be reached
    /// (the node keeps serving what it last knew, across a restart too).
    async fn stored(&self, store: &Store) -> Result<(i64, Vec<CachedInstance>), ConfigErrors> {
        let read = async {
            let revision = store.revision().await?;
            let instances = store.instances().await?;
            Ok::<_, rpaas_control::StoreError>((revision, instances))
        };
        match read.await {
            Ok((revision, instances)) => {
                let instances: Vec<CachedInstance> = instances
                    .into_iter()
                    .map(|s| CachedInstance {
                        id: s.id,
                        partner: s.partner,
                        spec: s.spec,
                    })
                    .collect();
                if let Some(path) = &self.cache {
                    let cached = Cached {
                        revision,
                        instances,
                    };
                    if let Err(e) = write_cache(path, &cached) {
                        tracing::warn!(target: "rpaas::control", error = %e, path = %path.display(), "cannot write the snapshot cache");
                    }
                    return Ok((cached.revision, cached.instances));
                }
                Ok((revision, instances))
            }
            Err(e) => {
                let Some(path) = &self.cache else {
                    return Err(store_error(e));
                };
                match std::fs::read(path)
                    .map_err(|e| e.to_string())
                    .and_then(|b| serde_json::from_slice::<Cached>(&b).map_err(|e| e.to_string()))
                {
                    Ok(c) => {
                        tracing::warn!(target: "rpaas::control", event = "serving_cache", error = %e, revision = c.revision, "the control store is unavailable; using the cached snapshot");
                        Ok((c.revision, c.instances))
                    }
                    Err(why) => Err(ConfigError::new(
                        std::path::Path::new("store"),
                        "-",
                        format!(
                            "{e}; and the cache {} cannot be read: {why}",
                            path.display()
                        ),
                    )
                    .into()),
                }
            }
        }
    }

    /// The whole config (files and store) and the store revision it holds.
    pub async fn load(&self) -> Result<(Config, i64), ConfigErrors> {
        let (doc, revision) = self.document().await?;
        Ok((rpaas_config::compile(&doc)?, revision))
    }

    /// The whole config as written (files and store), before compiling.
    pub async fn document(&self) -> Result<(Document, i64), ConfigErrors> {
        let mut doc = self.base()?;
        let mut revision = 0;
        if let Some(store) = &self.store {
            let (r, instances) = self.stored(store).await?;
            revision = r;
            for s in instances {
                doc.instances.push(Sourced {
                    source: format!("store instance {}", s.id).into(),
                    position: 0,
                    spec: s.spec,
                });
            }
        }
        Ok((doc, revision))
    }
}

/// Writes the cache whole (a temporary file renamed into place).
fn write_cache(path: &std::path::Path, c: &Cached) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(c).map_err(std::io::Error::other)?)?;
    std::fs::rename(&tmp, path)
}

/// The hooks the API calls.
pub struct Hooks {
    pub node: Arc<Node>,
}

#[async_trait::async_trait]
impl NodeHooks for Hooks {
    fn base(&self) -> Result<Document, ConfigErrors> {
        self.node.source.base()
    }

    async fn apply(&self) -> Result<i64, HookError> {
        self.node.reload().await.map_err(|e| match e {
            crate::lifecycle::ReloadError::Config(c) => HookError::Config(c),
            other => HookError::Node(Box::new(other)),
        })?;
        Ok(self.applied_revision())
    }

    fn applied_revision(&self) -> i64 {
        self.node.shared.applied_revision.load(Ordering::Acquire)
    }

    fn explain(&self, instance: &str, q: &ExplainQuery) -> Option<serde_json::Value> {
        let snap = self.node.shared.snapshot.load_full();
        let inst = snap.instance_by_id(instance)?;
        let host = inst.cfg.hostnames.first()?.clone();
        let req = crate::admin::ExplainRequest {
            host: host.clone(),
            ip: q.ip,
            method: q.method.clone(),
            target: q.path.clone(),
            headers: q
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            sni: Some(host),
            listener: 0,
            body: None,
        };
        serde_json::to_value(crate::admin::explain_live(&self.node.shared, &req)).ok()
    }

    fn agents_seen(&self, instance: &str) -> u64 {
        self.node.shared.telemetry.as_ref().map_or(0, |t| {
            t.agents_seen(instance, rpaas_control::store::now_ms())
        })
    }

    async fn preview(
        &self,
        instance: &str,
        spec: &rpaas_config::spec::InstanceSpec,
    ) -> Result<(u64, u64, u64), HookError> {
        let shared = &self.node.shared;
        let samples = shared.telemetry.as_ref().map_or_else(Vec::new, |t| {
            t.samples(instance, rpaas_control::store::now_ms())
        });
        let (mut doc, _) = self.node.source.document().await?;
        for i in &mut doc.instances {
            if i.spec.id.as_deref() == Some(instance) {
                i.spec = spec.clone();
            }
        }
        let config = rpaas_config::compile(&doc)?;
        let policy = rpaas_admission::Policy::build(config, None)?;
        let now = std::time::Instant::now();
        let mut would = 0u64;
        for s in &samples {
            let headers: Vec<(String, String)> = vec![("host".into(), s.host.clone())];
            let e = rpaas_admission::explain(
                &policy,
                &rpaas_admission::Conn {
                    listener: 0,
                    peer: s.ip,
                    sni: Some(&s.host),
                },
                &rpaas_admission::Head {
                    method: &s.method,
                    target: s.target.as_bytes(),
                    authority: Some(&s.host),
                    headers: &headers,
                    protocol: "HTTP/1.1",
                },
                &rpaas_admission::Offline,
                None,
                now,
            );
            if e.reason.is_some() {
                would += 1;
            }
        }
        let now_refused = samples.iter().filter(|s| s.refused).count() as u64;
        Ok((samples.len() as u64, now_refused, would))
    }

    fn cert(&self, instance: &str) -> Option<serde_json::Value> {
        crate::acme::cert_status(&self.node.shared, instance)
    }

    fn node_id(&self) -> String {
        self.node
            .shared
            .snapshot
            .load()
            .config()
            .control
            .as_ref()
            .map_or_else(String::new, |c| c.node_id.clone())
    }
}
