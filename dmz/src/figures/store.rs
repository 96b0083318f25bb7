//! The incremental side of the figures: one sled tree, the latest-GXSJ rule
//! per natural key, units with their members and contributions, counters.
//!
//! ```text
//!  upload chunk ─▶ apply: facts of each record (no reads) ─▶ fig[l org\0 id] (one insert per chunk)
//!  scan         ─▶ apply_scan ──────────────────────────────▶ fig[l org\0 id] (kept only if new)
//!  page view / export (counters) · every 5 min (fold_all) ─▶ fold(org), under the hospital's lock:
//!    logged chunks in order ─▶ for each record: old facts (overlay, else r…) ─▶ older GXSJ or same facts: skip
//!                           ─▶ new facts, unit membership moved ─▶ touched units
//!    touched unit ─▶ live facts of its members ─▶ contribution ─▶ Δ vs the unit's stored one ─┐
//!  receipt ─▶ receipt_contribution ─────────────────────────────────────────────────────────────┴▶ Δ counters
//!  a fold step's writes and the removal of the chunks it read ─▶ one sled batch (atomic)
//! ```
//! Keys of tree `fig` (JLID and JZLSH only as keyed pseudonyms, HMAC-SM3):
//! `r{org}\0{type}\0{H}` → Facts · `u{org}\0{unit}` → members + contribution ·
//! `c{org}\0{name}` → i64 (big-endian) · `l{org}\0{id BE}` → a chunk's facts
//! not folded yet. An upload only appends its chunks' facts (one sled write
//! per chunk instead of two reads and two writes per record: the figures were
//! a third of the DMZ's CPU per new record, docs/DECISIONS.md); the work of
//! the latest-GXSJ rule and the units is done when the figures are read, or by
//! the server every five minutes. A crash leaves the figures as before or
//! after a fold step, and the chunks not folded stay logged.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use flumon_shared::desens::keys::{PseudonymKey, pseudonym};
use flumon_shared::model::Record;
use flumon_shared::receipt::Receipt;

use super::contrib::{Counters, contribution, diff, receipt_contribution};
use super::facts::{Facts, Kind, Unit, kind_of, unit_of};
use super::trees;
use crate::error::{Result, codec};
use crate::store::Store;

pub(super) fn enc<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    bincode::serde::encode_to_vec(v, bincode::config::standard()).map_err(codec)
}

pub(super) fn dec<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T> {
    bincode::serde::decode_from_slice(b, bincode::config::standard()).map(|(v, _)| v).map_err(codec)
}

/// A unit's stored state: its live members (`{type}\0{H}`) and their contribution.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct UnitState {
    pub members: BTreeSet<String>,
    pub contrib: Counters,
}

pub(super) fn rec_key(org: &str, member: &str) -> Vec<u8> {
    format!("r{org}\0{member}").into_bytes()
}

pub(super) fn unit_key(org: &str, unit: &str) -> Vec<u8> {
    format!("u{org}\0{unit}").into_bytes()
}

pub(super) fn cnt_key(org: &str, name: &str) -> Vec<u8> {
    format!("c{org}\0{name}").into_bytes()
}

/// Read-modify-write of a hospital's figures is serialised per hospital
/// (striped: two hospitals may share a stripe, never a hospital two).
static LOCKS: [Mutex<()>; 64] = [const { Mutex::new(()) }; 64];

fn lock(org: &str) -> MutexGuard<'static, ()> {
    let h = org.bytes().fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(usize::from(b)));
    let [first, ..] = &LOCKS;
    let m = LOCKS.get(h % LOCKS.len()).unwrap_or(first);
    // a panic elsewhere while holding it leaves nothing half-written: every write is one batch
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The changes of one chunk, in memory until [`Work::finish`] writes them in one batch.
struct Work<'a> {
    tree: sled::Tree,
    org: &'a str,
    /// New facts by member id (`{type}\0{H}`).
    recs: HashMap<String, Facts>,
    /// Touched units: stored state as read, with members as changed.
    units: BTreeMap<String, UnitState>,
    delta: Counters,
    /// Logged chunks this step folded: removed in the same batch.
    folded: Vec<sled::IVec>,
}

impl<'a> Work<'a> {
    fn new(store: &Store, org: &'a str) -> Result<Self> {
        Ok(Work {
            tree: store.tree(trees::FIG)?,
            org,
            recs: HashMap::new(),
            units: BTreeMap::new(),
            delta: Counters::new(),
            folded: Vec::new(),
        })
    }

