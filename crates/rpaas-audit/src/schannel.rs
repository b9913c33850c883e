//! A `reg export` of `HKLM\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols`
//! (`.reg`, UTF-16LE with a BOM as Windows writes it, or UTF-8), and the verdicts
//! `schannel-tls10-disabled` and `schannel-tls11-disabled` for the server side.
//!
//! Windows reads `...\Protocols\TLS 1.x\Server`: `Enabled`=0 turns the protocol off;
//! `DisabledByDefault`=1 leaves it off unless an application asks for it by name (IIS does
//! not). A missing key means the operating system default, which is "on" for TLS 1.0 and 1.1
//! on every Windows Server that runs Automate today.

use std::path::Path;

use crate::check::{ids, Check, Status};
use crate::error::FileError;
use crate::judge::shown;

/// A registry value as a `.reg` file writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Dword(u32),
    String(String),
    /// `hex:`, `hex(n):` (binary, multi-string, expandable, qword): kept as raw text.
    Hex(String),
    /// `"Name"=-`: the value is deleted.
    Delete,
}

/// One `[key]` and its values (names as written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub path: String,
    pub values: Vec<(String, Value)>,
}

impl Key {
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.values
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

/// Why a text is not a `.reg` export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegError {
    pub line: usize,
    pub reason: &'static str,
}

/// Parses `.reg` text (already decoded).
pub fn parse_reg(text: &str) -> Result<Vec<Key>, RegError> {
    let mut lines = text.lines().enumerate().peekable();
    let mut header = None;
    for (n, l) in lines.by_ref() {
        if !l.trim().is_empty() {
            header = Some((n, l.trim()));
            break;
        }
    }
    match header {
        Some((_, "Windows Registry Editor Version 5.00" | "REGEDIT4")) => {}
        Some((n, _)) => {
            return Err(RegError {
                line: n + 1,
                reason: "not a .reg export (the first line should be \"Windows Registry Editor Version 5.00\")",
            })
        }
        None => {
            return Err(RegError {
                line: 1,
                reason: "empty file",
            })
        }
    }
    let mut keys: Vec<Key> = Vec::new();
    // Index into `keys` of the key values go to; `None` inside a `[-deleted]` key.
    let mut current: Option<Option<usize>> = None;
    while let Some((n, raw)) = lines.next() {
        let line_no = n + 1;
        let mut line = raw.trim().to_string();
        // Long hex values continue on the next line after a trailing backslash.
        while line.ends_with('\\') && line.contains("=hex") {
            line.pop();
            match lines.next() {
                Some((_, more)) => line.push_str(more.trim()),
                None => break,
            }
        }
        if line.is_empty() || line.starts_with(';') {
            continue;
        }
        if let Some(inner) = line.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or(RegError {
                line: line_no,
                reason: "a key line must end with ]",
            })?;
            if inner.starts_with('-') {
                current = Some(None);
                continue;
            }
            let idx = match keys.iter().position(|k| k.path.eq_ignore_ascii_case(inner)) {
                Some(i) => i,
                None => {
                    keys.push(Key {
                        path: inner.to_string(),
                        values: Vec::new(),
                    });
                    keys.len() - 1
                }
            };
            current = Some(Some(idx));
            continue;
        }
        let Some(target) = current else {
            return Err(RegError {
                line: line_no,
                reason: "a value before any [key]",
            });
        };
        let (name, rest) = value_name(&line).ok_or(RegError {
            line: line_no,
            reason: "expected \"Name\"=value or @=value",
        })?;
        let value = parse_value(rest).ok_or(RegError {
            line: line_no,
            reason: "a value must be dword:XXXXXXXX, \"text\", hex...: or -",
        })?;
        if let Some(i) = target {
            if let Some(k) = keys.get_mut(i) {
                k.values.push((name, value));
            }
        }
    }
    Ok(keys)
}

/// `"Name"=` (with `\"` and `\\` escapes) or `@=`: the name and what follows `=`.
fn value_name(line: &str) -> Option<(String, &str)> {
    if let Some(rest) = line.strip_prefix("@=") {
        return Some(("@".into(), rest));
    }
    let mut chars = line.char_indices();
    if chars.next()?.1 != '"' {
        return None;
    }
    let mut name = String::new();
    let mut escaped = false;
    for (i, c) in chars {
        if escaped {
            name.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            let rest = line[i + 1..].trim_start().strip_prefix('=')?;
            return Some((name, rest.trim()));
        } else {
            name.push(c);
        }
    }
    None
}

