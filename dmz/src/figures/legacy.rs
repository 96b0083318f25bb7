//! Converts the figures of a store written before 2026-11-27 (four trees,
//! one sled write per record and tree) into the one-tree layout of
//! store.rs, once, when the DMZ opens its store.
//!
//! ```text
//!  fig_rec[org\0type\0H]          ─▶ fig[r org\0type\0H]            (same Facts)
//!  fig_unit[org\0unit\0type\0H]  ─┐
//!  fig_contrib[org\0unit]        ─┴▶ fig[u org\0unit] = {members, contrib}
//!  fig_cnt[org\0name]             ─▶ fig[c org\0name]
//!  batches of 10,000 entries ─▶ the marker ─▶ flush ─▶ drop the four trees
//! ```
//! Nothing serves before the conversion ends, and the old trees stay intact
//! until the marker is written: a crash before it converts everything again
//! next start (the same keys, the same values); after it, only the leftover
//! trees are dropped. Memory stays bounded by a batch, not by the store.

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

/// Entries written per batch while converting (memory stays bounded however large the store).
const PER_BATCH: usize = 10_000;

/// Writes converted entries in batches of [`PER_BATCH`].
struct Writer<'a> {
    fig: &'a sled::Tree,
    batch: sled::Batch,
    n: usize,
    /// Unit keys in the current batch (not yet readable from the tree).
    units: std::collections::HashSet<Vec<u8>>,
}

impl Writer<'_> {
    fn put(&mut self, k: Vec<u8>, v: Vec<u8>) -> Result<()> {
        self.batch.insert(k, v);
        self.n += 1;
        if self.n >= PER_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    /// A unit with its members; `prefix` is `org\0unit`, its contribution read from the old tree.
    fn unit(&mut self, contrib: &sled::Tree, prefix: &str, mut st: UnitState) -> Result<()> {
        if let Some(v) = contrib.get(prefix.as_bytes())? {
            st.contrib = dec::<Counters>(&v)?;
        }
        let (org, u) = prefix.split_once('\0').unwrap_or((prefix, ""));
        let k = unit_key(org, u);
        self.units.insert(k.clone());
        self.put(k, enc(&st)?)
    }

    fn pending(&self, k: &[u8]) -> bool {
        self.units.contains(k)
    }

    fn flush(&mut self) -> Result<()> {
        self.fig.apply_batch(std::mem::take(&mut self.batch))?;
        self.n = 0;
        self.units.clear();
        Ok(())
    }
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
        let mut out = Writer { fig: &fig, batch: sled::Batch::default(), n: 0, units: Default::default() };
        for kv in store.tree(rec)?.iter() {
            let (k, v) = kv?;
            let (org, member) = split_org(&k)?;
            out.put(rec_key(org, member), v.to_vec())?;
            read += 1;
        }
        // fig_unit is ordered by (org, unit): a unit's members are consecutive keys
        let contrib_t = store.tree(contrib)?;
        let mut cur: Option<(String, UnitState)> = None;
        for kv in store.tree(unit)?.iter() {
            let (k, _) = kv?;
            let (org, rest) = split_org(&k)?;
            let (u, member) =
                rest.split_once('\0').ok_or_else(|| Error::Internal("figures (legacy): unit key".into()))?;
            let prefix = format!("{org}\0{u}");
            if cur.as_ref().is_none_or(|(p, _)| *p != prefix) {
                if let Some((p, st)) = cur.take() {
                    out.unit(&contrib_t, &p, st)?;
                }
                cur = Some((prefix, UnitState::default()));
            }
            if let Some((_, st)) = cur.as_mut() {
                st.members.insert(member.to_owned());
            }
            read += 1;
        }
        if let Some((p, st)) = cur.take() {
            out.unit(&contrib_t, &p, st)?;
        }
        // a contribution whose unit had no member left (not written above)
        for kv in contrib_t.iter() {
            let (k, v) = kv?;
            let (org, u) = split_org(&k)?;
            read += 1;
            if fig.get(unit_key(org, u))?.is_none() && !out.pending(&unit_key(org, u)) {
                let st = UnitState { members: Default::default(), contrib: dec::<Counters>(&v)? };
                out.put(unit_key(org, u), enc(&st)?)?;
            }
        }
        for kv in store.tree(cnt)?.iter() {
            let (k, v) = kv?;
            let (org, name) = split_org(&k)?;
            out.put(cnt_key(org, name), v.to_vec())?;
            read += 1;
        }
        out.flush()?;
        // the marker last: until it is written the old trees are intact and converted again
        fig.insert(MARKER, &[])?;
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

    const ORG: &str = "12350000MB0000000A";

    /// A store with the four old trees (empty).
    fn legacy_store() -> (tempfile::TempDir, Store, [sled::Tree; 4]) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Box::new(|_| {})).unwrap();
        let trees = trees::LEGACY.map(|n| store.tree(n).unwrap());
        (dir, store, trees)
    }

    /// An old-layout store converts to the same counters, members and facts,
    /// the old trees are dropped, and a second run has nothing to convert.
    #[test]
    fn old_layout_converts_once() {
        let (_dir, store, [rec, unit, contrib, cnt]) = legacy_store();
        let org = ORG;
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

    /// More entries than a batch, units spread over several; a contribution without members kept.
    #[test]
    fn large_stores_convert_in_batches() {
        let (_dir, store, [rec, unit, contrib, cnt]) = legacy_store();
        let org = ORG;
        let units = PER_BATCH + 1_500;
        for i in 0..units {
            let f = facts(&format!("H{i:06}"), 20);
            for m in ["lab\0A", "lab\0B"] {
                rec.insert(format!("{org}\0{m}{i:06}"), enc(&f).unwrap()).unwrap();
                unit.insert(format!("{org}\0c:H{i:06}\0{m}{i:06}"), &[]).unwrap();
            }
            let c = crate::figures::contrib::contribution(&[&f, &f]);
            contrib.insert(format!("{org}\0c:H{i:06}"), enc(&c).unwrap()).unwrap();
        }
        contrib.insert(format!("{org}\0d:orphan"), enc(&Counters::from([("x".to_owned(), 1)])).unwrap()).unwrap();
        cnt.insert(format!("{org}\0live:lab"), &(2 * units as i64).to_be_bytes()).unwrap();
        assert_eq!(migrate(&store).unwrap(), 2 * units + 2 * units + units + 1 + 1);
        assert_eq!(crate::figures::counters(&store, org).unwrap()["live:lab"], 2 * units as i64);
        let fig = store.tree(trees::FIG).unwrap();
        for i in [0, PER_BATCH / 2 - 1, PER_BATCH / 2, units - 1] {
            let st: UnitState = dec(&fig.get(unit_key(org, &format!("c:H{i:06}"))).unwrap().unwrap()).unwrap();
            assert_eq!(st.members.len(), 2, "unit {i}");
            assert_eq!(st.contrib["live:lab"], 2, "unit {i}");
        }
        let orphan: UnitState = dec(&fig.get(unit_key(org, "d:orphan")).unwrap().unwrap()).unwrap();
        assert!(orphan.members.is_empty());
        assert_eq!(orphan.contrib["x"], 1);
        assert_eq!(fig.scan_prefix(b"u").count(), units + 1);
        assert_eq!(fig.scan_prefix(b"r").count(), 2 * units);
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
