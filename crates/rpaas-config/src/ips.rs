//! Validation of the IPS keys: `[node.ips]` rule files and inspection limits, `[node.limits]`
//! rate limits and bans, and per instance `[instance.ips]` mode, threshold, disabled rules and
//! scoped exclusions.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rpaas_ips::limits::{BanPolicy, Rate};
use rpaas_ips::{Exclusion, Mode, Rule, Settings};
use rpaas_policy::{PathPattern, TrafficClass};

use crate::validate::Validator;
use rpaas_spec::{InstanceIpsSpec, LimitsSpec, NodeIpsSpec};

/// Login endpoints' rate per client when `[node.limits] login` is not set.
pub(crate) const DEFAULT_LOGIN_RATE: &str = "20/1m";

/// `[node.ips]`.
#[derive(Debug, Clone)]
pub struct NodeIps {
    /// Every rule in force (shipped and extra files), parsed.
    pub rules: Vec<Rule>,
    pub rule_files: Vec<PathBuf>,
    pub builtin: bool,
    /// Bytes of a request body given to body rules.
    pub body_limit: usize,
    /// Bytes of an error response given to leakage rules.
    pub response_limit: usize,
    /// `crs`, `paranoia`, `crs_exclusions` as written (the rules are loaded once every
    /// instance's level is known).
    pub crs_spec: Option<(PathBuf, u8, bool)>,
    /// The CRS in force, loaded at every level an instance uses.
    pub crs: Option<std::sync::Arc<crate::crs::Crs>>,
}

/// What a banned client gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanAction {
    /// A 403 with reason `ban`.
    Forbidden,
    /// The connection is closed without an answer.
    Close,
}

/// `[node.limits]`.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Per client, on login endpoints.
    pub login: Option<Rate>,
    /// Per client and traffic class.
    pub classes: Vec<(TrafficClass, Rate)>,
    pub ban: Option<BanPolicy>,
    pub ban_action: BanAction,
    /// Clients tracked at most (rate buckets and ban table each).
    pub max_tracked: usize,
}

impl Validator {
    pub(crate) fn node_ips(&mut self, file: &Path, f: &NodeIpsSpec) -> NodeIps {
        let builtin = f.builtin.unwrap_or(true);
        let mut rules = Vec::new();
        if builtin {
            match rpaas_ips::parse_rules("builtin.toml", rpaas_ips::BUILTIN_RULES) {
                Ok(r) => rules.extend(r),
                Err(errs) => {
                    for e in errs {
                        self.err(file, "node.ips.builtin", e.to_string());
                    }
                }
            }
        }
        let mut rule_files = Vec::new();
        for (i, p) in f.rules.iter().enumerate() {
            let path = self.resolve(p);
            match std::fs::read_to_string(&path) {
                Ok(text) => match rpaas_ips::parse_rules(&path.display().to_string(), &text) {
                    Ok(r) => rules.extend(r),
                    Err(errs) => {
                        for e in errs {
                            let key = match e.rule {
                                Some(id) => format!("rule {id}"),
                                None => "-".to_string(),
                            };
                            self.err(&path, key, e.reason);
                        }
                    }
                },
                Err(e) => self.err(
                    file,
                    format!("node.ips.rules[{i}]"),
                    format!("cannot read {}: {e}", path.display()),
                ),
            }
            rule_files.push(path);
        }
        let mut seen = HashSet::new();
        for r in &rules {
            if !seen.insert(r.id) {
                self.err(
                    file,
                    "node.ips.rules",
                    format!(
                        "rule id {} is defined twice (builtin ids are 1xxxxx and 9xxxxx)",
                        r.id
                    ),
                );
            }
        }
        let limit = |v: &mut Self, key: &str, x: Option<i64>| -> usize {
            match x {
                None => 65536,
                Some(n) if (0..=16 << 20).contains(&n) => n as usize,
                Some(n) => {
                    v.err(file, key, format!("{n} is out of range 0..=16777216 bytes"));
                    65536
                }
            }
        };
        let paranoia = match f.paranoia {
            None => 1,
            Some(n) if (1..=4).contains(&n) => n as u8,
            Some(n) => {
                self.err(
                    file,
                    "node.ips.paranoia",
                    format!("{n} is not a CRS paranoia level 1..=4"),
                );
                1
            }
        };
        if f.crs.is_none() && (f.paranoia.is_some() || f.crs_exclusions.is_some()) {
            self.err(
                file,
                if f.paranoia.is_some() {
                    "node.ips.paranoia"
                } else {
                    "node.ips.crs_exclusions"
                },
                "only used with node.ips.crs (the CRS rules directory)",
            );
        }
        let crs_spec = f.crs.as_ref().and_then(|p| {
            let dir = crate::crs::rules_dir(&self.resolve(p));
            if dir.is_dir() {
                Some((dir, paranoia, f.crs_exclusions.unwrap_or(true)))
            } else {
                self.err(
                    file,
                    "node.ips.crs",
                    format!(
                        "{} is not a directory (install modsecurity-crs, or name a CRS 3.x rules directory)",
                        dir.display()
                    ),
                );
                None
            }
        });
        NodeIps {
            crs_spec,
            crs: None,
            rules,
            rule_files,
            builtin,
            body_limit: limit(self, "node.ips.body_limit", f.body_limit),
            response_limit: limit(self, "node.ips.response_limit", f.response_limit),
        }
    }

