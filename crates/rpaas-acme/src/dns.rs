//! DNS-01 through an operator's program: `HOOK add|remove NAME VALUE`, where NAME is
//! `_acme-challenge.<domain>` and VALUE the TXT content. The hook gets no shell, no stdin and a
//! time limit; its stderr (bounded) is what `last_error` shows when it fails.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::error::AcmeError;

/// Bytes of the hook's stderr kept for the error message.
const STDERR_KEPT: usize = 2048;

/// The TXT record name for `domain` (a wildcard's `*.` is dropped, RFC 8555 §8.4).
pub fn record_name(domain: &str) -> String {
    let d = domain.strip_prefix("*.").unwrap_or(domain);
    format!("_acme-challenge.{}", d.trim_end_matches('.'))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookAction {
    Add,
    Remove,
}

impl HookAction {
    fn as_str(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Remove => "remove",
        }
    }
}

/// The configured hook.
#[derive(Debug, Clone)]
pub struct DnsHook {
    pub program: PathBuf,
    pub timeout: Duration,
}

impl DnsHook {
    pub fn new(program: &Path, timeout: Duration) -> Self {
        Self {
            program: program.to_path_buf(),
            timeout,
        }
    }

    /// Runs the hook once; an exit other than 0, a signal or the time limit is an error.
    pub async fn run(&self, action: HookAction, name: &str, value: &str) -> Result<(), AcmeError> {
        let fail = |detail: String| AcmeError::DnsHook {
            action: action.as_str(),
            name: name.to_string(),
            detail,
        };
        let mut child = tokio::process::Command::new(&self.program)
            .arg(action.as_str())
            .arg(name)
            .arg(value)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| fail(format!("cannot run {}: {e}", self.program.display())))?;
        let mut stderr = child.stderr.take();
        let work = async {
            let mut buf = Vec::new();
            if let Some(s) = stderr.as_mut() {
                // Read all of it (a hook blocked on a full pipe never exits), keep the start.
                let mut chunk = [0u8; 4096];
                loop {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let room = STDERR_KEPT.saturating_sub(buf.len());
                            buf.extend_from_slice(&chunk[..n.min(room)]);
                        }
                    }
                }
            }
            let status = child.wait().await;
            (status, buf)
        };
        let (status, err_bytes) = match tokio::time::timeout(self.timeout, work).await {
            Ok(r) => r,
            Err(_) => {
                return Err(fail(format!(
                    "no answer within {}",
                    humantime::format_duration(self.timeout)
                )))
            }
        };
        let status = status.map_err(|e| fail(format!("wait failed: {e}")))?;
        if status.success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&err_bytes);
        let text = text.trim();
        let how = match status.code() {
            Some(c) => format!("exit status {c}"),
            None => "killed by a signal".to_string(),
        };
        Err(fail(if text.is_empty() {
            how
        } else {
            format!("{how}: {text}")
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn script(dir: &Path, body: &str) -> PathBuf {
        let p = dir.join("hook.sh");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn record_names() {
        assert_eq!(
            record_name("a.example.net"),
            "_acme-challenge.a.example.net"
        );
        assert_eq!(record_name("*.example.net."), "_acme-challenge.example.net");
    }

    #[tokio::test]
    async fn arguments_exit_status_stderr_and_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("args");
        let ok = script(dir.path(), &format!("echo \"$@\" > {}", out.display()));
        let hook = DnsHook::new(&ok, Duration::from_secs(5));
        hook.run(HookAction::Add, "_acme-challenge.a.example.net", "v4lue")
            .await
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "add _acme-challenge.a.example.net v4lue\n"
        );

        let bad = script(dir.path(), "echo 'zone not found' >&2; exit 3");
        let e = DnsHook::new(&bad, Duration::from_secs(5))
            .run(HookAction::Remove, "_acme-challenge.x", "v")
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "dns hook `remove _acme-challenge.x` failed: exit status 3: zone not found"
        );

        let slow = script(dir.path(), "sleep 30");
        let t = std::time::Instant::now();
        let e = DnsHook::new(&slow, Duration::from_millis(300))
            .run(HookAction::Add, "n", "v")
            .await
            .unwrap_err();
        assert!(e.to_string().contains("no answer within 300ms"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(5));

        let e = DnsHook::new(&dir.path().join("missing"), Duration::from_secs(1))
            .run(HookAction::Add, "n", "v")
            .await
            .unwrap_err();
        assert!(e.to_string().contains("cannot run"), "{e}");
    }
}
