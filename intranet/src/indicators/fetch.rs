//! The reads behind every indicator: sums over the rollup table (never the
//! case rows), restricted by a [`Scoped`] scope. Nothing else in the crate
//! reads `rollup`, `unit_contrib` or `hospitals` for a view.
//!
//! ```text
//!  Scoped ─▶ rollup r [JOIN hospitals h ON h.code = r.org] WHERE day in range AND scope
//!         ─▶ day → (metric, dim) → Σ value
//!  regions (全国, 省, 市, 县) ─▶ rollup_region WHERE region = key (kept at ingest, ingest/regional.rs)
//!  oe numerator: Σ oe_case over the hospital-days that have visits_day (self-join on (org, day);
//!  for regions the precomputed metric oe_num)
//!  children_sums: every child of a tree node in one query (regions) or two (hospitals)
//! ```

use std::collections::BTreeMap;

use sqlx::{AssertSqlSafe, Row};

use super::scope::Scoped;
use crate::Result;
use crate::db::{Backend, Db, positional};

/// (metric, dim) → value.
pub type Sums = BTreeMap<(String, String), i64>;

/// Adds `b` into `a`.
pub fn add_sums(a: &mut Sums, b: &Sums) {
    for (k, v) in b {
        *a.entry(k.clone()).or_insert(0) += v;
    }
}

fn metric_list(metrics: &[&str], first: usize) -> String {
    let ps: Vec<String> = (0..metrics.len()).map(|i| format!("${}", first + i)).collect();
    format!(" AND r.metric IN ({})", ps.join(", "))
}

/// Rollup sums by day over `from..=to` (every metric when `metrics` is empty).
/// Regions read their own rollup (`rollup_region`), a hospital its rows of `rollup`.
pub async fn daily(db: &Db, s: &Scoped, from: i64, to: i64, metrics: &[&str]) -> Result<BTreeMap<i64, Sums>> {
    let mut out: BTreeMap<i64, Sums> = BTreeMap::new();
    if let Some(key) = s.scope().region_key() {
        let mlist = if metrics.is_empty() { String::new() } else { metric_list(metrics, 4) };
        let sql = format!(
            "SELECT r.day, r.metric, r.dim, r.value FROM rollup_region r \
             WHERE r.region = $1 AND r.day >= $2 AND r.day <= $3{mlist}"
        );
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(key.to_string()).bind(from).bind(to);
        for m in metrics {
            q = q.bind(*m);
        }
        for row in q.fetch_all(&db.pool).await? {
            let day: i64 = row.try_get(0)?;
            let v: i64 = row.try_get(3)?;
            *out.entry(day).or_default().entry((row.try_get(1)?, row.try_get(2)?)).or_insert(0) += v;
        }
        return Ok(out);
    }
    let (join, cond, param) = s.scope().sql(3);
    let n = 3 + usize::from(param.is_some());
    let mlist = if metrics.is_empty() { String::new() } else { metric_list(metrics, n) };
    let sql = format!(
        "SELECT r.day, r.metric, r.dim, CAST(SUM(r.value) AS BIGINT) FROM rollup r{join} \
         WHERE r.day >= $1 AND r.day <= $2{cond}{mlist} GROUP BY r.day, r.metric, r.dim"
    );
    let mut q = sqlx::query(AssertSqlSafe(sql)).bind(from).bind(to);
    if let Some(p) = param {
        q = q.bind(p);
    }
    for m in metrics {
        q = q.bind(*m);
    }
    for row in q.fetch_all(&db.pool).await? {
        let day: i64 = row.try_get(0)?;
        let v: i64 = row.try_get(3)?;
        *out.entry(day).or_default().entry((row.try_get(1)?, row.try_get(2)?)).or_insert(0) += v;
    }
    Ok(out)
}

/// Σ oe_case by day over the hospital-days that have a §3.8 record.
pub async fn oe_numerator(db: &Db, s: &Scoped, from: i64, to: i64) -> Result<BTreeMap<i64, i64>> {
    if let Some(key) = s.scope().region_key() {
        let rows = sqlx::query(
            "SELECT day, value FROM rollup_region WHERE region = $1 AND day >= $2 AND day <= $3 \
             AND metric = 'oe_num' AND dim = ''",
        )
        .bind(key.to_string())
        .bind(from)
        .bind(to)
        .fetch_all(&db.pool)
        .await?;
        let mut out = BTreeMap::new();
        for row in rows {
            out.insert(row.try_get(0)?, row.try_get(1)?);
        }
        return Ok(out);
    }
    let (join, cond, param) = s.scope().sql(3);
    let sql = format!(
        "SELECT r.day, CAST(SUM(r.value) AS BIGINT) FROM rollup r{join} \
         JOIN rollup v ON v.org = r.org AND v.day = r.day AND v.metric = 'visits_day' AND v.dim = '' \
         WHERE r.day >= $1 AND r.day <= $2 AND r.metric = 'oe_case'{cond} GROUP BY r.day"
    );
    let mut q = sqlx::query(AssertSqlSafe(sql)).bind(from).bind(to);
    if let Some(p) = param {
        q = q.bind(p);
    }
    let mut out = BTreeMap::new();
    for row in q.fetch_all(&db.pool).await? {
        out.insert(row.try_get(0)?, row.try_get(1)?);
    }
    Ok(out)
}

