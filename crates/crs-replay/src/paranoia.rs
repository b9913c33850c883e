//! Each rule's paranoia level, from the `paranoia-level/N` tags of the installed CRS. A rule
//! without the tag (920181, 921200 in 3.3.4) takes the level of the section it sits in: the
//! rules after `SecRule TX:EXECUTING_PARANOIA_LEVEL "@lt N"` run from level N.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rpaas_crs::parse::{parse_file, Action, DirectiveKind, RuleDef, Selector};

/// Rule id to paranoia level (1..=4); rules without the tag are absent.
#[derive(Debug, Default, Clone)]
pub struct Levels(HashMap<u32, u8>);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LevelsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Parse(#[from] rpaas_crs::ParseError),
    #[error("no *.conf rule files in {0}")]
    NoRules(PathBuf),
}

impl Levels {
    /// Reads every `*.conf` in `dir`.
    pub fn load_dir(dir: &Path) -> Result<Self, LevelsError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| LevelsError::Io { path, source }
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "conf"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(LevelsError::NoRules(dir.to_path_buf()));
        }
        let mut levels = Self::default();
        for f in files {
            let bytes = std::fs::read(&f).map_err(io(&f))?;
            levels.add_file(&f.display().to_string(), &String::from_utf8_lossy(&bytes))?;
        }
        Ok(levels)
    }

    /// Adds the rules of one file's text.
    pub fn add_file(&mut self, name: &str, text: &str) -> Result<(), LevelsError> {
        let mut section = None;
        for d in parse_file(name, text)? {
            let actions = match &d.kind {
                DirectiveKind::Rule(r) => {
                    if let Some(n) = gate(r) {
                        section = Some(n);
                    }
                    &r.actions
                }
                DirectiveKind::Action(a) => a,
                _ => continue,
            };
            let id = actions.iter().find_map(|a| match a {
                Action::Id(i) => Some(*i),
                _ => None,
            });
            let level = actions.iter().find_map(|a| match a {
                Action::Tag(t) => t
                    .strip_prefix("paranoia-level/")
                    .and_then(|n| n.parse::<u8>().ok()),
                _ => None,
            });
            if let (Some(id), Some(level)) = (id, level.or(section)) {
                self.0.insert(id, level);
            }
        }
        Ok(())
    }

    pub fn get(&self, rule: u32) -> Option<u8> {
        self.0.get(&rule).copied()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `N` for CRS's section gate `SecRule TX:EXECUTING_PARANOIA_LEVEL "@lt N"`.
fn gate(r: &RuleDef) -> Option<u8> {
    let [v] = r.variables.as_slice() else {
        return None;
    };
    let is_level = v.collection == "TX"
        && matches!(&v.selector, Some(Selector::Name(n)) if n.eq_ignore_ascii_case("executing_paranoia_level"));
    (is_level && !v.count && r.operator.name == "lt" && !r.operator.negated)
        .then(|| r.operator.argument.trim().parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_tag_of_chain_starters_and_actions() {
        let mut l = Levels::default();
        l.add_file(
            "t.conf",
            r#"SecRule ARGS "@rx a" "id:942100,phase:2,block,tag:'attack-sqli',tag:'paranoia-level/1',chain"
    SecRule ARGS "@rx b" "t:none"
SecAction "id:942013,phase:1,pass,nolog,tag:'paranoia-level/3'"
SecRule ARGS "@rx c" "id:1,phase:2,pass"
SecRule TX:EXECUTING_PARANOIA_LEVEL "@lt 2" "id:920013,phase:1,pass,nolog,skipAfter:END"
SecRule &REQUEST_HEADERS:Transfer-Encoding "!@eq 0" "id:920181,phase:2,block,tag:'OWASP_CRS'"
SecRule ARGS "@rx d" "id:920200,phase:2,block,tag:'paranoia-level/1'""#,
        )
        .expect("parses");
        assert_eq!(l.get(942100), Some(1));
        assert_eq!(l.get(942013), Some(3));
        assert_eq!(l.get(1), None);
        // Untagged: the section's level; a tag still wins.
        assert_eq!(l.get(920181), Some(2));
        assert_eq!(l.get(920200), Some(1));
    }
}
