//! A SecLang subset parser: text in, typed directives out.
//!
//! Lexing follows Apache httpd's config reader, which is what ModSecurity 2 (the engine CRS 3.3 is
//! tested against) sees: trailing whitespace is dropped, a line ending in `\` is joined with the
//! next one, a logical line starting with `#` is a comment, and words are split like
//! `ap_getword_conf` (in a quoted word `\\` becomes `\` and `\"` becomes `"`; other backslashes
//! are kept, so regex escapes survive). Action lists are split like ModSecurity's
//! `msre_parse_generic`.

mod actions;
mod variables;

use std::sync::Arc;

pub use actions::{
    parse_actions, parse_setvar, Action, AllowScope, Ctl, Disruptive, EngineMode, IdRange, SetVar,
    SetVarOp, Severity,
};
pub use variables::{parse_variables, Selector, Variable};

/// Where a directive came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: Arc<str>,
    /// 1-based number of the first physical line of the directive.
    pub line: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A parse problem, with the place it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {reason}")]
pub struct ParseError {
    pub location: Location,
    pub reason: String,
}

/// One directive of a rules file.
#[derive(Debug, Clone, PartialEq)]
pub struct Directive {
    pub location: Location,
    pub kind: DirectiveKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DirectiveKind {
    /// `SecRule VARIABLES "OPERATOR" "ACTIONS"`.
    Rule(RuleDef),
    /// `SecAction "ACTIONS"`: a rule with no variables and an unconditional match.
    Action(Vec<Action>),
    /// `SecMarker NAME`.
    Marker(String),
    /// Any other directive, kept so the loader can report it.
    Other { name: String, args: Vec<String> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleDef {
    pub variables: Vec<Variable>,
    pub operator: OperatorDef,
    pub actions: Vec<Action>,
}

/// `[!]@name argument`; an operator string with no `@` is `@rx`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorDef {
    pub name: String,
    pub negated: bool,
    pub argument: String,
}

/// Parses a whole rules file.
pub fn parse_file(file: &str, text: &str) -> Result<Vec<Directive>, ParseError> {
    let file: Arc<str> = Arc::from(file);
    let mut out = Vec::new();
    for (line, logical) in logical_lines(text) {
        let location = Location {
            file: file.clone(),
            line,
        };
        let trimmed = logical.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let words = split_words(trimmed).map_err(|reason| ParseError {
            location: location.clone(),
            reason,
        })?;
        let kind = directive(&words).map_err(|reason| ParseError {
            location: location.clone(),
            reason,
        })?;
        out.push(Directive { location, kind });
    }
    Ok(out)
}

/// Joins continued lines; yields (first physical line number, logical line).
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (idx, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        let (body, continued) = match line.strip_suffix('\\') {
            Some(body) => (body, true),
            None => (line, false),
        };
        let entry = current.get_or_insert_with(|| (idx + 1, String::new()));
        entry.1.push_str(body);
        if !continued {
            if let Some(done) = current.take() {
                out.push(done);
            }
        }
    }
    if let Some(done) = current.take() {
        out.push(done);
    }
    out
}

/// Splits a logical line into words the way `ap_getword_conf` does.
pub(crate) fn split_words(line: &str) -> Result<Vec<String>, String> {
    let bytes = line.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        let quote = match bytes[i] {
            q @ (b'"' | b'\'') => Some(q),
            _ => None,
        };
        let mut word = Vec::new();
        match quote {
            Some(q) => {
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => return Err(format!("unterminated {} quote", q as char)),
                        Some(&b'\\') if matches!(bytes.get(i + 1), Some(&c) if c == q || c == b'\\') =>
                        {
                            word.push(bytes[i + 1]);
                            i += 2;
                        }
                        Some(&c) if c == q => {
                            i += 1;
                            break;
                        }
                        Some(&c) => {
                            word.push(c);
                            i += 1;
                        }
                    }
                }
            }
            None => {
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                    if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'\\') {
                        word.push(b'\\');
                        i += 2;
                    } else {
                        word.push(bytes[i]);
                        i += 1;
                    }
                }
            }
        }
        // Only ASCII bytes were removed, so the word is still valid UTF-8.
        words.push(String::from_utf8_lossy(&word).into_owned());
    }
    Ok(words)
}

fn directive(words: &[String]) -> Result<DirectiveKind, String> {
    let Some(name) = words.first() else {
        return Err("empty directive".into());
    };
    let args = &words[1..];
    if name.eq_ignore_ascii_case("SecRule") {
        if !(2..=3).contains(&args.len()) {
            return Err(format!(
                "SecRule takes 2 or 3 arguments (variables, operator, actions), found {}",
                args.len()
            ));
        }
        let variables = parse_variables(&args[0])?;
        let operator = parse_operator(&args[1]);
        let actions = match args.get(2) {
            Some(a) => parse_actions(a)?,
            None => Vec::new(),
        };
        return Ok(DirectiveKind::Rule(RuleDef {
            variables,
            operator,
            actions,
        }));
    }
    if name.eq_ignore_ascii_case("SecAction") {
        if args.len() != 1 {
            return Err(format!(
                "SecAction takes 1 argument (actions), found {}",
                args.len()
            ));
        }
        return Ok(DirectiveKind::Action(parse_actions(&args[0])?));
    }
    if name.eq_ignore_ascii_case("SecMarker") {
        if args.len() != 1 {
            return Err(format!(
                "SecMarker takes 1 argument (a name), found {}",
                args.len()
            ));
        }
        return Ok(DirectiveKind::Marker(args[0].clone()));
    }
    Ok(DirectiveKind::Other {
        name: name.clone(),
        args: args.to_vec(),
    })
}

/// Parses `[!]@name arg` (or a bare regex).
pub fn parse_operator(text: &str) -> OperatorDef {
    let (negated, rest) = match text.strip_prefix('!') {
        Some(r) => (true, r),
        None => (false, text),
    };
    match rest.strip_prefix('@') {
        Some(body) => {
            let (name, argument) = match body.find(|c: char| c.is_ascii_whitespace()) {
                Some(pos) => (&body[..pos], body[pos..].trim_start()),
                None => (body, ""),
            };
            OperatorDef {
                name: name.to_ascii_lowercase(),
                negated,
                argument: argument.to_string(),
            }
        }
        None => OperatorDef {
            name: "rx".into(),
            negated,
            argument: rest.to_string(),
        },
    }
}

#[cfg(test)]
mod tests;
