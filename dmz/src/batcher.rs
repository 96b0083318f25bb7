//! The batcher: drains the outbound queue into sealed, signed batch files in
//! `outbox/` for `flumon-transfer send` (TRANSFER.md "What crosses").
//!
//! ```text
//!  cut when queue bytes ≥ max (4 MiB) or the oldest waiting entry is max_age (10 s) old
//!   1. plan {seq, queue keys, registry codes} + next_seq ─▶ sled ─▶ fsync   (seq is now taken)
//!   2. entries = queue[keys] + registry (changed, or all once a day) + JournalHead
//!      (queue values are bincode entries already: copied, not decoded and re-encoded; a
//!      group's count is taken as written — sled checks its log's CRCs, and the receiver's
//!      open_batch checks the header's counts against the entries)
//!      ─▶ seal_encoded (zstd, SM4-GCM link key, SM2 sign) ─▶ outbox/.name.tmp
//!      ─▶ fsync ─▶ rename outbox/<node>-<seq:020>.fbatch ─▶ fsync outbox/
//!   3. remove the queue keys and the registry flags, drop the plan ─▶ fsync
//!  crash after 1: at start the plan is finished — file present: step 3 only;
//!  file absent: the same keys are sealed again under the SAME seq — so no
//!  entry ever appears in two batches with different sequence numbers.
//!  a sled error ─▶ the store's watchdog checks it; the store given up ─▶ stop at once
//!  (no drain: the restarted process finds the queue and any plan in sled)
//! ```

use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use flumon_shared::batch::{BatchFields, EntryCounts, seal_encoded};
use flumon_shared::entries::{Entry, JournalHeadInfo, count_entry};

use crate::error::{Error, Result, codec};
use crate::hospitals::{self, REGISTRY_DIRTY, now_cst};
use crate::outbound;
use crate::state::AppState;
use crate::store::{be, from_be, trees};

const NEXT_SEQ: &[u8] = b"next_seq";
const PLAN: &[u8] = b"plan";
const REGISTRY_FULL_MS: &[u8] = b"registry_full_ms";
const DAY_MS: u64 = 24 * 3600 * 1000;

/// A batch whose sequence number is taken and whose entries are chosen.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Plan {
    seq: u64,
    /// Queue keys (ids) in the batch.
    keys: Vec<u64>,
    /// Registry flags to clear: (hospital code, flag value seen).
    registry: Vec<(String, Vec<u8>)>,
    /// Hospitals whose registry entry goes in the batch.
    hospitals: Vec<String>,
    full_registry: bool,
    file: String,
    created_ms: u64,
}

fn now_ms() -> u64 {
    flumon_shared::journal::now_ms()
}

/// The file name of batch `seq`.
pub fn file_name(node: &str, seq: u64) -> String {
    format!("{node}-{seq:020}.fbatch")
}

