//! A real ACME CA for tests: Debian's `pebble` with `pebble-challtestsrv` as its DNS server
//! (every name resolves to 127.0.0.1), on free loopback ports, with a TLS-ALPN-01 and an
//! HTTP-01 responder that answer from a [`Challenges`], and a DNS-01 hook that talks to
//! challtestsrv's management API.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener as StdListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openssl::pkey::PKey;
use openssl::ssl::{AlpnError, NameType, SniError, SslAcceptor, SslAlert, SslMethod};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509StoreContext, X509};
use rpaas_acme::{
    AcmeConfig, AlpnCert, CertName, CertStatus, CertUpdate, ChallengeKind, Challenges, DirStore,
    Manager, Options, Subject,
};
use test_support::certs::Ca;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// Every wait in these tests ends by this.
pub const WAIT: Duration = Duration::from_secs(60);

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn wait_tcp(addr: SocketAddr, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on {addr} in time");
}

fn binary(name: &str) -> PathBuf {
    let p = PathBuf::from("/usr/bin").join(name);
    assert!(
        p.exists(),
        "{name} is missing: these tests need Debian's `pebble` package (scripts/deps.sh installs it)"
    );
    p
}

/// Kills a child when the test ends, however it ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The TLS-ALPN-01 responder: answers `acme-tls/1` handshakes from [`Challenges`].
pub struct AlpnResponder {
    pub addr: SocketAddr,
    /// Serve a certificate for the wrong key authorization (to make validation fail).
    pub sabotage: Arc<AtomicBool>,
}

impl AlpnResponder {
    pub async fn start(challenges: Arc<Challenges>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let sabotage = Arc::new(AtomicBool::new(false));
        let sab = sabotage.clone();
        let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).expect("ctx");
        b.set_servername_callback(move |ssl, alert| {
            let name = ssl
                .servername(NameType::HOST_NAME)
                .unwrap_or_default()
                .to_string();
            let cert = if sab.load(Ordering::SeqCst) {
                AlpnCert::new(&name, "not.the-key-authorization")
                    .ok()
                    .map(Arc::new)
            } else {
                challenges.tls_alpn01(&name)
            };
            let Some(c) = cert else {
                *alert = SslAlert::UNRECOGNIZED_NAME;
                return Err(SniError::ALERT_FATAL);
            };
            let x = X509::from_der(&c.cert_der).expect("der");
            let k = PKey::private_key_from_der(&c.key_der).expect("key");
            ssl.set_certificate(&x).expect("cert");
            ssl.set_private_key(&k).expect("key");
            Ok(())
        });
        b.set_alpn_select_callback(|_, client| {
            openssl::ssl::select_next_proto(b"\x0aacme-tls/1", client).ok_or(AlpnError::ALERT_FATAL)
        });
        let acceptor = Arc::new(b.build());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(ssl) = openssl::ssl::Ssl::new(acceptor.context()) else {
                        return;
                    };
                    let Ok(mut s) = tokio_openssl::SslStream::new(ssl, tcp) else {
                        return;
                    };
                    if std::pin::Pin::new(&mut s).accept().await.is_ok() {
                        let _ = s.shutdown().await;
                    }
                });
            }
        });
        Self { addr, sabotage }
    }
}

/// The HTTP-01 responder: `GET /.well-known/acme-challenge/TOKEN` from [`Challenges`] (and,
/// with `shared`, from the store behind it, as a node that did not place the challenge would).
pub async fn start_http_responder(challenges: Arc<Challenges>, shared: bool) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let challenges = challenges.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 8192 {
                    match tcp.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf);
                let path = head.split_whitespace().nth(1).unwrap_or("");
                let answer = match Challenges::http01_token(path) {
                    Some(t) if shared => challenges.http01_shared(t).await,
                    Some(t) => challenges.http01(t),
                    None => None,
                };
                let resp = match answer {
                    Some(ka) => format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{ka}",
                        ka.len()
                    ),
                    None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_string(),
                };
                let _ = tcp.write_all(resp.as_bytes()).await;
                let _ = tcp.shutdown().await;
            });
        }
    });
    addr
}

