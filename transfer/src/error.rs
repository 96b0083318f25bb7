//! The crate's one error type.
//!
//! ```text
//!  shared::Error ─┐
//!  io::Error ─────┼─▶ Error ─▶ main (anyhow) ─▶ exit status
//!  config/state ──┘
//! ```

/// Everything that can go wrong in `flumon-transfer` (datagram rejections are
/// not errors: they are counted, see [`crate::wire::Reject`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration file or value is wrong.
    #[error("configuration: {0}")]
    Config(String),
    /// File or socket I/O.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// From the shared library (keys, batch format, journal).
    #[error(transparent)]
    Shared(#[from] flumon_shared::Error),
    /// A state log or status file is unreadable.
    #[error("state: {0}")]
    State(String),
    /// Forward error correction failed where it must not (sender side).
    #[error("FEC: {0}")]
    Fec(String),
    /// A journal could not be verified or written.
    #[error("journal: {0}")]
    Journal(String),
    /// A request the operator made cannot be carried out.
    #[error("{0}")]
    Usage(String),
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
