//! Errors. Usage errors ([`UsageError`]) stop the audit before anything is sent; everything
//! else ([`FileError`], [`ProbeError`]) turns into a `skip` with the error as its reason.

use std::path::PathBuf;

/// The command line asks for something that cannot be audited.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    #[error("{url:?}: {reason}")]
    Url { url: String, reason: &'static str },
    #[error("--connect {value:?}: {reason}")]
    Connect { value: String, reason: &'static str },
    #[error("--{flag} {value:?}: {reason}")]
    Ports {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error("--{flag} {value:?}: {reason}")]
    Duration {
        flag: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("nothing to audit: give a URL, --iis-config or --schannel")]
    Nothing,
    #[error("cannot start the audit runtime: {0}")]
    Runtime(std::io::Error),
}

/// An offline file that cannot be read as what it should be.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: larger than {limit} bytes: not an export of this kind", path.display())]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("{}: not text: {reason}", path.display())]
    Encoding { path: PathBuf, reason: &'static str },
    #[error("{}: not XML (byte {position}): {reason}", path.display())]
    Xml {
        path: PathBuf,
        position: u64,
        reason: String,
    },
    #[error("{}: {reason}", path.display())]
    NotIisConfig { path: PathBuf, reason: &'static str },
    #[error("{}: line {line}: {reason}", path.display())]
    Reg {
        path: PathBuf,
        line: usize,
        reason: &'static str,
    },
}

/// A network probe that got no usable answer. The side that failed is in the variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("connection refused")]
    Refused,
    #[error("connection reset")]
    Reset,
    #[error("the connection was closed without an answer")]
    Closed,
    #[error("no answer within {0} ms")]
    Timeout(u128),
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    #[error("the local OpenSSL cannot offer this: {0}")]
    LocalTls(String),
    #[error("not HTTP: {0}")]
    Http(&'static str),
    #[error("I/O error: {0}")]
    Io(String),
    #[error("the audit's overall time limit was reached")]
    Deadline,
}

impl ProbeError {
    /// The server (or something in front of it) turned the connection away, as opposed to a
    /// fault on our side or a silent network.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::Refused | Self::Reset | Self::Closed | Self::Tls(_)
        )
    }

    pub(crate) fn from_io(e: &std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::ConnectionRefused => Self::Refused,
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted => {
                Self::Reset
            }
            std::io::ErrorKind::UnexpectedEof => Self::Closed,
            _ => Self::Io(e.to_string()),
        }
    }
}