/// pebble + challtestsrv, and the files a manager needs to talk to them.
pub struct Pebble {
    _pebble: Proc,
    _dns: Proc,
    pub dir: tempfile::TempDir,
    pub directory: String,
    /// Verifies pebble's own HTTPS (the `ca` key of `[acme]`).
    pub https_ca: PathBuf,
    pub management: SocketAddr,
    pub dns_management: SocketAddr,
}

impl Pebble {
    /// Starts both servers; validations go to `tls_port` (TLS-ALPN-01) and `http_port`
    /// (HTTP-01) on 127.0.0.1.
    pub fn start(tls_port: u16, http_port: u16) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = Ca::new("pebble https test CA");
        let https_ca = ca.write_cert(dir.path(), "https-ca");
        let leaf = ca.write_leaf(dir.path(), "pebble", &["127.0.0.1", "localhost"]);
        let (listen, mgmt, dns, dns_mgmt) = (free_port(), free_port(), free_port(), free_port());
        let config = serde_json::json!({
            "pebble": {
                "listenAddress": format!("127.0.0.1:{listen}"),
                "managementListenAddress": format!("127.0.0.1:{mgmt}"),
                "certificate": leaf.cert,
                "privateKey": leaf.key,
                "httpPort": http_port,
                "tlsPort": tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false,
                "certificateValidityPeriod": 200 * 24 * 3600,
            }
        });
        let config_path = dir.path().join("pebble.json");
        std::fs::write(&config_path, config.to_string()).expect("write pebble config");
        let mut dns_child = Command::new(binary("pebble-challtestsrv"))
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .args(["-dns01", &format!("127.0.0.1:{dns}")])
            .args(["-management", &format!("127.0.0.1:{dns_mgmt}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pebble-challtestsrv");
        wait_tcp(
            SocketAddr::from(([127, 0, 0, 1], dns_mgmt)),
            &mut dns_child,
            "pebble-challtestsrv",
        );
        let dns_proc = Proc(dns_child);
        let log = std::fs::File::create(dir.path().join("pebble.log")).expect("log");
        let mut child = Command::new(binary("pebble"))
            .arg("-config")
            .arg(&config_path)
            .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start pebble");
        wait_tcp(
            SocketAddr::from(([127, 0, 0, 1], listen)),
            &mut child,
            "pebble",
        );
        wait_tcp(
            SocketAddr::from(([127, 0, 0, 1], mgmt)),
            &mut child,
            "pebble",
        );
        Self {
            _pebble: Proc(child),
            _dns: dns_proc,
            directory: format!("https://127.0.0.1:{listen}/dir"),
            https_ca,
            management: SocketAddr::from(([127, 0, 0, 1], mgmt)),
            dns_management: SocketAddr::from(([127, 0, 0, 1], dns_mgmt)),
            dir,
        }
    }

    /// The root pebble signs with (made fresh at each start).
    pub fn root(&self) -> X509 {
        let out = Command::new("curl")
            .args(["-sf", "--max-time", "10", "--cacert"])
            .arg(&self.https_ca)
            .arg(format!("https://{}/roots/0", self.management))
            .output()
            .expect("curl");
        assert!(out.status.success(), "cannot fetch pebble's root");
        X509::from_pem(&out.stdout).expect("root PEM")
    }

    /// An `[acme]` table for this CA.
    pub fn config(&self, challenge: ChallengeKind) -> AcmeConfig {
        AcmeConfig {
            directory: self.directory.clone(),
            email: Some("ops@example.net".into()),
            ca: Some(self.https_ca.clone()),
            challenge,
            dns_delay: Duration::ZERO.into(),
            ..AcmeConfig::default()
        }
    }

    /// A dns-01 hook script that sets and clears TXT records in challtestsrv; `fail` makes it
    /// refuse with a message on stderr.
    pub fn dns_hook(&self, fail: bool) -> PathBuf {
        let p = self
            .dir
            .path()
            .join(if fail { "hook-fail.sh" } else { "hook.sh" });
        let body = if fail {
            "echo \"zone for $2 is not managed here\" >&2\nexit 1\n".to_string()
        } else {
            format!(
                r#"set -e
api=http://{m}
case "$1" in
  add) curl -sf --max-time 5 -X POST -d "{{\"host\":\"$2.\",\"value\":\"$3\"}}" "$api/set-txt" ;;
  remove) curl -sf --max-time 5 -X POST -d "{{\"host\":\"$2.\"}}" "$api/clear-txt" ;;
  *) exit 2 ;;
esac
"#,
                m = self.dns_management
            )
        };
        std::fs::write(&p, format!("#!/bin/sh\n{body}")).expect("write hook");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        p
    }
}

