//! Death full-record scans (INTERFACE §3.9): a multipart upload of the
//! linking fields and one PDF/TIFF/JPEG/PNG file. Scans hold every
//! identifier and cannot be de-identified: the file goes to the raw archive
//! only; the intranet learns that it arrived (ScanInfo).
//!
//! ```text
//!  multipart {ZZJGDM, JZLSH, WJXH, WJZS, NRLB, file} ─▶ checks (fields, magic bytes, ≤ 50 MiB)
//!    ─▶ raw archive (encrypted, as every upload) ─▶ ScanInfo {case pseudonym, pages, bytes, SM3}
//!    ─▶ outbound queue ─▶ durable ─▶ receipt (200, or 422 / 413 with the reasons)
//! ```

use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;

use flumon_shared::crypto::sm3;
use flumon_shared::desens::keys::pseudonym;
use flumon_shared::entries::{Entry, ScanInfo};
use flumon_shared::validate::RowError;

use crate::error::{Error, Result};
use crate::hospitals::now_cst;
use crate::metrics::Metrics;
use crate::server::Peer;
use crate::state::AppState;
use crate::{archive, outbound};

/// The receipt of a scan upload.
#[derive(Clone, Debug, Serialize)]
pub struct ScanReceipt {
    pub receipt_id: String,
    #[serde(rename = "type")]
    pub ty: &'static str,
    pub received: usize,
    pub accepted: usize,
    pub rejected: usize,
    pub errors: Vec<RowError>,
}

fn err(row: usize, field: &str, code: &str, message: &str) -> RowError {
    RowError { row, field: field.to_owned(), code: code.to_owned(), message: message.to_owned() }
}

/// The file kind by magic bytes.
pub fn file_kind(b: &[u8]) -> Option<&'static str> {
    if b.starts_with(b"%PDF-") {
        Some("pdf")
    } else if b.starts_with(b"II*\0") || b.starts_with(b"MM\0*") {
        Some("tiff")
    } else if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("jpeg")
    } else if b.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Some("png")
    } else {
        None
    }
}

/// Pages when cheaply known: PDF page objects, TIFF directories, 1 for images.
pub fn pages(kind: &str, b: &[u8]) -> Option<u32> {
    match kind {
        "jpeg" | "png" => Some(1),
        "pdf" => {
            let mut n = 0u32;
            for pat in [&b"/Type /Page"[..], &b"/Type/Page"[..]] {
                for (i, w) in b.windows(pat.len()).enumerate() {
                    if w == pat && b.get(i + pat.len()) != Some(&b's') {
                        n = n.saturating_add(1);
                    }
                }
            }
            (n > 0).then_some(n)
        }
        "tiff" => tiff_pages(b),
        _ => None,
    }
}

fn tiff_pages(b: &[u8]) -> Option<u32> {
    let le = b.starts_with(b"II");
    let u16_at = |o: usize| -> Option<u16> {
        let s: [u8; 2] = b.get(o..o.checked_add(2)?)?.try_into().ok()?;
        Some(if le { u16::from_le_bytes(s) } else { u16::from_be_bytes(s) })
    };
    let u32_at = |o: usize| -> Option<u32> {
        let s: [u8; 4] = b.get(o..o.checked_add(4)?)?.try_into().ok()?;
        Some(if le { u32::from_le_bytes(s) } else { u32::from_be_bytes(s) })
    };
    let mut off = usize::try_from(u32_at(4)?).ok()?;
    let mut n = 0u32;
    while off != 0 && n < 100_000 {
        let entries = usize::from(u16_at(off)?);
        n += 1;
        let next = off.checked_add(2)?.checked_add(entries.checked_mul(12)?)?;
        let nxt = usize::try_from(u32_at(next)?).ok()?;
        if nxt != 0 && nxt <= off {
            break; // loops are not followed
        }
        off = nxt;
    }
    Some(n)
}

