//! `flumon-agent`: the hospital-side program (前置机).
//!
//! ```text
//!  enroll ─▶ key pair + CSR ─▶ POST /api/v1/enroll ─▶ agent.pem / agent.key / agent.toml      enroll.rs
//!  run:  HIS exports (folder: CSV / XLSX / JSON, mapping.toml) ┐                                source.rs
//!        SQL queries (PostgreSQL / MySQL)                      ┴▶ parse ─▶ check + local scope
//!        ─▶ trailing 7 days by YWRQ ─▶ CSV chunks ─▶ sled queue (durable)                       extract.rs, queue.rs
//!        ─▶ POST /api/v1/upload/{type} (TLS 1.3, client cert, token) ─▶ receipt stored ─▶ chunk removed   upload.rs, https.rs
//!        death scans folder ─▶ POST /api/v1/scans                                              scans.rs
//!  check: offline receipts, nothing sent                                                        check.rs
//! ```
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

pub mod check;
pub mod config;
pub mod enroll;
pub mod extract;
pub mod https;
pub mod queue;
pub mod scans;
pub mod source;
pub mod sql;
pub mod upload;
pub mod verify_release;

/// Errors of the agent library (Chinese first: hospital IT reads them).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be opened or read.
    #[error("无法读取文件 {path} (cannot read file): {source}")]
    Read { path: String, source: std::io::Error },
    /// Writing the output failed.
    #[error("输出失败 (cannot write output): {0}")]
    Output(#[from] std::io::Error),
    /// Serialising a receipt failed.
    #[error("无法生成回执 (cannot serialise receipt): {0}")]
    Json(#[from] serde_json::Error),
    /// The configuration is wrong.
    #[error("配置错误 (configuration): {0}")]
    Config(String),
    /// TLS setup or handshake.
    #[error("TLS 错误, 请检查 DMZ 地址、CA 证书和客户端证书 (TLS): {0}")]
    Tls(String),
    /// The DMZ could not be reached or the connection broke (retried).
    #[error("无法连接 DMZ, 稍后重试 (DMZ unreachable): {0}")]
    Network(String),
    /// The DMZ refused the credentials (401/403): not retried.
    #[error(
        "DMZ 拒绝认证 (HTTP {status}): {message}。请检查 API 令牌与客户端证书是否属于本院、是否已吊销 (authentication refused)"
    )]
    Auth { status: u16, message: String },
    /// The DMZ answered something unexpected.
    #[error("DMZ 返回 HTTP {status}: {message}")]
    Http { status: u16, message: String },
    /// The local queue (sled).
    #[error("本地队列错误 (local queue): {0}")]
    Queue(String),
    /// A source (HIS export folder, mapping, SQL).
    #[error("数据源错误 (source): {0}")]
    Source(String),
    /// Shared library errors (parsing, crypto).
    #[error("{0}")]
    Shared(#[from] flumon_shared::Error),
}

impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Self {
        Error::Queue(e.to_string())
    }
}

/// China Standard Time now, as the DMZ reads times (no zone suffix).
pub fn now_cst() -> chrono::NaiveDateTime {
    (chrono::Utc::now() + chrono::Duration::hours(8)).naive_utc()
}

/// Writes a new file with `mode` (0600 for secrets), fsynced; refuses to overwrite.
pub fn write_new(path: &std::path::Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, mode);
    let mut f = o.open(path).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}
