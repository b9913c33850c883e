//! JSON-lines logging. Every line — the per-request access line and `tracing` events alike —
//! goes through one bounded channel to one writer thread, which batches writes: request
//! handling never waits on the disk, lines never interleave, and a burst that outruns the disk
//! drops lines (counted) instead of stalling the proxy.
//!
//! `tracing` events keep the `tracing_subscriber` JSON format; the access line is written by
//! [`AccessLine`] directly (it is the hot path: no field visitors, no intermediate maps).
//! Pingora's own `log` records are muted by default; `RPAAS_LOG` overrides the filter.

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use rpaas_config::LogTarget;
use tracing_subscriber::EnvFilter;

const DEFAULT_FILTER: &str = "info,pingora_core=off,pingora_proxy=off,pingora_pool=off,pingora=off";
const QUEUE: usize = 1 << 16;

static SINK: OnceLock<SyncSender<Vec<u8>>> = OnceLock::new();
/// Lines dropped because the writer fell behind.
pub static DROPPED: AtomicU64 = AtomicU64::new(0);
static ACCESS_ON: OnceLock<bool> = OnceLock::new();

fn send(line: Vec<u8>) {
    if let Some(tx) = SINK.get() {
        if let Err(TrySendError::Full(_)) = tx.try_send(line) {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn writer_thread(rx: Receiver<Vec<u8>>, mut out: Box<dyn Write + Send>) {
    // Poll on a timer rather than block on the channel: a blocked receiver would be woken (a
    // futex call and a context switch) for every line; this way senders never make a syscall.
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let mut wrote = false;
        loop {
            match rx.try_recv() {
                Ok(line) => {
                    let _ = out.write_all(&line);
                    wrote = true;
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    let _ = out.flush();
                    return;
                }
            }
        }
        if wrote {
            let _ = out.flush();
        }
    }
}

/// `tracing` writes each formatted event with one `write_all`; forward it as one line.
struct ChannelWriter;

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        send(buf.to_vec());
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
pub enum LogInitError {
    #[error("node.log: cannot open {}: {error}", file.display())]
    Open {
        file: std::path::PathBuf,
        error: std::io::Error,
    },
    #[error("logging already started")]
    AlreadyStarted,
    #[error("cannot start the log writer thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot start logging: {0}")]
    Subscriber(String),
}

pub fn init(target: &LogTarget) -> Result<(), LogInitError> {
    let out: Box<dyn Write + Send> = match target {
        LogTarget::Stdout => Box::new(std::io::BufWriter::with_capacity(
            1 << 16,
            std::io::stdout(),
        )),
        LogTarget::File(p) => {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| LogInitError::Open {
                    file: p.clone(),
                    error: e,
                })?;
            Box::new(std::io::BufWriter::with_capacity(1 << 16, f))
        }
    };
    let (tx, rx) = sync_channel(QUEUE);
    SINK.set(tx).map_err(|_| LogInitError::AlreadyStarted)?;
    std::thread::Builder::new()
        .name("rpaas-log".into())
        .spawn(move || writer_thread(rx, out))
        .map_err(LogInitError::Thread)?;
    let filter =
        EnvFilter::try_from_env("RPAAS_LOG").unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    // The access line is written directly; it follows the same filter for `rpaas::access`.
    let access = filter
        .max_level_hint()
        .is_none_or(|l| l >= tracing::level_filters::LevelFilter::INFO)
        && !std::env::var("RPAAS_LOG").is_ok_and(|v| v.contains("rpaas::access=off"));
    let _ = ACCESS_ON.set(access);
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(true)
        .with_env_filter(filter)
        .with_writer(|| ChannelWriter)
        .try_init()
        .map_err(|e| LogInitError::Subscriber(e.to_string()))
}

/// Waits (briefly) for queued lines to be written, at shutdown.
pub fn drain() {
    std::thread::sleep(Duration::from_millis(100));
}

/// One access log line, built field by field into JSON.
pub struct AccessLine {
    buf: String,
}

/// `s` as a JSON string. Runs of bytes that need no escape are copied at once (the escaped
/// ones are all ASCII, so every cut is on a character boundary).
fn escape_into(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escaped.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(escaped);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

impl AccessLine {
    /// `None` when access logging is off.
    pub fn new() -> Option<Self> {
        if !*ACCESS_ON.get()? {
            return None;
        }
        let mut buf = String::with_capacity(512);
        buf.push_str("{\"timestamp\":\"");
        let _ = write!(
            buf,
            "{}",
            humantime::format_rfc3339_micros(SystemTime::now())
        );
        buf.push_str("\",\"level\":\"INFO\",\"message\":\"request\"");
        Some(Self { buf })
    }

    pub fn str(&mut self, key: &str, v: &str) -> &mut Self {
        self.key(key);
        escape_into(&mut self.buf, v);
        self
    }

    pub fn num(&mut self, key: &str, v: impl std::fmt::Display) -> &mut Self {
        self.key(key);
        let _ = write!(self.buf, "{v}");
        self
    }

    pub fn bool(&mut self, key: &str, v: bool) -> &mut Self {
        self.key(key);
        self.buf.push_str(if v { "true" } else { "false" });
        self
    }

    fn key(&mut self, key: &str) {
        self.buf.push_str(",\"");
        self.buf.push_str(key);
        self.buf.push_str("\":");
    }

    pub fn send(mut self) {
        self.buf.push_str(",\"target\":\"rpaas::access\"}\n");
        send(self.buf.into_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_keeps_json_valid() {
        let mut s = String::new();
        escape_into(&mut s, "a\"b\\c\n\u{1}é");
        let v: serde_json::Value = serde_json::from_str(&s).expect("valid JSON string");
        assert_eq!(v, "a\"b\\c\n\u{1}é");
        // Every control byte, escapes next to multi-byte characters, nothing to escape.
        let controls: String = (0u8..0x20).map(char::from).collect();
        for text in [
            controls.as_str(),
            "é\"ü\t\u{7f}x\\",
            "plain /LabTech/Agent.aspx",
            "",
        ] {
            let mut s = String::new();
            escape_into(&mut s, text);
            let v: serde_json::Value = serde_json::from_str(&s).expect("valid JSON string");
            assert_eq!(v, text, "{s}");
        }
    }
}
