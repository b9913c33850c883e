//! Rule actions: `name[:value]` pairs separated by commas; a value may be single-quoted, and
//! inside quotes `\'` and `\\` are escapes (as in ModSecurity's `msre_parse_generic`).

use super::variables::{parse_variables, Variable};

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Id(u32),
    Phase(u8),
    Disruptive(Disruptive),
    Capture,
    /// `t:name`, kept as written (`none` included) and resolved by the compiler.
    Transform(String),
    Chain,
    SetVar(SetVar),
    SkipAfter(String),
    Skip(u32),
    Ctl(Ctl),
    Msg(String),
    Tag(String),
    Ver(String),
    Rev(String),
    Severity(Severity),
    LogData(String),
    MultiMatch,
    Log,
    NoLog,
    AuditLog,
    NoAuditLog,
    Status(u16),
    ExpireVar(String),
    InitCol(String),
    /// Metadata with no effect on evaluation (`maturity`, `accuracy`, `redirect` target, ...).
    Meta {
        name: String,
        value: Option<String>,
    },
    /// An action this crate does not know; the compiler reports the rule as unsupported.
    Unknown {
        name: String,
        value: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disruptive {
    /// `block`: whatever `SecDefaultAction` says; with CRS in anomaly mode, `pass`.
    Block,
    Pass,
    Deny,
    Drop,
    /// `allow`, `allow:phase`, `allow:request`.
    Allow(AllowScope),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllowScope {
    /// Stop processing the whole transaction.
    All,
    /// Stop processing the current phase.
    Phase,
    /// Stop processing the request phases (1 and 2).
    Request,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Emergency,
    Alert,
    Critical,
    Error,
    Warning,
    Notice,
    Info,
    Debug,
}

impl Severity {
    fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_uppercase().as_str() {
            "0" | "EMERGENCY" => Self::Emergency,
            "1" | "ALERT" => Self::Alert,
            "2" | "CRITICAL" => Self::Critical,
            "3" | "ERROR" => Self::Error,
            "4" | "WARNING" => Self::Warning,
            "5" | "NOTICE" => Self::Notice,
            "6" | "INFO" => Self::Info,
            "7" | "DEBUG" => Self::Debug,
            _ => return None,
        })
    }
}

/// `setvar:collection.key=value` and friends; key and value may hold `%{...}` macros.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetVar {
    /// Lower-cased collection name (`tx`, `ip`, `global`).
    pub collection: String,
    pub key: String,
    pub op: SetVarOp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetVarOp {
    Set(String),
    Add(String),
    Sub(String),
    Delete,
}

/// An inclusive range of rule ids (`942100` or `942100-942199`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub first: u32,
    pub last: u32,
}

