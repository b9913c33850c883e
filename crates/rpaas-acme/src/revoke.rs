//! Revocation at the operator's request (a key that may have leaked, a name that left): the
//! pair served for a name is revoked at the CA (RFC 8555 §7.6) and a replacement is ordered at
//! once. The revoked pair keeps being served until the new one is issued (there is nothing
//! better to serve meanwhile); the status shows the renewal and any error.

use instant_acme::{RevocationReason, RevocationRequest};
use rustls::pki_types::CertificateDer;

use crate::error::AcmeError;
use crate::manager::Manager;
use crate::store::CertName;

impl Manager {
    /// Revokes every certificate held for `name` (ECDSA and RSA) and orders new ones now.
    /// Returns how many were revoked; a certificate the CA already had revoked counts.
    pub async fn revoke(&self, name: &CertName) -> Result<usize, AcmeError> {
        let leaves = self.held(name).ok_or_else(|| {
            AcmeError::Config(format!("{name}: no certificate managed under this name"))
        })?;
        if leaves.is_empty() {
            return Err(AcmeError::Config(format!(
                "{name}: no certificate issued yet"
            )));
        }
        let mut ders = Vec::with_capacity(leaves.len());
        for pem in &leaves {
            let leaf = openssl::x509::X509::stack_from_pem(pem.as_bytes())
                .ok()
                .and_then(|c| c.into_iter().next())
                .ok_or_else(|| {
                    AcmeError::Internal(format!("{name}: stored chain holds no certificate"))
                })?;
            let der = leaf
                .to_der()
                .map_err(|e| AcmeError::Internal(format!("{name}: {e}")))?;
            ders.push(CertificateDer::from(der));
        }
        let account = self.account_for_revocation().await?;
        let mut revoked = 0;
        for der in &ders {
            let req = RevocationRequest {
                certificate: der,
                reason: Some(RevocationReason::Superseded),
            };
            match account.revoke(&req).await {
                Ok(()) => revoked += 1,
                Err(instant_acme::Error::Api(p))
                    if p.r#type.as_deref() == Some("urn:ietf:params:acme:error:alreadyRevoked") =>
                {
                    revoked += 1
                }
                Err(e) => return Err(AcmeError::from_acme(e)),
            }
        }
        tracing::info!(target: "rpaas::acme", name = %name, revoked, "certificates revoked; ordering replacements");
        self.force_renew(name);
        Ok(revoked)
    }
}