pub(super) async fn scans(
    State(state): State<AppState>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    mut mp: Multipart,
) -> Result<Response> {
    let org = super::agent(&state, &headers, &peer)?;
    let max = state.config.limits.scan_max_bytes;
    let mut fields: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut file: Option<bytes::Bytes> = None;
    let bad_mp = |_| Error::bad_request("multipart 请求无法解析 (unreadable multipart body)");
    while let Some(field) = mp.next_field().await.map_err(bad_mp)? {
        let name = field.name().unwrap_or_default().to_ascii_uppercase();
        if field.file_name().is_some() || name == "FILE" {
            if file.is_some() {
                return Err(Error::bad_request("只能上传一个文件 (exactly one file)"));
            }
            let data =
                field.bytes().await.map_err(|_| Error::TooLarge(format!("文件超过 {max} 字节 (file too large)")))?;
            file = Some(data);
        } else {
            let v = field.text().await.map_err(bad_mp)?;
            if v.len() > 256 {
                return Err(Error::bad_request("字段过长 (field too long)"));
            }
            fields.insert(name, v.trim().to_owned());
        }
    }
    let receipt_id = format!("{}-s{:016x}", state.config.node_id, state.store.next_id()?);
    let mut errors = Vec::new();
    let get = |k: &str| fields.get(k).map(String::as_str).filter(|v| !v.is_empty());
    match get("ZZJGDM") {
        None => {
            errors.push(err(1, "ZZJGDM", "REQUIRED", "「组织机构代码」(ZZJGDM): 必填字段为空 (required field empty)"))
        }
        Some(z) if z != org => errors.push(err(
            1,
            "ZZJGDM",
            "ORG_MISMATCH",
            "「组织机构代码」(ZZJGDM): 组织机构代码不是本院的 (not the uploading hospital's code)",
        )),
        Some(_) => {}
    }
    let jzlsh = get("JZLSH").map(str::to_owned);
    if jzlsh.as_deref().is_none_or(|j| j.chars().count() > 50) {
        errors.push(err(
            1,
            "JZLSH",
            "REQUIRED",
            "「就诊流水号」(JZLSH): 必填, 最多 50 个字符 (required, at most 50 characters)",
        ));
    }
    let num = |k: &str| get(k).and_then(|v| v.parse::<u16>().ok()).filter(|n| *n >= 1);
    let (wjxh, wjzs) = (num("WJXH"), num("WJZS"));
    if wjzs.is_none() {
        errors.push(err(1, "WJZS", "BAD_NUMBER", "「文件总数」(WJZS): 应为 1 以上的整数 (a number ≥ 1)"));
    }
    if wjxh.is_none() || wjxh > wjzs {
        errors.push(err(1, "WJXH", "NUMBER_RANGE", "「文件序号」(WJXH): 应为 1 至文件总数 (1 … WJZS)"));
    }
    let nrlb = get("NRLB").and_then(|v| v.parse::<u8>().ok()).filter(|n| matches!(n, 1..=6 | 9));
    if nrlb.is_none() {
        errors.push(err(
            1,
            "NRLB",
            "BAD_CODE",
            "「内容类别」(NRLB): 可选值 1 首页, 2 病程记录, 3 医嘱, 4 检验检查, 5 护理, 6 死亡讨论, 9 其他",
        ));
    }
    let mut status = StatusCode::OK;
    let kind = match &file {
        None => {
            errors.push(err(0, "", "FILE_EMPTY", "没有上传文件 (no file)"));
            None
        }
        Some(f) if f.len() > max => {
            status = StatusCode::PAYLOAD_TOO_LARGE;
            errors.push(err(0, "", "FILE_TOO_LARGE", &format!("文件超过 {max} 字节的上限 (file too large)")));
            None
        }
        Some(f) => {
            let k = file_kind(f);
            if k.is_none() {
                errors.push(err(0, "", "FILE_FORMAT", "文件应为 PDF、TIFF、JPEG 或 PNG (PDF, TIFF, JPEG or PNG only)"));
            }
            k
        }
    };
    if !errors.is_empty() && status == StatusCode::OK {
        status = StatusCode::UNPROCESSABLE_ENTITY;
    }
    let accepted = usize::from(errors.is_empty());
    let receipt = ScanReceipt {
        receipt_id: receipt_id.clone(),
        ty: "scan",
        received: 1,
        accepted,
        rejected: 1 - accepted,
        errors,
    };
    let st = state.clone();
    let org2 = org.clone();
    let rid = receipt_id.clone();
    let info = tokio::task::spawn_blocking(move || -> Result<()> {
        let Some(f) = file.filter(|f| f.len() <= st.config.limits.scan_max_bytes) else { return Ok(()) };
        archive::store_blocking(&st, &org2, "scan", None, Some(&rid), &f)?;
        if let (1, Some(kind), Some(j), Some(x), Some(z), Some(n)) = (accepted, kind, jzlsh, wjxh, wjzs, nrlb) {
            let info = ScanInfo {
                org: org2.clone(),
                case_key: pseudonym(&st.keys.desens.pseudonym, &org2, "JZLSH", &j),
                wjxh: x,
                wjzs: z,
                nrlb: n,
                pages: pages(kind, &f),
                bytes: f.len() as u64,
                sm3: hex::encode(sm3(&f)),
                received: now_cst(),
            };
            outbound::enqueue_entry(&st, &Entry::Scan(info))?;
            crate::figures::on_scan(&st, &org2, &j, now_cst())?;
        }
        Ok(())
    })
    .await
    .map_err(|e| Error::Internal(format!("scan task: {e}")))?;
    info?;
    Metrics::add(&state.metrics.scans, 1);
    state
        .audit(
            "scan",
            serde_json::json!({"receipt": receipt_id, "hospital": org, "status": status.as_u16(), "accepted": accepted}),
        )
        .await?;
    state.store.durable().await?;
    state.batcher_wake.notify_one();
    Ok((status, Json(receipt)).into_response())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn kinds_and_pages() {
        assert_eq!(file_kind(b"%PDF-1.4 ..."), Some("pdf"));
        assert_eq!(file_kind(b"GIF89a"), None);
        let pdf = b"%PDF-1.4 /Type /Pages /Type /Page x /Type/Page y";
        assert_eq!(pages("pdf", pdf), Some(2));
        // little-endian TIFF with two empty directories
        let mut t = b"II*\0".to_vec();
        t.extend_from_slice(&8u32.to_le_bytes());
        t.extend_from_slice(&0u16.to_le_bytes());
        t.extend_from_slice(&14u32.to_le_bytes());
        t.extend_from_slice(&0u16.to_le_bytes());
        t.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(pages("tiff", &t), Some(2));
    }
}