/// Test options: the real backoff, short CA timeouts.
pub fn options(node: &str) -> Options {
    Options {
        node_id: node.to_string(),
        order_timeout: Duration::from_secs(90),
        poll_timeout: Duration::from_secs(30),
        ..Options::default()
    }
}

/// A manager whose updates arrive on the returned channel.
pub fn manager(
    config: AcmeConfig,
    store_dir: &Path,
    challenges: Arc<Challenges>,
    node: &str,
) -> (Manager, mpsc::UnboundedReceiver<CertUpdate>) {
    manager_with(config, store_dir, challenges, options(node))
}

pub fn manager_with(
    config: AcmeConfig,
    store_dir: &Path,
    challenges: Arc<Challenges>,
    options: Options,
) -> (Manager, mpsc::UnboundedReceiver<CertUpdate>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let store = Arc::new(DirStore::open(store_dir).expect("store"));
    let m = Manager::new(
        config,
        store,
        challenges,
        Arc::new(move |u: &CertUpdate| {
            let _ = tx.send(u.clone());
        }),
        options,
    )
    .expect("manager");
    (m, rx)
}

pub fn subject(name: &str, hosts: &[&str]) -> Subject {
    Subject::new(
        CertName::new(name).expect("name"),
        &hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
    )
    .expect("subject")
}

pub async fn next_update(rx: &mut mpsc::UnboundedReceiver<CertUpdate>) -> CertUpdate {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a certificate in time")
        .expect("manager alive")
}

/// Waits until `pred` holds for the status of `name`; returns it.
pub async fn wait_status(
    m: &Manager,
    name: &str,
    pred: impl Fn(&CertStatus) -> bool,
) -> CertStatus {
    let name = CertName::new(name).expect("name");
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(s) = m.status(&name) {
            if pred(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "status never matched: {s:?}");
        }
        assert!(Instant::now() < deadline, "no status for {name}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Verifies `chain_pem` (leaf first) against `root`; returns the leaf.
pub fn verify_chain(chain_pem: &str, root: &X509) -> X509 {
    let chain = X509::stack_from_pem(chain_pem.as_bytes()).expect("chain PEM");
    let mut store = X509StoreBuilder::new().expect("store");
    store.add_cert(root.clone()).expect("root");
    let store = store.build();
    let mut untrusted = openssl::stack::Stack::new().expect("stack");
    for c in chain.iter().skip(1) {
        untrusted.push(c.clone()).expect("push");
    }
    let mut ctx = X509StoreContext::new().expect("ctx");
    let ok = ctx
        .init(&store, &chain[0], &untrusted, |c| {
            let ok = c.verify_cert()?;
            assert!(ok, "chain does not verify: {}", c.error());
            Ok(ok)
        })
        .expect("verify");
    assert!(ok);
    chain[0].clone()
}

pub fn dns_sans(leaf: &X509) -> Vec<String> {
    let mut v: Vec<String> = leaf
        .subject_alt_names()
        .map(|s| {
            s.iter()
                .filter_map(|n| n.dnsname().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}