    fn rate(&mut self, file: &Path, key: &str, s: &str) -> Option<Rate> {
        match Rate::parse(s) {
            Ok(r) => Some(r),
            Err(reason) => {
                self.err(file, key, reason.to_string());
                None
            }
        }
    }

    pub(crate) fn limits(&mut self, file: &Path, f: &LimitsSpec) -> Limits {
        let login = match f.login.as_deref() {
            None => Rate::parse(DEFAULT_LOGIN_RATE).ok(),
            Some("off") => None,
            Some(s) => self.rate(file, "node.limits.login", s),
        };
        let mut classes = Vec::new();
        for (name, r) in &f.classes {
            let key = format!("node.limits.classes.{name}");
            match TrafficClass::parse(name) {
                Some(c) => {
                    if let Some(rate) = self.rate(file, &key, r) {
                        classes.push((c, rate));
                    }
                }
                None => self.err(file, key, format!("unknown traffic class {name:?}")),
            }
        }
        let after = match f.ban_after {
            None => Some(20),
            Some(0) => None,
            Some(n) if (1..=1_000_000).contains(&n) => Some(n as u32),
            Some(n) => {
                self.err(
                    file,
                    "node.limits.ban_after",
                    format!("{n}: use 0 (no bans) or 1..=1000000"),
                );
                None
            }
        };
        let window = self.duration(
            file,
            "node.limits.ban_window",
            &f.ban_window,
            Duration::from_secs(60),
        );
        let duration = self.duration(
            file,
            "node.limits.ban_time",
            &f.ban_time,
            Duration::from_secs(600),
        );
        let ban_action = match f.ban_action.as_deref() {
            None | Some("403") => BanAction::Forbidden,
            Some("close") => BanAction::Close,
            Some(other) => {
                self.err(
                    file,
                    "node.limits.ban_action",
                    format!("{other:?} must be \"403\" or \"close\""),
                );
                BanAction::Forbidden
            }
        };
        let max_tracked = match f.max_tracked {
            None => 100_000,
            Some(n) if (1_000..=10_000_000).contains(&n) => n as usize,
            Some(n) => {
                self.err(
                    file,
                    "node.limits.max_tracked",
                    format!("{n} is out of range 1000..=10000000"),
                );
                100_000
            }
        };
        Limits {
            login,
            classes,
            ban: after.map(|after| BanPolicy {
                after,
                window,
                duration,
            }),
            ban_action,
            max_tracked,
        }
    }

