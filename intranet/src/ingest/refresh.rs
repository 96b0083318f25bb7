//! Rollup maintenance for one batch, in bulk: the dirty units are read a few
//! hundred at a time (live records, scans, old contributions), their new
//! contributions computed (units.rs), and the differences summed over the
//! whole batch before anything is written, so each rollup cell is written once
//! per batch however many cases touch it.
//!
//! ```text
//!  dirty (org, unit) ─ per org, chunks of CHUNK ─▶ SELECT live records / scans / unit_contrib_packed … IN (…)
//!     ─▶ units::*_contrib ─▶ new ≠ old? ─▶ Δ (org, day, metric, dim) summed over the batch
//!  ─▶ upsert unit_contrib_packed (one row per changed unit, multi-row) / DELETE the emptied ones
//!  ─▶ INSERT rollup … ON CONFLICT DO UPDATE value = value + Δ (multi-row) ─▶ drop cells that reached 0
//!  ─▶ the same Δ per region level (regional.rs)
//! ```
//! Records of the batch itself are taken from memory instead of parsing their stored JSON again.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use flumon_shared::desens::outbound::OutRecord;
use sqlx::{Any, AssertSqlSafe, Row, Transaction};

use super::apply::unit_contribs;
use super::units::{self, Contribs, Live};
use crate::Result;
use crate::db::{is_sqlite, positional};

type Tx<'a> = Transaction<'a, Any>;

/// Units per `IN (…)` list.
const CHUNK: usize = 400;
/// Rows per multi-row INSERT (× its columns stays far below both databases' parameter limits).
const ROWS: usize = 300;

/// (org, type, rec_key) → the version this batch wrote (live ones only).
pub(crate) type InBatch<'r> = HashMap<(String, &'static str, String), &'r OutRecord>;

use super::regional::{Cell, Delta};

/// `$first, $first+1, …` for `n` values.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// `($a, $b, …), (…)` for `rows` rows of `cols` values, numbered from 1.
pub(crate) fn value_rows(rows: usize, cols: usize) -> String {
    (0..rows).map(|r| format!("({})", placeholders(1 + r * cols, cols))).collect::<Vec<_>>().join(", ")
}

fn in_list(
    sqlite: bool,
    org: &str,
    units: &[&str],
    sql: &str,
) -> sqlx::query::Query<'static, Any, sqlx::any::AnyArguments> {
    let sql = sql.replace("{IN}", &placeholders(2, units.len()));
    let mut q = sqlx::query(AssertSqlSafe(positional(sqlite, sql))).bind(org.to_string());
    for u in units {
        q = q.bind(u.to_string());
    }
    q
}

/// Old and new contributions of a chunk of record-backed units (`c:`, `v:`, `s:`) of one org.
async fn chunk_contribs(
    tx: &mut Tx<'_>,
    org: &str,
    chunk: &[&str],
    mem: &InBatch<'_>,
) -> Result<BTreeMap<String, (Contribs, Contribs)>> {
    let mut live: HashMap<String, Vec<Live>> = HashMap::new();
    let rows = in_list(
        is_sqlite(tx),
        org,
        chunk,
        "SELECT unit, ty, rec_key, body, first_dmz_time FROM records WHERE org = $1 AND deleted = 0 AND unit IN ({IN})",
    )
    .fetch_all(&mut **tx)
    .await?;
    for row in rows {
        let unit: String = row.try_get(0)?;
        let ty: String = row.try_get(1)?;
        let key: String = row.try_get(2)?;
        let first: i64 = row.try_get(4)?;
        let rec = match mem.get(&(org.to_string(), static_ty(&ty), key)) {
            Some(r) => (*r).clone(),
            None => match row.try_get::<Option<String>, _>(3)? {
                Some(b) => serde_json::from_str(&b)?,
                None => continue,
            },
        };
        live.entry(unit).or_default().push(Live { rec, first_dmz_time: first });
    }
    let cases: Vec<&str> = chunk.iter().filter_map(|u| u.strip_prefix("c:")).collect();
    let mut scans: HashMap<String, Vec<i64>> = HashMap::new();
    if !cases.is_empty() {
        let rows = in_list(
            is_sqlite(tx),
            org,
            &cases,
            "SELECT case_key, received FROM scans WHERE org = $1 AND case_key IN ({IN})",
        )
        .fetch_all(&mut **tx)
        .await?;
        for row in rows {
            scans.entry(row.try_get(0)?).or_default().push(row.try_get(1)?);
        }
    }
    let mut old: HashMap<String, Contribs> = HashMap::new();
    let rows = in_list(
        is_sqlite(tx),
        org,
        chunk,
        "SELECT unit, contrib FROM unit_contrib_packed WHERE org = $1 AND unit IN ({IN})",
    )
    .fetch_all(&mut **tx)
    .await?;
    for r in rows {
        old.insert(r.try_get(0)?, unpack(&r.try_get::<String, _>(1)?)?);
    }
    let mut out = BTreeMap::new();
    for unit in chunk {
        let recs = live.remove(*unit).unwrap_or_default();
        let new = match unit.split_once(':') {
            Some(("c", key)) => units::case_contrib(&recs, scans.get(key).map_or(&[][..], |v| v.as_slice())),
            Some(("v", _)) => units::visits_contrib(&recs),
            Some(("s", _)) => units::stock_contrib(&recs),
            _ => Contribs::new(),
        };
        out.insert(unit.to_string(), (old.remove(*unit).unwrap_or_default(), new));
    }
    Ok(out)
}

