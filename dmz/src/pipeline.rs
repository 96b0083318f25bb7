//! The upload pipeline (INTERFACE §1, ARCHITECTURE invariants 1, 2, 5): one
//! path for agents (`POST /api/v1/upload/{type}`) and web uploads.
//!
//! ```text
//!  small body (memory) ─▶ parse_upload ─┐           streamed body (api/stream.rs): already in the
//!  raw original ─▶ archive (sled)       │           archive (file), Scan verdict ─┐
//!                                       │   whole-file error? ─▶ receipt 422/413  │
//!                                       │   1st read (decrypt) ─▶ parse_stream, rows dropped: whole-file error?
//!                                       ▼   2nd read (decrypt) ─▶ parse_stream ─▶ rows, 1,000 at a time
//!  Run::rows: check_file(ctx.org = authenticated hospital, ScopeView) ─▶ desensitise ─▶ dedupe
//!             ─▶ outbound queue (one transaction per chunk) ─▶ ScopeView.commit_pending
//!  Run::finish ─▶ ReceiptSummary ─▶ queue ─▶ receipt history (via api/web) ─▶ audit
//!  ─▶ store.durable() (group commit) ─▶ 200 / 422 / 413 with the receipt
//! ```
//! Uploads of one hospital run one at a time (scope and slots are that
//! hospital's history); the work runs in its own task on the blocking pool,
//! so a client that disconnects cannot stop it halfway. Every accepted record
//! passes through `Run::rows` exactly once, one chunk at a time.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use bytes::Bytes;
use chrono::{NaiveDate, NaiveDateTime};

use flumon_shared::crypto::SymKey;
use flumon_shared::entries::{Entry, ReceiptSummary};
use flumon_shared::model::{ParsedFile, RawRow, RecordType};
use flumon_shared::parse::stream::{Plan, StreamError, parse_stream};
use flumon_shared::parse::{Format, Limits, parse_upload, xlsx};
use flumon_shared::receipt::{Accepted, MAX_LISTED_ERRORS, Receipt, check_file};
use flumon_shared::validate::Ctx;

use crate::archive::{self, RawMeta};
use crate::error::{Error, Result, codec};
use crate::hospitals::{ReceiptRecord, now_cst, receipt_key};
use crate::metrics::Metrics;
use crate::outbound::{self, Pending};
use crate::state::AppState;
use crate::store::scope::ScopeView;
use crate::store::trees;

/// Records validated, desensitised and queued per step (one transaction each).
pub const CHUNK: usize = 1000;

/// How an upload arrived (kept in the receipt history: `api` or `web`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// An agent, `POST /api/v1/upload/{type}`.
    Api,
    /// A person, the hospital's upload page.
    Web,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Api => "api",
            Via::Web => "web",
        }
    }
}

/// An upload whose body was streamed into the raw archive as it arrived
/// (`api::stream`): the item, its data key (memory only) and the scan's verdict.
pub struct Spooled {
    pub receipt_id: String,
    pub meta: RawMeta,
    pub key: SymKey,
    /// Format and encoding, or the whole-file error, from `parse::stream::Scan`.
    pub plan: std::result::Result<Plan, flumon_shared::Error>,
}

enum Source {
    Memory { body: Bytes, ct: Option<String> },
    Spooled(Box<Spooled>),
}

/// Processes one record upload from the web page for hospital `org`
/// (already authenticated); answers its receipt once everything is durable.
pub async fn process_upload(
    state: &AppState,
    org: &str,
    ty: RecordType,
    body: Bytes,
    content_type: Option<&str>,
) -> Result<(StatusCode, Receipt)> {
    process_upload_via(state, org, ty, body, content_type, Via::Web).await
}

/// [`process_upload`] for a body held in memory, arrived `via`.
pub async fn process_upload_via(
    state: &AppState,
    org: &str,
    ty: RecordType,
    body: Bytes,
    content_type: Option<&str>,
    via: Via,
) -> Result<(StatusCode, Receipt)> {
    run(state, org, ty, Source::Memory { body, ct: content_type.map(str::to_owned) }, via).await
}

/// Processes an upload already streamed into the archive.
pub async fn process_spooled(
    state: &AppState,
    org: &str,
    ty: RecordType,
    spooled: Box<Spooled>,
    via: Via,
) -> Result<(StatusCode, Receipt)> {
    run(state, org, ty, Source::Spooled(spooled), via).await
}

