//! `flumon-vault`: the offline workstation that alone can read the DMZ's raw
//! archive (ARCHITECTURE invariant 5).
//!
//! ```text
//!  keygen ─▶ vault.pub.pem ──(media)──▶ flumon-dmz init --vault-pubkey
//!        └▶ vault.key | share-x-of-N.key (argon2id + SM4-GCM, Shamir M of N)   keystore.rs, shamir.rs
//!  flumon-dmz export-raw ──(media)──▶ ARCHIVE ─▶ list / verify                  archive.rs
//!                                          └▶ open (M officers) ─▶ originals     open.rs
//!  every keygen / open / refusal ─▶ vault-journal.log (SM3 chain, SM2 checkpoints by the vault key)
//! ```
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

pub mod archive;
pub mod keystore;
pub mod open;
pub mod shamir;

use std::path::Path;

/// Errors of the vault library (messages Chinese first).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Wrong command-line use.
    #[error("{0}")]
    Usage(String),
    /// A key file that cannot be used.
    #[error("密钥文件错误 (key file): {0}")]
    KeyFile(String),
    /// The passphrase does not open the key file.
    #[error("口令错误, 无法打开 {0} (wrong passphrase)")]
    WrongPassphrase(String),
    /// Fewer shares than the threshold.
    #[error(
        "份额不足: 需要 {need} 份 (共 {of} 份) 中的至少 {need} 份, 只提供了 {got} 份 (not enough shares: {need} of {of} needed, {got} given)"
    )]
    NotEnoughShares { need: u8, of: u8, got: usize },
    /// An archive that cannot be read.
    #[error("归档错误 (archive): {0}")]
    Archive(String),
    /// An archive that fails a check: nothing is opened.
    #[error("归档未通过校验, 拒绝开启 (archive refused): {0}")]
    Tampered(String),
    /// I/O on a named file.
    #[error("文件操作失败 {path} (I/O): {source}")]
    Io { path: String, source: std::io::Error },
    /// Crypto, key and journal errors of the shared library.
    #[error("{0}")]
    Shared(#[from] flumon_shared::Error),
    /// A bug.
    #[error("内部错误 (internal): {0}")]
    Internal(String),
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io { path: path.display().to_string(), source }
    }
}

/// The operating-system user running the vault.
pub fn os_user() -> String {
    std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into())
}

/// Writes a new file (never overwrites), fsynced, with `mode`.
pub(crate) fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, mode);
    let _ = mode;
    let mut f = o.open(path).map_err(|e| Error::io(path, e))?;
    f.write_all(bytes).map_err(|e| Error::io(path, e))?;
    f.sync_all().map_err(|e| Error::io(path, e))
}
