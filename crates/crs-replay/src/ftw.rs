//! The ftw / go-ftw YAML test format, read into [`Case`]s: one per stage, each with the request
//! to send and what the test expects. Files live under `<rule file>/<rule id>.yaml`.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_yaml::Value;

/// One stage of one test, ready to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// `920100-1`, or `920100-1/stage2` for later stages of a multi-stage test.
    pub title: String,
    /// The rule the file is named after (`920100.yaml`).
    pub file_rule: u32,
    pub request: RequestSpec,
    pub expect: Expect,
}

impl Case {
    /// The rule the test is about: the one its output names, else the file's.
    pub fn rule(&self) -> u32 {
        match self.expect {
            Expect::Fires(id) | Expect::Silent(id) => id,
            Expect::Status(_) | Expect::Error => self.file_rule,
        }
    }
}

/// What a stage expects of the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// `log_contains: id "N"`: an attack test for rule N.
    Fires(u32),
    /// `no_log_contains: id "N"`: a negative test.
    Silent(u32),
    /// `status: N` or `status: [N, M]` (and no log expectation).
    Status(Vec<u16>),
    /// `expect_error: true`: the client is expected to see no response.
    Error,
}

/// The request of a stage, as the file gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestSpec {
    /// `encoded_request` (base64) or `raw_request`: bytes sent as they are (but for the Host).
    Raw(Vec<u8>),
    Parts(Parts),
}

/// A request built from its parts. Nothing is normalised: CRS tests send malformed methods,
/// targets and versions on purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parts {
    pub method: String,
    pub uri: String,
    pub version: String,
    /// In file order.
    pub headers: Vec<(String, String)>,
    pub data: Vec<u8>,
    /// ftw's `stop_magic`: add no Content-Type / Content-Length.
    pub stop_magic: bool,
}

/// Why a test file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Yaml {
        path: PathBuf,
        #[source]
        source: serde_yaml::Error,
    },
    #[error("{path}: test {title:?}: {reason}")]
    Test {
        path: PathBuf,
        title: String,
        reason: String,
    },
    #[error("{0}: the file name is not <rule id>.yaml")]
    Name(PathBuf),
}

/// The cases of a directory tree, and the files that could not be read.
#[derive(Debug, Default)]
pub struct Loaded {
    pub cases: Vec<Case>,
    pub errors: Vec<FileError>,
    /// Files with `meta.enabled: false` and disabled tests, skipped.
    pub disabled: usize,
    /// Stages with no expectation this harness can check (`response_contains` only).
    pub unchecked: usize,
}

