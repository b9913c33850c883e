//! Loads the OWASP Core Rule Set 3.3 (SecLang) as data and evaluates it against requests.
//!
//! Owns: the SecLang subset parser ([`parse`]), ModSecurity's transformations ([`transform`])
//! and operators ([`operator`]), the compiler to a [`RuleSet`], and the evaluator of request
//! phases 1 and 2 ([`RuleSet::evaluate`]) that reports matched rules, the inbound anomaly score
//! and whether CRS 949110 would block.
//!
//! Must not: read the clock, touch the network, or do I/O outside [`load_dir`] /
//! [`load_files`] (which read the rules and their `.data` files). Rules are never copied into
//! this crate: the caller points at an installed CRS. Response phases (3, 4) and logging (5) are
//! parsed and reported, not run. `IP` and `GLOBAL` collections live for one request only.
#![forbid(unsafe_code)]

pub mod automate;
mod bytes;
mod compile;
mod eval;
pub mod macros;
pub mod operator;
pub mod parse;
pub mod request;
pub mod transform;

use std::path::{Path, PathBuf};

pub use compile::{LoadReport, RuleSet, Unsupported};
pub use eval::{Evaluation, RuleMatch, EXCERPT_MAX};
pub use parse::ParseError;
pub use request::{BodyProcessor, RequestInput};

/// Why a rule set could not be loaded. Rules that merely cannot run are not errors: they are
/// listed in the [`LoadReport`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("no *.conf rule files in {0}")]
    NoRules(PathBuf),
    #[error("invalid setup: {0}")]
    Setup(String),
}

/// What `crs-setup.conf` would say; injected as `SecAction`s ahead of the rules (ids 900000,
/// 900001, 900110, 900990), so the CRS 901 initialisation rules see a configured CRS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setup {
    /// `tx.paranoia_level`, 1..=4.
    pub paranoia_level: u8,
    /// `tx.executing_paranoia_level` (defaults to the paranoia level); must not be lower.
    pub executing_paranoia_level: Option<u8>,
    /// `tx.inbound_anomaly_score_threshold`.
    pub inbound_threshold: i64,
    /// `tx.outbound_anomaly_score_threshold`.
    pub outbound_threshold: i64,
}

impl Setup {
    pub fn paranoia(level: u8) -> Self {
        Self {
            paranoia_level: level,
            executing_paranoia_level: None,
            inbound_threshold: 5,
            outbound_threshold: 4,
        }
    }

    fn validate(&self) -> Result<(), LoadError> {
        let ok = |l: u8| (1..=4).contains(&l);
        if !ok(self.paranoia_level) {
            return Err(LoadError::Setup(format!(
                "paranoia level {} is not 1..=4",
                self.paranoia_level
            )));
        }
        if let Some(e) = self.executing_paranoia_level {
            if !ok(e) || e < self.paranoia_level {
                return Err(LoadError::Setup(format!(
                    "executing paranoia level {e} must be 1..=4 and not below the paranoia level"
                )));
            }
        }
        if self.inbound_threshold < 1 || self.outbound_threshold < 1 {
            return Err(LoadError::Setup(
                "anomaly thresholds must be positive".into(),
            ));
        }
        Ok(())
    }

    /// The SecLang this setup stands for.
    pub fn to_seclang(&self) -> String {
        let mut s = format!(
            "SecAction \"id:900000,phase:1,pass,t:none,nolog,setvar:tx.paranoia_level={}\"\n",
            self.paranoia_level
        );
        if let Some(e) = self.executing_paranoia_level {
            s.push_str(&format!(
                "SecAction \"id:900001,phase:1,pass,t:none,nolog,setvar:tx.executing_paranoia_level={e}\"\n"
            ));
        }
        s.push_str(&format!(
            "SecAction \"id:900110,phase:1,pass,t:none,nolog,\
             setvar:tx.inbound_anomaly_score_threshold={},\
             setvar:tx.outbound_anomaly_score_threshold={}\"\n",
            self.inbound_threshold, self.outbound_threshold
        ));
        s.push_str(
            "SecAction \"id:900990,phase:1,pass,t:none,nolog,setvar:tx.crs_setup_version=334\"\n",
        );
        s
    }
}

/// A loaded rule set and what was left out of it.
#[derive(Debug)]
pub struct Loaded {
    pub rules: RuleSet,
    pub report: LoadReport,
}

/// Loads every `*.conf` in `dir` (in name order, as `Include rules/*.conf` does) at a paranoia
/// level with CRS's default thresholds.
pub fn load_dir(dir: &Path, paranoia: u8) -> Result<Loaded, LoadError> {
    load_dir_with(dir, &Setup::paranoia(paranoia))
}

/// [`load_dir`] with a full [`Setup`].
pub fn load_dir_with(dir: &Path, setup: &Setup) -> Result<Loaded, LoadError> {
    let io = |source| LoadError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "conf") && p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(LoadError::NoRules(dir.to_path_buf()));
    }
    let mut texts = Vec::with_capacity(files.len());
    for f in &files {
        let text = std::fs::read(f).map_err(|source| LoadError::Io {
            path: f.clone(),
            source,
        })?;
        texts.push((
            f.display().to_string(),
            String::from_utf8_lossy(&text).into_owned(),
        ));
    }
    load_files(&texts, dir, setup)
}

/// Loads rules from `(file name, text)` pairs; `data_dir` anchors `@pmFromFile`.
pub fn load_files(
    files: &[(String, String)],
    data_dir: &Path,
    setup: &Setup,
) -> Result<Loaded, LoadError> {
    setup.validate()?;
    let mut directives = parse::parse_file("<crs-setup>", &setup.to_seclang())?;
    for (name, text) in files {
        directives.extend(parse::parse_file(name, text)?);
    }
    let (rules, report) = compile::compile(&directives, data_dir);
    Ok(Loaded { rules, report })
}
