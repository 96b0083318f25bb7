//! The outbound queue: entries waiting for the batcher, and the resend
//! dedupe map that keeps unchanged records from being queued again.
//!
//! ```text
//!  accepted record ─▶ desensitise(dmz_time = 0, seq = 0) ─bincode─▶ SM3 = content digest
//!        dedupe[org ␟ type ␟ rec_key] == digest ? ─yes─▶ not queued (unchanged resend)
//!                                                 └no──▶ stamp (receipt time, seq) ─▶ a group of the chunk
//!  digests read first (the hospital's uploads run one at a time), then one sled batch per
//!  chunk writes the groups and the digests (one tree): a crash never leaves a digest recorded
//!  for a record that is not queued
//!  outbound  u64 BE id ─▶ 0xFF ‖ u32 LE n ‖ bincode(Entry) × n   (a group: about 64 KiB of a chunk's records)
//!                      or bincode(Entry)                        (one entry; also queues written before groups)
//!            0xFF ‖ org ␟ type ␟ rec_key ─▶ SM3 digest (32 B)    (dedupe; after every queue id)
//!  (ids from sled's generate_id: ordered; 0xFF never starts a bincode Entry: its variant index is < 251)
//! ```

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use flumon_shared::desens::outbound::{OutCommon, OutRecord};
use flumon_shared::entries::Entry;
use flumon_shared::model::RecordType;

use crate::error::{Error, Result, codec};
use crate::state::AppState;
use crate::store::filter::Keys;
use crate::store::{Store, be, trees};

/// The bincode configuration of queue values (the batch format's).
fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes an entry as stored in the queue.
pub fn encode(e: &Entry) -> Result<Vec<u8>> {
    bincode::serde::encode_to_vec(e, config()).map_err(codec)
}

/// Decodes a queue entry.
pub fn decode(b: &[u8]) -> Result<Entry> {
    let (e, used): (Entry, usize) = bincode::serde::decode_from_slice(b, config()).map_err(codec)?;
    if used != b.len() {
        return Err(Error::Codec("trailing bytes in a queue entry".into()));
    }
    Ok(e)
}

/// First byte of a group value.
const GROUP: u8 = 0xFF;
/// A group is closed when its entries reach this many bytes.
const GROUP_BYTES: usize = 64 << 10;

fn group_header(b: &[u8]) -> Option<(usize, &[u8])> {
    match b {
        [GROUP, a, b2, c, d, rest @ ..] => Some((u32::from_le_bytes([*a, *b2, *c, *d]) as usize, rest)),
        _ => None,
    }
}

/// Entries in a queue value (a group or a single entry), without decoding them.
pub fn value_entries(b: &[u8]) -> u64 {
    group_header(b).map_or(1, |(n, _)| n as u64)
}

/// A queue value as the batcher seals it without decoding: a group is
/// `n` records already encoded back to back; a single entry is decoded (it is
/// small, and its kind is counted).
pub enum Encoded<'a> {
    Records { n: u64, bytes: &'a [u8] },
    One(Entry),
}

/// Splits a queue value for [`flumon_shared::batch::seal_encoded`]. Only
/// [`enqueue_records`] writes groups, and only records go into them.
pub fn encoded_value(b: &[u8]) -> Result<Encoded<'_>> {
    match group_header(b) {
        Some((n, rest)) if n <= rest.len() => Ok(Encoded::Records { n: n as u64, bytes: rest }),
        Some(_) => Err(Error::Codec("queue group count exceeds its bytes".into())),
        None => Ok(Encoded::One(decode(b)?)),
    }
}

/// Groups already-encoded entries into queue values of about [`GROUP_BYTES`] each.
fn groups<'a>(values: impl Iterator<Item = &'a [u8]>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    let mut n = 0u32;
    let close = |cur: &mut Vec<u8>, n: &mut u32, out: &mut Vec<Vec<u8>>| {
        if *n > 0 {
            let mut v = Vec::with_capacity(cur.len() + 5);
            v.push(GROUP);
            v.extend_from_slice(&n.to_le_bytes());
            v.append(cur);
            out.push(v);
            *n = 0;
        }
    };
    for v in values {
        cur.extend_from_slice(v);
        n += 1;
        if cur.len() >= GROUP_BYTES {
            close(&mut cur, &mut n, &mut out);
        }
    }
    close(&mut cur, &mut n, &mut out);
    out
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

