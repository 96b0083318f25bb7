//! Rollups per region level (`rollup_region`): every change to a hospital's
//! rollup is added to 全国 (`000000`) and to the keys of the hospital's
//! registered region (county, city `XXXX00`, province `XX0000`), and a
//! hospital that moves region carries its whole rollup along. The metric
//! `oe_num` (Σ oe_case over hospital-days with a §3.8 record) is derived here
//! from the hospital's cells before and after the batch.
//!
//! ```text
//!  Δ (org, day, metric, dim) ─┬▶ chain(org) = {000000, county, city, province} ─▶ Δ (region, day, metric, dim)
//!                             └▶ (org, day) with Δ oe_case / visits_day ─▶ oe_num after − before ─▶ same chain
//!  hospital region A → B: its rollup ─▶ −chain(A) +chain(B) (全国 unchanged)
//!  ─▶ INSERT rollup_region … ON CONFLICT DO UPDATE value = value + Δ ─▶ drop cells that reached 0
//! ```

use std::collections::{BTreeMap, BTreeSet};

use sqlx::{Any, AssertSqlSafe, Row, Transaction};

use super::refresh::{placeholders, value_rows};
use crate::Result;
use crate::db::{is_sqlite, positional};

type Tx<'a> = Transaction<'a, Any>;

/// The key of 全国.
pub const NATIONAL: &str = "000000";

/// (org | region, day, metric, dim).
pub(crate) type Cell = (String, i64, String, String);

/// Cell → Δ.
pub(crate) type Delta = BTreeMap<Cell, i64>;

/// The keys below 全国 that a hospital registered in `region` counts towards.
pub fn chain(region: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if region.len() == 6 && region.bytes().all(|b| b.is_ascii_digit()) && region != NATIONAL {
        out.insert(region.to_string());
        out.insert(format!("{}00", region.get(..4).unwrap_or("0000")));
        out.insert(format!("{}0000", region.get(..2).unwrap_or("00")));
    }
    out
}

fn oe_num(oe_case: i64, visits_day: i64) -> i64 {
    if visits_day > 0 { oe_case } else { 0 }
}

/// The registered regions of `orgs`.
async fn regions_of(tx: &mut Tx<'_>, orgs: &[&str]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for chunk in orgs.chunks(400) {
        let sql = format!("SELECT code, region FROM hospitals WHERE code IN ({})", placeholders(1, chunk.len()));
        let mut q = sqlx::query(AssertSqlSafe(positional(is_sqlite(tx), sql)));
        for o in chunk {
            q = q.bind(o.to_string());
        }
        for row in q.fetch_all(&mut **tx).await? {
            out.insert(row.try_get(0)?, row.try_get(1)?);
        }
    }
    Ok(out)
}

/// The region deltas of a batch's hospital-level deltas; reads `rollup` as it was before them.
pub(crate) async fn region_delta(tx: &mut Tx<'_>, delta: &Delta) -> Result<Delta> {
    let orgs: Vec<&str> = delta.keys().map(|(o, _, _, _)| o.as_str()).collect::<BTreeSet<_>>().into_iter().collect();
    let regions = regions_of(tx, &orgs).await?;
    let mut per_org: Delta = delta.clone();
    // oe_num: the (org, day) whose oe_case or visits_day change.
    let mut oe_days: BTreeMap<&str, BTreeMap<i64, (i64, i64)>> = BTreeMap::new();
    for ((org, day, metric, dim), d) in delta {
        if dim.is_empty() && (metric == "oe_case" || metric == "visits_day") {
            let e = oe_days.entry(org.as_str()).or_default().entry(*day).or_insert((0, 0));
            if metric == "oe_case" {
                e.0 += d;
            } else {
                e.1 += d;
            }
        }
    }
    for (org, days) in &oe_days {
        let list: Vec<i64> = days.keys().copied().collect();
        let mut before: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
        for chunk in list.chunks(400) {
            let sql = format!(
                "SELECT day, metric, value FROM rollup WHERE org = $1 AND dim = '' \
                 AND metric IN ('oe_case', 'visits_day') AND day IN ({})",
                placeholders(2, chunk.len())
            );
            let mut q = sqlx::query(AssertSqlSafe(positional(is_sqlite(tx), sql))).bind(org.to_string());
            for d in chunk {
                q = q.bind(*d);
            }
            for row in q.fetch_all(&mut **tx).await? {
                let e = before.entry(row.try_get(0)?).or_insert((0, 0));
                let v: i64 = row.try_get(2)?;
                if row.try_get::<String, _>(1)? == "oe_case" {
                    e.0 = v;
                } else {
                    e.1 = v;
                }
            }
        }
        for (day, (doe, dvis)) in days {
            let (oe, vis) = before.get(day).copied().unwrap_or((0, 0));
            let d = oe_num(oe + doe, vis + dvis) - oe_num(oe, vis);
            if d != 0 {
                *per_org.entry((org.to_string(), *day, "oe_num".into(), String::new())).or_insert(0) += d;
            }
        }
    }
    let mut out = Delta::new();
    for ((org, day, metric, dim), d) in per_org {
        let mut keys = regions.get(&org).map(|r| chain(r)).unwrap_or_default();
        keys.insert(NATIONAL.to_string());
        for k in keys {
            *out.entry((k, day, metric.clone(), dim.clone())).or_insert(0) += d;
        }
    }
    Ok(out)
}

