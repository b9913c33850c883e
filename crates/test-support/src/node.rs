//! A real `rpaas serve` process for tests: written config, bound ports read back from its
//! `listening` log lines, log lines kept for assertions, signals, peak memory.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Node {
    child: Child,
    pub dir: PathBuf,
    pub config: PathBuf,
    /// Bound address of each `[[listener]]`, in config order.
    pub listeners: Vec<SocketAddr>,
    pub admin: Option<SocketAddr>,
    /// The control API's address, if configured.
    pub control: Option<SocketAddr>,
    /// `tls = "none"` listeners, in config order.
    pub http: Vec<SocketAddr>,
    /// The connector tunnel's UDP address, if configured.
    pub tunnel: Option<SocketAddr>,
    /// Relay sockets: (`"udp"`/`"tcp"`, instance id, index, address).
    pub relays: Vec<(String, String, usize, SocketAddr)>,
    pub logs: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Node {
    /// Writes `config` to `dir/rpaas.toml` and starts `bin serve` on it; waits until it says
    /// `started`. Panics (failing the test) if it does not start within 30 s.
    pub fn start(bin: &Path, dir: &Path, config: &str) -> Node {
        let path = dir.join("rpaas.toml");
        std::fs::write(&path, config).expect("write config");
        Self::start_file(bin, &path)
    }

    /// Starts `bin serve` on the config file at `path` (TOML or JSON).
    pub fn start_file(bin: &Path, path: &Path) -> Node {
        let path = path.to_path_buf();
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let mut child = Command::new(bin)
            .args(["serve", "--config"])
            .arg(&path)
            // A test that needs a debug target says so with RPAAS_TEST_NODE_LOG.
            .env(
                "RPAAS_LOG",
                std::env::var("RPAAS_TEST_NODE_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rpaas");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("stdout");
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    if let Ok(mut l) = sink.lock() {
                        l.push(v);
                    }
                }
            }
        });
        let stderr = child.stderr.take().expect("stderr");
        let err_sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("rpaas stderr: {line}");
                if let Ok(mut l) = err_sink.lock() {
                    l.push(serde_json::json!({"stderr": line}));
                }
            }
        });
        let mut node = Node {
            child,
            dir,
            config: path,
            listeners: Vec::new(),
            admin: None,
            control: None,
            http: Vec::new(),
            tunnel: None,
            relays: Vec::new(),
            logs,
        };
        node.wait_log(Duration::from_secs(30), |v| v["event"] == "started")
            .unwrap_or_else(|| {
                panic!(
                    "rpaas did not start; logs: {:?}",
                    node.logs.lock().map(|l| l.clone())
                )
            });
        let logs = node.logs.lock().map(|l| l.clone()).unwrap_or_default();
        for v in logs.iter().filter(|v| v["event"] == "listening") {
            let addr: SocketAddr = v["address"]
                .as_str()
                .and_then(|a| a.parse().ok())
                .expect("listening address");
            match v["listener"].as_str() {
                Some("admin") => node.admin = Some(addr),
                Some("control") => node.control = Some(addr),
                Some("http") => node.http.push(addr),
                Some("tunnel") => node.tunnel = Some(addr),
                Some(kind @ ("udp" | "tcp")) => node.relays.push((
                    kind.to_string(),
                    v["instance"].as_str().unwrap_or_default().to_string(),
                    v["index"].as_u64().unwrap_or(0) as usize,
                    addr,
                )),
                _ => node.listeners.push(addr),
            }
        }
        node
    }

    /// The address of a relay.
    pub fn relay(&self, kind: &str, instance: &str, index: usize) -> SocketAddr {
        self.relays
            .iter()
            .find(|(k, i, n, _)| k == kind && i == instance && *n == index)
            .map(|r| r.3)
            .unwrap_or_else(|| panic!("no {kind} relay {instance}[{index}]: {:?}", self.relays))
    }

    /// The address of a relay bound after start (a reload added it): the latest `listening`
    /// line for it, waited for up to `timeout`.
    pub fn wait_relay(
        &self,
        kind: &str,
        instance: &str,
        index: usize,
        timeout: Duration,
    ) -> Option<SocketAddr> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            let found = self.logs.lock().ok().and_then(|l| {
                l.iter()
                    .rev()
                    .find(|v| {
                        v["event"] == "listening"
                            && v["listener"] == kind
                            && v["instance"] == instance
                            && v["index"].as_u64() == Some(index as u64)
                    })
                    .and_then(|v| v["address"].as_str().and_then(|a| a.parse().ok()))
            });
            if found.is_some() {
                return found;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// `POST` a JSON body to an admin path; (status, body).
    pub fn admin_post(&self, path: &str, body: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let addr = self.admin.expect("admin address");
        let mut s = std::net::TcpStream::connect(addr).expect("connect admin");
        let _ = write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: admin\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        let status = out
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = out
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    /// Waits for a log line matching `pred`; returns it.
    pub fn wait_log(
        &self,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Some(v) = self
                .logs
                .lock()
                .ok()
                .and_then(|l| l.iter().find(|v| pred(v)).cloned())
            {
                return Some(v);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn log_count(&self, pred: impl Fn(&serde_json::Value) -> bool) -> usize {
        self.logs
            .lock()
            .map(|l| l.iter().filter(|v| pred(v)).count())
            .unwrap_or(0)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        let rc = unsafe_kill(self.pid(), sig);
        assert_eq!(rc, 0, "kill failed");
    }

    /// Peak resident set size (VmHWM) in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        read_status_kib(self.pid(), "VmHWM:")
    }

    /// Current resident set size (VmRSS) in KiB.
    pub fn rss_kib(&self) -> u64 {
        read_status_kib(self.pid(), "VmRSS:")
    }

    /// Waits for the process to exit; returns whether it did within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Rewrites the config file (for a reload).
    pub fn write_config(&self, config: &str) {
        std::fs::write(&self.config, config).expect("write config");
    }

    /// `GET` an admin path over plain HTTP.
    pub fn admin_get(&self, path: &str) -> String {
        use std::io::{Read, Write};
        let addr = self.admin.expect("admin address");
        let mut s = std::net::TcpStream::connect(addr).expect("connect admin");
        let _ = write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"
        );
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }
}

fn read_status_kib(pid: i32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

#[allow(unsafe_code)]
fn unsafe_kill(pid: i32, sig: i32) -> i32 {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(pid, sig) }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
