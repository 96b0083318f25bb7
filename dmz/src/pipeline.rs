//! The upload pipeline (INTERFACE §1, ARCHITECTURE invariants 1, 2, 5): one
//! path for agents (`POST /api/v1/upload/{type}`) and web uploads.
//!
//! ```text
//!  body ─▶ parse_upload ──whole-file error──▶ receipt 422 (413 for rows) ─┐
//!           │                                                              │
//!           ▼ check_file(ctx.org = authenticated hospital, ScopeView)      │
//!  raw original ─▶ archive (fresh SM4 key → vault SM2) ◀───────────────────┘ (always archived)
//!  accepted ─▶ desensitise ─▶ dedupe ─▶ outbound queue   (chunks of 1,000, one transaction each)
//!  ScopeView.commit ─▶ ReceiptSummary ─▶ queue ─▶ receipt history ─▶ audit
//!  ─▶ store.durable() (group commit) ─▶ 200 / 422 / 413 with the receipt
//! ```
//! Uploads of one hospital run one at a time (scope and slots are that
//! hospital's history); the work runs in its own task on the blocking pool,
//! so a client that disconnects cannot stop it halfway.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use bytes::Bytes;
use chrono::NaiveDate;

use flumon_shared::entries::{Entry, ReceiptSummary};
use flumon_shared::model::RecordType;
use flumon_shared::parse::{Limits, parse_upload};
use flumon_shared::receipt::{Accepted, Receipt, check_file};
use flumon_shared::validate::Ctx;

use crate::archive;
use crate::error::{Error, Result, codec};
use crate::hospitals::{ReceiptRecord, now_cst, receipt_key};
use crate::metrics::Metrics;
use crate::outbound::{self, Pending};
use crate::state::AppState;
use crate::store::scope::ScopeView;
use crate::store::trees;

/// Records desensitised and queued per transaction.
const CHUNK: usize = 1000;

/// Processes one record upload for hospital `org` (already authenticated)
/// and answers its receipt once everything is durable.
pub async fn process_upload(
    state: &AppState,
    org: &str,
    ty: RecordType,
    body: Bytes,
    content_type: Option<&str>,
) -> Result<(StatusCode, Receipt)> {
    let st = state.clone();
    let org = org.to_owned();
    let ct = content_type.map(str::to_owned);
    // Own task: finishes even if the caller's future is dropped.
    tokio::spawn(async move { upload_task(st, org, ty, body, ct).await })
        .await
        .map_err(|e| Error::Internal(format!("upload task: {e}")))?
}

async fn upload_task(
    state: AppState,
    org: String,
    ty: RecordType,
    body: Bytes,
    ct: Option<String>,
) -> Result<(StatusCode, Receipt)> {
    let _permit = state.upload_slots.acquire().await.map_err(|_| Error::Unavailable("shutting down".into()))?;
    let lock = state.org_lock(&org)?;
    let guard = lock.lock().await;
    let st = state.clone();
    let org2 = org.clone();
    let (status, receipt) = tokio::task::spawn_blocking(move || upload_blocking(&st, &org2, ty, &body, ct.as_deref()))
        .await
        .map_err(|e| Error::Internal(format!("upload worker: {e}")))??;
    drop(guard);
    finish(&state, &org, &receipt, status).await?;
    Ok((status, receipt))
}

/// Audit, durability, wake the batcher.
async fn finish(state: &AppState, org: &str, receipt: &Receipt, status: StatusCode) -> Result<()> {
    state
        .audit(
            "upload",
            serde_json::json!({
                "receipt": receipt.receipt_id, "hospital": org, "type": receipt.ty.as_str(),
                "status": status.as_u16(), "received": receipt.received,
                "accepted": receipt.accepted, "rejected": receipt.rejected,
            }),
        )
        .await?;
    state.store.durable().await?;
    state.batcher_wake.notify_one();
    Ok(())
}

fn new_receipt_id(state: &AppState) -> Result<String> {
    Ok(format!("{}-u{:016x}", state.config.node_id, state.store.next_id()?))
}

fn upload_blocking(
    state: &AppState,
    org: &str,
    ty: RecordType,
    body: &[u8],
    ct: Option<&str>,
) -> Result<(StatusCode, Receipt)> {
    let receipt_id = new_receipt_id(state)?;
    let now = now_cst();
    let lim = &state.config.limits;
    let limits = Limits { max_bytes: lim.upload_max_bytes, max_rows: lim.upload_max_rows, ..Limits::default() };
    Metrics::add(&state.metrics.uploads, 1);
    let parsed = parse_upload(ty, body, ct, &limits);
    // The raw original is archived whatever the outcome (it is the record of what was sent).
    archive::store_blocking(state, org, "upload", Some(ty.as_str()), Some(&receipt_id), body)?;
    let file = match parsed {
        Ok(f) => f,
        Err(e) => {
            let status = if matches!(e, flumon_shared::Error::TooLarge { .. }) {
                Metrics::add(&state.metrics.uploads_too_large, 1);
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                Metrics::add(&state.metrics.uploads_whole_file_rejected, 1);
                StatusCode::UNPROCESSABLE_ENTITY
            };
            let mut receipt = Receipt::whole_file(ty, &e);
            receipt.receipt_id = receipt_id;
            record_receipt(state, org, &receipt, status, &[], now)?;
            return Ok((status, receipt));
        }
    };
    let ctx = Ctx { now, org: Some(org.to_owned()) };
    let mut view = ScopeView::new(&state.store, &state.keys.desens.pseudonym)?;
    let (mut receipt, accepted) = check_file(&file, &ctx, &mut view);
    drop(file);
    if let Some(e) = view.read_error.take() {
        return Err(Error::Internal(format!("scope state: {e}")));
    }
    receipt.receipt_id = receipt_id;
    let (queued, unchanged) = queue_records(state, &accepted, now)?;
    view.commit()?;
    Metrics::add(&state.metrics.records_received, receipt.received as u64);
    Metrics::add(&state.metrics.records_accepted, receipt.accepted as u64);
    Metrics::add(&state.metrics.records_rejected, receipt.rejected as u64);
    Metrics::add(&state.metrics.records_queued, queued);
    Metrics::add(&state.metrics.records_unchanged, unchanged);
    record_receipt(state, org, &receipt, StatusCode::OK, &accepted, now)?;
    Ok((StatusCode::OK, receipt))
}

