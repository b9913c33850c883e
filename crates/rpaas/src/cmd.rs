//! One module per `rpaas` verb: each parses nothing itself (clap did), calls the library
//! crates and prints.

pub mod audit;
pub mod cert;
pub mod check;
pub mod config;
pub mod explain;
pub mod geoip;
pub mod key;
pub mod user;

use std::process::ExitCode;

/// One request to a running node's admin endpoint (plain HTTP, `Connection: close`): the
/// status code and the body.
pub fn admin_request(
    admin: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> Result<(u16, String), String> {
    use std::io::{Read, Write};
    use std::time::Duration;
    let mut s = std::net::TcpStream::connect_timeout(&admin, Duration::from_secs(5))
        .map_err(|e| format!("cannot reach the node at {admin}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {admin}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .ok_or("the node sent no complete answer")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("the node's answer has no status")?;
    Ok((status, rest.to_string()))
}

/// Prints every config error, one `file: key: reason` line each, and exits 1.
pub fn config_errors(errors: &rpaas_config::ConfigErrors) -> ExitCode {
    for e in &errors.0 {
        eprintln!("error: {e}");
    }
    ExitCode::from(1)
}
