//! A small HTTP/2 client over TLS (ALPN `h2`) whose framing the test controls: a request body
//! sent with its HEADERS in one write, after them in a second write, or one byte per DATA
//! frame.

use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use openssl::ssl::{SslConnector, SslMethod};

/// How the request body goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// HEADERS and every DATA frame queued before the connection writes anything.
    OneWrite,
    /// HEADERS written first; the body follows in a later write.
    HeadThenBody,
    /// Small DATA frames: one byte each for the first 64 bytes, then 256-byte frames. (The
    /// HTTP/2 layer allows a budget of frames smaller than 256 bytes and then ends the
    /// connection as abusive; this stays within it.)
    ByteByByte,
    /// One byte per DATA frame for the whole body: an abusive client.
    TinyFrames,
}

/// One HTTP/2 answer.
#[derive(Debug, Clone)]
pub struct H2Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl H2Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one request on a fresh connection: `headers` are extra request headers (lowercase
/// names); `content_length` adds the header when true.
#[allow(clippy::too_many_arguments)]
pub fn request(
    addr: SocketAddr,
    sni: &str,
    ca: &Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    content_length: bool,
    pace: Pace,
) -> Result<H2Response, String> {
    // A current-thread runtime: the connection task runs only when the test yields, which is
    // what makes "one write" one write.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(20),
            send(
                addr,
                sni,
                ca,
                method,
                path,
                headers,
                body,
                content_length,
                pace,
            ),
        )
        .await
        .map_err(|_| "timed out after 20 s".to_string())?
    })
}

#[allow(clippy::too_many_arguments)]
async fn send(
    addr: SocketAddr,
    sni: &str,
    ca: &Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    content_length: bool,
    pace: Pace,
) -> Result<H2Response, String> {
    let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(|e| e.to_string())?;
    b.set_ca_file(ca).map_err(|e| e.to_string())?;
    b.set_alpn_protos(b"\x02h2").map_err(|e| e.to_string())?;
    let ssl = b
        .build()
        .configure()
        .and_then(|c| c.into_ssl(sni))
        .map_err(|e| e.to_string())?;
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let mut tls = tokio_openssl::SslStream::new(ssl, tcp).map_err(|e| e.to_string())?;
    Pin::new(&mut tls)
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    if tls.ssl().selected_alpn_protocol() != Some(b"h2") {
        return Err("the server did not select h2".into());
    }
    let (client, conn) = h2::client::handshake(tls)
        .await
        .map_err(|e| e.to_string())?;
    let conn_task = tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut client = client.ready().await.map_err(|e| e.to_string())?;
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("https://{sni}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if content_length {
        req = req.header("content-length", body.len().to_string());
    }
    let req = req.body(()).map_err(|e| e.to_string())?;
    let (resp, mut stream) = client
        .send_request(req, body.is_empty() && content_length)
        .map_err(|e| e.to_string())?;
    if !(body.is_empty() && content_length) {
        match pace {
            Pace::OneWrite => {
                stream
                    .send_data(Bytes::copy_from_slice(body), true)
                    .map_err(|e| e.to_string())?;
            }
            Pace::HeadThenBody => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                stream
                    .send_data(Bytes::copy_from_slice(body), true)
                    .map_err(|e| e.to_string())?;
            }
            Pace::ByteByByte | Pace::TinyFrames => {
                if body.is_empty() {
                    stream
                        .send_data(Bytes::new(), true)
                        .map_err(|e| e.to_string())?;
                }
                let first = if pace == Pace::TinyFrames {
                    body.len()
                } else {
                    64
                };
                let (slow, rest) = body.split_at(body.len().min(first));
                let pieces = slow.chunks(1).chain(rest.chunks(256));
                let n = slow.len() + rest.len().div_ceil(256);
                for (i, piece) in pieces.enumerate() {
                    // Wait for window so that frames go out one by one instead of piling up.
                    stream.reserve_capacity(piece.len());
                    let _ = std::future::poll_fn(|cx| stream.poll_capacity(cx)).await;
                    stream
                        .send_data(Bytes::copy_from_slice(piece), i + 1 == n)
                        .map_err(|e| e.to_string())?;
                    tokio::task::yield_now().await;
                }
            }
        }
    }
    let resp = resp.await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut recv = resp.into_body();
    let mut out = Vec::new();
    while let Some(chunk) = recv.data().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        let _ = recv.flow_control().release_capacity(chunk.len());
        out.extend_from_slice(&chunk);
    }
    conn_task.abort();
    Ok(H2Response {
        status,
        headers,
        body: out,
    })
}
