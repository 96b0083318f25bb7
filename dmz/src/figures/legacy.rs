//! Converts the figures of a store written before 2026-11-27 (four trees,
//! one sled write per record and tree) into the one-tree layout of
//! store.rs, once, when the DMZ opens its store.
//!
//! ```text
//!  fig_rec[org\0type\0H]          ─▶ fig[r org\0type\0H]            (same Facts)
//!  fig_unit[org\0unit\0type\0H]  ─┐
//!  fig_contrib[org\0unit]        ─┴▶ fig[u org\0unit] = {members, contrib}
//!  fig_cnt[org\0name]             ─▶ fig[c org\0name]
//!  one batch (with a marker) ─▶ flush ─▶ drop the four trees
//! ```
//! A crash before the batch leaves the old trees as they were (converted
//! again next start); after it, the marker says they are done and only
//! the leftover trees are dropped.

use std::collections::BTreeMap;

use super::contrib::Counters;
use super::store::{UnitState, cnt_key, dec, enc, rec_key, unit_key};
use super::trees;
use crate::error::{Error, Result};
use crate::store::Store;

const MARKER: &[u8] = b"m\0legacy-converted";

fn split_org(k: &[u8]) -> Result<(&str, &str)> {
    let s = std::str::from_utf8(k).map_err(|_| Error::Internal("figures (legacy): key not UTF-8".into()))?;
    s.split_once('\0').ok_or_else(|| Error::Internal("figures (legacy): key without hospital".into()))
}

/// Converts the legacy trees if there are any; returns how many entries were read.
pub fn migrate(store: &Store) -> Result<usize> {
    let names = store.db.tree_names();
    let present: Vec<&str> =
        trees::LEGACY.into_iter().filter(|n| names.iter().any(|t| t.as_ref() == n.as_bytes())).collect();
    if present.is_empty() {
        return Ok(0);
    }
    let fig = store.tree(trees::FIG)?;
    let mut read = 0usize;
    if fig.get(MARKER)?.is_none() {
        let [rec, unit, contrib, cnt] = trees::LEGACY;
        let mut batch = sled::Batch::default();
        for kv in store.tree(rec)?.iter() {
            let (k, v) = kv?;
            let (org, member) = split_org(&k)?;
            batch.insert(rec_key(org, member), v);
            read += 1;
        }
        let mut units: BTreeMap<(String, String), UnitState> = BTreeMap::new();
        for kv in store.tree(unit)?.iter() {
            let (k, _) = kv?;
            let (org, rest) = split_org(&k)?;
            let (u, member) =
                rest.split_once('\0').ok_or_else(|| Error::Internal("figures (legacy): unit key".into()))?;
            units.entry((org.to_owned(), u.to_owned())).or_default().members.insert(member.to_owned());
            read += 1;
        }
        for kv in store.tree(contrib)?.iter() {
            let (k, v) = kv?;
            let (org, u) = split_org(&k)?;
            units.entry((org.to_owned(), u.to_owned())).or_default().contrib = dec::<Counters>(&v)?;
            read += 1;
        }
        for ((org, u), st) in &units {
            batch.insert(unit_key(org, u), enc(st)?);
        }
        for kv in store.tree(cnt)?.iter() {
            let (k, v) = kv?;
            let (org, name) = split_org(&k)?;
            batch.insert(cnt_key(org, name), v);
            read += 1;
        }
        batch.insert(MARKER, &[]);
        fig.apply_batch(batch)?;
        store.db.flush()?;
    }
    for n in present {
        store.db.drop_tree(n)?;
    }
    store.db.flush()?;
    Ok(read)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

    use chrono::NaiveDate;

    use super::*;
    use crate::figures::facts::{Facts, Kind, Unit};

    fn facts(unit: &str, day: u32) -> Facts {
        let at = NaiveDate::from_ymd_opt(2026, 11, day).unwrap().and_hms_opt(10, 0, 0).unwrap();
        Facts {
            gxsj: at,
            first_seen: at.date(),
            ywrq: Some(at.date()),
            unit: Some(Unit::Case(unit.into())),
            kind: Some(Kind::Lab { cysj: at, jyff: 1, dxjg: 1, bdlx: Some(1), yx: None }),
        }
    }

    /// An old-layout store converts to the same counters, members and facts,
    /// and records applied afterwards build on what was converted.
    #[test]
    fn old_layout_converts_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Box::new(|_| {})).unwrap();
        let org = "12350000MB0000000A";
        let [rec, unit, contrib, cnt] = trees::LEGACY.map(|n| store.tree(n).unwrap());
        let f = facts("HX", 20);
        rec.insert(format!("{org}\0lab\0HJ1"), enc(&f).unwrap()).unwrap();
        unit.insert(format!("{org}\0c:HX\0lab\0HJ1"), &[]).unwrap();
        let c = crate::figures::contrib::contribution(&[&f]);
        contrib.insert(format!("{org}\0c:HX"), enc(&c).unwrap()).unwrap();
        for (name, v) in &c {
            cnt.insert(format!("{org}\0{name}"), &v.to_be_bytes()).unwrap();
        }
        assert_eq!(migrate(&store).unwrap(), 3 + c.len());
        assert_eq!(crate::figures::counters(&store, org).unwrap(), c);
        let names = store.db.tree_names();
        for n in trees::LEGACY {
            assert!(!names.iter().any(|t| t.as_ref() == n.as_bytes()), "{n} dropped");
        }
        let fig = store.tree(trees::FIG).unwrap();
        let st: UnitState = dec(&fig.get(unit_key(org, "c:HX")).unwrap().unwrap()).unwrap();
        assert_eq!(st.members.iter().collect::<Vec<_>>(), ["lab\0HJ1"]);
        assert_eq!(st.contrib, c);
        assert_eq!(dec::<Facts>(&fig.get(rec_key(org, "lab\0HJ1")).unwrap().unwrap()).unwrap(), f);
        // nothing left to convert; a second run reads nothing
        assert_eq!(migrate(&store).unwrap(), 0);
    }

    /// Leftover trees after a conversion (crash before the drop) are only dropped.
    #[test]
    fn leftovers_after_the_marker_are_dropped_not_reconverted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Box::new(|_| {})).unwrap();
        let org = "12350000MB0000000A";
        store.tree(trees::FIG).unwrap().insert(MARKER, &[]).unwrap();
        store.tree(trees::FIG).unwrap().insert(cnt_key(org, "live:lab"), &5i64.to_be_bytes()).unwrap();
        store.tree("fig_cnt").unwrap().insert(format!("{org}\0live:lab"), &1i64.to_be_bytes()).unwrap();
        assert_eq!(migrate(&store).unwrap(), 0);
        assert_eq!(crate::figures::counters(&store, org).unwrap()["live:lab"], 5);
        assert!(!store.db.tree_names().iter().any(|t| t.as_ref() == b"fig_cnt"));
    }
}
