//! The incremental side of the figures: sled trees, latest-GXSJ rule per
//! natural key, unit membership, contributions and counters.
//!
//! ```text
//!  records ─▶ for each: fig_rec (latest GXSJ wins; equal GXSJ: later wins) ─▶ fig_unit membership
//!          ─▶ touched units ─▶ contribution ─▶ Δ vs fig_contrib ─┐
//!  receipt ─▶ receipt_contribution ─────────────────────────────┴▶ one transaction: fig_contrib + fig_cnt
//! ```
//! Keys: `org \0 …`; the JLID and JZLSH only as keyed pseudonyms (HMAC-SM3).

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDateTime;
use sled::Transactional;

use flumon_shared::desens::keys::{PseudonymKey, pseudonym};
use flumon_shared::model::Record;
use flumon_shared::receipt::Receipt;

use super::contrib::{Counters, contribution, diff, receipt_contribution};
use super::facts::{Facts, Kind, Unit, kind_of, unit_of};
use super::trees;
use crate::error::{Error, Result, codec};
use crate::store::Store;

fn enc<T: serde::Serialize>(v: &T) -> Result<Vec<u8>> {
    bincode::serde::encode_to_vec(v, bincode::config::standard()).map_err(codec)
}

fn dec<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T> {
    bincode::serde::decode_from_slice(b, bincode::config::standard()).map(|(v, _)| v).map_err(codec)
}

fn unit_prefix(org: &str, u: &Unit) -> String {
    format!("{org}\0{}\0", u.key())
}

/// Applies accepted records of hospital `org` (one chunk of an upload, in row order) to its figures.
pub fn apply(store: &Store, key: &PseudonymKey, org: &str, records: &[&Record], now: NaiveDateTime) -> Result<()> {
    let rec_t = store.tree(trees::REC)?;
    let unit_t = store.tree(trees::UNIT)?;
    let mut touched: BTreeSet<Unit> = BTreeSet::new();
    for rec in records {
        let ty = rec.ty().as_str();
        let common = rec.common();
        let nk = pseudonym(key, org, &format!("FIG:JLID:{ty}"), &common.jlid);
        let rk = format!("{org}\0{ty}\0{nk}");
        let old: Option<Facts> = rec_t.get(rk.as_bytes())?.map(|b| dec(&b)).transpose()?;
        if old.as_ref().is_some_and(|o| o.gxsj > common.gxsj) {
            continue; // an older version arriving late changes nothing
        }
        let kind = kind_of(rec);
        let case = rec.jzlsh().map(|j| pseudonym(key, org, "FIG:JZLSH", j));
        let unit = kind.as_ref().map(|k| unit_of(k, case, nk.clone()));
        let old_unit = old.as_ref().and_then(|o| o.unit.clone());
        if let Some(u) = old_unit {
            unit_t.remove(format!("{}{ty}\0{nk}", unit_prefix(org, &u)).as_bytes())?;
            touched.insert(u);
        }
        if let Some(u) = &unit {
            unit_t.insert(format!("{}{ty}\0{nk}", unit_prefix(org, u)).as_bytes(), &[])?;
            touched.insert(u.clone());
        }
        let facts = Facts {
            gxsj: common.gxsj,
            first_seen: old.as_ref().map_or(now.date(), |o| o.first_seen),
            ywrq: common.ywrq,
            unit,
            kind,
        };
        rec_t.insert(rk.as_bytes(), enc(&facts)?)?;
    }
    refresh(store, org, &touched)
}

/// A death full-record scan of case `jzlsh` arrived for hospital `org`: the
/// case is marked as having one (once; later files of it change nothing).
pub fn apply_scan(store: &Store, key: &PseudonymKey, org: &str, jzlsh: &str, now: NaiveDateTime) -> Result<()> {
    let rec_t = store.tree(trees::REC)?;
    let unit_t = store.tree(trees::UNIT)?;
    let nk = pseudonym(key, org, "FIG:SCAN", jzlsh);
    let rk = format!("{org}\0scan\0{nk}");
    if rec_t.get(rk.as_bytes())?.is_some() {
        return Ok(());
    }
    let unit = Unit::Case(pseudonym(key, org, "FIG:JZLSH", jzlsh));
    unit_t.insert(format!("{}scan\0{nk}", unit_prefix(org, &unit)).as_bytes(), &[])?;
    let facts =
        Facts { gxsj: now, first_seen: now.date(), ywrq: None, unit: Some(unit.clone()), kind: Some(Kind::Scan) };
    rec_t.insert(rk.as_bytes(), enc(&facts)?)?;
    refresh(store, org, &BTreeSet::from([unit]))
}

