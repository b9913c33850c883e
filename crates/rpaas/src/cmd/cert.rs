//! `rpaas cert status --admin ADDR`: every instance's certificate as the running node serves
//! it (source, state, expiry, the last ACME error and the next attempt).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Subcommand)]
pub enum CertCommand {
    /// Print each instance's certificate state.
    Status {
        /// The node's admin address (`[node] admin`).
        #[arg(long)]
        admin: SocketAddr,
        /// Print the node's JSON as is.
        #[arg(long)]
        json: bool,
    },
    /// Order a new certificate for an instance now (it is swapped in when issued).
    Renew {
        /// The node's admin address (`[node] admin`).
        #[arg(long)]
        admin: SocketAddr,
        /// The instance id.
        instance: String,
    },
}

fn renew(admin: SocketAddr, instance: &str) -> ExitCode {
    let go = || -> Result<String, String> {
        let mut s = TcpStream::connect_timeout(&admin, Duration::from_secs(5))
            .map_err(|e| format!("cannot reach the node at {admin}: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        write!(
            s,
            "POST /certs/{instance}/renew HTTP/1.1\r\nHost: {admin}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .map_err(|e| e.to_string())?;
        let mut raw = String::new();
        s.read_to_string(&mut raw).map_err(|e| e.to_string())?;
        Ok(raw)
    };
    match go() {
        Ok(raw) if raw.starts_with("HTTP/1.1 202") => {
            println!("renewing {instance}");
            ExitCode::SUCCESS
        }
        Ok(raw) => {
            eprintln!("error: {}", raw.split("\r\n\r\n").nth(1).unwrap_or(&raw));
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn fetch(admin: SocketAddr) -> Result<serde_json::Value, String> {
    let mut s = TcpStream::connect_timeout(&admin, Duration::from_secs(5))
        .map_err(|e| format!("cannot reach the node at {admin}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET /certs HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or("the node's answer has no body")?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!(
            "the node answered {}",
            head.lines().next().unwrap_or("")
        ));
    }
    serde_json::from_str(body).map_err(|e| format!("the node's answer is not JSON: {e}"))
}

pub fn run(c: CertCommand) -> ExitCode {
    let (admin, json) = match c {
        CertCommand::Status { admin, json } => (admin, json),
        CertCommand::Renew { admin, instance } => return renew(admin, &instance),
    };
    let v = match fetch(admin) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if json {
        println!("{v}");
        return ExitCode::SUCCESS;
    }
    let mut failed = false;
    println!(
        "{:<24} {:<12} {:<9} {:<22} last error / next attempt",
        "instance", "source", "state", "not after"
    );
    if let Some(m) = v.as_object() {
        for (id, s) in m {
            let field = |k: &str| s[k].as_str().unwrap_or("-").to_string();
            failed |= s["state"] == "failed";
            let extra = match (s["last_error"].as_str(), s["next_attempt"].as_str()) {
                (Some(e), Some(n)) => format!("{e} (next {n})"),
                (Some(e), None) => e.to_string(),
                (None, Some(n)) => format!("next {n}"),
                (None, None) => String::new(),
            };
            println!(
                "{id:<24} {:<12} {:<9} {:<22} {extra}",
                field("source"),
                field("state"),
                field("not_after")
            );
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
