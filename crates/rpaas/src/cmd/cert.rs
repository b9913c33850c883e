//! `rpaas cert status --admin ADDR`: every instance's certificate as the running node serves
//! it (source, state, expiry, the last ACME error and the next attempt).

use std::net::SocketAddr;
use std::process::ExitCode;

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
    /// Revoke an instance's certificates at the CA (a key that may have leaked) and order new
    /// ones now; the revoked pair is served until the new one is issued.
    Revoke {
        /// The node's admin address (`[node] admin`).
        #[arg(long)]
        admin: SocketAddr,
        /// The instance id.
        instance: String,
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

fn renew(admin: SocketAddr, instance: &str, action: &str) -> ExitCode {
    match super::admin_request(admin, "POST", &format!("/certs/{instance}/{action}"), "") {
        Ok((202, body)) => {
            match action {
                "revoke" => println!("revoked {instance} ({body}); renewing"),
                _ => println!("renewing {instance}"),
            }
            ExitCode::SUCCESS
        }
        Ok((_, body)) => {
            eprintln!("error: {body}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn fetch(admin: SocketAddr) -> Result<serde_json::Value, String> {
    match super::admin_request(admin, "GET", "/certs", "")? {
        (200, body) => {
            serde_json::from_str(&body).map_err(|e| format!("the node's answer is not JSON: {e}"))
        }
        (status, body) => Err(format!("the node answered {status}: {body}")),
    }
}

pub fn run(c: CertCommand) -> ExitCode {
    let (admin, json) = match c {
        CertCommand::Status { admin, json } => (admin, json),
        CertCommand::Renew { admin, instance } => return renew(admin, &instance, "renew"),
        CertCommand::Revoke { admin, instance } => return renew(admin, &instance, "revoke"),
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