impl IdRange {
    pub fn contains(&self, id: u32) -> bool {
        (self.first..=self.last).contains(&id)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineMode {
    On,
    Off,
    DetectionOnly,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Ctl {
    RuleRemoveById(Vec<IdRange>),
    RuleRemoveByTag(String),
    RuleRemoveTargetById(Vec<IdRange>, Vec<Variable>),
    RuleRemoveTargetByTag(String, Vec<Variable>),
    RuleEngine(EngineMode),
    RequestBodyProcessor(String),
    ForceRequestBodyVariable(bool),
    /// Logging and engine knobs with no effect on detection (`auditLogParts`, `auditEngine`, ...).
    Other {
        name: String,
        value: String,
    },
}

/// Parses an action list.
pub fn parse_actions(text: &str) -> Result<Vec<Action>, String> {
    let mut out = Vec::new();
    for (name, value) in split_actions(text)? {
        out.push(action(&name, value)?);
    }
    Ok(out)
}

fn split_actions(text: &str) -> Result<Vec<(String, Option<String>)>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b',') {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        let start = i;
        while i < bytes.len() && bytes[i] != b':' && bytes[i] != b',' {
            i += 1;
        }
        let name = text[start..i].trim().to_string();
        if name.is_empty() || name.contains(|c: char| c.is_ascii_whitespace()) {
            return Err(format!("invalid action name {name:?}"));
        }
        if i >= bytes.len() || bytes[i] == b',' {
            out.push((name, None));
            continue;
        }
        i += 1; // ':'
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let value = if bytes.get(i) == Some(&b'\'') {
            i += 1;
            let mut v = Vec::new();
            loop {
                match bytes.get(i) {
                    None => return Err(format!("missing closing quote in action {name}")),
                    Some(b'\\') if matches!(bytes.get(i + 1), Some(b'\'' | b'\\')) => {
                        v.push(bytes[i + 1]);
                        i += 2;
                    }
                    Some(b'\'') => {
                        i += 1;
                        break;
                    }
                    Some(&c) => {
                        v.push(c);
                        i += 1;
                    }
                }
            }
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < bytes.len() && bytes[i] != b',' {
                return Err(format!("text after the closing quote of action {name}"));
            }
            String::from_utf8_lossy(&v).into_owned()
        } else {
            let vs = i;
            while i < bytes.len() && bytes[i] != b',' {
                i += 1;
            }
            text[vs..i].trim_end().to_string()
        };
        out.push((name, Some(value)));
    }
    Ok(out)
}

fn need(name: &str, value: Option<String>) -> Result<String, String> {
    value.ok_or_else(|| format!("action {name} needs a value"))
}

fn action(name: &str, value: Option<String>) -> Result<Action, String> {
    let lower = name.to_ascii_lowercase();
    Ok(match lower.as_str() {
        "id" => {
            let v = need(name, value)?;
            Action::Id(
                v.trim()
                    .parse()
                    .map_err(|_| format!("invalid rule id {v:?}"))?,
            )
        }
        "phase" => {
            let v = need(name, value)?;
            Action::Phase(match v.trim().to_ascii_lowercase().as_str() {
                "request" => 2,
                "response" => 4,
                "logging" => 5,
                p => match p.parse::<u8>() {
                    Ok(n @ 1..=5) => n,
                    _ => return Err(format!("invalid phase {v:?}")),
                },
            })
        }
        "block" => Action::Disruptive(Disruptive::Block),
        "pass" => Action::Disruptive(Disruptive::Pass),
        "deny" => Action::Disruptive(Disruptive::Deny),
        "drop" => Action::Disruptive(Disruptive::Drop),
        "allow" => Action::Disruptive(Disruptive::Allow(
            match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
                None | Some("") => AllowScope::All,
                Some("phase") => AllowScope::Phase,
                Some("request") => AllowScope::Request,
                Some(other) => return Err(format!("invalid allow scope {other:?}")),
            },
        )),
        "capture" => Action::Capture,
        "t" => Action::Transform(need(name, value)?.trim().to_string()),
        "chain" => Action::Chain,
        "setvar" => Action::SetVar(parse_setvar(&need(name, value)?)?),
        "skipafter" => Action::SkipAfter(need(name, value)?),
        "skip" => {
            let v = need(name, value)?;
            Action::Skip(
                v.trim()
                    .parse()
                    .map_err(|_| format!("invalid skip count {v:?}"))?,
            )
        }
        "ctl" => Action::Ctl(parse_ctl(&need(name, value)?)?),
        "msg" => Action::Msg(need(name, value)?),
        "tag" => Action::Tag(need(name, value)?),
        "ver" => Action::Ver(need(name, value)?),
        "rev" => Action::Rev(need(name, value)?),
        "severity" => {
            let v = need(name, value)?;
            Action::Severity(Severity::parse(v.trim()).ok_or(format!("invalid severity {v:?}"))?)
        }
        "logdata" => Action::LogData(need(name, value)?),
        "multimatch" => Action::MultiMatch,
        "log" => Action::Log,
        "nolog" => Action::NoLog,
        "auditlog" => Action::AuditLog,
        "noauditlog" => Action::NoAuditLog,
        "status" => {
            let v = need(name, value)?;
            Action::Status(
                v.trim()
                    .parse()
                    .map_err(|_| format!("invalid status {v:?}"))?,
            )
        }
        "expirevar" => Action::ExpireVar(need(name, value)?),
        "initcol" => Action::InitCol(need(name, value)?),
        "maturity"
        | "accuracy"
        | "redirect"
        | "sanitisearg"
        | "sanitisematched"
        | "sanitiserequestheader"
        | "sanitiseresponseheader"
        | "auditlogparts" => Action::Meta { name: lower, value },
        _ => Action::Unknown {
            name: name.to_string(),
            value,
        },
    })
}

