//! A stand-in for an Automate server: answers the paths agents and technicians use, leaks what
//! a default IIS leaks (`Server: Microsoft-IIS/10.0`, `X-Powered-By`, `X-AspNet-Version`, an
//! internal `Location` on `/aspnet_client`, `OPTIONS` answered with `Allow`/`Public`, `TRACE`
//! echoed, versions on `/WCC2/` and `/LabTech/Agent.aspx`, the administrative sites open to
//! all), and has test endpoints to echo requests, stream large bodies, sleep, and echo
//! WebSocket frames. Plain HTTP, TLS, or TLS with every old version and suite on (what
//! `rpaas audit` should find). It records every request it sees so tests can prove what
//! reached the origin.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use openssl::ssl::{SslAcceptor, SslMethod};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the origin saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path_and_query: String,
    pub headers: Vec<(String, String)>,
    pub body_len: u64,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .count()
    }
}

/// A running stand-in origin.
pub struct Upstream {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    _rt: Option<tokio::runtime::Runtime>,
}

impl Upstream {
    /// Starts a plain-HTTP origin on `127.0.0.1:0` in a runtime of its own.
    pub fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().expect("addr"), None)
    }

    /// Starts a TLS origin with this certificate and key (PEM).
    pub fn start_tls(cert_pem: &[u8], key_pem: &[u8]) -> Self {
        let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).expect("acceptor");
        let chain = openssl::x509::X509::stack_from_pem(cert_pem).expect("cert");
        b.set_certificate(&chain[0]).expect("cert");
        b.set_private_key(&openssl::pkey::PKey::private_key_from_pem(key_pem).expect("key"))
            .expect("key");
        b.set_alpn_select_callback(|_, client| {
            openssl::ssl::select_next_proto(b"\x08http/1.1", client)
                .ok_or(openssl::ssl::AlpnError::NOACK)
        });
        Self::start_on("127.0.0.1:0".parse().expect("addr"), Some(b.build()))
    }

    /// Starts a TLS origin configured like an unhardened Windows server: TLS 1.0 and up and
    /// every suite the local OpenSSL has, NULL encryption included.
    pub fn start_tls_legacy(cert_pem: &[u8], key_pem: &[u8]) -> Self {
        Self::start_on(
            "127.0.0.1:0".parse().expect("addr"),
            Some(legacy_acceptor(cert_pem, key_pem).expect("legacy acceptor")),
        )
    }

    fn start_on(addr: SocketAddr, tls: Option<SslAcceptor>) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let listener = rt.block_on(TcpListener::bind(addr)).expect("bind");
        let addr = listener.local_addr().expect("addr");
        rt.spawn(serve(listener, tls.map(Arc::new), seen.clone()));
        Self {
            addr,
            seen,
            _rt: Some(rt),
        }
    }

    /// Runs the origin on the current runtime until the process ends (the demo binary).
    pub async fn run_forever(addr: SocketAddr) -> std::io::Result<()> {
        let listener = TcpListener::bind(addr).await?;
        println!(
            "stand-in Automate origin listening on http://{}",
            listener.local_addr()?
        );
        serve(listener, None, Arc::new(Mutex::new(Vec::new()))).await;
        Ok(())
    }

    /// Like [`Upstream::run_forever`], over TLS with the unhardened profile of
    /// [`Upstream::start_tls_legacy`] (the demo's "direct" origin for `rpaas audit`).
    pub async fn run_forever_tls(
        addr: SocketAddr,
        cert_pem: &[u8],
        key_pem: &[u8],
    ) -> std::io::Result<()> {
        let acc = legacy_acceptor(cert_pem, key_pem).map_err(std::io::Error::other)?;
        let listener = TcpListener::bind(addr).await?;
        println!(
            "stand-in Automate origin listening on https://{} (TLS 1.0+, all suites)",
            listener.local_addr()?
        );
        serve(
            listener,
            Some(Arc::new(acc)),
            Arc::new(Mutex::new(Vec::new())),
        )
        .await;
        Ok(())
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Requests seen whose path starts with `prefix`.
    pub fn seen_path(&self, prefix: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.path_and_query.starts_with(prefix))
            .collect()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(rt) = self._rt.take() {
            rt.shutdown_background();
        }
    }
}