/// A unit's contribution as stored: `[[day, metric, dim, value], …]`.
pub(crate) fn pack(c: &Contribs) -> Result<String> {
    let v: Vec<(i64, &str, &str, i64)> = c.iter().map(|((d, m, k), v)| (*d, m.as_str(), k.as_str(), *v)).collect();
    Ok(serde_json::to_string(&v)?)
}

/// The inverse of [`pack`].
pub(crate) fn unpack(s: &str) -> Result<Contribs> {
    let v: Vec<(i64, String, String, i64)> = serde_json::from_str(s)?;
    Ok(v.into_iter().map(|(d, m, k, x)| ((d, m, k), x)).collect())
}

/// Packs the rows a database of schema version ≤ 3 kept in `unit_contrib` (once; the table is left empty).
pub async fn pack_legacy_contribs(db: &crate::db::Db) -> Result<()> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM unit_contrib").fetch_one(&db.pool).await?;
    if n == 0 {
        return Ok(());
    }
    let mut tx = db.begin_write().await?;
    let mut units: BTreeMap<(String, String), Contribs> = BTreeMap::new();
    for r in sqlx::query("SELECT org, unit, day, metric, dim, value FROM unit_contrib").fetch_all(&mut *tx).await? {
        units
            .entry((r.try_get(0)?, r.try_get(1)?))
            .or_default()
            .insert((r.try_get(2)?, r.try_get(3)?, r.try_get(4)?), r.try_get(5)?);
    }
    for ((org, unit), c) in &units {
        sqlx::query(
            "INSERT INTO unit_contrib_packed (org, unit, contrib) VALUES ($1, $2, $3) \
             ON CONFLICT (org, unit) DO UPDATE SET contrib = excluded.contrib",
        )
        .bind(org)
        .bind(unit)
        .bind(pack(c)?)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("DELETE FROM unit_contrib").execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// The `&'static` type name stored in `records.ty`.
fn static_ty(ty: &str) -> &'static str {
    const TYPES: [&str; 8] = ["outpatient", "discharge", "summary", "death", "medication", "lab", "stock", "visits"];
    TYPES.iter().find(|t| **t == ty).copied().unwrap_or("")
}

/// Old and new contributions of a unit read one at a time (receipts, timeliness).
async fn single_contribs(tx: &mut Tx<'_>, org: &str, unit: &str) -> Result<(Contribs, Contribs)> {
    let new = unit_contribs(tx, org, unit).await?;
    let packed: Option<String> =
        sqlx::query_scalar("SELECT contrib FROM unit_contrib_packed WHERE org = $1 AND unit = $2")
            .bind(org)
            .bind(unit)
            .fetch_optional(&mut **tx)
            .await?;
    let old = packed.as_deref().map(unpack).transpose()?.unwrap_or_default();
    Ok((old, new))
}