fn queue_records(state: &AppState, accepted: &[Accepted], now: chrono::NaiveDateTime) -> Result<(u64, u64)> {
    let des = &state.keys.desens;
    let (mut queued, mut unchanged) = (0, 0);
    for chunk in accepted.chunks(CHUNK) {
        let mut pend = Vec::with_capacity(chunk.len());
        for acc in chunk {
            let mut rec = des.desensitise(acc, chrono::NaiveDateTime::default(), 0);
            let digest = outbound::digest_unstamped(&rec)?;
            let c = outbound::common_mut(&mut rec);
            let dedupe_key = outbound::dedupe_key(&c.org, acc.record.ty(), &c.rec_key);
            c.dmz_time = now;
            c.dmz_seq = state.store.next_id()?;
            let value = outbound::encode(&Entry::Record(rec))?;
            pend.push(Pending { dedupe_key, digest, value });
        }
        let (q, u) = outbound::enqueue_records(state, &pend)?;
        queued += q;
        unchanged += u;
    }
    Ok((queued, unchanged))
}

/// Queues the receipt summary and keeps the receipt in the hospital's history.
fn record_receipt(
    state: &AppState,
    org: &str,
    receipt: &Receipt,
    status: StatusCode,
    accepted: &[Accepted],
    now: chrono::NaiveDateTime,
) -> Result<()> {
    let mut by_ywrq: BTreeMap<NaiveDate, u64> = BTreeMap::new();
    for a in accepted {
        if let Some(d) = a.record.common().ywrq {
            *by_ywrq.entry(d).or_insert(0) += 1;
        }
    }
    let summary = ReceiptSummary {
        receipt_id: receipt.receipt_id.clone(),
        org: org.to_owned(),
        ty: receipt.ty,
        time: now,
        received: receipt.received as u64,
        accepted: receipt.accepted as u64,
        rejected: receipt.rejected as u64,
        error_counts: receipt.error_counts.iter().map(|(k, v)| (k.clone(), *v as u64)).collect(),
        accepted_by_ywrq: by_ywrq.into_iter().collect(),
    };
    outbound::enqueue_entry(state, &Entry::Receipt(summary))?;
    let rec = ReceiptRecord {
        receipt_id: receipt.receipt_id.clone(),
        ty: receipt.ty.as_str().to_owned(),
        time: now,
        status: status.as_u16(),
        received: receipt.received,
        accepted: receipt.accepted,
        rejected: receipt.rejected,
        errors: receipt.errors.clone(),
        via: String::new(),
    };
    state
        .store
        .tree(trees::RECEIPTS)?
        .insert(receipt_key(org, now, &receipt.receipt_id), serde_json::to_vec(&rec).map_err(codec)?)?;
    Ok(())
}

/// The answer to an upload whose body was over the byte limit (never read
/// whole, so nothing is archived): 413 with a receipt that says so.
pub async fn too_large(state: &AppState, org: &str, ty: RecordType) -> Result<(StatusCode, Receipt)> {
    let max = state.config.limits.upload_max_bytes;
    let err = flumon_shared::Error::TooLarge {
        code: flumon_shared::parse::FILE_TOO_LARGE,
        message: format!("文件超过 {max} 字节的上限 (file too large); 请分多个文件上传"),
    };
    let mut receipt = Receipt::whole_file(ty, &err);
    receipt.receipt_id = new_receipt_id(state)?;
    Metrics::add(&state.metrics.uploads, 1);
    Metrics::add(&state.metrics.uploads_too_large, 1);
    let st = state.clone();
    let (org2, r2) = (org.to_owned(), receipt.clone());
    tokio::task::spawn_blocking(move || record_receipt(&st, &org2, &r2, StatusCode::PAYLOAD_TOO_LARGE, &[], now_cst()))
        .await
        .map_err(|e| Error::Internal(format!("receipt task: {e}")))??;
    finish(state, org, &receipt, StatusCode::PAYLOAD_TOO_LARGE).await?;
    Ok((StatusCode::PAYLOAD_TOO_LARGE, receipt))
}

pub use crate::archive::archive_blob;
