//! The figures recomputed from scratch: the same uploads replayed in order
//! into a plain map of live records, grouped into units, contributions
//! summed. Tests compare this with the incremental counters of store.rs.
//!
//! ```text
//!  uploads in order ─▶ latest version per (type, JLID) ─▶ live facts by unit ─▶ Σ contribution
//!  receipts ─▶ Σ receipt_contribution                                       ─▶ Counters
//! ```

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDateTime;

use flumon_shared::model::Record;
use flumon_shared::receipt::Receipt;

use super::contrib::{Counters, contribution, receipt_contribution};
use super::facts::{Facts, Unit, kind_of, unit_of};

/// One upload as replayed: when it was received, its accepted records in row order, its receipt.
pub struct Replayed<'a> {
    pub time: NaiveDateTime,
    pub records: Vec<&'a Record>,
    pub receipt: &'a Receipt,
}

/// The counters the uploads give when computed from nothing.
pub fn recompute(uploads: &[Replayed<'_>]) -> Counters {
    let mut latest: HashMap<(&'static str, String), Facts> = HashMap::new();
    let mut total = Counters::new();
    for up in uploads {
        for rec in &up.records {
            let ty = rec.ty().as_str();
            let c = rec.common();
            let k = (ty, c.jlid.clone());
            let prev = latest.get(&k);
            if prev.is_some_and(|p| p.gxsj > c.gxsj) {
                continue;
            }
            let kind = kind_of(rec);
            let unit = kind.as_ref().map(|kd| unit_of(kd, rec.jzlsh().map(str::to_owned), format!("{ty}/{}", c.jlid)));
            let first_seen = prev.map_or(up.time.date(), |p| p.first_seen);
            latest.insert(k, Facts { gxsj: c.gxsj, first_seen, ywrq: c.ywrq, unit, kind });
        }
        let r = up.receipt;
        for (k, v) in receipt_contribution(up.time.date(), r.ty.as_str(), r.received, r.rejected, &r.error_counts) {
            *total.entry(k).or_insert(0) += v;
        }
    }
    let mut units: BTreeMap<&Unit, Vec<&Facts>> = BTreeMap::new();
    for f in latest.values() {
        if let Some(u) = &f.unit {
            units.entry(u).or_default().push(f);
        }
    }
    for live in units.values() {
        for (k, v) in contribution(live) {
            *total.entry(k).or_insert(0) += v;
        }
    }
    total.retain(|_, v| *v != 0);
    total
}
