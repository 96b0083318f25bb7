//! The incremental side of the figures: one sled tree, the latest-GXSJ rule
//! per natural key, units with their members and contributions, counters.
//!
//! ```text
//!  chunk of records ─▶ for each: old facts (this chunk's overlay, else r…) ─▶ older GXSJ or same facts: skip
//!                   ─▶ new facts, unit membership moved ─▶ touched units
//!  touched unit ─▶ live facts of its members ─▶ contribution ─▶ Δ vs the unit's stored one ─┐
//!  receipt ─▶ receipt_contribution ──────────────────────────────────────────────────────────┴▶ Δ counters
//!  everything of the chunk ─▶ one sled batch (atomic), under the hospital's lock
//! ```
//! Keys of tree `fig` (JLID and JZLSH only as keyed pseudonyms, HMAC-SM3):
//! `r{org}\0{type}\0{H}` → Facts · `u{org}\0{unit}` → members + contribution ·
//! `c{org}\0{name}` → i64 (big-endian). Every write of a chunk is in one
//! batch, so a crash leaves the figures as before or after the chunk, and a
//! resend that changes nothing writes nothing.

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
}

impl<'a> Work<'a> {
    fn new(store: &Store, org: &'a str) -> Result<Self> {
        Ok(Work {
            tree: store.tree(trees::FIG)?,
            org,
            recs: HashMap::new(),
            units: BTreeMap::new(),
            delta: Counters::new(),
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
        self.tree.apply_batch(batch)?;
        Ok(())
    }
}

/// Applies accepted records of hospital `org` (one chunk of an upload, in row order) to its figures.
pub fn apply(store: &Store, key: &PseudonymKey, org: &str, records: &[&Record], now: NaiveDateTime) -> Result<()> {
    let _g = lock(org);
    let mut w = Work::new(store, org)?;
    for rec in records {
        let ty = rec.ty().as_str();
        let common = rec.common();
        let nk = pseudonym(key, org, &format!("FIG:JLID:{ty}"), &common.jlid);
        let member = format!("{ty}\0{nk}");
        w.set(member, common.gxsj, |old| {
            let kind = kind_of(rec);
            let case = rec.jzlsh().map(|j| pseudonym(key, org, "FIG:JZLSH", j));
            Facts {
                gxsj: common.gxsj,
                first_seen: old.map_or(now.date(), |o| o.first_seen),
                ywrq: common.ywrq,
                unit: kind.as_ref().map(|k| unit_of(k, case, nk)),
                kind,
            }
        })?;
    }
    w.finish()
}

/// A death full-record scan of case `jzlsh` arrived for hospital `org`: the
/// case is marked as having one (once; later files of it change nothing).
pub fn apply_scan(store: &Store, key: &PseudonymKey, org: &str, jzlsh: &str, now: NaiveDateTime) -> Result<()> {
    let _g = lock(org);
    let mut w = Work::new(store, org)?;
    let member = format!("scan\0{}", pseudonym(key, org, "FIG:SCAN", jzlsh));
    if w.facts(&member)?.is_some() {
        return Ok(());
    }
    let unit = Unit::Case(pseudonym(key, org, "FIG:JZLSH", jzlsh));
    w.set(member, now, |_| Facts {
        gxsj: now,
        first_seen: now.date(),
        ywrq: None,
        unit: Some(unit),
        kind: Some(Kind::Scan),
    })?;
    w.finish()
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

/// Every counter of hospital `org`.
pub fn counters(store: &Store, org: &str) -> Result<Counters> {
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
