//! Where a spec comes from. Today: a TOML (or JSON) file plus the `*.toml` files of its
//! `instances_dir`. Relative paths in a file are made absolute against that file's own
//! directory here, so the spec that is compiled, stored or exported means the same wherever
//! it goes next.

use std::path::{Path, PathBuf};

use rpaas_spec::{Files, InstanceSpec, InstancesFile, Spec};

use crate::{ConfigError, ConfigErrors};

/// One instance's spec and where it was written (for error messages).
#[derive(Debug, Clone, PartialEq)]
pub struct Sourced {
    /// The file (or a label such as `api`) it came from.
    pub source: PathBuf,
    /// Its index among that source's `[[instance]]`s.
    pub position: usize,
    pub spec: InstanceSpec,
}

/// A spec ready to compile: the node part (its `instance` list is empty: instances are in
/// `instances`, each with its source).
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub source: PathBuf,
    pub spec: Spec,
    pub instances: Vec<Sourced>,
}

impl Document {
    /// A document from a spec that did not come from files (e.g. the store), labelled `source`.
    pub fn from_spec(source: impl Into<PathBuf>, mut spec: Spec) -> Self {
        let source = source.into();
        let instances = std::mem::take(&mut spec.instance)
            .into_iter()
            .enumerate()
            .map(|(position, spec)| Sourced {
                source: source.clone(),
                position,
                spec,
            })
            .collect();
        Self {
            source,
            spec,
            instances,
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigErrors> {
    let json = path.extension().is_some_and(|e| e == "json");
    let r = if json {
        rpaas_spec::from_json(text)
    } else {
        rpaas_spec::from_toml(text)
    };
    r.map_err(|e| ConfigError::new(path, e.path, e.reason).into())
}

fn read_text(path: &Path) -> Result<String, ConfigErrors> {
    std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(path, "-", format!("cannot read file: {e}")).into())
}

fn abs(base: &Path, p: &mut String) {
    if !p.is_empty() && Path::new(p.as_str()).is_relative() {
        *p = base.join(p.as_str()).display().to_string();
    }
}

fn abs_opt(base: &Path, p: &mut Option<String>) {
    if let Some(p) = p {
        abs(base, p);
    }
}

fn abs_files(base: &Path, f: &mut Option<Files>) {
    match f {
        Some(Files::One(p)) if p != "acme" => abs(base, p),
        Some(Files::Many(v)) => v.iter_mut().for_each(|p| abs(base, p)),
        _ => {}
    }
}

/// Makes the paths of an instance written in a file under `base` absolute.
pub fn absolutize_instance(base: &Path, i: &mut InstanceSpec) {
    abs_files(base, &mut i.cert);
    abs_files(base, &mut i.key);
    abs_opt(base, &mut i.upstream_ca);
    abs_opt(base, &mut i.connector_secret_file);
    for r in &mut i.restrict {
        abs_opt(base, &mut r.secret_file);
    }
}

fn absolutize_node(base: &Path, s: &mut Spec) {
    let n = &mut s.node;
    if n.log.as_deref() != Some("stdout") {
        abs_opt(base, &mut n.log);
    }
    abs_opt(base, &mut n.instances_dir);
    abs_opt(base, &mut n.data_dir);
    abs_opt(base, &mut n.geoip_db);
    abs_opt(base, &mut n.tunnel_cert);
    abs_opt(base, &mut n.tunnel_key);
    n.ips.rules.iter_mut().for_each(|p| abs(base, p));
    if let Some(c) = &mut s.control {
        abs_opt(base, &mut c.cert);
        abs_opt(base, &mut c.key);
        abs_opt(base, &mut c.cache);
        if let Some(store) = &mut c.store {
            if let Some(rest) = store.strip_prefix("sqlite:") {
                let mut p = rest.to_string();
                abs(base, &mut p);
                *store = format!("sqlite:{p}");
            }
        }
    }
    if let Some(a) = &mut s.acme {
        abs_opt(base, &mut a.ca);
        abs_opt(base, &mut a.dns_hook);
    }
}

/// Reads the config at `path` (TOML, or JSON when it ends in `.json`) and the files of its
/// `instances_dir`.
pub fn read(path: &Path) -> Result<Document, ConfigErrors> {
    let text = read_text(path)?;
    let mut spec: Spec = parse(path, &text)?;
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    absolutize_node(&base, &mut spec);
    let mut errors = Vec::new();
    let mut instances: Vec<Sourced> = std::mem::take(&mut spec.instance)
        .into_iter()
        .enumerate()
        .map(|(position, mut i)| {
            absolutize_instance(&base, &mut i);
            Sourced {
                source: path.to_path_buf(),
                position,
                spec: i,
            }
        })
        .collect();
    if let Some(dir) = spec.node.instances_dir.clone() {
        match std::fs::read_dir(&dir) {
            Ok(entries) => {
                let mut files: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                    .collect();
                files.sort();
                for f in files {
                    let fbase = f.parent().unwrap_or(Path::new(".")).to_path_buf();
                    match read_text(&f).and_then(|t| parse::<InstancesFile>(&f, &t)) {
                        Ok(fi) => {
                            for (position, mut i) in fi.instance.into_iter().enumerate() {
                                absolutize_instance(&fbase, &mut i);
                                instances.push(Sourced {
                                    source: f.clone(),
                                    position,
                                    spec: i,
                                });
                            }
                        }
                        Err(e) => errors.extend(e.0),
                    }
                }
            }
            Err(e) => errors.push(ConfigError::new(
                path,
                "node.instances_dir",
                format!("cannot read directory {dir}: {e}"),
            )),
        }
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    Ok(Document {
        source: path.to_path_buf(),
        spec,
        instances,
    })
}