    fn facts(&self, member: &str) -> Result<Option<Facts>> {
        if let Some(f) = self.recs.get(member) {
            return Ok(Some(f.clone()));
        }
        self.tree.get(rec_key(self.org, member))?.map(|b| dec(&b)).transpose()
    }

    fn unit(&mut self, unit: &Unit) -> Result<&mut UnitState> {
        let k = unit.key();
        if !self.units.contains_key(&k) {
            let st = self.tree.get(unit_key(self.org, &k))?.map(|b| dec(&b)).transpose()?.unwrap_or_default();
            self.units.insert(k.clone(), st);
        }
        self.units.get_mut(&k).ok_or_else(|| crate::error::Error::Internal("figures: unit".into()))
    }

    /// Sets `member`'s facts (latest GXSJ wins; equal GXSJ: the later one). `make` gets the old facts.
    fn set(&mut self, member: String, gxsj: NaiveDateTime, make: impl FnOnce(Option<&Facts>) -> Facts) -> Result<()> {
        let old = self.facts(&member)?;
        if old.as_ref().is_some_and(|o| o.gxsj > gxsj) {
            return Ok(()); // an older version arriving late changes nothing
        }
        let new = make(old.as_ref());
        if old.as_ref() == Some(&new) {
            return Ok(()); // the daily 7-day resend: same facts, nothing to do
        }
        if let Some(u) = old.as_ref().and_then(|o| o.unit.as_ref()) {
            self.unit(u)?.members.remove(&member);
        }
        if let Some(u) = &new.unit {
            self.unit(u)?.members.insert(member.clone());
        }
        self.recs.insert(member, new);
        Ok(())
    }

    /// Recomputes every touched unit's contribution and writes the chunk in one batch.
    fn finish(mut self) -> Result<()> {
        let mut batch = sled::Batch::default();
        let units = std::mem::take(&mut self.units);
        for (k, mut st) in units {
            let mut live = Vec::with_capacity(st.members.len());
            for m in &st.members {
                if let Some(f) = self.facts(m)? {
                    live.push(f);
                }
            }
            let new = contribution(&live.iter().collect::<Vec<_>>());
            for (name, v) in diff(&new, &st.contrib) {
                *self.delta.entry(name).or_insert(0) += v;
            }
            st.contrib = new;
            if st.members.is_empty() {
                batch.remove(unit_key(self.org, &k));
            } else {
                batch.insert(unit_key(self.org, &k), enc(&st)?);
            }
        }
        for (m, f) in &self.recs {
            batch.insert(rec_key(self.org, m), enc(f)?);
        }
        for (name, by) in &self.delta {
            if *by == 0 {
                continue;
            }
            let k = cnt_key(self.org, name);
            let cur =
                self.tree.get(&k)?.and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok()).map_or(0, i64::from_be_bytes);
            match cur.saturating_add(*by) {
                0 => batch.remove(k),
                v => batch.insert(k, &v.to_be_bytes()),
            }
        }
        for k in &self.folded {
            batch.remove(k.clone());
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }
}

/// One record's facts as logged by an upload, folded later.
#[derive(Serialize, Deserialize)]
struct Logged {
    /// `{type}\0{H}`.
    member: String,
    /// `first_seen` is the upload's day; a fold keeps the first one.
    facts: Facts,
    /// Only if the member is not there yet (a death scan: later files change nothing).
    once: bool,
}

fn log_prefix(org: &str) -> Vec<u8> {
    format!("l{org}\0").into_bytes()
}

/// Appends a chunk's facts to hospital `org`'s log (one sled write).
fn append(store: &Store, org: &str, items: &[Logged]) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let _g = lock(org);
    let mut k = log_prefix(org);
    k.extend_from_slice(&store.next_id()?.to_be_bytes());
    store.tree(trees::FIG)?.insert(k, enc(&items)?)?;
    Ok(())
}

/// Records an upload step's accepted records of hospital `org` (in row order)
/// for its figures: their facts are logged, and folded by [`fold`].
pub fn apply(store: &Store, key: &PseudonymKey, org: &str, records: &[&Record], now: NaiveDateTime) -> Result<()> {
    let mut items = Vec::with_capacity(records.len());
    for rec in records {
        let ty = rec.ty().as_str();
        let common = rec.common();
        let nk = pseudonym(key, org, &format!("FIG:JLID:{ty}"), &common.jlid);
        let kind = kind_of(rec);
        let case = rec.jzlsh().map(|j| pseudonym(key, org, "FIG:JZLSH", j));
        let facts = Facts {
            gxsj: common.gxsj,
            first_seen: now.date(),
            ywrq: common.ywrq,
            unit: kind.as_ref().map(|k| unit_of(k, case, nk.clone())),
            kind,
        };
        items.push(Logged { member: format!("{ty}\0{nk}"), facts, once: false });
    }
    append(store, org, &items)
}