/// TLS 1.0+ and every suite (`ALL:eNULL` at security level 0), as an unhardened SCHANNEL offers
/// old suites.
fn legacy_acceptor(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<SslAcceptor, openssl::error::ErrorStack> {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls())?;
    b.clear_options(openssl::ssl::SslOptions::NO_TLSV1 | openssl::ssl::SslOptions::NO_TLSV1_1);
    b.set_min_proto_version(Some(openssl::ssl::SslVersion::TLS1))?;
    b.set_cipher_list("ALL:eNULL:@SECLEVEL=0")?;
    let chain = openssl::x509::X509::stack_from_pem(cert_pem)?;
    if let Some(leaf) = chain.first() {
        b.set_certificate(leaf)?;
    }
    let key = openssl::pkey::PKey::private_key_from_pem(key_pem)?;
    b.set_private_key(&key)?;
    b.set_alpn_select_callback(|_, client| {
        openssl::ssl::select_next_proto(b"\x08http/1.1", client)
            .ok_or(openssl::ssl::AlpnError::NOACK)
    });
    Ok(b.build())
}

async fn serve(listener: TcpListener, tls: Option<Arc<SslAcceptor>>, seen: Arc<Mutex<Vec<Seen>>>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let seen = seen.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                Some(acc) => {
                    let Ok(ssl) = openssl::ssl::Ssl::new(acc.context()) else {
                        return;
                    };
                    let Ok(mut s) = tokio_openssl::SslStream::new(ssl, tcp) else {
                        return;
                    };
                    if Pin::new(&mut s).accept().await.is_err() {
                        return;
                    }
                    serve_conn(s, seen).await;
                }
                None => serve_conn(tcp, seen).await,
            }
        });
    }
}

async fn serve_conn<S>(io: S, seen: Arc<Mutex<Vec<Seen>>>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| handle(req, seen.clone()));
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades()
        .await;
}

type RespBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

fn full(b: impl Into<Bytes>) -> RespBody {
    Full::new(b.into()).boxed()
}

/// Adds the headers a default IIS + ASP.NET install sends.
fn iis(mut r: http::response::Builder) -> http::response::Builder {
    r = r
        .header("server", "Microsoft-IIS/10.0")
        .header("x-powered-by", "ASP.NET")
        .header("x-aspnet-version", "4.0.30319")
        .header("x-aspnetmvc-version", "5.2");
    r
}

fn query_param<'a>(q: &'a str, name: &str) -> Option<&'a str> {
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