/// Recomputes every dirty unit and applies the differences to `unit_contrib_packed` and the rollups.
pub(crate) async fn refresh_units(
    tx: &mut Tx<'_>,
    dirty: &BTreeSet<(String, String)>,
    mem: &InBatch<'_>,
) -> Result<()> {
    let mut by_org: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (org, unit) in dirty {
        by_org.entry(org.as_str()).or_default().push(unit.as_str());
    }
    let mut delta = Delta::new();
    for (org, units) in by_org {
        let (bulk, single): (Vec<&str>, Vec<&str>) =
            units.into_iter().partition(|u| u.starts_with("c:") || u.starts_with("v:") || u.starts_with("s:"));
        let mut all: BTreeMap<String, (Contribs, Contribs)> = BTreeMap::new();
        for chunk in bulk.chunks(CHUNK) {
            all.extend(chunk_contribs(tx, org, chunk, mem).await?);
        }
        for u in single {
            all.insert(u.to_string(), single_contribs(tx, org, u).await?);
        }
        let changed: Vec<(&String, &Contribs, &Contribs)> =
            all.iter().filter(|(_, (old, new))| old != new).map(|(u, (o, n))| (u, o, n)).collect();
        for (_, old, new) in &changed {
            for ((day, metric, dim), v) in *new {
                *delta.entry((org.to_string(), *day, metric.clone(), dim.clone())).or_insert(0) += v;
            }
            for ((day, metric, dim), v) in *old {
                *delta.entry((org.to_string(), *day, metric.clone(), dim.clone())).or_insert(0) -= v;
            }
        }
        let gone: Vec<&str> = changed.iter().filter(|(_, _, n)| n.is_empty()).map(|(u, _, _)| u.as_str()).collect();
        for chunk in gone.chunks(CHUNK) {
            in_list(is_sqlite(tx), org, chunk, "DELETE FROM unit_contrib_packed WHERE org = $1 AND unit IN ({IN})")
                .execute(&mut **tx)
                .await?;
        }
        let mut rows: Vec<(&String, String)> = Vec::new();
        for (u, _, n) in changed.iter().filter(|(_, _, n)| !n.is_empty()) {
            rows.push((u, pack(n)?));
        }
        for chunk in rows.chunks(ROWS) {
            let sql = format!(
                "INSERT INTO unit_contrib_packed (org, unit, contrib) VALUES {} \
                 ON CONFLICT (org, unit) DO UPDATE SET contrib = excluded.contrib",
                value_rows(chunk.len(), 3)
            );
            let mut q = sqlx::query(AssertSqlSafe(positional(is_sqlite(tx), sql)));
            for (u, packed) in chunk {
                q = q.bind(org.to_string()).bind(u.to_string()).bind(packed.clone());
            }
            q.execute(&mut **tx).await?;
        }
    }
    let regional = super::regional::region_delta(tx, &delta).await?;
    write_rollup(tx, &delta).await?;
    super::regional::write(tx, &regional).await
}

/// rollup += Δ, then removes the cells a negative Δ brought to 0.
async fn write_rollup(tx: &mut Tx<'_>, delta: &Delta) -> Result<()> {
    let rows: Vec<(&Cell, &i64)> = delta.iter().filter(|(_, d)| **d != 0).collect();
    for chunk in rows.chunks(ROWS) {
        let sql = format!(
            "INSERT INTO rollup (org, day, metric, dim, value) VALUES {} \
             ON CONFLICT (org, day, metric, dim) DO UPDATE SET value = rollup.value + excluded.value",
            value_rows(chunk.len(), 5)
        );
        let mut q = sqlx::query(AssertSqlSafe(positional(is_sqlite(tx), sql)));
        for ((org, day, metric, dim), d) in chunk {
            q = q.bind(org.clone()).bind(*day).bind(metric.clone()).bind(dim.clone()).bind(**d);
        }
        q.execute(&mut **tx).await?;
    }
    let mut neg: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for ((org, day, _, _), _) in rows.iter().filter(|(_, d)| **d < 0) {
        let e = neg.entry(org.as_str()).or_insert((*day, *day));
        *e = (e.0.min(*day), e.1.max(*day));
    }
    for (org, (from, to)) in neg {
        sqlx::query("DELETE FROM rollup WHERE org = $1 AND day >= $2 AND day <= $3 AND value = 0")
            .bind(org)
            .bind(from)
            .bind(to)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholder_rows() {
        assert_eq!(placeholders(2, 3), "$2, $3, $4");
        assert_eq!(value_rows(2, 2), "($1, $2), ($3, $4)");
        assert_eq!(static_ty("lab"), "lab");
        assert_eq!(static_ty("nope"), "");
        let mut c = Contribs::new();
        c.insert((20_000, "case_age".into(), "0-4".into()), 1);
        c.insert((20_001, "delay".into(), "3".into()), -2);
        assert_eq!(unpack(&pack(&c).unwrap()).unwrap(), c);
    }
}
