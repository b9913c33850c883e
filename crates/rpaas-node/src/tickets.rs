//! Where the node's TLS ticket-key secret comes from: the control store when there is one (one
//! secret per fleet, so a ticket from any node resumes on every other), else a file in
//! `node.data_dir` (tickets survive restarts), else a random one per process. A store that is
//! down at start gives a local secret now and the fleet's as soon as it answers.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rpaas_tls_session::{Resumption, Secret, DEFAULT_ROTATION};

/// The store's name for the secret.
const STORE_NAME: &str = "tls_tickets";
/// The file under `node.data_dir`.
const FILE_NAME: &str = "tls-ticket-secret";

fn random() -> Secret {
    Secret::random().unwrap_or_else(|_| {
        // OpenSSL's RNG failing is not recoverable in any useful way; a fixed secret would
        // be guessable, so a time-and-address based one is the last resort before that.
        let seed = format!("{:?}{:p}", std::time::SystemTime::now(), &STORE_NAME);
        Secret::from_bytes(openssl::sha::sha256(seed.as_bytes()))
    })
}

/// The secret kept in `dir` (created, 0600, on first use).
fn from_dir(dir: &Path) -> Result<Secret, std::io::Error> {
    let path = dir.join(FILE_NAME);
    match std::fs::read_to_string(&path) {
        Ok(s) => Secret::from_hex(&s).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: not 64 hex digits", path.display()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir)?;
            let s = random();
            let tmp = dir.join(format!("{FILE_NAME}.tmp"));
            {
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new();
                f.write(true).create(true).truncate(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    f.mode(0o600);
                }
                let mut f = f.open(&tmp)?;
                f.write_all(s.to_hex().as_bytes())?;
                f.sync_all()?;
            }
            std::fs::rename(&tmp, &path)?;
            Ok(s)
        }
        Err(e) => Err(e),
    }
}

async fn from_store(store: &rpaas_control::Store) -> Option<Secret> {
    let fresh = random().to_hex();
    match tokio::time::timeout(
        Duration::from_secs(3),
        store.shared_secret(STORE_NAME, &fresh),
    )
    .await
    {
        Ok(Ok(hex)) => Secret::from_hex(&hex),
        Ok(Err(e)) => {
            tracing::warn!(target: "rpaas::node", error = %e, "the control store has no TLS ticket secret for now; a local one is used until it answers");
            None
        }
        Err(_) => {
            tracing::warn!(target: "rpaas::node", "the control store did not answer for the TLS ticket secret; a local one is used until it does");
            None
        }
    }
}

/// The node's resumption keys. With a store that does not answer yet, a task keeps asking and
/// swaps the fleet's secret in when it does.
pub(crate) async fn resumption(
    data_dir: Option<&str>,
    store: Option<&rpaas_control::Store>,
) -> Arc<Resumption> {
    let local = || {
        match data_dir {
        Some(d) => from_dir(Path::new(d)).unwrap_or_else(|e| {
            tracing::warn!(target: "rpaas::node", error = %e, "the TLS ticket secret in node.data_dir cannot be used; tickets will not survive a restart");
            random()
        }),
        None => random(),
    }
    };
    let Some(store) = store else {
        return Arc::new(Resumption::new(local(), DEFAULT_ROTATION));
    };
    if let Some(s) = from_store(store).await {
        return Arc::new(Resumption::new(s, DEFAULT_ROTATION));
    }
    let r = Arc::new(Resumption::new(local(), DEFAULT_ROTATION));
    let (later, store) = (r.clone(), store.clone());
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(30)).await;
            if let Some(s) = from_store(&store).await {
                later.set_secret(s);
                tracing::info!(target: "rpaas::node", "TLS ticket secret from the control store in use");
                return;
            }
        }
    });
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_dir_secret_is_made_once_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sub = dir.path().join("state");
        let a = from_dir(&sub).expect("create");
        let b = from_dir(&sub).expect("read");
        assert_eq!(a.to_hex(), b.to_hex());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(sub.join(FILE_NAME))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the secret file is the node's only");
        }
        std::fs::write(sub.join(FILE_NAME), "not hex").expect("write");
        assert!(from_dir(&sub).is_err(), "a damaged file is reported");
    }
}