/// Moves a hospital's whole rollup from the keys of region `from` to those of `to` (either may be none).
pub(crate) async fn move_hospital(tx: &mut Tx<'_>, org: &str, from: Option<&str>, to: &str) -> Result<()> {
    let old = from.map(chain).unwrap_or_default();
    let new = chain(to);
    if old == new {
        return Ok(());
    }
    let rows =
        sqlx::query("SELECT day, metric, dim, value FROM rollup WHERE org = $1").bind(org).fetch_all(&mut **tx).await?;
    let mut cells: BTreeMap<(i64, String, String), i64> = BTreeMap::new();
    let mut oe: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for r in rows {
        let (day, metric, dim, v): (i64, String, String, i64) =
            (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
        if dim.is_empty() && metric == "oe_case" {
            oe.entry(day).or_default().0 = v;
        } else if dim.is_empty() && metric == "visits_day" {
            oe.entry(day).or_default().1 = v;
        }
        cells.insert((day, metric, dim), v);
    }
    for (day, (o, vis)) in oe {
        let n = oe_num(o, vis);
        if n != 0 {
            cells.insert((day, "oe_num".into(), String::new()), n);
        }
    }
    let mut delta = Delta::new();
    for ((day, metric, dim), v) in &cells {
        for k in old.difference(&new) {
            *delta.entry((k.clone(), *day, metric.clone(), dim.clone())).or_insert(0) -= v;
        }
        for k in new.difference(&old) {
            *delta.entry((k.clone(), *day, metric.clone(), dim.clone())).or_insert(0) += v;
        }
    }
    write(tx, &delta).await
}

/// rollup_region += Δ, then removes the cells a negative Δ brought to 0.
pub(crate) async fn write(tx: &mut Tx<'_>, delta: &Delta) -> Result<()> {
    let rows: Vec<(&Cell, &i64)> = delta.iter().filter(|(_, d)| **d != 0).collect();
    for chunk in rows.chunks(300) {
        let sql = format!(
            "INSERT INTO rollup_region (region, day, metric, dim, value) VALUES {} \
             ON CONFLICT (region, day, metric, dim) DO UPDATE SET value = rollup_region.value + excluded.value",
            value_rows(chunk.len(), 5)
        );
        let mut q = sqlx::query(AssertSqlSafe(positional(is_sqlite(tx), sql)));
        for ((k, day, metric, dim), d) in chunk {
            q = q.bind(k.clone()).bind(*day).bind(metric.clone()).bind(dim.clone()).bind(**d);
        }
        q.execute(&mut **tx).await?;
    }
    let mut neg: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for ((k, day, _, _), _) in rows.iter().filter(|(_, d)| **d < 0) {
        let e = neg.entry(k.as_str()).or_insert((*day, *day));
        *e = (e.0.min(*day), e.1.max(*day));
    }
    for (k, (from, to)) in neg {
        sqlx::query("DELETE FROM rollup_region WHERE region = $1 AND day >= $2 AND day <= $3 AND value = 0")
            .bind(k)
            .bind(from)
            .bind(to)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// `rollup_region` as stored (for checks).
pub async fn stored(db: &crate::db::Db) -> Result<BTreeMap<(String, i64, String, String), i64>> {
    let mut out = BTreeMap::new();
    for r in sqlx::query("SELECT region, day, metric, dim, value FROM rollup_region").fetch_all(&db.pool).await? {
        out.insert((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?), r.try_get(4)?);
    }
    Ok(out)
}

/// `rollup_region` recomputed from `rollup` and the registry (for checks).
pub async fn recomputed(db: &crate::db::Db) -> Result<BTreeMap<(String, i64, String, String), i64>> {
    let mut regions = BTreeMap::new();
    for r in sqlx::query("SELECT code, region FROM hospitals").fetch_all(&db.pool).await? {
        regions.insert(r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?);
    }
    let mut cells: Delta = Delta::new();
    let mut oe: BTreeMap<(String, i64), (i64, i64)> = BTreeMap::new();
    for r in sqlx::query("SELECT org, day, metric, dim, value FROM rollup").fetch_all(&db.pool).await? {
        let (org, day, metric, dim, v): (String, i64, String, String, i64) =
            (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?);
        if dim.is_empty() && metric == "oe_case" {
            oe.entry((org.clone(), day)).or_default().0 = v;
        } else if dim.is_empty() && metric == "visits_day" {
            oe.entry((org.clone(), day)).or_default().1 = v;
        }
        cells.insert((org, day, metric, dim), v);
    }
    for ((org, day), (o, vis)) in oe {
        let n = oe_num(o, vis);
        if n != 0 {
            cells.insert((org, day, "oe_num".into(), String::new()), n);
        }
    }
    let mut out = BTreeMap::new();
    for ((org, day, metric, dim), v) in cells {
        let mut keys = regions.get(&org).map(|r| chain(r)).unwrap_or_default();
        keys.insert(NATIONAL.to_string());
        for k in keys {
            *out.entry((k, day, metric.clone(), dim.clone())).or_insert(0) += v;
        }
    }
    out.retain(|_, v| *v != 0);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains() {
        let c: Vec<String> = chain("110101").into_iter().collect();
        assert_eq!(c, ["110000", "110100", "110101"]);
        // A region given at city level counts once there.
        assert_eq!(chain("440300").len(), 2);
        assert!(chain("000000").is_empty());
        assert!(chain("bad").is_empty());
        assert_eq!(oe_num(3, 0), 0);
        assert_eq!(oe_num(3, 1), 3);
    }
}