/// Parses the value of `setvar`: `tx.x=1`, `tx.x=+5`, `tx.x=-1`, `!tx.x`, `tx.x`.
pub fn parse_setvar(text: &str) -> Result<SetVar, String> {
    let text = text.trim();
    let (delete, rest) = match text.strip_prefix('!') {
        Some(r) => (true, r),
        None => (false, text),
    };
    let (target, value) = match rest.find('=') {
        Some(pos) => (&rest[..pos], Some(&rest[pos + 1..])),
        None => (rest, None),
    };
    let Some((collection, key)) = target.trim().split_once('.') else {
        return Err(format!("setvar target {target:?} has no collection"));
    };
    if key.is_empty() {
        return Err(format!("setvar target {target:?} has no key"));
    }
    let op = match (delete, value) {
        (true, _) => SetVarOp::Delete,
        (false, None) => SetVarOp::Set("1".into()),
        (false, Some(v)) => match v.as_bytes().first() {
            Some(b'+') => SetVarOp::Add(v[1..].to_string()),
            Some(b'-') => SetVarOp::Sub(v[1..].to_string()),
            _ => SetVarOp::Set(v.to_string()),
        },
    };
    Ok(SetVar {
        collection: collection.to_ascii_lowercase(),
        key: key.to_string(),
        op,
    })
}

fn parse_ids(text: &str) -> Result<Vec<IdRange>, String> {
    let mut out = Vec::new();
    for part in text.split([' ', ',']).filter(|p| !p.is_empty()) {
        let bad = || format!("invalid rule id or range {part:?}");
        let range = match part.split_once('-') {
            Some((a, b)) => IdRange {
                first: a.trim().parse().map_err(|_| bad())?,
                last: b.trim().parse().map_err(|_| bad())?,
            },
            None => {
                let id = part.trim().parse().map_err(|_| bad())?;
                IdRange {
                    first: id,
                    last: id,
                }
            }
        };
        out.push(range);
    }
    if out.is_empty() {
        return Err("no rule id".into());
    }
    Ok(out)
}

fn parse_ctl(text: &str) -> Result<Ctl, String> {
    let Some((name, value)) = text.split_once('=') else {
        return Err(format!("ctl {text:?} has no value"));
    };
    let value = value.trim();
    Ok(match name.trim().to_ascii_lowercase().as_str() {
        "ruleremovebyid" => Ctl::RuleRemoveById(parse_ids(value)?),
        "ruleremovebytag" => Ctl::RuleRemoveByTag(value.to_string()),
        "ruleremovetargetbyid" => {
            let (ids, targets) = value
                .split_once(';')
                .ok_or(format!("ctl:ruleRemoveTargetById={value} has no target"))?;
            Ctl::RuleRemoveTargetById(parse_ids(ids)?, parse_variables(targets)?)
        }
        "ruleremovetargetbytag" => {
            let (tag, targets) = value
                .split_once(';')
                .ok_or(format!("ctl:ruleRemoveTargetByTag={value} has no target"))?;
            Ctl::RuleRemoveTargetByTag(tag.to_string(), parse_variables(targets)?)
        }
        "ruleengine" => Ctl::RuleEngine(match value.to_ascii_lowercase().as_str() {
            "on" => EngineMode::On,
            "off" => EngineMode::Off,
            "detectiononly" => EngineMode::DetectionOnly,
            _ => return Err(format!("invalid ctl:ruleEngine value {value:?}")),
        }),
        "requestbodyprocessor" => Ctl::RequestBodyProcessor(value.to_ascii_uppercase()),
        "forcerequestbodyvariable" => {
            Ctl::ForceRequestBodyVariable(value.eq_ignore_ascii_case("on"))
        }
        _ => Ctl::Other {
            name: name.trim().to_string(),
            value: value.to_string(),
        },
    })
}
