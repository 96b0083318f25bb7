//! The one error type of `flumon-shared`.
//!
//! Row-level problems of an upload are not errors of this kind: they are
//! [`crate::validate::RowError`]s collected into a receipt. This enum is for
//! whole-file failures (a file that cannot be read at all), crypto failures,
//! malformed wire data and I/O.

use std::io;

/// Every failure the shared library reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A whole upload could not be read. `code` is a stable error code
    /// (documented in docs/INTERFACE.md), `message` is Chinese for hospital IT.
    #[error("{code}: {message}")]
    File { code: &'static str, message: String },

    /// The upload is larger than the interface allows (64 MiB / 200,000 rows).
    #[error("{code}: {message}")]
    TooLarge { code: &'static str, message: String },

    /// Cryptographic failure: bad key, failed authentication, bad signature.
    /// The message never contains key material.
    #[error("crypto: {0}")]
    Crypto(String),

    /// Malformed wire or file data (batch files, journals, encrypted files).
    #[error("format: {0}")]
    Format(String),

    /// An audit journal whose chain does not verify.
    #[error("journal: {0}")]
    Journal(String),

    /// Key file problems (PEM, PKCS#8, SPKI).
    #[error("key file: {0}")]
    Key(String),

    /// Underlying I/O error.
    #[error("io: {0}")]
    Io(#[from] io::Error),
}

impl Error {
    /// Shorthand for a whole-file error.
    pub fn file(code: &'static str, message: impl Into<String>) -> Self {
        Error::File { code, message: message.into() }
    }
}

/// Result alias for the shared crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