/// Runs until `shutdown`; then drains what is queued into final batches.
pub async fn run(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    if let Err(e) = blocking(&state, |st| finish_plan(st).map(|_| ())).await {
        state.store.health().suspect(&e);
        tracing::error!(error = %e, "batcher: finishing the planned batch failed");
    }
    let max_bytes = state.config.batch.max_payload_bytes as u64;
    let max_age = Duration::from_secs(state.config.batch.max_age_secs);
    let mut first_seen: Option<Instant> = None;
    let mut stopping = false;
    loop {
        if state.store.health().is_failed() {
            tracing::warn!("batcher: the store failed; stopping without draining (the queue stays in sled)");
            return;
        }
        let pending = match blocking(&state, pending).await {
            Ok(p) => p,
            Err(e) => {
                state.store.health().suspect(&e);
                tracing::error!(error = %e, "batcher: cannot read the queue");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if !pending {
            if stopping {
                return;
            }
            first_seen = None;
            tokio::select! {
                () = state.batcher_wake.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => stopping = true,
            }
            continue;
        }
        let first = *first_seen.get_or_insert_with(Instant::now);
        let due =
            stopping || state.metrics.queue_bytes.load(Ordering::Relaxed) >= max_bytes || first.elapsed() >= max_age;
        if !due {
            let left = max_age.saturating_sub(first.elapsed());
            tokio::select! {
                () = state.batcher_wake.notified() => {}
                () = tokio::time::sleep(left.min(Duration::from_secs(1))) => {}
                _ = shutdown.changed() => stopping = true,
            }
            continue;
        }
        match blocking(&state, cut).await {
            Ok(()) => first_seen = None,
            Err(e) => {
                state.store.health().suspect(&e);
                tracing::error!(error = %e, "batcher: writing a batch failed; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}

async fn blocking<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&AppState) -> Result<T> + Send + 'static,
) -> Result<T> {
    let st = state.clone();
    tokio::task::spawn_blocking(move || f(&st)).await.map_err(|e| Error::Internal(format!("batcher task: {e}")))?
}

fn pending(state: &AppState) -> Result<bool> {
    let store = &state.store;
    if !outbound::queue_is_empty(&store.tree(trees::OUTBOUND)?)? || store.tree(REGISTRY_DIRTY)?.first()?.is_some() {
        return Ok(true);
    }
    Ok(full_registry_due(state)? && store.tree(trees::HOSPITALS)?.first()?.is_some())
}

fn full_registry_due(state: &AppState) -> Result<bool> {
    let last = state.store.tree(trees::BATCHES)?.get(REGISTRY_FULL_MS)?.as_deref().and_then(from_be).unwrap_or(0);
    Ok(now_ms().saturating_sub(last) >= DAY_MS)
}

/// Chooses the next batch, plans it, writes it.
fn cut(state: &AppState) -> Result<()> {
    if finish_plan(state)? {
        return Ok(());
    }
    let store = &state.store;
    let max = state.config.batch.max_payload_bytes as u64;
    let mut keys = Vec::new();
    let mut size = 0u64;
    for kv in outbound::queue(&store.tree(trees::OUTBOUND)?) {
        let (k, v) = kv?;
        if size >= max {
            break;
        }
        keys.push(from_be(&k).ok_or_else(|| Error::Codec("bad queue key".into()))?);
        size += v.len() as u64;
    }
    let full = full_registry_due(state)?;
    let mut registry = Vec::new();
    for kv in store.tree(REGISTRY_DIRTY)?.iter() {
        let (k, v) = kv?;
        registry.push((String::from_utf8_lossy(&k).into_owned(), v.to_vec()));
    }
    let hospitals: Vec<String> = if full {
        hospitals::all(state)?.into_iter().map(|h| h.code).collect()
    } else {
        registry.iter().map(|(c, _)| c.clone()).collect()
    };
    if keys.is_empty() && hospitals.is_empty() {
        return Ok(());
    }
    let batches = store.tree(trees::BATCHES)?;
    let seq = batches.get(NEXT_SEQ)?.as_deref().and_then(from_be).unwrap_or(1);
    let plan = Plan {
        seq,
        keys,
        registry,
        hospitals,
        full_registry: full,
        file: file_name(&state.config.node_id, seq),
        created_ms: now_ms(),
    };
    let mut b = sled::Batch::default();
    b.insert(PLAN, serde_json::to_vec(&plan).map_err(codec)?);
    b.insert(NEXT_SEQ, &be(seq.saturating_add(1))[..]);
    batches.apply_batch(b)?;
    store.durable_blocking()?;
    write_and_clear(state, &plan)
}

/// Finishes a plan left by a crash; true when there was one.
fn finish_plan(state: &AppState) -> Result<bool> {
    let Some(v) = state.store.tree(trees::BATCHES)?.get(PLAN)? else { return Ok(false) };
    let plan: Plan = serde_json::from_slice(&v).map_err(codec)?;
    tracing::info!(seq = plan.seq, "batcher: finishing the batch planned before a restart");
    write_and_clear(state, &plan)?;
    Ok(true)
}

/// A batch's entries, encoded back to back, and their counts.
#[derive(Default)]
struct Payload {
    encoded: Vec<u8>,
    counts: EntryCounts,
    n: usize,
}

impl Payload {
    /// One entry, `bytes` being its encoding.
    fn entry(&mut self, e: &Entry, bytes: &[u8]) {
        count_entry(&mut self.counts, e);
        self.n = self.n.saturating_add(1);
        self.encoded.extend_from_slice(bytes);
    }

    /// `n` records encoded back to back in `bytes` (a queue group).
    fn records(&mut self, n: u64, bytes: &[u8]) -> Result<()> {
        let n32 = u32::try_from(n).map_err(|_| Error::Codec("queue group of more than 2^32 entries".into()))?;
        self.counts.records = self.counts.records.saturating_add(n32);
        self.n = self.n.saturating_add(n32 as usize);
        self.encoded.extend_from_slice(bytes);
        Ok(())
    }
}

fn write_and_clear(state: &AppState, plan: &Plan) -> Result<()> {
    let outbox = &state.config.paths.outbox;
    let path = outbox.join(&plan.file);
    if !path.exists() {
        write_batch(state, plan, &path)?;
    }
    let store = &state.store;
    let q = store.tree(trees::OUTBOUND)?;
    let (mut n, mut bytes) = (0u64, 0u64);
    for k in &plan.keys {
        if let Some(v) = q.remove(be(*k))? {
            n += outbound::value_entries(&v);
            bytes += v.len() as u64;
        }
    }
    let dirty = store.tree(REGISTRY_DIRTY)?;
    for (code, seen) in &plan.registry {
        // only if unchanged since the plan: a later change must cross too
        let _ = dirty.compare_and_swap(code.as_bytes(), Some(seen.as_slice()), None as Option<&[u8]>)?;
    }
    let batches = store.tree(trees::BATCHES)?;
    if plan.full_registry {
        batches.insert(REGISTRY_FULL_MS, &be(plan.created_ms)[..])?;
    }
    batches.remove(PLAN)?;
    store.durable_blocking()?;
    let m = &state.metrics;
    m.queue_depth.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| Some(d.saturating_sub(n))).ok();
    m.queue_bytes.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| Some(d.saturating_sub(bytes))).ok();
    Ok(())
}

fn write_batch(state: &AppState, plan: &Plan, path: &Path) -> Result<()> {
    let store = &state.store;
    let q = store.tree(trees::OUTBOUND)?;
    // the entries as the queue holds them (bincode, the batch's configuration), back to back:
    // a group of records is copied, not decoded and encoded again
    let mut p = Payload::default();
    for k in &plan.keys {
        let Some(v) = q.get(be(*k))? else { continue };
        match outbound::encoded_value(&v)? {
            outbound::Encoded::Records { n, bytes } => p.records(n, bytes)?,
            outbound::Encoded::One(e) => p.entry(&e, &v),
        }
    }
    for code in &plan.hospitals {
        if let Some(h) = hospitals::get(state, code)? {
            let e = Entry::Hospital(h.info());
            p.entry(&e, &outbound::encode(&e)?);
        }
    }
    let head = state.audit.head()?;
    let e = Entry::JournalHead(JournalHeadInfo {
        node: state.config.node_id.clone(),
        seq: head.seq,
        hash: hex::encode(head.hash),
        time: now_cst(),
    });
    p.entry(&e, &outbound::encode(&e)?);
    let Payload { encoded, counts, n } = p;
    let fields =
        BatchFields { node_id: state.config.node_id.clone(), sequence: plan.seq, created_ms: plan.created_ms, counts };
    let bytes = seal_encoded(&fields, n, &encoded, &state.keys.link, &state.keys.sign)?;
    drop(encoded);
    let dir = path.parent().ok_or_else(|| Error::Internal("outbox has no parent".into()))?;
    let tmp = dir.join(format!(".{}.tmp", plan.file));
    let _ = std::fs::remove_file(&tmp);
    {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()?;
    let m = &state.metrics;
    m.batches_written.fetch_add(1, Ordering::Relaxed);
    m.batch_entries_written.fetch_add(n as u64, Ordering::Relaxed);
    let digest = hex::encode(flumon_shared::crypto::sm3(&bytes));
    state.audit.append_blocking(
        "batch.written",
        &serde_json::json!({"seq": plan.seq, "entries": n, "records": counts.records,
            "receipts": counts.receipts, "registry": counts.registry, "scans": counts.scans,
            "bytes": bytes.len(), "sm3": digest}),
    )?;
    tracing::info!(seq = plan.seq, entries = n, bytes = bytes.len(), "batch written");
    Ok(())
}
