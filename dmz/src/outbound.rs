//! The outbound queue: entries waiting for the batcher, and the resend
//! dedupe map that keeps unchanged records from being queued again.
//!
//! ```text
//!  accepted record ─▶ desensitise(dmz_time = 0, seq = 0) ─bincode─▶ SM3 = content digest
//!        dedupe[org ␟ type ␟ rec_key] == digest ? ─yes─▶ not queued (unchanged resend)
//!                                                 └no──▶ stamp (receipt time, seq) ─▶ outbound[id] = Entry
//!  one sled transaction per chunk over (outbound, dedupe): a crash never leaves a
//!  digest recorded for a record that is not queued
//!  outbound  u64 BE id ─▶ bincode(Entry)     (ids from sled's generate_id: ordered)
//! ```

use std::sync::atomic::Ordering;

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use flumon_shared::desens::outbound::{OutCommon, OutRecord};
use flumon_shared::entries::Entry;
use flumon_shared::model::RecordType;

use crate::error::{Error, Result, codec};
use crate::state::AppState;
use crate::store::{be, trees};

/// The bincode configuration of queue values (the batch format's).
fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes an entry as stored in the queue.
pub fn encode(e: &Entry) -> Result<Vec<u8>> {
    bincode::serde::encode_to_vec(e, config()).map_err(codec)
}

/// Decodes a queue value.
pub fn decode(b: &[u8]) -> Result<Entry> {
    let (e, used): (Entry, usize) = bincode::serde::decode_from_slice(b, config()).map_err(codec)?;
    if used != b.len() {
        return Err(Error::Codec("trailing bytes in a queue entry".into()));
    }
    Ok(e)
}

/// The common fields of a desensitised record, mutable (to stamp it).
pub fn common_mut(r: &mut OutRecord) -> &mut OutCommon {
    match r {
        OutRecord::Outpatient(x) => &mut x.common,
        OutRecord::Discharge(x) => &mut x.common,
        OutRecord::Summary(x) => &mut x.common,
        OutRecord::Death(x) => &mut x.common,
        OutRecord::Medication(x) => &mut x.common,
        OutRecord::Lab(x) => &mut x.common,
        OutRecord::Stock(x) => &mut x.common,
        OutRecord::Visits(x) => &mut x.common,
        OutRecord::Delete { common, .. } => common,
    }
}

/// A record ready to queue: its dedupe key and content digest.
pub struct Pending {
    pub dedupe_key: Vec<u8>,
    pub digest: [u8; 32],
    pub value: Vec<u8>,
}

/// The dedupe key of a record: org ␟ type ␟ rec_key.
pub fn dedupe_key(org: &str, ty: RecordType, rec_key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(org.len() + rec_key.len() + 16);
    k.extend_from_slice(org.as_bytes());
    k.push(0x1F);
    k.extend_from_slice(ty.as_str().as_bytes());
    k.push(0x1F);
    k.extend_from_slice(rec_key.as_bytes());
    k
}

/// The content digest of a record, ignoring its DMZ stamp.
pub fn digest_unstamped(rec: &OutRecord) -> Result<[u8; 32]> {
    let c = rec.common();
    if c.dmz_time == chrono::NaiveDateTime::default() && c.dmz_seq == 0 {
        // not stamped yet (the pipeline's case): no copy needed
        let bytes = bincode::serde::encode_to_vec(rec, config()).map_err(codec)?;
        return Ok(flumon_shared::crypto::sm3(&bytes));
    }
    let mut r = rec.clone();
    let c = common_mut(&mut r);
    c.dmz_time = chrono::NaiveDateTime::default();
    c.dmz_seq = 0;
    let bytes = bincode::serde::encode_to_vec(&r, config()).map_err(codec)?;
    Ok(flumon_shared::crypto::sm3(&bytes))
}

/// Queues the records whose content changed; returns (queued, unchanged).
/// Blocking (sled transaction).
pub fn enqueue_records(state: &AppState, recs: &[Pending]) -> Result<(u64, u64)> {
    let store = &state.store;
    let q = store.tree(trees::OUTBOUND)?;
    let d = store.tree(trees::DEDUPE)?;
    let mut ids = Vec::with_capacity(recs.len());
    for _ in recs {
        ids.push(store.next_id()?);
    }
    let res: std::result::Result<(u64, u64, u64), TransactionError<()>> = (&q, &d).transaction(|(q, d)| {
        let (mut queued, mut same, mut bytes) = (0u64, 0u64, 0u64);
        for (p, id) in recs.iter().zip(ids.iter()) {
            if d.get(&p.dedupe_key)?.is_some_and(|v| v.as_ref() == p.digest.as_slice()) {
                same += 1;
                continue;
            }
            d.insert(p.dedupe_key.as_slice(), p.digest.as_slice())?;
            q.insert(&be(*id), p.value.as_slice())?;
            queued += 1;
            bytes += p.value.len() as u64;
        }
        Ok::<_, ConflictableTransactionError<()>>((queued, same, bytes))
    });
    let (queued, same, bytes) = res.map_err(|e| match e {
        TransactionError::Storage(s) => Error::Sled(s),
        TransactionError::Abort(()) => Error::Internal("queue transaction aborted".into()),
    })?;
    state.metrics.queue_bytes.fetch_add(bytes, Ordering::Relaxed);
    state.metrics.queue_depth.fetch_add(queued, Ordering::Relaxed);
    Ok((queued, same))
}

/// Queues one entry that is not a record (receipt summary, scan metadata).
pub fn enqueue_entry(state: &AppState, e: &Entry) -> Result<()> {
    let v = encode(e)?;
    let id = state.store.next_id()?;
    state.store.tree(trees::OUTBOUND)?.insert(be(id), v.as_slice())?;
    state.metrics.queue_bytes.fetch_add(v.len() as u64, Ordering::Relaxed);
    state.metrics.queue_depth.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Counts the queue (at start): (entries, bytes).
pub fn measure(state: &AppState) -> Result<(u64, u64)> {
    let (mut n, mut b) = (0u64, 0u64);
    for kv in state.store.tree(trees::OUTBOUND)?.iter() {
        let (_, v) = kv?;
        n += 1;
        b += v.len() as u64;
    }
    Ok((n, b))
}
