//! The HTTPS client instant-acme talks to the directory with: rustls on ring (no aws-lc), the
//! system's roots plus the configured extra root.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use instant_acme::{BodyWrapper, HttpClient};
use rustls::pki_types::CertificateDer;

use crate::error::AcmeError;

/// Reads the PEM roots in `path` (every certificate in the file).
fn extra_roots(path: &Path) -> Result<Vec<CertificateDer<'static>>, AcmeError> {
    let pem = std::fs::read(path)
        .map_err(|e| AcmeError::Config(format!("ca: cannot read {}: {e}", path.display())))?;
    let certs = openssl::x509::X509::stack_from_pem(&pem)
        .map_err(|e| AcmeError::Config(format!("ca: {}: bad PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(AcmeError::Config(format!(
            "ca: {}: no certificate in the file",
            path.display()
        )));
    }
    certs
        .iter()
        .map(|c| {
            c.to_der()
                .map(CertificateDer::from)
                .map_err(|e| AcmeError::Config(format!("ca: {}: {e}", path.display())))
        })
        .collect()
}

/// Builds the client; `ca` adds roots for the directory's TLS.
pub(crate) fn http_client(ca: Option<&Path>) -> Result<Box<dyn HttpClient>, AcmeError> {
    let roots = match ca {
        Some(p) => extra_roots(p)?,
        None => Vec::new(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls_platform_verifier::Verifier::new_with_extra_roots(roots, provider.clone())
            .map_err(|e| AcmeError::Config(format!("ca: {e}")))?;
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| AcmeError::Internal(format!("TLS client: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .enable_http2()
        .build();
    let client: Client<_, BodyWrapper<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
    Ok(Box::new(client))
}
