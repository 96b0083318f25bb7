//! `flumon-agent check`: the receipt the DMZ would answer for each file,
//! made offline with the same parser and validator, one JSON object per line.
//!
//! ```text
//!  FILE ─▶ read (≤ 64 MiB) ─▶ parse::parse_upload ─▶ receipt::check_file(OfflineState) ─▶ JSON line
//! ```
//! Offline the checker cannot know which cases the DMZ already holds, so every
//! JZLSH link is taken as present.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;
use flumon_shared::model::RecordType;
use flumon_shared::parse::{Limits, parse_upload, read_limited};
use flumon_shared::receipt::{OfflineState, Receipt, check_file};
use flumon_shared::validate::Ctx;

use crate::Error;

/// What `check` needs.
#[derive(Debug, Clone)]
pub struct CheckConfig {
    pub ty: RecordType,
    /// The hospital's 统一社会信用代码: when given, ZZJGDM is checked against it.
    pub org: Option<String>,
    /// The time of "receipt" (China Standard Time).
    pub now: NaiveDateTime,
    pub files: Vec<PathBuf>,
}

/// The content type a file's extension declares, as an upload would send it.
pub fn content_type_of(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "csv" | "txt" => Some("text/csv"),
        "xlsx" => Some("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        "json" => Some("application/json"),
        _ => None,
    }
}

/// Check one file's bytes and make its receipt.
pub fn check_bytes(ty: RecordType, bytes: &[u8], content_type: Option<&str>, ctx: &Ctx) -> Receipt {
    match parse_upload(ty, bytes, content_type, &Limits::default()) {
        Ok(parsed) => check_file(&parsed, ctx, &mut OfflineState::default()).0,
        Err(e) => Receipt::whole_file(ty, &e),
    }
}

/// Run `check` over every file, writing one receipt JSON per line to `out`
/// and a one-line summary per file to `log`.
pub fn run(cfg: &CheckConfig, out: &mut impl Write, log: &mut impl Write) -> Result<Vec<Receipt>, Error> {
    let ctx = Ctx { now: cfg.now, org: cfg.org.clone() };
    let mut receipts = Vec::new();
    for path in &cfg.files {
        let shown = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|source| Error::Read { path: shown.clone(), source })?;
        let receipt = match read_limited(file, &Limits::default()) {
            Ok(bytes) => check_bytes(cfg.ty, &bytes, content_type_of(path), &ctx),
            Err(e) => Receipt::whole_file(cfg.ty, &e),
        };
        serde_json::to_writer(&mut *out, &receipt)?;
        writeln!(out)?;
        writeln!(
            log,
            "{shown}: 收到 {} 行, 接收 {}, 拒收 {} (received / accepted / rejected){}",
            receipt.received,
            receipt.accepted,
            receipt.rejected,
            if receipt.received == 0 && !receipt.errors.is_empty() {
                ", 整个文件被拒收 (whole file rejected)"
            } else {
                ""
            }
        )?;
        receipts.push(receipt);
    }
    Ok(receipts)
}
