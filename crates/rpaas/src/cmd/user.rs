//! `rpaas user create`: a dashboard user, written straight into the control store (works
//! while the node runs). The password is read from standard input (one line), hashed with
//! argon2, and never printed.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use rpaas_control::users::Role;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from stdin.
    Create {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        name: String,
        /// `operator`, `partner-admin` or `partner-viewer`.
        #[arg(long)]
        role: String,
        /// The partner of a partner role.
        #[arg(long)]
        partner: Option<String>,
    },
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(1)
}

pub fn run(cmd: UserCommand) -> ExitCode {
    let UserCommand::Create {
        config,
        name,
        role,
        partner,
    } = cmd;
    let Some(role) = Role::parse(&role) else {
        return fail(format!(
            "--role: {role:?} is not operator, partner-admin or partner-viewer"
        ));
    };
    match (role, &partner) {
        (Role::Operator, Some(_)) => return fail("--partner: an operator belongs to no partner"),
        (Role::PartnerAdmin | Role::PartnerViewer, None) => {
            return fail("--partner: a partner role needs the partner's id")
        }
        _ => {}
    }
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        return fail("--name: 1-64 printable characters");
    }
    let mut password = String::new();
    if let Err(e) = std::io::stdin().lock().read_line(&mut password) {
        return fail(format!("cannot read the password from stdin: {e}"));
    }
    let password = password.trim_end_matches(['\r', '\n']);
    if password.chars().count() < 12 {
        return fail("the password (from stdin) needs at least 12 characters");
    }
    let (rt, store) = match super::key::open_store(&config) {
        Ok(s) => s,
        Err(code) => return code,
    };
    rt.block_on(async {
        if let Some(p) = &partner {
            match store.partner(p).await {
                Ok(Some(_)) => {}
                Ok(None) => return fail(format!("--partner: no partner {p:?}")),
                Err(e) => return fail(e),
            }
        }
        match store
            .create_user(&name, role, partner.as_deref(), password)
            .await
        {
            Ok(u) => {
                eprintln!("created user {} ({}, id {})", u.name, u.role.as_str(), u.id);
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        }
    })
}
