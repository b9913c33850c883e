//! The rule language (TOML) and its parser. A rule file holds `[[rule]]` tables:
//!
//! ```toml
//! [[rule]]
//! id = 100001                       # unique number
//! msg = "ScreenConnect setup wizard auth bypass (CVE-2024-1709)"
//! severity = "critical"             # critical=5 error=4 warning=3 notice=2, or score = N
//! targets = ["path"]                # see `Target`
//! transforms = ["lowercase"]        # see `Transform`, applied in order
//! op = "regex"                      # regex | contains | prefix | suffix | equals | length_gt | count_gt
//! pattern = '/setupwizard\.aspx/.+' # or patterns = [...] for contains; value = N for length/count
//! classes = ["other"]               # optional: only for these traffic classes
//! methods = ["POST"]                # optional: only for these methods
//! action = "block"                  # score (default) | block | log
//! phase = "request"                 # request (default) | response
//! negate = false                    # match when the operator does NOT match
//! unless_args = ["InstallerToken"]  # skip requests that carry any of these arguments
//! tags = ["cve", "screenconnect"]
//! ```

use std::collections::HashSet;

use rpaas_policy::TrafficClass;
use serde::Deserialize;

use crate::transform::Transform;

/// Where a rule looks.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    Method,
    /// The canonical path (decoded, lowercase).
    Path,
    /// The path as received, before decoding.
    RawPath,
    /// The raw query string.
    Query,
    /// Values of query, form, JSON and multipart arguments (undecoded where the wire encodes).
    Args,
    ArgNames,
    /// Every request header value.
    Headers,
    HeaderNames,
    /// One header, by lowercase name.
    Header(String),
    Cookies,
    CookieNames,
    /// Argument values in the query strings of URL-valued headers (Referer, Origin, ...).
    UrlArgs,
    UrlArgNames,
    /// Paths of URL-valued headers; whole values that are not absolute URLs.
    UrlPaths,
    /// The (bounded) request body as text.
    Body,
    /// The (bounded) response body as text (phase = "response").
    ResponseBody,
    /// Every response header value (phase = "response").
    ResponseHeaders,
}

impl Target {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "method" => Self::Method,
            "path" => Self::Path,
            "raw_path" => Self::RawPath,
            "query" => Self::Query,
            "args" => Self::Args,
            "arg_names" => Self::ArgNames,
            "headers" => Self::Headers,
            "header_names" => Self::HeaderNames,
            "user_agent" => Self::Header("user-agent".into()),
            "cookies" => Self::Cookies,
            "cookie_names" => Self::CookieNames,
            "header_url_args" => Self::UrlArgs,
            "header_url_arg_names" => Self::UrlArgNames,
            "header_url_paths" => Self::UrlPaths,
            "body" => Self::Body,
            "response_body" => Self::ResponseBody,
            "response_headers" => Self::ResponseHeaders,
            other => {
                let name = other.strip_prefix("header:")?;
                if name.is_empty()
                    || !name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                {
                    return None;
                }
                Self::Header(name.to_ascii_lowercase())
            }
        })
    }

    pub fn label(&self) -> String {
        match self {
            Self::Method => "method".into(),
            Self::Path => "path".into(),
            Self::RawPath => "raw_path".into(),
            Self::Query => "query".into(),
            Self::Args => "args".into(),
            Self::ArgNames => "arg_names".into(),
            Self::Headers => "headers".into(),
            Self::HeaderNames => "header_names".into(),
            Self::Header(h) => format!("header:{h}"),
            Self::Cookies => "cookies".into(),
            Self::CookieNames => "cookie_names".into(),
            Self::UrlArgs => "header_url_args".into(),
            Self::UrlArgNames => "header_url_arg_names".into(),
            Self::UrlPaths => "header_url_paths".into(),
            Self::Body => "body".into(),
            Self::ResponseBody => "response_body".into(),
            Self::ResponseHeaders => "response_headers".into(),
        }
    }
}

/// How a rule matches a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Regex(String),
    /// Any of these substrings.
    Contains(Vec<String>),
    Prefix(String),
    Suffix(String),
    Equals(String),
    /// The value is longer than N bytes.
    LengthGt(usize),
    /// The target has more than N values (e.g. arguments, headers).
    CountGt(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Adds the rule's score to the request's anomaly score.
    Score,
    /// Blocks on its own, whatever the score.
    Block,
    /// Only recorded.
    Log,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Score => "score",
            Self::Block => "block",
            Self::Log => "log",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Request,
    Response,
}