/// Reads every `*.yaml` under `dir` (sorted, recursively).
pub fn load_dir(dir: &Path) -> Result<Loaded, FileError> {
    let mut files = Vec::new();
    collect(dir, &mut files)?;
    files.sort();
    let mut out = Loaded::default();
    for path in files {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(source) => {
                out.errors.push(FileError::Io { path, source });
                continue;
            }
        };
        if let Err(e) = load_file(&path, &text, &mut out) {
            out.errors.push(e);
        }
    }
    Ok(out)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), FileError> {
    let io = |source| FileError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads one file's text into `out`; `path` names the rule (`.../920100.yaml`).
pub fn load_file(path: &Path, text: &str, out: &mut Loaded) -> Result<(), FileError> {
    let file_rule = path
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse::<u32>().ok())
        .ok_or_else(|| FileError::Name(path.to_path_buf()))?;
    let file: FileDoc = serde_yaml::from_str(text).map_err(|source| FileError::Yaml {
        path: path.to_path_buf(),
        source,
    })?;
    if file.meta.and_then(|m| m.enabled) == Some(false) {
        out.disabled += file.tests.len();
        return Ok(());
    }
    for test in file.tests {
        if test.enabled == Some(false) {
            out.disabled += 1;
            continue;
        }
        let many = test.stages.len() > 1;
        for (i, stage) in test.stages.into_iter().enumerate() {
            let stage = match stage {
                StageDoc::Wrapped { stage } => stage,
                StageDoc::Bare(s) => s,
            };
            let bad = |reason: String| FileError::Test {
                path: path.to_path_buf(),
                title: test.test_title.clone(),
                reason,
            };
            let Some(expect) = stage.output.expect().map_err(bad)? else {
                out.unchecked += 1;
                continue;
            };
            let request = stage.input.into_spec().map_err(bad)?;
            let title = if many {
                format!("{}/stage{}", test.test_title, i + 1)
            } else {
                test.test_title.clone()
            };
            out.cases.push(Case {
                title,
                file_rule,
                request,
                expect,
            });
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct FileDoc {
    meta: Option<MetaDoc>,
    #[serde(default)]
    tests: Vec<TestDoc>,
}

#[derive(Deserialize)]
struct MetaDoc {
    enabled: Option<bool>,
}

#[derive(Deserialize)]
struct TestDoc {
    test_title: String,
    enabled: Option<bool>,
    #[serde(default)]
    stages: Vec<StageDoc>,
}

/// ftw wraps each stage in `stage:`; later go-ftw files do not.
#[derive(Deserialize)]
#[serde(untagged)]
enum StageDoc {
    Wrapped { stage: Stage },
    Bare(Stage),
}

#[derive(Deserialize)]
struct Stage {
    input: InputDoc,
    output: OutputDoc,
}

#[derive(Deserialize)]
struct InputDoc {
    method: Option<Value>,
    uri: Option<Value>,
    version: Option<Value>,
    #[serde(default)]
    headers: serde_yaml::Mapping,
    data: Option<Value>,
    encoded_request: Option<String>,
    raw_request: Option<String>,
    #[serde(default)]
    stop_magic: bool,
}

#[derive(Deserialize)]
struct OutputDoc {
    log_contains: Option<String>,
    no_log_contains: Option<String>,
    status: Option<StatusDoc>,
    expect_error: Option<bool>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StatusDoc {
    One(u16),
    Many(Vec<u16>),
}

impl OutputDoc {
    fn expect(self) -> Result<Option<Expect>, String> {
        if let Some(s) = self.log_contains {
            return rule_id(&s)
                .map(|id| Some(Expect::Fires(id)))
                .ok_or(format!("log_contains {s:?} names no rule id"));
        }
        if let Some(s) = self.no_log_contains {
            return rule_id(&s)
                .map(|id| Some(Expect::Silent(id)))
                .ok_or(format!("no_log_contains {s:?} names no rule id"));
        }
        if let Some(s) = self.status {
            return Ok(Some(Expect::Status(match s {
                StatusDoc::One(n) => vec![n],
                StatusDoc::Many(v) => v,
            })));
        }
        Ok((self.expect_error == Some(true)).then_some(Expect::Error))
    }
}

/// The first run of at least six digits: `id "920100"`, `id:920100`, `920100`.
pub fn rule_id(s: &str) -> Option<u32> {
    s.split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() >= 6)
        .and_then(|run| run.parse().ok())
}

impl InputDoc {
    fn into_spec(self) -> Result<RequestSpec, String> {
        if let Some(b64) = self.encoded_request {
            use base64::Engine as _;
            let clean: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
            return base64::engine::general_purpose::STANDARD
                .decode(clean)
                .map(RequestSpec::Raw)
                .map_err(|e| format!("encoded_request: {e}"));
        }
        if let Some(raw) = self.raw_request {
            return Ok(RequestSpec::Raw(octets(&raw)));
        }
        let text = |v: Option<Value>, default: &str| match v {
            None => Ok(default.to_string()),
            Some(v) => scalar(&v),
        };
        let mut headers = Vec::with_capacity(self.headers.len());
        for (k, v) in &self.headers {
            headers.push((scalar(k)?, scalar(v)?));
        }
        let data = match self.data {
            None | Some(Value::Null) => Vec::new(),
            // ftw joins a list of lines with CRLF.
            Some(Value::Sequence(lines)) => {
                let lines: Result<Vec<String>, String> = lines.iter().map(scalar).collect();
                lines?.join("\r\n").into_bytes()
            }
            Some(v) => scalar(&v)?.into_bytes(),
        };
        Ok(RequestSpec::Parts(Parts {
            method: text(self.method, "GET")?,
            uri: text(self.uri, "/")?,
            version: text(self.version, "HTTP/1.1")?,
            headers,
            data,
            stop_magic: self.stop_magic,
        }))
    }
}

/// A YAML scalar as the text ftw would send (`Content-Length: 0` is a number in YAML).
fn scalar(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok(String::new()),
        other => Err(format!("expected a scalar, found {other:?}")),
    }
}

/// A YAML string holding raw request bytes: characters up to U+00FF are one byte each
/// (`"\xac\xed"` in a double-quoted YAML string), anything above is UTF-8.
fn octets(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for c in s.chars() {
        match u8::try_from(u32::from(c)) {
            Ok(b) => out.push(b),
            Err(_) => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
