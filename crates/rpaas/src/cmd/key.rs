//! `rpaas key create|list|revoke`: API keys, written straight into the control store (this
//! works while the node runs). A new key is printed once; only its hash is stored.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Create a key and print it once.
    Create {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        name: String,
        /// `operator` (everything) or `partner` (its instances' ACLs, its keys).
        #[arg(long)]
        scope: String,
        /// The partner of a `partner` key.
        #[arg(long)]
        partner: Option<String>,
        /// How long the key is valid, e.g. `90d` (default: until revoked).
        #[arg(long)]
        expires: Option<String>,
    },
    /// List keys (never the keys themselves).
    List {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by its id; it stops working at once.
    Revoke {
        #[arg(long, short)]
        config: PathBuf,
        id: String,
    },
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(1)
}

/// Opens the store `[control]` names.
pub fn open_store(
    config: &Path,
) -> Result<(tokio::runtime::Runtime, rpaas_control::Store), ExitCode> {
    let cfg = rpaas_config::load(config).map_err(|e| super::config_errors(&e))?;
    let Some(control) = cfg.control else {
        return Err(fail(format!(
            "{}: control: no [control] section",
            config.display()
        )));
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(fail)?;
    let store = rt
        .block_on(rpaas_control::Store::open(&control.store))
        .map_err(fail)?;
    Ok((rt, store))
}

pub fn run(cmd: KeyCommand) -> ExitCode {
    match cmd {
        KeyCommand::Create {
            config,
            name,
            scope,
            partner,
            expires,
        } => {
            let (rt, store) = match open_store(&config) {
                Ok(s) => s,
                Err(code) => return code,
            };
            rt.block_on(async {
                let exists = match &partner {
                    Some(p) => store.partner(p).await.map(|p| p.is_some()).unwrap_or(false),
                    None => false,
                };
                let req = rpaas_control::NewKey {
                    name,
                    scope,
                    partner,
                    expires,
                };
                let (scope, expires) = match rpaas_control::key_request(None, &req, exists) {
                    Ok(v) => v,
                    Err(e) => {
                        for f in e.errors {
                            eprintln!("error: {}: {}", f.field, f.reason);
                        }
                        return ExitCode::from(1);
                    }
                };
                let (text, stored) = match rpaas_control::new_key(&req.name, &scope, expires) {
                    Ok(k) => k,
                    Err(e) => return fail(e),
                };
                if let Err(e) = store.insert_key(&stored).await {
                    return fail(e);
                }
                let actor = rpaas_control::Actor {
                    name: "rpaas key create".into(),
                    source_ip: "local".into(),
                };
                let info = rpaas_control::KeyView::from(&stored);
                let _ = store
                    .audit_event(
                        &actor,
                        "key.create",
                        scope.partner(),
                        serde_json::to_value(&info).ok(),
                    )
                    .await;
                println!("{text}");
                eprintln!(
                    "key {} ({} {}) created; it is shown only now",
                    stored.id,
                    stored.scope,
                    stored.partner.as_deref().unwrap_or("")
                );
                ExitCode::SUCCESS
            })
        }
        KeyCommand::List { config, json } => {
            let (rt, store) = match open_store(&config) {
                Ok(s) => s,
                Err(code) => return code,
            };
            match rt.block_on(store.keys(None)) {
                Ok(keys) => {
                    let views: Vec<rpaas_control::KeyView> =
                        keys.iter().map(rpaas_control::KeyView::from).collect();
                    if json {
                        println!(
                            "{}",
                            serde_json::to_string_pretty(&views).unwrap_or_default()
                        );
                    } else {
                        for k in views {
                            println!(
                                "{} {} {} {} {}{}",
                                k.id,
                                k.prefix,
                                k.scope,
                                k.partner.as_deref().unwrap_or("-"),
                                k.name,
                                if k.revoked.is_some() {
                                    " (revoked)"
                                } else {
                                    ""
                                }
                            );
                        }
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        KeyCommand::Revoke { config, id } => {
            let (rt, store) = match open_store(&config) {
                Ok(s) => s,
                Err(code) => return code,
            };
            match rt.block_on(store.revoke_key(&id)) {
                Ok(true) => {
                    println!("key {id} revoked");
                    ExitCode::SUCCESS
                }
                Ok(false) => fail(format!("no active key {id}")),
                Err(e) => fail(e),
            }
        }
    }
}
