//! `flumon-agent`: the hospital-side program (前置机).
//!
//! ```text
//!  HIS exports (CSV / XLSX / JSON) ─▶ check (offline receipts)
//!                                  └▶ run (upload to the DMZ; later issue)
//! ```
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

pub mod check;

/// Errors of the agent library.
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
}

/// China Standard Time now, as the DMZ reads times (no zone suffix).
pub fn now_cst() -> chrono::NaiveDateTime {
    (chrono::Utc::now() + chrono::Duration::hours(8)).naive_utc()
}