/// A death full-record scan of case `jzlsh` arrived for hospital `org`: the
/// case is marked as having one (once; later files of it change nothing).
pub fn apply_scan(store: &Store, key: &PseudonymKey, org: &str, jzlsh: &str, now: NaiveDateTime) -> Result<()> {
    let member = format!("scan\0{}", pseudonym(key, org, "FIG:SCAN", jzlsh));
    let unit = Unit::Case(pseudonym(key, org, "FIG:JZLSH", jzlsh));
    let facts = Facts { gxsj: now, first_seen: now.date(), ywrq: None, unit: Some(unit), kind: Some(Kind::Scan) };
    append(store, org, &[Logged { member, facts, once: true }])
}

/// Records folded per step (one batch): bounds a fold's memory.
const FOLD_STEP: usize = 5_000;

/// Folds hospital `org`'s logged chunks into its figures, oldest first;
/// returns the records folded. Blocking.
pub fn fold(store: &Store, org: &str) -> Result<u64> {
    let _g = lock(org);
    let prefix = log_prefix(org);
    let mut total = 0u64;
    loop {
        let mut w = Work::new(store, org)?;
        let mut n = 0usize;
        for kv in w.tree.clone().scan_prefix(&prefix) {
            let (k, v) = kv?;
            let items: Vec<Logged> = dec(&v)?;
            n += items.len();
            for it in items {
                if it.once && w.facts(&it.member)?.is_some() {
                    continue;
                }
                let f = it.facts;
                w.set(it.member, f.gxsj, |old| Facts { first_seen: old.map_or(f.first_seen, |o| o.first_seen), ..f })?;
            }
            w.folded.push(k);
            if n >= FOLD_STEP {
                break;
            }
        }
        if w.folded.is_empty() {
            return Ok(total);
        }
        w.finish()?;
        total += n as u64;
    }
}

/// Folds every hospital's logged chunks (the server's periodic task); returns the records folded.
/// One hospital's failure is logged and does not stop the others'.
pub fn fold_all(store: &Store) -> Result<u64> {
    let tree = store.tree(trees::FIG)?;
    let mut from = b"l".to_vec();
    let mut total = 0u64;
    while let Some(kv) = tree.range(from.as_slice()..).next() {
        let (k, _) = kv?;
        let Some(rest) = k.strip_prefix(b"l") else { break };
        let org = rest.split(|b| *b == 0).next().unwrap_or_default();
        match std::str::from_utf8(org).map_err(|_| codec("figures: log key not UTF-8")).and_then(|o| fold(store, o)) {
            Ok(n) => total += n,
            Err(e) => tracing::error!(error = %e, "figures: fold failed for a hospital"),
        }
        // past this hospital's keys: `l{org}\x01` sorts after every `l{org}\0…`
        from = [&b"l"[..], org, &b"\x01"[..]].concat();
    }
    Ok(total)
}

/// Adds a finished upload's receipt to hospital `org`'s reporting quality.
pub fn apply_receipt(store: &Store, org: &str, receipt: &Receipt, now: NaiveDateTime) -> Result<()> {
    let _g = lock(org);
    let mut w = Work::new(store, org)?;
    w.delta = receipt_contribution(
        now.date(),
        receipt.ty.as_str(),
        receipt.received,
        receipt.rejected,
        &receipt.error_counts,
    );
    w.finish()
}