/// One parsed rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: u32,
    pub msg: String,
    pub score: u32,
    pub targets: Vec<Target>,
    pub transforms: Vec<Transform>,
    pub op: Op,
    pub classes: Option<Vec<TrafficClass>>,
    pub methods: Option<Vec<String>>,
    pub action: Action,
    pub phase: Phase,
    pub tags: Vec<String>,
    pub negate: bool,
    /// Lowercase argument names whose presence makes the rule not apply.
    pub unless_args: Vec<String>,
}

/// A problem in a rule file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {}: {reason}", match .rule { Some(id) => format!("rule {id}"), None => "-".to_string() })]
pub struct RuleError {
    pub file: String,
    pub rule: Option<u32>,
    pub reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRules {
    #[serde(default)]
    rule: Vec<FileRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRule {
    id: Option<i64>,
    msg: Option<String>,
    severity: Option<String>,
    score: Option<i64>,
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    transforms: Vec<String>,
    op: Option<String>,
    pattern: Option<String>,
    patterns: Option<Vec<String>>,
    value: Option<i64>,
    classes: Option<Vec<String>>,
    methods: Option<Vec<String>>,
    action: Option<String>,
    phase: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    negate: Option<bool>,
    #[serde(default)]
    unless_args: Vec<String>,
}

/// Compiles one rule pattern the way the engine runs it (ASCII, bytes).
pub(crate) fn compile_regex(p: &str) -> Result<regex::bytes::Regex, String> {
    regex::bytes::RegexBuilder::new(p)
        .unicode(false)
        .size_limit(1 << 22)
        .build()
        .map_err(|e| format!("bad regex: {e}"))
}

/// Parses a rule file's text. `file` names it in errors.
pub fn parse_rules(file: &str, text: &str) -> Result<Vec<Rule>, Vec<RuleError>> {
    let parsed: FileRules = toml::from_str(text).map_err(|e| {
        vec![RuleError {
            file: file.into(),
            rule: None,
            reason: toml_reason(text, &e),
        }]
    })?;
    let mut errors = Vec::new();
    let mut rules = Vec::new();
    let mut seen = HashSet::new();
    for (i, r) in parsed.rule.into_iter().enumerate() {
        let id = match r.id {
            Some(id) if (1..=u32::MAX as i64).contains(&id) => id as u32,
            _ => {
                errors.push(RuleError {
                    file: file.into(),
                    rule: None,
                    reason: format!("rule #{} needs a positive numeric id", i + 1),
                });
                continue;
            }
        };
        let mut err = |reason: String| {
            errors.push(RuleError {
                file: file.into(),
                rule: Some(id),
                reason,
            })
        };
        if !seen.insert(id) {
            err("duplicate id".into());
            continue;
        }
        match build_rule(id, r) {
            Ok(rule) => rules.push(rule),
            Err(reason) => err(reason),
        }
    }
    if errors.is_empty() {
        Ok(rules)
    } else {
        Err(errors)
    }
}

/// toml's message and the line it points at. Some syntax errors (a key with no value at the
/// end of the text) come with an empty message.
fn toml_reason(text: &str, e: &toml::de::Error) -> String {
    let message = match e.message() {
        "" => "malformed TOML",
        m => m,
    };
    match e.span() {
        Some(span) => {
            let upto = &text.as_bytes()[..span.start.min(text.len())];
            let line = upto.iter().filter(|b| **b == b'\n').count() + 1;
            format!("{message} (line {line})")
        }
        None => message.to_string(),
    }
}

fn build_rule(id: u32, r: FileRule) -> Result<Rule, String> {
    let msg = r.msg.filter(|m| !m.is_empty()).ok_or("msg is required")?;
    let score = match (r.score, r.severity.as_deref()) {
        (Some(s), _) if (0..=1000).contains(&s) => s as u32,
        (Some(s), _) => return Err(format!("score {s} is out of range 0..=1000")),
        (None, Some("critical")) => 5,
        (None, Some("error")) => 4,
        (None, Some("warning")) => 3,
        (None, Some("notice")) => 2,
        (None, Some(other)) => {
            return Err(format!(
                "unknown severity {other:?} (critical, error, warning, notice)"
            ))
        }
        (None, None) => 5,
    };
    if r.targets.is_empty() {
        return Err("targets must list at least one target".into());
    }
    let mut targets = Vec::new();
    for t in &r.targets {
        targets.push(Target::parse(t).ok_or_else(|| format!("unknown target {t:?}"))?);
    }
    let mut transforms = Vec::new();
    for t in &r.transforms {
        transforms.push(Transform::parse(t).ok_or_else(|| format!("unknown transform {t:?}"))?);
    }
    let need_pattern = || {
        r.pattern
            .clone()
            .ok_or_else(|| "pattern is required".to_string())
    };
    let op = match r.op.as_deref().unwrap_or("regex") {
        "regex" => {
            let p = need_pattern()?;
            compile_regex(&p)?;
            Op::Regex(p)
        }
        "contains" => {
            let list = match (&r.patterns, &r.pattern) {
                (Some(l), None) if !l.is_empty() => l.clone(),
                (None, Some(p)) => vec![p.clone()],
                _ => return Err("contains needs pattern or a non-empty patterns list".into()),
            };
            if list.iter().any(String::is_empty) {
                return Err("empty pattern".into());
            }
            Op::Contains(list)
        }
        "prefix" => Op::Prefix(need_pattern()?),
        "suffix" => Op::Suffix(need_pattern()?),
        "equals" => Op::Equals(need_pattern()?),
        "length_gt" | "count_gt" => {
            let v = r
                .value
                .filter(|v| *v >= 0)
                .ok_or("value (a number >= 0) is required")? as usize;
            if r.op.as_deref() == Some("length_gt") {
                Op::LengthGt(v)
            } else {
                Op::CountGt(v)
            }
        }
        other => return Err(format!("unknown op {other:?}")),
    };
    let classes = match r.classes {
        None => None,
        Some(list) => {
            let mut v = Vec::new();
            for c in list {
                v.push(TrafficClass::parse(&c).ok_or_else(|| format!("unknown class {c:?}"))?);
            }
            Some(v)
        }
    };
    let methods = r
        .methods
        .map(|m| m.into_iter().map(|s| s.to_ascii_uppercase()).collect());
    let action = match r.action.as_deref().unwrap_or("score") {
        "score" => Action::Score,
        "block" => Action::Block,
        "log" => Action::Log,
        other => return Err(format!("unknown action {other:?} (score, block, log)")),
    };
    let phase = match r.phase.as_deref().unwrap_or("request") {
        "request" => Phase::Request,
        "response" => Phase::Response,
        other => return Err(format!("unknown phase {other:?}")),
    };
    let response_targets = targets
        .iter()
        .all(|t| matches!(t, Target::ResponseBody | Target::ResponseHeaders));
    if r.negate == Some(true) && matches!(op, Op::Contains(_) | Op::CountGt(_)) {
        return Err("negate works with regex, prefix, suffix, equals and length_gt".into());
    }
    if (phase == Phase::Response) != response_targets {
        return Err(
            "response_body/response_headers targets go with phase = \"response\", and only they"
                .into(),
        );
    }
    Ok(Rule {
        id,
        msg,
        score,
        targets,
        transforms,
        op,
        classes,
        methods,
        action,
        phase,
        tags: r.tags,
        negate: r.negate.unwrap_or(false),
        unless_args: r
            .unless_args
            .iter()
            .map(|a| a.to_ascii_lowercase())
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_rule() {
        let text = r#"
[[rule]]
id = 1
msg = "ok"
targets = ["path"]
pattern = "a"
[[rule]]
id = 2
msg = "bad regex"
targets = ["path"]
pattern = "(unclosed"
[[rule]]
id = 3
msg = "bad target"
targets = ["pathh"]
pattern = "a"
[[rule]]
id = 1
msg = "dup"
targets = ["path"]
pattern = "a"
"#;
        let errs = parse_rules("x.toml", text).unwrap_err();
        let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert!(msgs[0].starts_with("x.toml: rule 2: bad regex"), "{msgs:?}");
        assert_eq!(msgs[1], "x.toml: rule 3: unknown target \"pathh\"");
        assert_eq!(msgs[2], "x.toml: rule 1: duplicate id");
        assert!(parse_rules(
            "y.toml",
            "[[rule]]\nid = 5\nmsg = \"m\"\ntargets = [\"args\"]\nop = \"count_gt\"\n"
        )
        .unwrap_err()[0]
            .to_string()
            .contains("rule 5: value"));
    }

    /// Found by fuzz/fuzz_targets/ips_rules.rs: toml leaves the message of some syntax errors
    /// empty, which made the error `z.toml: -: `.
    #[test]
    fn a_syntax_error_always_has_a_reason_and_a_line() {
        for (text, line) in [("[[rule]]\nid =", 2), ("[[rule]]\nid = 1 2\n", 2), ("=", 1)] {
            let errs = parse_rules("z.toml", text).unwrap_err();
            let reason = &errs[0].reason;
            assert!(reason.ends_with(&format!(" (line {line})")), "{reason:?}");
            assert!(reason.len() > " (line 1)".len(), "{reason:?}");
        }
    }
}
