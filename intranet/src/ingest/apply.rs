//! One batch in one transaction: records by natural key (latest (GXSJ, DMZ
//! sequence) wins, deletes kept as tombstones), registry, receipts, scans,
//! journal heads; then every touched unit's rollup contribution is replaced;
//! then the batch is recorded. Nothing is visible until the commit.
//!
//! ```text
//!  BEGIN (IMMEDIATE on SQLite) ─▶ batches has (node, seq)? ── same digest ─▶ AlreadyIngested (ROLLBACK)
//!        │                                                 └─ other digest ─▶ Conflict (ROLLBACK)
//!        ├▶ entries (quarantined indexes skipped) ─▶ dirty units
//!        ├▶ recompute dirty units ─▶ rollup += new − old
//!        └▶ INSERT batches ─▶ COMMIT
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};

use flumon_shared::batch::BatchHeader;
use flumon_shared::desens::outbound::OutRecord;
use flumon_shared::entries::Entry;
use sqlx::{Any, AssertSqlSafe, Row, Transaction};

use super::refresh::{self, InBatch};
use super::units::{self, Contribs, Live};
use crate::db::{Db, is_sqlite, positional};
use crate::timeconv::{day_of, secs, secs_to_dt};
use crate::{Error, Result};

/// What happened to a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Applied and committed.
    Ingested(Stats),
    /// The same batch (node, sequence, digest) was ingested before: nothing changed.
    AlreadyIngested,
    /// A batch with this node and sequence but another digest was ingested before.
    Conflict,
}

/// Counts of one ingest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub records_applied: u64,
    pub records_stale: u64,
    pub skipped: u64,
    pub units: u64,
}

type Tx<'a> = Transaction<'a, Any>;

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The unit a record belongs to (`None` for a delete: the stored row's unit is used).
fn unit_of(r: &OutRecord) -> Option<String> {
    match r {
        OutRecord::Outpatient(x) => Some(format!("c:{}", x.case_key)),
        OutRecord::Discharge(x) => Some(format!("c:{}", x.case_key)),
        OutRecord::Summary(x) => Some(format!("c:{}", x.case_key)),
        OutRecord::Death(x) => Some(format!("c:{}", x.case_key)),
        OutRecord::Medication(x) => Some(format!("c:{}", x.case_key)),
        OutRecord::Lab(x) => Some(format!("c:{}", x.case_key)),
        OutRecord::Stock(x) => Some(format!("s:{}", day_of(x.tjrq))),
        OutRecord::Visits(x) => Some(format!("v:{}", day_of(x.tjrq))),
        OutRecord::Delete { .. } => None,
    }
}

fn type_of(r: &OutRecord) -> &'static str {
    match r {
        OutRecord::Outpatient(_) => "outpatient",
        OutRecord::Discharge(_) => "discharge",
        OutRecord::Summary(_) => "summary",
        OutRecord::Death(_) => "death",
        OutRecord::Medication(_) => "medication",
        OutRecord::Lab(_) => "lab",
        OutRecord::Stock(_) => "stock",
        OutRecord::Visits(_) => "visits",
        OutRecord::Delete { ty, .. } => ty.as_str(),
    }
}

/// A record's state while the batch is applied: loaded once, changed in memory, written once.
struct Cur<'r> {
    gxsj: i64,
    seq: i64,
    first: i64,
    unit: String,
    /// The version this batch made live (`None` with `full` = a tombstone).
    rec: Option<&'r OutRecord>,
    /// Write the whole row.
    full: bool,
    /// Only `first_dmz_time` changed (an older version came first to the DMZ).
    first_only: bool,
}