/// Every counter of hospital `org` (its logged chunks folded first). Blocking.
/// A fold that fails (a full disk) leaves the log as it was: the counters as
/// of the last fold are shown, and the failure goes to the log.
pub fn counters(store: &Store, org: &str) -> Result<Counters> {
    if let Err(e) = fold(store, org) {
        tracing::warn!(error = %e, "figures: fold failed; showing the figures as of the last fold");
    }
    let t = store.tree(trees::FIG)?;
    let prefix = cnt_key(org, "");
    let mut out = Counters::new();
    for kv in t.scan_prefix(&prefix) {
        let (k, v) = kv?;
        let name = String::from_utf8_lossy(k.get(prefix.len()..).unwrap_or_default()).into_owned();
        let n = <[u8; 8]>::try_from(v.as_ref()).map(i64::from_be_bytes).map_err(|_| codec("figures: counter width"))?;
        out.insert(name, n);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

    use chrono::NaiveDate;

    use super::*;

    const ORG: &str = "12350000MB0000000A";

    fn at(day: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, day).unwrap().and_hms_opt(10, 0, 0).unwrap()
    }

    fn lab(case: &str, day: u32, dxjg: u8) -> Facts {
        Facts {
            gxsj: at(day),
            first_seen: at(day).date(),
            ywrq: Some(at(day).date()),
            unit: Some(Unit::Case(case.into())),
            kind: Some(Kind::Lab { cysj: at(day), jyff: 1, dxjg, bdlx: Some(1), yx: None }),
        }
    }

    fn logged(member: &str, facts: Facts, once: bool) -> Logged {
        Logged { member: member.into(), facts, once }
    }

    /// Versions of the same records in more chunks than a fold step: the
    /// latest GXSJ wins across steps, an older one arriving late changes
    /// nothing, the first day seen is kept, the log is emptied, and the
    /// counters are the contributions of the final facts.
    #[test]
    fn fold_keeps_order_across_steps() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Box::new(|_| {})).unwrap();
        let chunks = FOLD_STEP / 1000 + 2;
        let per = 1000;
        for k in 0..chunks {
            let day = 10 + u32::try_from(k).unwrap();
            let mut items: Vec<Logged> = (0..per)
                .map(|i| logged(&format!("lab\0M{i}"), lab(&format!("H{i}"), day, (k % 2) as u8), false))
                .collect();
            if k == chunks - 1 {
                // a late, older version of M0 (and of its unit) must not win
                items.push(logged("lab\0M0", lab("OLD", 1, 1), false));
            }
            append(&store, ORG, &items).unwrap();
        }
        append(&store, ORG, &[logged("scan\0S", Facts { kind: Some(Kind::Scan), ..lab("H0", 12, 0) }, true)]).unwrap();
        append(&store, ORG, &[logged("scan\0S", Facts { kind: Some(Kind::Scan), ..lab("H0", 20, 0) }, true)]).unwrap();
        let other = "12350000MB0000000B";
        append(&store, other, &[logged("lab\0X", lab("HX", 15, 1), false)]).unwrap();
        // a damaged log key between the two hospitals (not UTF-8) stops neither
        let fig = store.tree(trees::FIG).unwrap();
        let junk = [&b"l12350000MB0000000A\xff\0"[..], &7u64.to_be_bytes()].concat();
        fig.insert(&junk, &b"junk"[..]).unwrap();

        assert_eq!(fold_all(&store).unwrap(), (chunks * per + 1 + 2 + 1) as u64);
        let left: Vec<_> = fig.scan_prefix(b"l").keys().map(Result::unwrap).collect();
        assert_eq!(left, [junk.as_slice()], "the log is folded away, all but the damaged key");
        let last = 10 + u32::try_from(chunks - 1).unwrap();
        let want =
            |i: usize| Facts { first_seen: at(10).date(), ..lab(&format!("H{i}"), last, ((chunks - 1) % 2) as u8) };
        for i in [0, 1, per / 2, per - 1] {
            let got: Facts = dec(&fig.get(rec_key(ORG, &format!("lab\0M{i}"))).unwrap().unwrap()).unwrap();
            assert_eq!(got, want(i), "member {i}");
        }
        let scan: Facts = dec(&fig.get(rec_key(ORG, "scan\0S")).unwrap().unwrap()).unwrap();
        assert_eq!(scan.gxsj, at(12), "a scan is kept once: the first file");
        assert!(fig.get(unit_key(ORG, "c:OLD")).unwrap().is_none());

        let mut expect = Counters::new();
        let finals: Vec<Facts> = (0..per).map(want).collect();
        let mut by_unit: BTreeMap<String, Vec<&Facts>> = BTreeMap::new();
        for f in &finals {
            by_unit.entry(f.unit.as_ref().unwrap().key()).or_default().push(f);
        }
        by_unit.entry("c:H0".into()).or_default().push(&scan);
        for live in by_unit.values() {
            for (k, v) in contribution(live) {
                *expect.entry(k).or_insert(0) += v;
            }
        }
        expect.retain(|_, v| *v != 0);
        assert_eq!(counters(&store, ORG).unwrap(), expect);
        assert_eq!(counters(&store, other).unwrap()["live:lab"], 1);
        // nothing left: a second fold reads nothing
        assert_eq!(fold_all(&store).unwrap(), 0);
    }
}