async fn handle(
    req: Request<Incoming>,
    seen: Arc<Mutex<Vec<Seen>>>,
) -> Result<Response<RespBody>, Infallible> {
    let method = req.method().as_str().to_string();
    let version = format!("{:?}", req.version());
    let pq = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let path = req.uri().path().to_ascii_lowercase();
    let query = req.uri().query().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();

    if path == "/ws" {
        return Ok(websocket(req, &headers, &seen, method, pq));
    }
    // Introspection for the robustness suite: what reached the origin.
    if path == "/__seen" {
        let list: Vec<serde_json::Value> = seen
            .lock()
            .map(|s| {
                s.iter()
                    .map(|r| serde_json::json!([r.method, r.path_and_query, r.body_len]))
                    .collect()
            })
            .unwrap_or_default();
        return Ok(Response::new(full(
            serde_json::Value::Array(list).to_string(),
        )));
    }
    if path == "/__reset" {
        if let Ok(mut s) = seen.lock() {
            s.clear();
        }
        return Ok(Response::new(full("reset")));
    }

    // Consume the body as it arrives: a large upload must never sit in memory here either.
    let mut body = req.into_body();
    let mut body_len = 0u64;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if let Some(d) = f.data_ref() {
                    body_len += d.len() as u64;
                }
            }
            Err(_) => break,
        }
    }
    let record = Seen {
        method: method.clone(),
        path_and_query: pq.clone(),
        headers: headers.clone(),
        body_len,
    };
    if let Ok(mut s) = seen.lock() {
        s.push(record);
    }

    let ok = || iis(Response::builder().status(200));
    let resp = if method == "OPTIONS" {
        // IIS answers OPTIONS for any path and lists what it would accept, TRACE included.
        let verbs = "OPTIONS, TRACE, GET, HEAD, POST";
        ok().header("allow", verbs)
            .header("public", verbs)
            .header("content-length", "0")
            .body(full(""))
    } else if method == "TRACE" {
        // TRACE echoes the request head back (the cross-site tracing leak).
        let mut echo = format!("TRACE {pq} {version}\r\n");
        for (k, v) in &headers {
            echo.push_str(&format!("{k}: {v}\r\n"));
        }
        ok().header("content-type", "message/http").body(full(echo))
    } else if method == "TRACK" {
        iis(Response::builder().status(501)).body(full("Not Implemented"))
    } else if path == "/labtech/agent.aspx" {
        if method == "POST" {
            ok().body(full(format!("check-in ok {body_len}")))
        } else {
            ok().body(full("LabTech|240.120"))
        }
    } else if path.starts_with("/labtech/deployment.aspx") {
        ok().header("content-type", "application/octet-stream")
            .body(full(vec![0x4d, 0x5a, 0x90, 0x00]))
    } else if path == "/automate" {
        // IIS redirects a directory without its slash to its own name for itself.
        iis(Response::builder().status(301))
            .header("location", "http://automate.partner.local/automate/")
            .body(full(""))
    } else if path.starts_with("/automate/") {
        ok().header("content-type", "text/html")
            .body(full("<html><title>ConnectWise Automate</title></html>"))
    } else if path == "/cwa" || path == "/cwa/" {
        // The Web Control Center's old entry point sends technicians to the login page.
        iis(Response::builder().status(302))
            .header("location", "/automate/login")
            .body(full(""))
    } else if path == "/labtech/controlcenter.asmx" {
        ok().header("content-type", "text/html").body(full(
            "<html><body><span class=\"heading\">ControlCenter</span> Web Service</body></html>",
        ))
    } else if path == "/wcc2" || path == "/wcc2/" {
        // The splash page names the server's version.
        ok().header("content-type", "text/html").body(full(
            "<html><head><title>Web Control Center</title></head><body><h1>LabTech</h1>\
             <div class=\"footer\">Version 240.120</div></body></html>",
        ))
    } else if path.starts_with("/cwa/api/v1/") {
        ok().header("content-type", "application/json")
            .body(full(r#"{"Version":"2024.1","Computers":[]}"#))
    } else if path == "/aspnet_client" || path == "/aspnet_client/" {
        // The HTTP/1.0 empty-Host leak: IIS names its own internal address.
        iis(Response::builder().status(301))
            .header("location", "http://10.20.30.40/aspnet_client/")
            .header(
                "content-location",
                "http://10.20.30.40/aspnet_client/default.htm",
            )
            .header("refresh", "0; url=http://10.20.30.40/aspnet_client/")
            .body(full(""))
    } else if path == "/redirect" {
        let to = query_param(&query, "to").unwrap_or("http://10.20.30.40/x");
        iis(Response::builder().status(302))
            .header("location", to)
            .body(full(""))
    } else if path == "/echo" {
        let hs: Vec<serde_json::Value> = headers
            .iter()
            .map(|(k, v)| serde_json::json!([k, v]))
            .collect();
        let j =
            serde_json::json!({"method": method, "path": pq, "headers": hs, "body_len": body_len});
        ok().header("content-type", "application/json")
            .body(full(j.to_string()))
    } else if path == "/big" {
        let n: u64 = query_param(&query, "bytes")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1 << 20);
        ok().header("content-length", n.to_string())
            .body(Repeat { remaining: n }.boxed())
    } else if path == "/slow" {
        let ms: u64 = query_param(&query, "ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ok().body(full("slow done"))
    } else if let Some(code) = path.strip_prefix("/status/") {
        let code = code
            .parse::<u16>()
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok());
        iis(Response::builder().status(code.unwrap_or(StatusCode::BAD_REQUEST)))
            .body(full("status"))
    } else {
        iis(Response::builder().status(404))
            .header("content-type", "text/html")
            .body(full("<html><h2>404 - File or directory not found.</h2><p>Server Error in '/' Application on WIN-AUTOMATE01 (10.20.30.40)</p></html>"))
    };
    let mut resp = resp.unwrap_or_else(|_| Response::new(full("")));
    // Tests read what the origin received of the request body from every answer.
    resp.headers_mut()
        .insert("x-origin-body-len", http::HeaderValue::from(body_len));
    Ok(resp)
}