/// The dedupe key of a record as stored in `outbound`: 0xFF ‖ org ␟ type ␟ rec_key.
pub fn dedupe_key(org: &str, ty: RecordType, rec_key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(org.len() + rec_key.len() + 17);
    k.push(DEDUPE);
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

/// First byte of a dedupe key in the `outbound` tree; queue keys (8-byte
/// ids from sled's `generate_id`) never start with it.
const DEDUPE: u8 = 0xFF;

/// The prefix of the dedupe keys (for the key filter's builder).
pub const DEDUPE_PREFIX: &[u8] = &[DEDUPE];

/// The queue's part of the `outbound` tree (its dedupe keys sort after it).
pub fn queue(tree: &sled::Tree) -> sled::Iter {
    tree.range(..[DEDUPE])
}

/// Whether the queue is empty.
pub fn queue_is_empty(tree: &sled::Tree) -> Result<bool> {
    Ok(queue(tree).next().transpose()?.is_none())
}

/// Queues the records whose content changed, a chunk's in few values
/// (groups); returns (queued, unchanged). Blocking (sled).
///
/// The digests live in the queue's own tree, so the groups and the digests
/// of a chunk are one sled batch (atomic: a crash never leaves a digest
/// recorded for a record that is not queued). The digests are read before
/// it: a sled batch holds a lock that stops every other sled operation of
/// the process. The reads cannot go stale: the keys are the hospital's, and
/// its uploads run one at a time (`pipeline::upload_task`); a record twice
/// in one chunk is caught by the chunk's own map.
pub fn enqueue_records(state: &AppState, recs: &[Pending]) -> Result<(u64, u64)> {
    let store = &state.store;
    let q = store.tree(trees::OUTBOUND)?;
    let mut latest: HashMap<&[u8], &[u8; 32]> = HashMap::with_capacity(recs.len());
    let mut changed: Vec<&Pending> = Vec::with_capacity(recs.len());
    let mut same = 0u64;
    for p in recs {
        let key = p.dedupe_key.as_slice();
        let unchanged = match latest.get(key) {
            Some(seen) => *seen == &p.digest,
            None if store.absent(Keys::Dedupe, key) => false,
            None => q.get(key)?.is_some_and(|v| v.as_ref() == p.digest.as_slice()),
        };
        if unchanged {
            same += 1;
            continue;
        }
        latest.insert(key, &p.digest);
        changed.push(p);
    }
    let groups = groups(changed.iter().map(|p| p.value.as_slice()));
    let mut b = sled::Batch::default();
    let mut bytes = 0u64;
    for g in &groups {
        let id = be(store.next_id()?);
        if id.first() == Some(&DEDUPE) {
            return Err(Error::Internal("queue ids exhausted".into()));
        }
        b.insert(&id[..], g.as_slice());
        bytes += g.len() as u64;
    }
    for p in &changed {
        store.note_key(Keys::Dedupe, &p.dedupe_key);
        b.insert(p.dedupe_key.as_slice(), p.digest.as_slice());
    }
    q.apply_batch(b)?;
    state.metrics.queue_bytes.fetch_add(bytes, Ordering::Relaxed);
    state.metrics.queue_depth.fetch_add(changed.len() as u64, Ordering::Relaxed);
    Ok((changed.len() as u64, same))
}

/// Moves the digests of a store written before they shared the queue's
/// tree (the `dedupe` tree) into it, then drops that tree; returns how many
/// moved. Idempotent: a crash part way moves them again at the next start.
/// Blocking; before serving.
pub fn migrate_dedupe(store: &Store) -> Result<u64> {
    if !store.db.tree_names().iter().any(|n| n.as_ref() == trees::DEDUPE.as_bytes()) {
        return Ok(0);
    }
    let old = store.tree(trees::DEDUPE)?;
    let q = store.tree(trees::OUTBOUND)?;
    let mut n = 0u64;
    let mut b = sled::Batch::default();
    for kv in old.iter() {
        let (k, v) = kv?;
        // the old tree's keys are org ␟ type ␟ rec_key: the stored form adds the prefix
        b.insert([DEDUPE_PREFIX, k.as_ref()].concat(), v);
        n += 1;
        if n.is_multiple_of(10_000) {
            q.apply_batch(std::mem::take(&mut b))?;
        }
    }
    q.apply_batch(b)?;
    store.durable_blocking()?;
    store.db.drop_tree(trees::DEDUPE)?;
    store.durable_blocking()?;
    Ok(n)
}

/// Queues one entry that is not a record (receipt summary, scan metadata).
pub fn enqueue_entry(state: &AppState, e: &Entry) -> Result<()> {
    let v = encode(e)?;
    let id = be(state.store.next_id()?);
    if id.first() == Some(&DEDUPE) {
        return Err(Error::Internal("queue ids exhausted".into()));
    }
    state.store.tree(trees::OUTBOUND)?.insert(id, v.as_slice())?;
    state.metrics.queue_bytes.fetch_add(v.len() as u64, Ordering::Relaxed);
    state.metrics.queue_depth.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Counts the queue (at start): (entries, bytes).
pub fn measure(state: &AppState) -> Result<(u64, u64)> {
    let (mut n, mut b) = (0u64, 0u64);
    for kv in queue(&state.store.tree(trees::OUTBOUND)?) {
        let (_, v) = kv?;
        n += value_entries(&v);
        b += v.len() as u64;
    }
    Ok((n, b))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

    use flumon_shared::entries::JournalHeadInfo;

    use super::*;

    /// The test's decoder of a queue value: the entries of a group (checking its
    /// count), or one entry.
    fn decode_value(b: &[u8]) -> Result<Vec<Entry>> {
        let Some((n, mut rest)) = group_header(b) else { return Ok(vec![decode(b)?]) };
        // each entry takes at least a byte: a count beyond the bytes is corrupt, not an allocation size
        if n > rest.len() {
            return Err(Error::Codec("queue group count exceeds its bytes".into()));
        }
        let mut out = Vec::with_capacity(n);
        while !rest.is_empty() {
            let (e, used): (Entry, usize) = bincode::serde::decode_from_slice(rest, config()).map_err(codec)?;
            out.push(e);
            rest = rest.get(used..).ok_or_else(|| Error::Codec("queue group entry length".into()))?;
        }
        if out.len() != n {
            return Err(Error::Codec(format!("queue group says {n} entries, holds {}", out.len())));
        }
        Ok(out)
    }

    fn entry(i: u64, pad: usize) -> Entry {
        Entry::JournalHead(JournalHeadInfo {
            node: "n".repeat(pad),
            seq: i,
            hash: String::new(),
            time: chrono::NaiveDateTime::default(),
        })
    }

    #[test]
    fn groups_round_trip_and_split_at_a_mebibyte() {
        let entries: Vec<Entry> = (0..3000).map(|i| entry(i, 1000)).collect();
        let values: Vec<Vec<u8>> = entries.iter().map(|e| encode(e).unwrap()).collect();
        let total: usize = values.iter().map(Vec::len).sum();
        let gs = groups(values.iter().map(Vec::as_slice));
        assert!(gs.len() >= 2 && gs.len() <= total / GROUP_BYTES + 1, "{} groups", gs.len());
        let mut back = Vec::new();
        for g in &gs {
            assert_eq!(g[0], GROUP);
            let d = decode_value(g).unwrap();
            assert_eq!(value_entries(g), d.len() as u64);
            back.extend(d);
        }
        assert_eq!(back.len(), entries.len());
        for (a, b) in back.iter().zip(&entries) {
            assert_eq!(encode(a).unwrap(), encode(b).unwrap());
        }
        assert!(groups(std::iter::empty()).is_empty());
    }

    /// Queues written before groups hold one entry per value; never 0xFF first.
    #[test]
    fn single_entries_still_decode() {
        let v = encode(&entry(7, 3)).unwrap();
        assert_ne!(v[0], GROUP);
        assert_eq!(value_entries(&v), 1);
        assert_eq!(decode_value(&v).unwrap().len(), 1);
    }

    #[test]
    fn corrupt_groups_are_errors_not_panics() {
        let good =
            groups([encode(&entry(1, 3)).unwrap().as_slice(), encode(&entry(2, 3)).unwrap().as_slice()].into_iter());
        let g = &good[0];
        // what the batcher parses: a count beyond the bytes is refused, never an allocation size
        let mut huge = g.clone();
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(encoded_value(&huge).is_err());
        assert!(matches!(encoded_value(g).unwrap(), Encoded::Records { n: 2, .. }));
        for cut in 0..g.len() {
            let _ = encoded_value(&g[..cut]);
            let _ = decode_value(&g[..cut]);
        }
        // the full decode (the receiver's side) also catches a wrong count and trailing bytes
        let mut wrong_count = g.clone();
        wrong_count[1] = 3;
        assert!(decode_value(&wrong_count).is_err());
        let mut trailing = g.clone();
        trailing.push(0xEE);
        assert!(decode_value(&trailing).is_err());
    }
}