/// Rollup sums by hospital over `from..=to`.
pub async fn by_org(db: &Db, s: &Scoped, from: i64, to: i64, metrics: &[&str]) -> Result<BTreeMap<String, Sums>> {
    let (join, cond, param) = s.scope().sql(3);
    let n = 3 + usize::from(param.is_some());
    let mlist = if metrics.is_empty() { String::new() } else { metric_list(metrics, n) };
    let sql = format!(
        "SELECT r.org, r.metric, r.dim, CAST(SUM(r.value) AS BIGINT) FROM rollup r{join} \
         WHERE r.day >= $1 AND r.day <= $2{cond}{mlist} GROUP BY r.org, r.metric, r.dim"
    );
    let mut q = sqlx::query(AssertSqlSafe(sql)).bind(from).bind(to);
    if let Some(p) = param {
        q = q.bind(p);
    }
    for m in metrics {
        q = q.bind(*m);
    }
    let mut out: BTreeMap<String, Sums> = BTreeMap::new();
    for row in q.fetch_all(&db.pool).await? {
        let org: String = row.try_get(0)?;
        let v: i64 = row.try_get(3)?;
        *out.entry(org).or_default().entry((row.try_get(1)?, row.try_get(2)?)).or_insert(0) += v;
    }
    Ok(out)
}

/// A registered hospital.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hospital {
    pub code: String,
    pub name: String,
    pub region: String,
    /// Day of approval.
    pub approved: i64,
    pub active: bool,
}

/// The registered hospitals inside the scope.
pub async fn hospitals(db: &Db, s: &Scoped) -> Result<Vec<Hospital>> {
    let (cond, param) = s.scope().hospital_sql(1);
    let sql = format!(
        "SELECT h.code, h.name, h.region, h.approved, h.active FROM hospitals h WHERE 1 = 1{cond} ORDER BY h.code"
    );
    let mut q = sqlx::query(AssertSqlSafe(sql));
    if let Some(p) = param {
        q = q.bind(p);
    }
    let mut out = Vec::new();
    for row in q.fetch_all(&db.pool).await? {
        out.push(Hospital {
            code: row.try_get(0)?,
            name: row.try_get(1)?,
            region: row.try_get(2)?,
            approved: row.try_get(3)?,
            active: row.try_get::<i64, _>(4)? != 0,
        });
    }
    Ok(out)
}

/// Stock rows of one hospital and drug: day → (kcl, use) over `from..=to`.
pub async fn stock_days(
    db: &Db,
    s: &Scoped,
    org: &str,
    drug: &str,
    from: i64,
    to: i64,
) -> Result<BTreeMap<i64, (i64, i64)>> {
    let (join, cond, param) = s.scope().sql(6);
    let sql = format!(
        "SELECT r.day, r.metric, r.value FROM rollup r{join} WHERE r.org = $1 AND r.dim = $2 \
         AND r.day >= $3 AND r.day <= $4 AND r.metric IN ('stock_kcl', 'stock_use', $5){cond}"
    );
    let mut q = sqlx::query(AssertSqlSafe(sql)).bind(org).bind(drug).bind(from).bind(to).bind("stock_day");
    if let Some(p) = param {
        q = q.bind(p);
    }
    let mut out: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for row in q.fetch_all(&db.pool).await? {
        let day: i64 = row.try_get(0)?;
        let metric: String = row.try_get(1)?;
        let v: i64 = row.try_get(2)?;
        let e = out.entry(day).or_insert((0, 0));
        match metric.as_str() {
            "stock_kcl" => e.0 += v,
            "stock_use" => e.1 += v,
            _ => {}
        }
    }
    Ok(out)
}

/// Stock rows of every hospital and drug of the scope over `from..=to`, in one query:
/// (hospital, drug) → day → (kcl, use). The drug reserve page reads its recent window with it
/// instead of one query per hospital and drug.
pub async fn stock_window(db: &Db, s: &Scoped, from: i64, to: i64) -> Result<BTreeMap<(String, String), StockDays>> {
    let (join, cond, param) = s.scope().sql(3);
    let sql = format!(
        "SELECT r.org, r.dim, r.day, r.metric, r.value FROM rollup r{join} \
         WHERE r.metric IN ('stock_kcl', 'stock_use') AND r.day >= $1 AND r.day <= $2{cond}"
    );
    let mut q = sqlx::query(AssertSqlSafe(sql)).bind(from).bind(to);
    if let Some(p) = param {
        q = q.bind(p);
    }
    let mut out: BTreeMap<(String, String), StockDays> = BTreeMap::new();
    for row in q.fetch_all(&db.pool).await? {
        let (org, drug): (String, String) = (row.try_get(0)?, row.try_get(1)?);
        let day: i64 = row.try_get(2)?;
        let metric: String = row.try_get(3)?;
        let v: i64 = row.try_get(4)?;
        let e = out.entry((org, drug)).or_default().entry(day).or_insert((0, 0));
        match metric.as_str() {
            "stock_kcl" => e.0 += v,
            "stock_use" => e.1 += v,
            _ => {}
        }
    }
    Ok(out)
}