async fn run(state: &AppState, org: &str, ty: RecordType, src: Source, via: Via) -> Result<(StatusCode, Receipt)> {
    let st = state.clone();
    let org = org.to_owned();
    // Own task: finishes even if the caller's future is dropped.
    tokio::spawn(async move { upload_task(st, org, ty, src, via).await })
        .await
        .map_err(|e| Error::Internal(format!("upload task: {e}")))?
}

async fn upload_task(
    state: AppState,
    org: String,
    ty: RecordType,
    src: Source,
    via: Via,
) -> Result<(StatusCode, Receipt)> {
    let _permit = state.upload_slots.acquire().await.map_err(|_| Error::Unavailable("shutting down".into()))?;
    let lock = state.org_lock(&org)?;
    let guard = lock.lock().await;
    let st = state.clone();
    let org2 = org.clone();
    let (status, receipt) = tokio::task::spawn_blocking(move || upload_blocking(&st, &org2, ty, src, via))
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

/// A new receipt id.
pub fn new_receipt_id(state: &AppState) -> Result<String> {
    Ok(format!("{}-u{:016x}", state.config.node_id, state.store.next_id()?))
}

fn limits(state: &AppState) -> Limits {
    let lim = &state.config.limits;
    Limits { max_bytes: lim.upload_max_bytes, max_rows: lim.upload_max_rows, ..Limits::default() }
}

fn upload_blocking(
    state: &AppState,
    org: &str,
    ty: RecordType,
    src: Source,
    via: Via,
) -> Result<(StatusCode, Receipt)> {
    let now = now_cst();
    let limits = limits(state);
    Metrics::add(&state.metrics.uploads, 1);
    match src {
        Source::Memory { body, ct } => {
            let receipt_id = new_receipt_id(state)?;
            // The raw original is archived whatever the outcome (it is the record of what was sent).
            archive::store_blocking(state, org, "upload", Some(ty.as_str()), Some(&receipt_id), &body)?;
            if flumon_shared::parse::is_xlsx(ct.as_deref(), &body) {
                // even a small zip may hold many rows: read a chunk of rows at a time
                let open = || Ok(std::io::Cursor::new(body.as_ref()));
                return xlsx_run(state, org, ty, receipt_id, open, via, now, &limits);
            }
            let parsed = parse_upload(ty, &body, ct.as_deref(), &limits);
            drop(body);
            match parsed {
                Ok(file) => {
                    let mut run = Run::new(state, org, ty, receipt_id, now)?;
                    run.rows(file.rows)?;
                    run.finish(via)
                }
                Err(e) => whole_file(state, org, ty, receipt_id, &e, via, now),
            }
        }
        Source::Spooled(sp) => spooled_blocking(state, org, ty, *sp, via, now, &limits),
    }
}

/// A streamed upload: the scan's verdict, then (CSV/JSON) a first read of
/// the archived bytes that only looks for whole-file errors, then a second
/// that validates, desensitises and queues chunk by chunk. Memory: one chunk
/// of rows. XLSX the same, through a reader that seeks (archive::seek_reader).
fn spooled_blocking(
    state: &AppState,
    org: &str,
    ty: RecordType,
    sp: Spooled,
    via: Via,
    now: NaiveDateTime,
    limits: &Limits,
) -> Result<(StatusCode, Receipt)> {
    let Spooled { receipt_id, meta, key, plan } = sp;
    let plan = match plan {
        Ok(p) => p,
        Err(e) => return whole_file(state, org, ty, receipt_id, &e, via, now),
    };
    let store = &state.store;
    if plan.format == Format::Xlsx {
        // A zip is read from its end (the central directory): through a decrypting reader
        // that seeks in the archived file, one segment in memory at a time.
        let res = xlsx_run(state, org, ty, receipt_id, || archive::seek_reader(store, &meta, &key), via, now, limits);
        drop(key);
        return res;
    }
    let reader = archive::plain_reader(store, &meta, &key)?;
    match parse_stream(ty, &plan, reader, limits, CHUNK, |_| Ok::<(), Error>(())) {
        Ok(_) => {}
        Err(StreamError::File(e)) => return whole_file(state, org, ty, receipt_id, &e, via, now),
        Err(StreamError::Sink(e)) => return Err(e),
    }
    let mut run = Run::new(state, org, ty, receipt_id, now)?;
    let reader = archive::plain_reader(store, &meta, &key)?;
    match parse_stream(ty, &plan, reader, limits, CHUNK, |rows| run.rows(rows)) {
        Ok(_) => {}
        Err(StreamError::Sink(e)) => return Err(e),
        Err(StreamError::File(e)) => {
            return Err(Error::Internal(format!("second read of an upload disagreed with the first: {e}")));
        }
    }
    drop(key);
    run.finish(via)
}

/// An XLSX upload read twice through readers from `open`, as a streamed
/// CSV is: the first read only looks for whole-file errors, the second hands
/// the rows on a chunk at a time (never more parsed rows than a chunk).
#[allow(clippy::too_many_arguments)]
fn xlsx_run<R: std::io::Read + std::io::Seek>(
    state: &AppState,
    org: &str,
    ty: RecordType,
    receipt_id: String,
    open: impl Fn() -> Result<R>,
    via: Via,
    now: NaiveDateTime,
    limits: &Limits,
) -> Result<(StatusCode, Receipt)> {
    match xlsx::parse_chunks(ty, open()?, limits, CHUNK, |_| Ok::<(), Error>(())) {
        Ok(_) => {}
        Err(StreamError::File(e)) => return whole_file(state, org, ty, receipt_id, &e, via, now),
        Err(StreamError::Sink(e)) => return Err(e),
    }
    let mut run = Run::new(state, org, ty, receipt_id, now)?;
    // the same authenticated bytes as the first read: its zip-bomb guard holds
    match xlsx::parse_chunks_again(ty, open()?, limits, CHUNK, |rows| run.rows(rows)) {
        Ok(_) => {}
        Err(StreamError::Sink(e)) => return Err(e),
        Err(StreamError::File(e)) => {
            return Err(Error::Internal(format!("second read of an upload disagreed with the first: {e}")));
        }
    }
    run.finish(via)
}

/// The receipt of an upload refused as a whole (422, or 413 for too many rows).
fn whole_file(
    state: &AppState,
    org: &str,
    ty: RecordType,
    receipt_id: String,
    e: &flumon_shared::Error,
    via: Via,
    now: NaiveDateTime,
) -> Result<(StatusCode, Receipt)> {
    let status = if matches!(e, flumon_shared::Error::TooLarge { .. }) {
        Metrics::add(&state.metrics.uploads_too_large, 1);
        StatusCode::PAYLOAD_TOO_LARGE
    } else {
        Metrics::add(&state.metrics.uploads_whole_file_rejected, 1);
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let mut receipt = Receipt::whole_file(ty, e);
    receipt.receipt_id = receipt_id;
    record_receipt(state, org, &receipt, status, &BTreeMap::new(), now, via)?;
    Ok((status, receipt))
}

/// One upload's rows going through check → desensitise → queue, a chunk at a time.
struct Run<'a> {
    state: &'a AppState,
    org: &'a str,
    ty: RecordType,
    now: NaiveDateTime,
    ctx: Ctx,
    view: ScopeView<'a>,
    receipt: Receipt,
    by_ywrq: BTreeMap<NaiveDate, u64>,
    queued: u64,
    unchanged: u64,
}

impl<'a> Run<'a> {
    fn new(state: &'a AppState, org: &'a str, ty: RecordType, receipt_id: String, now: NaiveDateTime) -> Result<Self> {
        Ok(Run {
            state,
            org,
            ty,
            now,
            ctx: Ctx { now, org: Some(org.to_owned()) },
            view: ScopeView::new(&state.store, &state.keys.desens.pseudonym)?,
            receipt: Receipt {
                receipt_id,
                ty,
                received: 0,
                accepted: 0,
                rejected: 0,
                errors: Vec::new(),
                error_counts: BTreeMap::new(),
                errors_truncated: false,
            },
            by_ywrq: BTreeMap::new(),
            queued: 0,
            unchanged: 0,
        })
    }

    /// Checks, queues and commits `rows` in steps of [`CHUNK`]: the records
    /// of a step are queued before the scope state that they changed.
    fn rows(&mut self, rows: Vec<RawRow>) -> Result<()> {
        let mut it = rows.into_iter();
        loop {
            let part: Vec<RawRow> = it.by_ref().take(CHUNK).collect();
            if part.is_empty() {
                return Ok(());
            }
            let file = ParsedFile { ty: self.ty, rows: part };
            let (r, accepted) = check_file(&file, &self.ctx, &mut self.view);
            drop(file);
            if let Some(e) = self.view.read_error.take() {
                return Err(Error::Internal(format!("scope state: {e}")));
            }
            self.merge(r);
            let (q, u) = queue_records(self.state, &accepted, self.now)?;
            crate::figures::on_accepted(self.state, self.org, &accepted, self.now)?;
            self.queued += q;
            self.unchanged += u;
            for a in &accepted {
                if let Some(d) = a.record.common().ywrq {
                    *self.by_ywrq.entry(d).or_insert(0) += 1;
                }
            }
            self.view.commit_pending()?;
        }
    }

    fn merge(&mut self, r: Receipt) {
        let t = &mut self.receipt;
        t.received += r.received;
        t.accepted += r.accepted;
        t.rejected += r.rejected;
        for (k, v) in r.error_counts {
            *t.error_counts.entry(k).or_insert(0) += v;
        }
        let room = MAX_LISTED_ERRORS.saturating_sub(t.errors.len());
        if r.errors.len() > room || r.errors_truncated {
            t.errors_truncated = true;
        }
        t.errors.extend(r.errors.into_iter().take(room));
    }

    fn finish(self, via: Via) -> Result<(StatusCode, Receipt)> {
        let m = &self.state.metrics;
        Metrics::add(&m.records_received, self.receipt.received as u64);
        Metrics::add(&m.records_accepted, self.receipt.accepted as u64);
        Metrics::add(&m.records_rejected, self.receipt.rejected as u64);
        Metrics::add(&m.records_queued, self.queued);
        Metrics::add(&m.records_unchanged, self.unchanged);
        record_receipt(self.state, self.org, &self.receipt, StatusCode::OK, &self.by_ywrq, self.now, via)?;
        crate::figures::on_receipt(self.state, self.org, &self.receipt, self.now)?;
        Ok((StatusCode::OK, self.receipt))
    }
}

fn queue_records(state: &AppState, accepted: &[Accepted], now: NaiveDateTime) -> Result<(u64, u64)> {
    let des = &state.keys.desens;
    let mut pend = Vec::with_capacity(accepted.len());
    for acc in accepted {
        let mut rec = des.desensitise(acc, NaiveDateTime::default(), 0);
        let digest = outbound::digest_unstamped(&rec)?;
        let c = outbound::common_mut(&mut rec);
        let dedupe_key = outbound::dedupe_key(&c.org, acc.record.ty(), &c.rec_key);
        c.dmz_time = now;
        c.dmz_seq = state.store.next_id()?;
        let value = outbound::encode(&Entry::Record(rec))?;
        pend.push(Pending { dedupe_key, digest, value });
    }
    outbound::enqueue_records(state, &pend)
}

/// Queues the receipt summary and keeps the receipt in the hospital's history.
fn record_receipt(
    state: &AppState,
    org: &str,
    receipt: &Receipt,
    status: StatusCode,
    by_ywrq: &BTreeMap<NaiveDate, u64>,
    now: NaiveDateTime,
    via: Via,
) -> Result<()> {
    let summary = ReceiptSummary {
        receipt_id: receipt.receipt_id.clone(),
        org: org.to_owned(),
        ty: receipt.ty,
        time: now,
        received: receipt.received as u64,
        accepted: receipt.accepted as u64,
        rejected: receipt.rejected as u64,
        error_counts: receipt.error_counts.iter().map(|(k, v)| (k.clone(), *v as u64)).collect(),
        accepted_by_ywrq: by_ywrq.iter().map(|(d, n)| (*d, *n)).collect(),
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
        via: via.as_str().to_owned(),
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
    too_large_via(state, org, ty, Via::Web).await
}

/// [`too_large`] for an upload arrived `via`.
pub async fn too_large_via(state: &AppState, org: &str, ty: RecordType, via: Via) -> Result<(StatusCode, Receipt)> {
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
    tokio::task::spawn_blocking(move || {
        record_receipt(&st, &org2, &r2, StatusCode::PAYLOAD_TOO_LARGE, &BTreeMap::new(), now_cst(), via)
    })
    .await
    .map_err(|e| Error::Internal(format!("receipt task: {e}")))??;
    finish(state, org, &receipt, StatusCode::PAYLOAD_TOO_LARGE).await?;
    Ok((StatusCode::PAYLOAD_TOO_LARGE, receipt))
}

pub use crate::archive::archive_blob;