fn parse_value(v: &str) -> Option<Value> {
    let v = v.trim();
    if v == "-" {
        return Some(Value::Delete);
    }
    if let Some(h) = v.strip_prefix("dword:") {
        if h.is_empty() || h.len() > 8 {
            return None;
        }
        return u32::from_str_radix(h, 16).ok().map(Value::Dword);
    }
    if v.starts_with("hex:") || v.starts_with("hex(") {
        return Some(Value::Hex(v.to_string()));
    }
    let inner = v.strip_prefix('"')?.strip_suffix('"')?;
    Some(Value::String(
        inner.replace("\\\\", "\\").replace("\\\"", "\""),
    ))
}

/// A parsed SCHANNEL export.
#[derive(Debug, Clone)]
pub struct Schannel {
    keys: Vec<Key>,
}

const PROTOCOLS: &str = "\\securityproviders\\schannel\\protocols";

impl Schannel {
    pub fn parse(text: &str) -> Result<Self, RegError> {
        parse_reg(text).map(|keys| Self { keys })
    }

    pub fn load(path: &Path) -> Result<Self, FileError> {
        let text = crate::files::read_text(path)?;
        Self::parse(&text).map_err(|e| FileError::Reg {
            path: path.to_path_buf(),
            line: e.line,
            reason: e.reason,
        })
    }

    fn is_protocols_export(&self) -> bool {
        self.keys.iter().any(|k| {
            let p = k.path.to_ascii_lowercase();
            p.ends_with(PROTOCOLS) || p.contains(&format!("{PROTOCOLS}\\"))
        })
    }

    fn key(&self, suffix: &str) -> Option<&Key> {
        let want = format!("{PROTOCOLS}\\{suffix}").to_ascii_lowercase();
        self.keys
            .iter()
            .find(|k| k.path.to_ascii_lowercase().ends_with(&want))
    }
}

fn dword(k: &Key, name: &str) -> (Option<u32>, Option<String>) {
    match k.value(name) {
        Some(Value::Dword(d)) => (Some(*d), None),
        Some(Value::Delete) | None => (None, None),
        Some(other) => (
            None,
            Some(format!(
                "{name} is not a DWORD ({}), Windows ignores it",
                shown(&format!("{other:?}"), 40)
            )),
        ),
    }
}

/// Server-side verdict for one protocol (`"TLS 1.0"`).
fn protocol_check(s: &Schannel, id: &'static str, proto: &str) -> Check {
    if !s.is_protocols_export() {
        return Check::skip(
            id,
            "this file has no ...\\SecurityProviders\\SCHANNEL\\Protocols key: export that key \
             (reg export \"HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\" schannel.reg)",
        );
    }
    let Some(k) = s.key(&format!("{proto}\\Server")) else {
        return Check::new(
            id,
            Status::Fail,
            format!(
                "no {proto}\\Server key: the Windows default applies, and {proto} is on by default"
            ),
        );
    };
    let (enabled, e_note) = dword(k, "Enabled");
    let (dbd, d_note) = dword(k, "DisabledByDefault");
    let mut seen = Vec::new();
    if let Some(e) = enabled {
        seen.push(format!("Enabled=0x{e:x}"));
    }
    if let Some(d) = dbd {
        seen.push(format!("DisabledByDefault=0x{d:x}"));
    }
    seen.extend(e_note);
    seen.extend(d_note);
    let seen = if seen.is_empty() {
        "neither Enabled nor DisabledByDefault set".to_string()
    } else {
        seen.join(", ")
    };
    let (status, why) = match (enabled, dbd) {
        (Some(0), Some(1)) => (Status::Pass, "disabled"),
        (Some(0), _) => (Status::Pass, "disabled (set DisabledByDefault=1 too)"),
        (None, Some(1)) => (
            Status::Pass,
            "off unless an application asks for it by name (IIS does not); Enabled=0 turns it off for all",
        ),
        (Some(_), Some(1)) => (
            Status::Warn,
            "enabled for any application that asks for it by name",
        ),
        _ => (Status::Fail, "enabled"),
    };
    Check::new(id, status, format!("{proto}\\Server: {seen}: {why}"))
}

pub fn judge_schannel(s: &Schannel) -> Vec<Check> {
    vec![
        protocol_check(s, ids::SCHANNEL_TLS10, "TLS 1.0"),
        protocol_check(s, ids::SCHANNEL_TLS11, "TLS 1.1"),
    ]
}

#[cfg(test)]
mod tests;
