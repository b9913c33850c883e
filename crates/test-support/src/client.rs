//! A blocking TLS client with full control of the bytes: tests send malformed, forged or
//! oversized requests that a well-behaved HTTP library would refuse to produce.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use openssl::ssl::{SslConnector, SslMethod, SslStream, SslVersion};

/// How to connect.
#[derive(Debug, Clone)]
pub struct Tls<'a> {
    pub sni: Option<&'a str>,
    pub ca: &'a Path,
    pub min: Option<SslVersion>,
    pub max: Option<SslVersion>,
    pub alpn: &'a [u8],
    /// Bytes written before the TLS handshake (a PROXY header).
    pub preamble: &'a [u8],
    /// Check the server's certificate (off for self-signed ones the test cannot know).
    pub verify: bool,
}

impl<'a> Tls<'a> {
    pub fn new(sni: &'a str, ca: &'a Path) -> Self {
        Self {
            sni: Some(sni),
            ca,
            min: None,
            max: None,
            alpn: b"\x08http/1.1",
            preamble: b"",
            verify: true,
        }
    }
}

pub type Conn = SslStream<TcpStream>;

type ConnectorKey = (std::path::PathBuf, String, Vec<u8>);

/// Building a connector reads the system trust store (milliseconds): tests make thousands of
/// connections, so connectors are kept per settings.
fn connector(tls: &Tls<'_>) -> Result<SslConnector, String> {
    static CACHE: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<ConnectorKey, SslConnector>>,
    > = std::sync::OnceLock::new();
    let key = (
        tls.ca.to_path_buf(),
        format!("{:?}/{:?}/{}", tls.min, tls.max, tls.verify),
        tls.alpn.to_vec(),
    );
    let cache = CACHE.get_or_init(Default::default);
    if let Some(c) = cache.lock().ok().and_then(|m| m.get(&key).cloned()) {
        return Ok(c);
    }
    let c = build_connector(tls)?;
    if let Ok(mut m) = cache.lock() {
        m.insert(key, c.clone());
    }
    Ok(c)
}

fn build_connector(tls: &Tls<'_>) -> Result<SslConnector, String> {
    let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(|e| e.to_string())?;
    b.set_ca_file(tls.ca).map_err(|e| e.to_string())?;
    if tls.min.is_some() || tls.max.is_some() {
        // Old protocol versions need the lowest security level in OpenSSL 3.
        b.set_cipher_list("DEFAULT:@SECLEVEL=0")
            .map_err(|e| e.to_string())?;
    }
    b.set_min_proto_version(tls.min)
        .map_err(|e| e.to_string())?;
    b.set_max_proto_version(tls.max)
        .map_err(|e| e.to_string())?;
    b.set_alpn_protos(tls.alpn).map_err(|e| e.to_string())?;
    if !tls.verify {
        b.set_verify(openssl::ssl::SslVerifyMode::NONE);
    }
    Ok(b.build())
}

/// Connects and completes the handshake, verifying the server against `ca` and the SNI name.
pub fn connect(addr: SocketAddr, tls: &Tls<'_>) -> Result<Conn, String> {
    let connector = connector(tls)?;
    let mut tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    // Without it, the request written after the handshake's last flight waits for a
    // delayed ACK (Nagle): 40 ms per request.
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    if !tls.preamble.is_empty() {
        tcp.write_all(tls.preamble).map_err(|e| e.to_string())?;
    }
    let mut cfg = connector.configure().map_err(|e| e.to_string())?;
    if !tls.verify {
        cfg.set_verify_hostname(false);
    }
    let domain = match tls.sni {
        Some(s) => s,
        None => {
            cfg.set_use_server_name_indication(false);
            cfg.set_verify_hostname(false);
            "unused"
        }
    };
    cfg.connect(domain, tcp).map_err(|e| e.to_string())
}

/// A parsed HTTP/1.x response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads one response from `r`. `head` says the request was HEAD (no body follows).
pub fn read_response<R: BufRead>(r: &mut R, head: bool) -> Result<Response, String> {
    let mut line = String::new();
    r.read_line(&mut line).map_err(|e| e.to_string())?;
    if line.is_empty() {
        return Err("connection closed before a response".into());
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {line:?}"))?;
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        r.read_line(&mut l).map_err(|e| e.to_string())?;
        let l = l.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut resp = Response {
        status,
        headers,
        body: Vec::new(),
    };
    if head || status == 101 || status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok(resp);
    }
    if resp
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).map_err(|e| e.to_string())?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| format!("bad chunk size {size:?}"))?;
            if n == 0 {
                let mut crlf = String::new();
                r.read_line(&mut crlf).map_err(|e| e.to_string())?;
                break;
            }
            let mut chunk = vec![0u8; n + 2];
            r.read_exact(&mut chunk).map_err(|e| e.to_string())?;
            resp.body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(len) = resp.header("content-length") {
        let n: usize = len.parse().map_err(|_| "bad content-length".to_string())?;
        resp.body = vec![0u8; n];
        r.read_exact(&mut resp.body).map_err(|e| e.to_string())?;
    } else {
        r.read_to_end(&mut resp.body).map_err(|e| e.to_string())?;
    }
    Ok(resp)
}

/// Sends `raw` on a fresh connection and reads one response.
pub fn exchange(addr: SocketAddr, tls: &Tls<'_>, raw: &[u8]) -> Result<Response, String> {
    let mut c = connect(addr, tls)?;
    c.write_all(raw).map_err(|e| e.to_string())?;
    let head = raw.starts_with(b"HEAD ");
    let mut r = BufReader::new(c);
    read_response(&mut r, head)
}

/// `GET path` with `Host: host` and extra header lines (each ending in CRLF).
pub fn get(
    addr: SocketAddr,
    tls: &Tls<'_>,
    host: &str,
    path: &str,
    extra: &str,
) -> Result<Response, String> {
    let raw = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n");
    exchange(addr, tls, raw.as_bytes())
}

/// One WebSocket frame; `mask` makes it a client frame.
pub fn ws_frame(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut f = vec![0x80 | opcode];
    let m = if mask.is_some() { 0x80 } else { 0 };
    if payload.len() < 126 {
        f.push(m | payload.len() as u8);
    } else if payload.len() <= u16::MAX as usize {
        f.push(m | 126);
        f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    } else {
        f.push(m | 127);
        f.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    }
    match mask {
        Some(k) => {
            f.extend_from_slice(&k);
            f.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => f.extend_from_slice(payload),
    }
    f
}

/// Reads one unmasked server frame: (opcode, payload).
pub fn read_ws_frame<R: Read>(r: &mut R) -> Result<(u8, Vec<u8>), String> {
    let mut h = [0u8; 2];
    r.read_exact(&mut h).map_err(|e| e.to_string())?;
    let mut len = (h[1] & 0x7f) as u64;
    if len == 126 {
        let mut b = [0u8; 2];
        r.read_exact(&mut b).map_err(|e| e.to_string())?;
        len = u16::from_be_bytes(b) as u64;
    } else if len == 127 {
        let mut b = [0u8; 8];
        r.read_exact(&mut b).map_err(|e| e.to_string())?;
        len = u64::from_be_bytes(b);
    }
    let mut p = vec![0u8; len as usize];
    r.read_exact(&mut p).map_err(|e| e.to_string())?;
    Ok((h[0] & 0x0f, p))
}