/// Recomputes the contribution of each touched unit from its live facts and
/// applies the differences to the counters.
fn refresh(store: &Store, org: &str, touched: &BTreeSet<Unit>) -> Result<()> {
    let rec_t = store.tree(trees::REC)?;
    let unit_t = store.tree(trees::UNIT)?;
    let contrib_t = store.tree(trees::CONTRIB)?;
    let mut delta = Counters::new();
    let mut contribs: Vec<(String, Option<Vec<u8>>)> = Vec::new();
    for u in touched {
        let prefix = unit_prefix(org, u);
        let mut live = Vec::new();
        for kv in unit_t.scan_prefix(prefix.as_bytes()) {
            let (k, _) = kv?;
            let rest = k.get(prefix.len()..).ok_or_else(|| Error::Internal("figures: unit key".into()))?;
            let rk = [org.as_bytes(), b"\0", rest].concat();
            if let Some(b) = rec_t.get(rk)? {
                live.push(dec::<Facts>(&b)?);
            }
        }
        let new = contribution(&live.iter().collect::<Vec<_>>());
        let ck = format!("{org}\0{}", u.key());
        let old: Counters = contrib_t.get(ck.as_bytes())?.map(|b| dec(&b)).transpose()?.unwrap_or_default();
        for (k, v) in diff(&new, &old) {
            *delta.entry(k).or_insert(0) += v;
        }
        contribs.push((ck, if new.is_empty() { None } else { Some(enc(&new)?) }));
    }
    commit(store, org, &contribs, delta)
}

/// Adds a finished upload's receipt to hospital `org`'s reporting quality.
pub fn apply_receipt(store: &Store, org: &str, receipt: &Receipt, now: NaiveDateTime) -> Result<()> {
    let by_rule: BTreeMap<String, usize> = receipt.error_counts.clone();
    let delta = receipt_contribution(now.date(), receipt.ty.as_str(), receipt.received, receipt.rejected, &by_rule);
    commit(store, org, &[], delta)
}

/// Writes the units' new contributions and adds `delta` to the counters, in one transaction.
fn commit(store: &Store, org: &str, contribs: &[(String, Option<Vec<u8>>)], mut delta: Counters) -> Result<()> {
    let contrib_t = store.tree(trees::CONTRIB)?;
    let cnt_t = store.tree(trees::CNT)?;
    delta.retain(|_, v| *v != 0);
    (&contrib_t, &cnt_t)
        .transaction(|(ct, nt)| {
            for (k, v) in contribs {
                match v {
                    Some(b) => {
                        ct.insert(k.as_bytes(), b.as_slice())?;
                    }
                    None => {
                        ct.remove(k.as_bytes())?;
                    }
                }
            }
            for (name, by) in &delta {
                let k = format!("{org}\0{name}");
                let cur = nt
                    .get(k.as_bytes())?
                    .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
                    .map_or(0, i64::from_be_bytes);
                let v = cur.saturating_add(*by);
                if v == 0 {
                    nt.remove(k.as_bytes())?;
                } else {
                    nt.insert(k.as_bytes(), &v.to_be_bytes())?;
                }
            }
            Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
        })
        .map_err(|e| match e {
            // a full disk here is the storage's fault (503 STORAGE_FULL, store health check), not ours
            sled::transaction::TransactionError::Storage(s) => Error::Sled(s),
            sled::transaction::TransactionError::Abort(()) => Error::Internal("figures transaction aborted".into()),
        })?;
    Ok(())
}

/// Every counter of hospital `org`.
pub fn counters(store: &Store, org: &str) -> Result<Counters> {
    let t = store.tree(trees::CNT)?;
    let prefix = format!("{org}\0");
    let mut out = Counters::new();
    for kv in t.scan_prefix(prefix.as_bytes()) {
        let (k, v) = kv?;
        let name = String::from_utf8_lossy(k.get(prefix.len()..).unwrap_or_default()).into_owned();
        let n = <[u8; 8]>::try_from(v.as_ref()).map(i64::from_be_bytes).map_err(|_| codec("figures: counter width"))?;
        out.insert(name, n);
    }
    Ok(out)
}