type Key = (String, &'static str, String);

/// The stored state of every record the batch names, a few hundred keys per query.
async fn load_records<'r>(tx: &mut Tx<'_>, entries: &[&'r OutRecord]) -> Result<HashMap<Key, Cur<'r>>> {
    let mut groups: BTreeMap<(&str, &'static str), BTreeSet<&str>> = BTreeMap::new();
    for r in entries {
        let c = r.common();
        groups.entry((c.org.as_str(), type_of(r))).or_default().insert(c.rec_key.as_str());
    }
    let mut out = HashMap::new();
    for ((org, ty), keys) in groups {
        let keys: Vec<&str> = keys.into_iter().collect();
        for chunk in keys.chunks(400) {
            let sql = format!(
                "SELECT rec_key, gxsj, dmz_seq, first_dmz_time, unit FROM records \
                 WHERE org = $1 AND ty = $2 AND rec_key IN ({})",
                refresh::placeholders(3, chunk.len())
            );
            let mut q = sqlx::query(AssertSqlSafe(positional(is_sqlite(tx), sql))).bind(org.to_string()).bind(ty);
            for k in chunk {
                q = q.bind(k.to_string());
            }
            for row in q.fetch_all(&mut **tx).await? {
                let cur = Cur {
                    gxsj: row.try_get(1)?,
                    seq: row.try_get(2)?,
                    first: row.try_get(3)?,
                    unit: row.try_get(4)?,
                    rec: None,
                    full: false,
                    first_only: false,
                };
                out.insert((org.to_string(), ty, row.try_get(0)?), cur);
            }
        }
    }
    Ok(out)
}

/// Applies one record to the in-memory state; returns whether it became the live version.
fn apply_record<'r>(
    state: &mut HashMap<Key, Cur<'r>>,
    r: &'r OutRecord,
    dirty: &mut BTreeSet<(String, String)>,
) -> bool {
    let c = r.common();
    let key = (c.org.clone(), type_of(r), c.rec_key.clone());
    let (gxsj, seq, t) = (secs(c.gxsj), i64_of(c.dmz_seq), secs(c.dmz_time));
    let old = state.get_mut(&key);
    let newer = old.as_ref().is_none_or(|o| (gxsj, seq) > (o.gxsj, o.seq));
    if !newer {
        // An older (or the same) version: only its first receipt time can matter.
        if let Some(o) = old
            && t < o.first
        {
            o.first = t;
            o.first_only = true;
            dirty.insert((c.org.clone(), o.unit.clone()));
        }
        return false;
    }
    let first = old.as_ref().map_or(t, |o| t.min(o.first));
    let old_unit = old.map(|o| o.unit.clone());
    let unit = match (unit_of(r), r, &old_unit) {
        (Some(u), _, _) => u,
        (None, _, Some(u)) => u.clone(),
        (None, OutRecord::Delete { case_key: Some(k), .. }, None) => format!("c:{k}"),
        _ => "x:".to_string(),
    };
    let rec = match r {
        OutRecord::Delete { .. } => None,
        _ => Some(r),
    };
    if let Some(u) = old_unit {
        dirty.insert((c.org.clone(), u));
    }
    dirty.insert((c.org.clone(), unit.clone()));
    state.insert(key, Cur { gxsj, seq, first, unit, rec, full: true, first_only: false });
    true
}

/// Records per multi-row upsert of [`write_records`] (× 9 parameters).
pub const RECORDS_PER_STATEMENT: usize = 200;

/// The multi-row upsert of `rows` records into `records` (9 `$N` parameters
/// a row: org, ty, rec_key, gxsj, dmz_seq, deleted, first_dmz_time, unit, body).
/// Public for the ingest benchmark's records-shaped reference.
pub fn upsert_records_sql(rows: usize) -> String {
    format!(
        "INSERT INTO records (org, ty, rec_key, gxsj, dmz_seq, deleted, first_dmz_time, unit, body) VALUES {} \
         ON CONFLICT (org, ty, rec_key) DO UPDATE SET gxsj = excluded.gxsj, dmz_seq = excluded.dmz_seq, \
         deleted = excluded.deleted, first_dmz_time = excluded.first_dmz_time, unit = excluded.unit, \
         body = excluded.body",
        refresh::value_rows(rows, 9)
    )
}

/// Writes the records the batch changed: multi-row upserts, and the few receipt-time-only updates.
async fn write_records(tx: &mut Tx<'_>, state: &HashMap<Key, Cur<'_>>) -> Result<()> {
    let full: Vec<(&Key, &Cur<'_>)> = state.iter().filter(|(_, c)| c.full).collect();
    for chunk in full.chunks(RECORDS_PER_STATEMENT) {
        let sql = upsert_records_sql(chunk.len());
        let mut q = sqlx::query(AssertSqlSafe(positional(is_sqlite(tx), sql)));
        for ((org, ty, key), c) in chunk {
            let body = c.rec.map(serde_json::to_string).transpose()?;
            q = q
                .bind(org.clone())
                .bind(*ty)
                .bind(key.clone())
                .bind(c.gxsj)
                .bind(c.seq)
                .bind(i64::from(c.rec.is_none()))
                .bind(c.first)
                .bind(c.unit.clone())
                .bind(body);
        }
        q.execute(&mut **tx).await?;
    }
    for ((org, ty, key), c) in state.iter().filter(|(_, c)| c.first_only && !c.full) {
        sqlx::query("UPDATE records SET first_dmz_time = $1 WHERE org = $2 AND ty = $3 AND rec_key = $4")
            .bind(c.first)
            .bind(org)
            .bind(*ty)
            .bind(key)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// The live records of a unit.
async fn live(tx: &mut Tx<'_>, org: &str, unit: &str) -> Result<Vec<Live>> {
    let rows = sqlx::query("SELECT body, first_dmz_time FROM records WHERE org = $1 AND unit = $2 AND deleted = 0")
        .bind(org)
        .bind(unit)
        .fetch_all(&mut **tx)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let body: Option<String> = row.try_get(0)?;
        let first: i64 = row.try_get(1)?;
        if let Some(b) = body {
            out.push(Live { rec: serde_json::from_str(&b)?, first_dmz_time: first });
        }
    }
    Ok(out)
}

/// Loads a unit's inputs and computes its contributions.
pub(crate) async fn unit_contribs(tx: &mut Tx<'_>, org: &str, unit: &str) -> Result<Contribs> {
    let (kind, key) = unit.split_once(':').unwrap_or(("x", ""));
    match kind {
        "c" => {
            let recs = live(tx, org, unit).await?;
            let scans: Vec<i64> = sqlx::query_scalar("SELECT received FROM scans WHERE org = $1 AND case_key = $2")
                .bind(org)
                .bind(key)
                .fetch_all(&mut **tx)
                .await?;
            Ok(units::case_contrib(&recs, &scans))
        }
        "v" => Ok(units::visits_contrib(&live(tx, org, unit).await?)),
        "s" => Ok(units::stock_contrib(&live(tx, org, unit).await?)),
        "r" => {
            let row = sqlx::query("SELECT ty, time, received, errors FROM receipts WHERE receipt_id = $1")
                .bind(key)
                .fetch_optional(&mut **tx)
                .await?;
            let Some(row) = row else { return Ok(Contribs::new()) };
            let errors: BTreeMap<String, u64> = serde_json::from_str(&row.try_get::<String, _>(3)?)?;
            Ok(units::receipt_contrib(&row.try_get::<String, _>(0)?, row.try_get(1)?, row.try_get(2)?, &errors))
        }
        "t" => {
            let day: i64 = key.parse().map_err(|_| Error::Internal("unit key".into()))?;
            let n: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM receipts WHERE org = $1 AND time >= $2 AND time <= $3")
                    .bind(org)
                    .bind(day * 86_400)
                    .bind((day + 1) * 86_400 + 8 * 3_600)
                    .fetch_one(&mut **tx)
                    .await?;
            Ok(units::timely_contrib(day, n > 0))
        }
        _ => Ok(Contribs::new()),
    }
}

/// Applies a non-record entry (records go through [`apply_record`]).
async fn apply_entry(tx: &mut Tx<'_>, e: &Entry, dirty: &mut BTreeSet<(String, String)>) -> Result<()> {
    match e {
        Entry::Record(_) => {}
        Entry::Hospital(h) => {
            let before: Option<String> = sqlx::query_scalar("SELECT region FROM hospitals WHERE code = $1")
                .bind(&h.code)
                .fetch_optional(&mut **tx)
                .await?;
            super::regional::move_hospital(tx, &h.code, before.as_deref(), &h.region).await?;
            sqlx::query(
                "INSERT INTO hospitals (code, name, level, region, approved, active) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (code) DO UPDATE SET name = excluded.name, level = excluded.level, \
                 region = excluded.region, approved = excluded.approved, active = excluded.active",
            )
            .bind(&h.code)
            .bind(&h.name)
            .bind(i64::from(h.level))
            .bind(&h.region)
            .bind(day_of(h.approved))
            .bind(i64::from(h.active))
            .execute(&mut **tx)
            .await?;
        }
        Entry::Receipt(r) => {
            let t = secs(r.time);
            let done = sqlx::query(
                "INSERT INTO receipts (receipt_id, org, ty, time, received, accepted, rejected, errors) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (receipt_id) DO NOTHING",
            )
            .bind(&r.receipt_id)
            .bind(&r.org)
            .bind(r.ty.as_str())
            .bind(t)
            .bind(i64_of(r.received))
            .bind(i64_of(r.accepted))
            .bind(i64_of(r.rejected))
            .bind(serde_json::to_string(&r.error_counts)?)
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() == 1 {
                let day = day_of(r.time.date());
                dirty.insert((r.org.clone(), format!("r:{}", r.receipt_id)));
                dirty.insert((r.org.clone(), format!("t:{day}")));
                if secs_to_dt(t).time() <= chrono::NaiveTime::from_hms_opt(8, 0, 0).unwrap_or_default() {
                    dirty.insert((r.org.clone(), format!("t:{}", day - 1)));
                }
            }
        }
        Entry::Scan(s) => {
            let done = sqlx::query(
                "INSERT INTO scans (org, case_key, wjxh, sm3, wjzs, nrlb, pages, bytes, received) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (org, case_key, wjxh, sm3) DO NOTHING",
            )
            .bind(&s.org)
            .bind(&s.case_key)
            .bind(i64::from(s.wjxh))
            .bind(&s.sm3)
            .bind(i64::from(s.wjzs))
            .bind(i64::from(s.nrlb))
            .bind(s.pages.map(i64::from))
            .bind(i64_of(s.bytes))
            .bind(secs(s.received))
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() == 1 {
                dirty.insert((s.org.clone(), format!("c:{}", s.case_key)));
            }
        }
        Entry::JournalHead(h) => {
            sqlx::query(
                "INSERT INTO dmz_heads (node, seq, hash, time) VALUES ($1, $2, $3, $4) ON CONFLICT (node, seq) DO NOTHING",
            )
            .bind(&h.node)
            .bind(i64_of(h.seq))
            .bind(&h.hash)
            .bind(secs(h.time))
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

/// Applies a verified batch in one transaction. `skip` holds the indexes
/// of entries the receiver quarantined.
pub async fn apply_batch(
    db: &Db,
    header: &BatchHeader,
    entries: &[Entry],
    skip: &BTreeSet<usize>,
    file_name: &str,
) -> Result<Outcome> {
    let digest = hex::encode(header.payload_sm3);
    let mut tx = db.begin_write().await?;
    let seen: Option<String> = sqlx::query_scalar("SELECT digest FROM batches WHERE node = $1 AND seq = $2")
        .bind(&header.node_id)
        .bind(i64_of(header.sequence))
        .fetch_optional(&mut *tx)
        .await?;
    if let Some(d) = seen {
        tx.rollback().await?;
        return Ok(if d == digest { Outcome::AlreadyIngested } else { Outcome::Conflict });
    }
    let mut st = Stats::default();
    let mut dirty = BTreeSet::new();
    let kept: Vec<&Entry> = entries.iter().enumerate().filter(|(i, _)| !skip.contains(i)).map(|(_, e)| e).collect();
    st.skipped = (entries.len() - kept.len()) as u64;
    let recs: Vec<&OutRecord> = kept
        .iter()
        .filter_map(|e| match e {
            Entry::Record(r) => Some(r),
            _ => None,
        })
        .collect();
    let mut state = load_records(&mut tx, &recs).await?;
    for e in &kept {
        match e {
            Entry::Record(r) => {
                if apply_record(&mut state, r, &mut dirty) {
                    st.records_applied += 1;
                } else {
                    st.records_stale += 1;
                }
            }
            other => apply_entry(&mut tx, other, &mut dirty).await?,
        }
    }
    write_records(&mut tx, &state).await?;
    let mem: InBatch<'_> =
        state.iter().filter_map(|((org, ty, key), c)| c.rec.map(|r| ((org.clone(), *ty, key.clone()), r))).collect();
    refresh::refresh_units(&mut tx, &dirty, &mem).await?;
    st.units = dirty.len() as u64;
    sqlx::query(
        "INSERT INTO batches (node, seq, digest, file_name, entries, skipped, ingested_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&header.node_id)
    .bind(i64_of(header.sequence))
    .bind(&digest)
    .bind(file_name)
    .bind(entries.len() as i64)
    .bind(i64_of(st.skipped))
    .bind(secs(chrono::Local::now().naive_local()))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Outcome::Ingested(st))
}

/// Every unit that exists, for a full recomputation.
pub async fn all_units(db: &Db) -> Result<BTreeSet<(String, String)>> {
    let mut out = BTreeSet::new();
    for r in sqlx::query("SELECT DISTINCT org, unit FROM records").fetch_all(&db.pool).await? {
        out.insert((r.try_get(0)?, r.try_get(1)?));
    }
    for r in sqlx::query("SELECT DISTINCT org, case_key FROM scans").fetch_all(&db.pool).await? {
        out.insert((r.try_get(0)?, format!("c:{}", r.try_get::<String, _>(1)?)));
    }
    for r in sqlx::query("SELECT org, receipt_id, time FROM receipts").fetch_all(&db.pool).await? {
        let org: String = r.try_get(0)?;
        let t: i64 = r.try_get(2)?;
        let day = t.div_euclid(86_400);
        out.insert((org.clone(), format!("r:{}", r.try_get::<String, _>(1)?)));
        out.insert((org.clone(), format!("t:{day}")));
        out.insert((org, format!("t:{}", day - 1)));
    }
    Ok(out)
}

/// The rollups recomputed from the records alone (for checks), without touching the database.
pub async fn recompute_all(db: &Db) -> Result<BTreeMap<(String, i64, String, String), i64>> {
    let mut tx = db.pool.begin().await?;
    let mut total = BTreeMap::new();
    for (org, unit) in all_units(db).await? {
        for ((day, metric, dim), v) in unit_contribs(&mut tx, &org, &unit).await? {
            *total.entry((org.clone(), day, metric, dim)).or_insert(0) += v;
        }
    }
    tx.rollback().await?;
    total.retain(|_, v| *v != 0);
    Ok(total)
}

/// The rollup table as stored.
pub async fn stored_rollups(db: &Db) -> Result<BTreeMap<(String, i64, String, String), i64>> {
    let mut out = BTreeMap::new();
    for r in sqlx::query("SELECT org, day, metric, dim, value FROM rollup").fetch_all(&db.pool).await? {
        out.insert((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?), r.try_get(4)?);
    }
    Ok(out)
}
