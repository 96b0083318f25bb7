//! Registration applications and their scans (the store side; pages are in
//! registration.rs and review.rs).
//!
//! ```text
//!  web_applications   SQyyyymmdd-XXXXXX ─▶ Application (JSON)
//!  web_app_open       USCC ─▶ application no.   (one open application per hospital, CAS insert)
//!  web_scans          no. ␟ slot ─▶ reviewer copy: SM4-GCM (segmented) under the web key,
//!                                   aad "flumon-web scan v1␟no␟slot"; deleted when the review ends
//!  archive (raw_meta/raw_data via archive::archive_blob): the permanent copy, vault key only
//! ```
//! Files are accepted as PDF, JPEG or PNG by their first bytes, never by name
//! or declared type.

use serde::{Deserialize, Serialize};

use flumon_shared::crypto::{SymKey, open, seal, sm3};

use super::store::{self, APPLICATIONS, SCANS, now};
use crate::error::{Error, Result};
use crate::state::AppState;

/// One open (pending) application per 统一社会信用代码.
pub const OPEN: &str = "web_app_open";
/// Largest scan.
pub const SCAN_MAX: usize = 10 << 20;

/// The kind of a scan, by magic bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    Pdf,
    Jpeg,
    Png,
}

impl FileKind {
    /// Sniffs the first bytes.
    pub fn sniff(b: &[u8]) -> Option<FileKind> {
        if b.starts_with(b"%PDF-") {
            Some(FileKind::Pdf)
        } else if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(FileKind::Jpeg)
        } else if b.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
            Some(FileKind::Png)
        } else {
            None
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            FileKind::Pdf => "application/pdf",
            FileKind::Jpeg => "image/jpeg",
            FileKind::Png => "image/png",
        }
    }

    pub fn ext(self) -> &'static str {
        match self {
            FileKind::Pdf => "pdf",
            FileKind::Jpeg => "jpg",
            FileKind::Png => "png",
        }
    }
}

/// The two scans of an application.
pub const SLOTS: [(&str, &str); 2] = [("form", "盖章的注册申请表"), ("licence", "医疗机构执业许可证")];

/// A stored scan.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScanRef {
    /// `form` or `licence`.
    pub slot: String,
    pub kind: FileKind,
    pub size: u64,
    /// Hex SM3 of the file.
    pub sm3: String,
    /// Item id in the raw archive (vault key).
    pub archive_item: String,
    /// Whether the reviewer copy still exists.
    pub review_copy: bool,
}

/// Where an application stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Approved,
    Rejected,
}

impl Status {
    pub fn zh(self) -> &'static str {
        match self {
            Status::Pending => "待审核",
            Status::Approved => "已批准",
            Status::Rejected => "未通过",
        }
    }

    pub fn tag(self) -> &'static str {
        match self {
            Status::Pending => "warn",
            Status::Approved => "ok",
            Status::Rejected => "err",
        }
    }
}

/// An application for registration.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Application {
    pub no: String,
    pub status: Status,
    pub submitted: i64,
    pub name: String,
    pub uscc: String,
    pub licence_no: String,
    pub level: u8,
    pub region: String,
    pub contact_name: String,
    pub email: String,
    pub phone: String,
    pub scans: Vec<ScanRef>,
    #[serde(default)]
    pub decided: Option<i64>,
    #[serde(default)]
    pub reviewer: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    /// Whether the decision's e-mail went out.
    #[serde(default)]
    pub mailed: bool,
}

/// A new application number: `SQ` + date + 6 random base32 characters.
pub fn new_number() -> Result<String> {
    let r: [u8; 4] = flumon_shared::crypto::random_array()?;
    let tail: String = super::totp::base32_encode(&r).chars().take(6).collect();
    let day = (chrono::Utc::now() + chrono::Duration::hours(8)).format("%Y%m%d");
    Ok(format!("SQ{day}-{tail}"))
}