/// day → (kcl, use) of one hospital and drug.
pub type StockDays = BTreeMap<i64, (i64, i64)>;

/// The latest TJRQ ≤ `to` per (hospital, drug) inside the scope.
pub async fn latest_stock(db: &Db, s: &Scoped, to: i64) -> Result<Vec<(String, String, i64)>> {
    let (join, cond, param) = s.scope().sql(2);
    // SQLite's planner prefers rollup_metric_day (all history, with table lookups); the partial
    // index of migration 5 holds exactly these rows in (org, dim, day) order
    let hint = if db.backend == Backend::Sqlite { " INDEXED BY rollup_stock_latest" } else { "" };
    let sql = format!(
        "SELECT r.org, r.dim, MAX(r.day) FROM rollup r{hint}{join} WHERE r.metric = 'stock_day' AND r.day <= $1{cond} \
         GROUP BY r.org, r.dim ORDER BY r.org, r.dim"
    );
    let mut q = sqlx::query(AssertSqlSafe(sql)).bind(to);
    if let Some(p) = param {
        q = q.bind(p);
    }
    let mut out = Vec::new();
    for row in q.fetch_all(&db.pool).await? {
        out.push((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?));
    }
    Ok(out)
}

/// Sums over `from..=to` of several scopes at once (the children in the region tree), keyed by
/// scope code, with `oe_num` included: one query for regions, two for hospitals, however many
/// children there are.
pub async fn children_sums(
    db: &Db,
    children: &[Scoped],
    from: i64,
    to: i64,
    metrics: &[&str],
) -> Result<BTreeMap<String, Sums>> {
    let mut out: BTreeMap<String, Sums> = BTreeMap::new();
    let regions: Vec<&str> = children.iter().filter_map(|c| c.scope().region_key()).collect();
    let hospitals: Vec<&str> = children
        .iter()
        .filter_map(|c| match c.scope() {
            super::Scope::Hospital { code, .. } => Some(code.as_str()),
            _ => None,
        })
        .collect();
    let mut all: Vec<&str> = metrics.to_vec();
    all.push(super::compute::OE_NUM);
    for chunk in regions.chunks(400) {
        let sql = format!(
            "SELECT region, metric, dim, CAST(SUM(value) AS BIGINT) FROM rollup_region \
             WHERE day >= $1 AND day <= $2 AND metric IN ({}) AND region IN ({}) GROUP BY region, metric, dim",
            placeholders(3, all.len()),
            placeholders(3 + all.len(), chunk.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(positional(db.backend == Backend::Sqlite, sql))).bind(from).bind(to);
        for m in &all {
            q = q.bind(m.to_string());
        }
        for c in chunk {
            q = q.bind(c.to_string());
        }
        for row in q.fetch_all(&db.pool).await? {
            let v: i64 = row.try_get(3)?;
            out.entry(row.try_get(0)?).or_default().insert((row.try_get(1)?, row.try_get(2)?), v);
        }
    }
    for chunk in hospitals.chunks(400) {
        let sql = format!(
            "SELECT org, metric, dim, CAST(SUM(value) AS BIGINT) FROM rollup \
             WHERE day >= $1 AND day <= $2 AND metric IN ({}) AND org IN ({}) GROUP BY org, metric, dim",
            placeholders(3, metrics.len()),
            placeholders(3 + metrics.len(), chunk.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(positional(db.backend == Backend::Sqlite, sql))).bind(from).bind(to);
        for m in metrics {
            q = q.bind(m.to_string());
        }
        for c in chunk {
            q = q.bind(c.to_string());
        }
        for row in q.fetch_all(&db.pool).await? {
            let v: i64 = row.try_get(3)?;
            out.entry(row.try_get(0)?).or_default().insert((row.try_get(1)?, row.try_get(2)?), v);
        }
        let sql = format!(
            "SELECT r.org, CAST(SUM(r.value) AS BIGINT) FROM rollup r \
             JOIN rollup v ON v.org = r.org AND v.day = r.day AND v.metric = 'visits_day' AND v.dim = '' \
             WHERE r.day >= $1 AND r.day <= $2 AND r.metric = 'oe_case' AND r.dim = '' AND r.org IN ({}) GROUP BY r.org",
            placeholders(3, chunk.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(positional(db.backend == Backend::Sqlite, sql))).bind(from).bind(to);
        for c in chunk {
            q = q.bind(c.to_string());
        }
        for row in q.fetch_all(&db.pool).await? {
            let v: i64 = row.try_get(1)?;
            out.entry(row.try_get(0)?).or_default().insert((super::compute::OE_NUM.to_string(), String::new()), v);
        }
    }
    Ok(out)
}

fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}
