//! `[node.ips] crs`: the OWASP Core Rule Set, loaded from an installed copy (Debian's
//! `modsecurity-crs`, `/usr/share/modsecurity-crs`) at every paranoia level an instance uses,
//! with rpaas's Automate exclusion set between CRS's initialisation and its detection rules.
//!
//! Loading is the expensive part of a config compile (hundreds of regular expressions), and a
//! change through the API recompiles the config; so loaded sets are kept in a process-wide
//! cache keyed by the rule files (paths, sizes, modification times), the paranoia level and the
//! exclusion switch: a reload that does not touch the rules costs nothing.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

/// Where CRS's own initialisation ends: the exclusions go after this file.
const INIT_FILE: &str = "REQUEST-901-INITIALIZATION.conf";

/// The CRS in force on a node.
#[derive(Debug, Clone)]
pub struct Crs {
    /// The `rules` directory the files were read from.
    pub dir: PathBuf,
    /// `[node.ips] paranoia`: the level of instances that name none.
    pub paranoia: u8,
    /// Whether the shipped Automate exclusion set is loaded (`crs_exclusions`).
    pub exclusions: bool,
    sets: BTreeMap<u8, Arc<rpaas_crs::Loaded>>,
}

impl Crs {
    /// The rules for paranoia level `pl` (loaded for every level an instance uses).
    pub fn rules(&self, pl: u8) -> Option<&rpaas_crs::RuleSet> {
        self.sets.get(&pl).map(|l| &l.rules)
    }

    /// What the loaded sets could not run, by level.
    pub fn reports(&self) -> impl Iterator<Item = (u8, &rpaas_crs::LoadReport)> {
        self.sets.iter().map(|(pl, l)| (*pl, &l.report))
    }

    /// Rules loaded at the node's level.
    pub fn rule_count(&self) -> usize {
        self.sets
            .get(&self.paranoia)
            .or_else(|| self.sets.values().next())
            .map_or(0, |l| l.rules.rule_count())
    }
}

/// `crs = "/usr/share/modsecurity-crs"` or its `rules` directory.
pub(crate) fn rules_dir(p: &Path) -> PathBuf {
    let sub = p.join("rules");
    if sub.join(INIT_FILE).is_file() {
        sub
    } else {
        p.to_path_buf()
    }
}

type Key = (Vec<(PathBuf, u64, Option<SystemTime>)>, u8, bool);

fn cache() -> &'static Mutex<HashMap<Key, Arc<rpaas_crs::Loaded>>> {
    static C: OnceLock<Mutex<HashMap<Key, Arc<rpaas_crs::Loaded>>>> = OnceLock::new();
    C.get_or_init(Default::default)
}

/// The `*.conf` files of `dir` in name order (as `Include rules/*.conf` reads them).
fn conf_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "conf") && p.is_file())
        .collect();
    files.sort();
    if !files.iter().any(|f| f.ends_with(INIT_FILE)) {
        return Err(format!(
            "{} holds no {INIT_FILE}: point crs at a CRS 3.x installation (e.g. /usr/share/modsecurity-crs)",
            dir.display()
        ));
    }
    Ok(files)
}

/// Loads (or takes from the cache) the rules of `dir` at each level of `levels`.
pub(crate) fn load(
    dir: &Path,
    paranoia: u8,
    levels: &[u8],
    exclusions: bool,
) -> Result<Crs, String> {
    let files = conf_files(dir)?;
    let stamp: Vec<(PathBuf, u64, Option<SystemTime>)> = files
        .iter()
        .map(|f| {
            let m = std::fs::metadata(f).ok();
            (
                f.clone(),
                m.as_ref().map_or(0, |m| m.len()),
                m.and_then(|m| m.modified().ok()),
            )
        })
        .collect();
    let mut sets = BTreeMap::new();
    let mut texts: Option<Vec<(String, String)>> = None;
    for &pl in levels {
        let key = (stamp.clone(), pl, exclusions);
        let cached = cache()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        let loaded = match cached {
            Some(l) => l,
            None => {
                if texts.is_none() {
                    texts = Some(read_all(&files, exclusions)?);
                }
                let t = texts.as_deref().unwrap_or_default();
                let l = Arc::new(
                    rpaas_crs::load_files(t, dir, &rpaas_crs::Setup::paranoia(pl))
                        .map_err(|e| e.to_string())?,
                );
                cache()
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, l.clone());
                l
            }
        };
        sets.insert(pl, loaded);
    }
    Ok(Crs {
        dir: dir.to_path_buf(),
        paranoia,
        exclusions,
        sets,
    })
}

fn read_all(files: &[PathBuf], exclusions: bool) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::with_capacity(files.len() + 1);
    for f in files {
        let bytes = std::fs::read(f).map_err(|e| format!("cannot read {}: {e}", f.display()))?;
        out.push((
            f.display().to_string(),
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
        if exclusions && f.ends_with(INIT_FILE) {
            out.push((
                "rpaas:automate-exclusions.conf".to_string(),
                rpaas_crs::automate::AUTOMATE_EXCLUSIONS.to_string(),
            ));
        }
    }
    Ok(out)
}