/// An endless-looking body of `remaining` bytes produced on the fly.
struct Repeat {
    remaining: u64,
}

impl Body for Repeat {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        static CHUNK: [u8; 65536] = [b'x'; 65536];
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = self.remaining.min(CHUNK.len() as u64) as usize;
        self.remaining -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&CHUNK[..n])))))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.remaining)
    }
}

fn websocket(
    req: Request<Incoming>,
    headers: &[(String, String)],
    seen: &Arc<Mutex<Vec<Seen>>>,
    method: String,
    pq: String,
) -> Response<RespBody> {
    if let Ok(mut s) = seen.lock() {
        s.push(Seen {
            method,
            path_and_query: pq,
            headers: headers.to_vec(),
            body_len: 0,
        });
    }
    let key = headers
        .iter()
        .find(|(k, _)| k == "sec-websocket-key")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let accept = ws_accept(&key);
    tokio::spawn(async move {
        if let Ok(up) = hyper::upgrade::on(req).await {
            let _ = ws_echo(TokioIo::new(up)).await;
        }
    });
    iis(Response::builder().status(101))
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-accept", accept)
        .body(full(""))
        .unwrap_or_else(|_| Response::new(full("")))
}

/// `Sec-WebSocket-Accept` for a key (RFC 6455 §4.2.2).
pub fn ws_accept(key: &str) -> String {
    let mut input = key.as_bytes().to_vec();
    input.extend_from_slice(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    openssl::base64::encode_block(&openssl::sha::sha1(&input))
}

/// Echoes text/binary frames back unmasked until a close frame or EOF.
async fn ws_echo<S: AsyncRead + AsyncWrite + Unpin>(mut io: S) -> std::io::Result<()> {
    loop {
        let mut h = [0u8; 2];
        io.read_exact(&mut h).await?;
        let opcode = h[0] & 0x0f;
        let masked = h[1] & 0x80 != 0;
        let mut len = (h[1] & 0x7f) as u64;
        if len == 126 {
            let mut b = [0u8; 2];
            io.read_exact(&mut b).await?;
            len = u16::from_be_bytes(b) as u64;
        } else if len == 127 {
            let mut b = [0u8; 8];
            io.read_exact(&mut b).await?;
            len = u64::from_be_bytes(b);
        }
        if len > 1 << 20 {
            return Ok(());
        }
        let mut mask = [0u8; 4];
        if masked {
            io.read_exact(&mut mask).await?;
        }
        let mut payload = vec![0u8; len as usize];
        io.read_exact(&mut payload).await?;
        if masked {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= mask[i % 4];
            }
        }
        let frame = crate::client::ws_frame(opcode, &payload, None);
        io.write_all(&frame).await?;
        if opcode == 0x8 {
            return Ok(());
        }
    }
}