/// Whether `s` looks like an application number (before any lookup).
pub fn plausible_number(s: &str) -> bool {
    s.len() == 17 && s.starts_with("SQ") && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Reads an application.
pub fn get(state: &AppState, no: &str) -> Result<Option<Application>> {
    if !plausible_number(no) {
        return Ok(None);
    }
    store::get(&store::tree(state, APPLICATIONS)?, no.as_bytes())
}

/// Writes an application.
pub fn put(state: &AppState, app: &Application) -> Result<()> {
    store::put(&store::tree(state, APPLICATIONS)?, app.no.as_bytes(), app)
}

/// Every application, newest first.
pub fn all(state: &AppState) -> Result<Vec<Application>> {
    let mut v: Vec<Application> = store::tree(state, APPLICATIONS)?
        .iter()
        .values()
        .map(|r| serde_json::from_slice(&r?).map_err(crate::error::codec))
        .collect::<Result<_>>()?;
    v.sort_by_key(|a| std::cmp::Reverse(a.submitted));
    Ok(v)
}

/// Claims the open slot of `uscc` for application `no`; the number already
/// holding it when taken.
pub fn claim_open(state: &AppState, uscc: &str, no: &str) -> Result<std::result::Result<(), String>> {
    let t = store::tree(state, OPEN)?;
    match t.compare_and_swap(uscc.as_bytes(), None::<&[u8]>, Some(no.as_bytes()))? {
        Ok(()) => Ok(Ok(())),
        Err(e) => Ok(Err(e.current.map(|v| String::from_utf8_lossy(&v).into_owned()).unwrap_or_default())),
    }
}

/// Frees the open slot of `uscc` (the review ended, or the submission failed).
pub fn release_open(state: &AppState, uscc: &str) -> Result<()> {
    store::tree(state, OPEN)?.remove(uscc.as_bytes())?;
    Ok(())
}

fn scan_key(no: &str, slot: &str) -> Vec<u8> {
    format!("{no}\u{1f}{slot}").into_bytes()
}

fn scan_aad(no: &str, slot: &str) -> Vec<u8> {
    format!("flumon-web scan v1\u{1f}{no}\u{1f}{slot}").into_bytes()
}

/// Archives a scan for the vault and keeps a reviewer copy under the web key.
pub async fn store_scan(
    state: &AppState,
    key: &SymKey,
    no: &str,
    uscc: &str,
    slot: &str,
    bytes: &[u8],
) -> Result<ScanRef> {
    let kind = FileKind::sniff(bytes).ok_or_else(|| Error::bad_request("文件类型应为 PDF、JPEG 或 PNG"))?;
    let archive_item = crate::archive::archive_blob(state, uscc, &format!("registration_{slot}"), bytes).await?;
    let sealed = seal(key, &scan_aad(no, slot), bytes)?;
    store::tree(state, SCANS)?.insert(scan_key(no, slot), sealed)?;
    Ok(ScanRef {
        slot: slot.to_owned(),
        kind,
        size: bytes.len() as u64,
        sm3: hex::encode(sm3(bytes)),
        archive_item,
        review_copy: true,
    })
}

/// Opens the reviewer copy of a scan (None once the review ended).
pub fn read_scan(state: &AppState, key: &SymKey, no: &str, slot: &str) -> Result<Option<Vec<u8>>> {
    match store::tree(state, SCANS)?.get(scan_key(no, slot))? {
        Some(sealed) => Ok(Some(open(key, &scan_aad(no, slot), &sealed)?)),
        None => Ok(None),
    }
}

/// Deletes the reviewer copies of an application's scans.
pub fn drop_review_copies(state: &AppState, app: &mut Application) -> Result<()> {
    let t = store::tree(state, SCANS)?;
    for s in &mut app.scans {
        t.remove(scan_key(&app.no, &s.slot))?;
        s.review_copy = false;
    }
    Ok(())
}

/// Records the decision on a pending application atomically (a second
/// reviewer acting at the same time gets a conflict).
pub fn decide(
    state: &AppState,
    no: &str,
    status: Status,
    reviewer: &str,
    reason: Option<String>,
) -> Result<Application> {
    let t = store::tree(state, APPLICATIONS)?;
    store::update(&t, no.as_bytes(), |cur: Option<Application>| {
        let mut a = cur.ok_or(Error::NotFound)?;
        if a.status != Status::Pending {
            return Err(Error::Conflict("该申请已处理 (already decided)".into()));
        }
        a.status = status;
        a.decided = Some(now());
        a.reviewer = Some(reviewer.to_owned());
        a.reason = reason.clone();
        Ok((Some(a.clone()), a))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniff() {
        assert_eq!(FileKind::sniff(b"%PDF-1.7\n..."), Some(FileKind::Pdf));
        assert_eq!(FileKind::sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]), Some(FileKind::Jpeg));
        assert_eq!(FileKind::sniff(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0]), Some(FileKind::Png));
        assert_eq!(FileKind::sniff(b"GIF89a"), None);
        assert_eq!(FileKind::sniff(b"<html>%PDF-"), None);
        assert_eq!(FileKind::sniff(b""), None);
    }

    #[test]
    fn numbers() {
        let n = new_number().unwrap();
        assert!(plausible_number(&n), "{n}");
        assert!(!plausible_number("SQ2025"));
        assert!(!plausible_number("SQ20250101/ABCDEF"));
    }
}