    /// `[instance.ips] crs` and `paranoia`: the instance's CRS level, `None` for no CRS.
    pub(crate) fn instance_crs(
        &mut self,
        file: &Path,
        key: &str,
        f: &InstanceIpsSpec,
        node: &NodeIps,
    ) -> Option<u8> {
        let Some((_, node_pl, _)) = &node.crs_spec else {
            if f.crs == Some(true) || f.paranoia.is_some() {
                self.err(
                    file,
                    format!(
                        "{key}.ips.{}",
                        if f.crs == Some(true) {
                            "crs"
                        } else {
                            "paranoia"
                        }
                    ),
                    "the node runs no CRS (set [node.ips] crs)",
                );
            }
            return None;
        };
        let pl = match f.paranoia {
            None => *node_pl,
            Some(n) if (1..=4).contains(&n) => n as u8,
            Some(n) => {
                self.err(
                    file,
                    format!("{key}.ips.paranoia"),
                    format!("{n} is not a CRS paranoia level 1..=4"),
                );
                *node_pl
            }
        };
        f.crs.unwrap_or(true).then_some(pl)
    }

    pub(crate) fn instance_ips(
        &mut self,
        file: &Path,
        key: &str,
        f: &InstanceIpsSpec,
        ids: &HashSet<u32>,
    ) -> Settings {
        let mode = match f.mode.as_deref() {
            None | Some("block") => Mode::Block,
            Some("detect") => Mode::Detect,
            Some("off") => Mode::Off,
            Some(other) => {
                self.err(
                    file,
                    format!("{key}.ips.mode"),
                    format!("{other:?} must be \"block\", \"detect\" or \"off\""),
                );
                Mode::Block
            }
        };
        let threshold = match f.threshold {
            None => 5,
            Some(n) if (1..=10_000).contains(&n) => n as u32,
            Some(n) => {
                self.err(
                    file,
                    format!("{key}.ips.threshold"),
                    format!("{n} is out of range 1..=10000"),
                );
                5
            }
        };
        let rule_ids = |v: &mut Self, k: String, list: &[i64]| -> Vec<u32> {
            let mut out = Vec::new();
            for (i, id) in list.iter().enumerate() {
                match u32::try_from(*id).ok().filter(|id| ids.contains(id)) {
                    Some(id) => out.push(id),
                    None => v.err(file, format!("{k}[{i}]"), format!("no rule has id {id}")),
                }
            }
            out
        };
        let disabled = rule_ids(self, format!("{key}.ips.disable"), &f.disable)
            .into_iter()
            .collect();
        let mut exclusions = Vec::new();
        for (i, e) in f.exclude.iter().enumerate() {
            let ek = format!("{key}.ips.exclude[{i}]");
            let rules = rule_ids(self, format!("{ek}.rules"), &e.rules);
            if e.rules.is_empty() {
                self.err(
                    file,
                    format!("{ek}.rules"),
                    "list the rule ids this exclusion is for",
                );
            }
            let classes = e.classes.as_ref().map(|l| {
                l.iter()
                    .enumerate()
                    .filter_map(|(j, c)| {
                        let parsed = TrafficClass::parse(c);
                        if parsed.is_none() {
                            self.err(
                                file,
                                format!("{ek}.classes[{j}]"),
                                format!("unknown traffic class {c:?}"),
                            );
                        }
                        parsed
                    })
                    .collect()
            });
            let paths = e.paths.as_ref().map(|l| {
                l.iter()
                    .enumerate()
                    .filter_map(|(j, p)| match PathPattern::parse(p) {
                        Ok(p) => Some(p),
                        Err(r) => {
                            self.err(file, format!("{ek}.paths[{j}]"), r.to_string());
                            None
                        }
                    })
                    .collect()
            });
            exclusions.push(Exclusion {
                rules,
                classes,
                paths,
                args: e.args.clone(),
                ..Default::default()
            });
        }
        // The shipped Automate exclusions (technician commands, Control Center SOAP) after
        // the instance's own (rpaas-ips `automate`).
        exclusions.extend(rpaas_ips::automate::exclusions());
        Settings {
            mode,
            threshold,
            disabled,
            exclusions,
        }
    }
}
