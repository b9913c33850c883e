//! `rpaas explain`: what the node does with one request from one address, and why. Offline
//! it compiles the config and runs the admission core with bans and rate limits unknown;
//! with `--admin ADDR` it asks the running node, whose answer includes them.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;

#[derive(Args)]
pub struct ExplainArgs {
    /// The node config (offline explain).
    #[arg(long, short, required_unless_present = "admin")]
    config: Option<PathBuf>,
    /// Ask the running node at this admin address instead (its bans and rate limits count).
    #[arg(long, value_name = "HOST:PORT")]
    admin: Option<SocketAddr>,
    /// The FQDN the client asks for (SNI/Host).
    #[arg(long)]
    host: String,
    /// The TLS name, when it is not `--host` (`""`: no SNI).
    #[arg(long)]
    sni: Option<String>,
    /// The client address.
    #[arg(long)]
    ip: IpAddr,
    #[arg(long, default_value = "GET")]
    method: String,
    /// A request header, `Name: value` (repeatable).
    #[arg(long = "header", value_name = "'K: V'")]
    headers: Vec<String>,
    /// Which `[[listener]]` the request arrives on (its index).
    #[arg(long, default_value_t = 0)]
    listener: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// A request body to inspect (give its type with --header 'Content-Type: ...').
    #[arg(long)]
    data: Option<String>,
    /// The request target, e.g. `/automate/` or `/LabTech/Deployment.aspx?InstallerToken=x`.
    target: String,
}

fn print(e: &rpaas_admission::Explanation, json: bool) -> ExitCode {
    if json {
        match serde_json::to_string_pretty(e) {
            Ok(s) => println!("{s}"),
            Err(err) => {
                eprintln!("error: {err}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", e.text());
    }
    ExitCode::SUCCESS
}

/// POSTs the question to a node's admin `/explain` and returns the JSON answer.
fn ask_node(admin: SocketAddr, body: &serde_json::Value) -> Result<serde_json::Value, String> {
    let (status, rest) = super::admin_request(admin, "POST", "/explain", &body.to_string())?;
    let v: serde_json::Value =
        serde_json::from_str(&rest).map_err(|e| format!("bad answer from the node: {e}"))?;
    if status != 200 {
        return Err(format!("the node answered {status}: {v}"));
    }
    Ok(v)
}

pub fn run(a: ExplainArgs) -> ExitCode {
    let mut headers = Vec::new();
    for h in &a.headers {
        match h.split_once(':') {
            Some((k, v)) if !k.trim().is_empty() => {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()))
            }
            _ => {
                eprintln!("error: --header {h:?}: write it as 'Name: value'");
                return ExitCode::from(2);
            }
        }
    }
    if let Some(admin) = a.admin {
        let q = serde_json::json!({
            "host": a.host, "ip": a.ip, "method": a.method, "target": a.target,
            "headers": headers, "sni": a.sni, "listener": a.listener, "body": a.data,
        });
        return match ask_node(admin, &q) {
            Ok(v) if a.json => {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                ExitCode::SUCCESS
            }
            Ok(v) => match serde_json::from_value::<rpaas_admission::Explanation>(v) {
                Ok(e) => print(&e, false),
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            },
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        };
    }
    let Some(config) = a.config else {
        return ExitCode::from(2);
    };
    let policy =
        match rpaas_config::load(&config).and_then(|c| rpaas_admission::Policy::build(c, None)) {
            Ok(p) => p,
            Err(e) => return super::config_errors(&e),
        };
    if !headers.iter().any(|(k, _)| k == "host") {
        headers.push(("host".into(), a.host.clone()));
    }
    rpaas_admission::add_body_length(&mut headers, a.data.as_deref().map(str::as_bytes));
    let sni = match &a.sni {
        Some(s) if s.is_empty() => None,
        Some(s) => Some(s.to_ascii_lowercase()),
        None => Some(a.host.trim_end_matches('.').to_ascii_lowercase()),
    };
    let authority = headers
        .iter()
        .find(|(k, _)| k == "host")
        .map(|(_, v)| v.clone());
    let e = rpaas_admission::explain(
        &policy,
        &rpaas_admission::Conn {
            listener: a.listener,
            peer: a.ip,
            sni: sni.as_deref(),
        },
        &rpaas_admission::Head {
            method: &a.method,
            target: a.target.as_bytes(),
            authority: authority.as_deref(),
            headers: &headers,
            protocol: "HTTP/1.1",
        },
        &rpaas_admission::Offline,
        a.data.as_deref().map(str::as_bytes),
        Instant::now(),
    );
    print(&e, a.json)
}
