//! A throwaway PostgreSQL cluster for tests: Debian's `postgresql` binaries, `initdb` in a
//! temporary directory (as the `postgres` user via `runuser` when the tests run as root:
//! `initdb` refuses root), a free port on 127.0.0.1, the socket in the same directory,
//! `fsync=off`. Stopped (immediately) when dropped. Nothing is downloaded.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    /// `postgres://rpaas@127.0.0.1:PORT/rpaas`.
    pub url: String,
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// The directory of Debian's PostgreSQL binaries (the newest version installed).
fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed (scripts/deps.sh installs the postgresql package)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").is_file())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Postgres {
    /// Creates and starts the cluster with a database `rpaas` owned by user `rpaas` (trust
    /// authentication on loopback).
    pub fn start() -> Postgres {
        let dir = tempfile::Builder::new()
            .prefix("rpaas-pg")
            .tempdir()
            .expect("temp dir");
        // The postgres user must be able to write there.
        let _ = Command::new("chmod").arg("0777").arg(dir.path()).status();
        let pg = Postgres {
            bin: bin_dir(),
            port: free_port(),
            url: String::new(),
            dir,
        };
        let data = pg.data();
        let out = pg.run(
            "initdb",
            &[
                "-D",
                &data.display().to_string(),
                "-U",
                "rpaas",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        assert!(out.status.success(), "initdb failed: {out:?}");
        let mut pg = pg;
        pg.url = format!("postgres://rpaas@127.0.0.1:{}/rpaas", pg.port);
        pg.start_again();
        let out = pg.run(
            "createdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &pg.port.to_string(),
                "-U",
                "rpaas",
                "rpaas",
            ],
        );
        assert!(out.status.success(), "createdb failed: {out:?}");
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, tool: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(tool);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        cmd.args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", exe.display()))
    }

    /// Starts the server (again, after [`Postgres::stop`]) on the same port and data.
    pub fn start_again(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log");
        let out = self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-o",
                &opts,
                "-l",
                &log.display().to_string(),
                "-w",
                "-t",
                "30",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start failed: {out:?}; log: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        self.wait_ready(Duration::from_secs(30));
    }

    fn wait_ready(&self, limit: Duration) {
        let t = Instant::now();
        while t.elapsed() < limit {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("PostgreSQL did not accept connections on {}", self.port);
    }

    /// Stops the server at once (connections are cut, as when a database host goes away).
    pub fn stop(&self) {
        let out = self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
        assert!(out.status.success(), "pg_ctl stop failed: {out:?}");
    }

    /// The directory the cluster lives in.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-m",
                "immediate",
                "stop",
            ],
        );
    }
}
