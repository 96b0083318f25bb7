//! `flumon-intranet check`: what the database holds and whether its rollups
//! still equal a full recomputation from the records.
//!
//! ```text
//!  records ──group by (org, ty)──▶ live / deleted counts ─┐
//!  receipts, batches, scans ──count──────────────────────┼─▶ Check (JSON)
//!  rollup, rollup_region  ◀── compare ──▶ ingest::apply::recompute_all, ingest::regional::recomputed
//! ```
//!
//! Operators run it after a restore or an incident; the fault campaign
//! (`tests/campaign/`) runs it at the end of every campaign. It reads only
//! counts: no case row leaves the database through it.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;

use crate::Result;
use crate::db::Db;
use crate::ingest::apply::{recompute_all, stored_rollups};

/// Counts of one hospital and record type.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct TypeCounts {
    pub live: i64,
    pub deleted: i64,
}

/// One rollup cell that differs from the recomputation.
#[derive(Debug, Serialize)]
pub struct Mismatch {
    pub org: String,
    pub day: i64,
    pub metric: String,
    pub dim: String,
    pub stored: i64,
    pub recomputed: i64,
}

/// The whole check.
#[derive(Debug, Serialize)]
pub struct Check {
    /// hospital code → record type → counts.
    pub records: BTreeMap<String, BTreeMap<String, TypeCounts>>,
    pub receipts: i64,
    pub batches: i64,
    pub scans: i64,
    pub rollup_cells: usize,
    /// Cells where the stored rollups differ from a recomputation (at most 50 listed).
    pub mismatches: Vec<Mismatch>,
    pub mismatch_count: usize,
}

impl Check {
    /// True when the rollups equal the recomputation.
    pub fn consistent(&self) -> bool {
        self.mismatch_count == 0
    }
}

async fn count(db: &Db, sql: &'static str) -> Result<i64> {
    Ok(sqlx::query(sql).fetch_one(&db.pool).await?.try_get(0)?)
}

/// Runs the check.
pub async fn run(db: &Db) -> Result<Check> {
    let mut records: BTreeMap<String, BTreeMap<String, TypeCounts>> = BTreeMap::new();
    let rows = sqlx::query("SELECT org, ty, deleted, COUNT(*) FROM records GROUP BY org, ty, deleted")
        .fetch_all(&db.pool)
        .await?;
    for r in rows {
        let (org, ty, deleted, n): (String, String, i64, i64) =
            (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
        let c = records.entry(org).or_default().entry(ty).or_default();
        if deleted != 0 {
            c.deleted += n;
        } else {
            c.live += n;
        }
    }
    let mut stored = stored_rollups(db).await?;
    let mut recomputed = recompute_all(db).await?;
    // the per-region rollups too, told apart by a "region:" prefix on the key
    let region = |m: BTreeMap<(String, i64, String, String), i64>| {
        m.into_iter().map(|((r, d, me, di), v)| ((format!("region:{r}"), d, me, di), v))
    };
    stored.extend(region(crate::ingest::regional::stored(db).await?));
    recomputed.extend(region(crate::ingest::regional::recomputed(db).await?));
    let mut mismatches = Vec::new();
    let mut mismatch_count = 0;
    let keys: std::collections::BTreeSet<_> = stored.keys().chain(recomputed.keys()).collect();
    for k in keys {
        let (s, r) = (stored.get(k).copied().unwrap_or(0), recomputed.get(k).copied().unwrap_or(0));
        if s != r {
            mismatch_count += 1;
            if mismatches.len() < 50 {
                let (org, day, metric, dim) = k.clone();
                mismatches.push(Mismatch { org, day, metric, dim, stored: s, recomputed: r });
            }
        }
    }
    Ok(Check {
        records,
        receipts: count(db, "SELECT COUNT(*) FROM receipts").await?,
        batches: count(db, "SELECT COUNT(*) FROM batches").await?,
        scans: count(db, "SELECT COUNT(*) FROM scans").await?,
        rollup_cells: stored.values().filter(|v| **v != 0).count(),
        mismatches,
        mismatch_count,
    })
}
