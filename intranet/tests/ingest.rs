//! Ingest: idempotency (same batch twice, overlapping resends), latest
//! GXSJ wins, deletes as tombstones, §3.2 superseding §3.1, quarantine
//! sidecars, rejected files, crash before the move, rollups equal to a
//! full recomputation.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::*;
use flumon_intranet::db::Db;
use flumon_intranet::ingest::apply::{recompute_all, stored_rollups};
use flumon_intranet::ingest::{FileOutcome, ingest_file, ingest_spool, regional};
use flumon_shared::batch::open_batch;
use flumon_shared::entries::Entry;
use flumon_shared::model::RecordType;

async fn metric(db: &Db, metric: &str, dim: &str) -> i64 {
    stored_rollups(db).await.unwrap().iter().filter(|((_, _, m, d), _)| m == metric && d == dim).map(|(_, v)| v).sum()
}

async fn check_rollups(db: &Db) {
    assert_eq!(
        stored_rollups(db).await.unwrap(),
        recompute_all(db).await.unwrap(),
        "rollups differ from recomputation"
    );
    assert_eq!(
        regional::stored(db).await.unwrap(),
        regional::recomputed(db).await.unwrap(),
        "region rollups differ from the hospitals' rollups"
    );
}

async fn region_metric(db: &Db, region: &str, metric: &str) -> i64 {
    regional::stored(db)
        .await
        .unwrap()
        .iter()
        .filter(|((r, _, m, d), _)| r == region && m == metric && d.is_empty())
        .map(|(_, v)| v)
        .sum()
}

fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("inbound");
    std::fs::create_dir_all(&spool).unwrap();
    (dir, spool)
}

#[tokio::test]
async fn same_batch_twice_changes_nothing() {
    let (dir, spool) = setup();
    let db = fresh_db(dir.path()).await;
    let w = World::new();
    let entries = vec![
        hospital(ORG_A, "110101"),
        outpatient(
            common(&w, ORG_A, "r1", "2025-01-06 10:00:00", "2025-01-06 20:00:00"),
            "c1",
            "2025-01-06 09:00:00",
            |_| {},
        ),
    ];
    let p = w.drop_batch(&spool, &entries);
    let bytes = std::fs::read(&p).unwrap();
    let out = ingest_spool(&db, &w.keys(), &spool).await.unwrap();
    assert!(matches!(out[0].1, FileOutcome::Ingested(_)), "{out:?}");
    assert!(spool.join("done").join(p.file_name().unwrap()).exists());
    let before = stored_rollups(&db).await.unwrap();
    assert_eq!(metric(&db, "case", "").await, 1);
    // The very same file again.
    std::fs::write(&p, &bytes).unwrap();
    let out = ingest_spool(&db, &w.keys(), &spool).await.unwrap();
    assert_eq!(out[0].1, FileOutcome::AlreadyIngested);
    assert_eq!(stored_rollups(&db).await.unwrap(), before);
    check_rollups(&db).await;
}

#[tokio::test]
async fn overlapping_resends_never_count_twice() {
    let (dir, spool) = setup();
    let db = fresh_db(dir.path()).await;
    let w = World::new();
    // Day 1 uploads r1; day 2 resends r1 (same GXSJ, later receipt) with r2; day 3 resends both.
    let r1 = |w: &World, t: &str| {
        outpatient(common(w, ORG_A, "r1", "2025-01-06 10:00:00", t), "c1", "2025-01-06 09:00:00", |_| {})
    };
    let r2 = |w: &World, t: &str| {
        outpatient(common(w, ORG_A, "r2", "2025-01-07 10:00:00", t), "c2", "2025-01-07 09:00:00", |_| {})
    };
    w.drop_batch(&spool, &[hospital(ORG_A, "110101"), r1(&w, "2025-01-06 20:00:00")]);
    w.drop_batch(&spool, &[r1(&w, "2025-01-07 20:00:00"), r2(&w, "2025-01-07 20:00:00")]);
    w.drop_batch(&spool, &[r1(&w, "2025-01-08 20:00:00"), r2(&w, "2025-01-08 20:00:00")]);
    let out = ingest_spool(&db, &w.keys(), &spool).await.unwrap();
    assert_eq!(out.len(), 3);
    assert_eq!(metric(&db, "case", "").await, 2);
    // The reporting delay uses the first version's receipt: 0 days for both.
    assert_eq!(metric(&db, "delay", "0").await, 2);
    check_rollups(&db).await;
}

#[tokio::test]
async fn latest_gxsj_wins_and_older_versions_do_not_come_back() {
    let (dir, spool) = setup();
    let db = fresh_db(dir.path()).await;
    let w = World::new();
    let v1 = outpatient(
        common(&w, ORG_A, "r1", "2025-01-06 10:00:00", "2025-01-06 20:00:00"),
        "c1",
        "2025-01-06 09:00:00",
        |o| o.patient.xb = 1,
    );
    let v2 = outpatient(
        common(&w, ORG_A, "r1", "2025-01-06 12:00:00", "2025-01-07 20:00:00"),
        "c1",
        "2025-01-06 09:00:00",
        |o| o.patient.xb = 2,
    );
    // v2 arrives first (out of order), then the older v1.
    w.drop_batch(&spool, &[hospital(ORG_A, "110101"), v2]);
    w.drop_batch(&spool, &[v1]);
    ingest_spool(&db, &w.keys(), &spool).await.unwrap();
    assert_eq!(metric(&db, "case_sex", "2").await, 1);
    assert_eq!(metric(&db, "case_sex", "1").await, 0);
    // Equal GXSJ: the later received wins.
    let v3 = outpatient(
        common(&w, ORG_A, "r1", "2025-01-06 12:00:00", "2025-01-08 20:00:00"),
        "c1",
        "2025-01-06 09:00:00",
        |o| o.patient.xb = 9,
    );
    w.drop_batch(&spool, &[v3]);
    ingest_spool(&db, &w.keys(), &spool).await.unwrap();
    assert_eq!(metric(&db, "case_sex", "9").await, 1);
    assert_eq!(metric(&db, "case", "").await, 1);
    check_rollups(&db).await;
}

#[tokio::test]
async fn deletes_are_tombstones() {
    let (dir, spool) = setup();
    let db = fresh_db(dir.path()).await;
    let w = World::new();
    let ins = outpatient(
        common(&w, ORG_A, "r1", "2025-01-06 10:00:00", "2025-01-06 20:00:00"),
        "c1",
        "2025-01-06 09:00:00",
        |_| {},
    );
    let del = delete(
        common(&w, ORG_A, "r1", "2025-01-07 10:00:00", "2025-01-07 20:00:00"),
        RecordType::Outpatient,
        Some("c1"),
    );
    w.drop_batch(&spool, &[hospital(ORG_A, "110101"), ins.clone()]);
    w.drop_batch(&spool, &[del]);
    ingest_spool(&db, &w.keys(), &spool).await.unwrap();
    assert_eq!(metric(&db, "case", "").await, 0);
    // A resend of the old version (earlier GXSJ, later receipt) stays deleted.
    let Entry::Record(flumon_shared::desens::outbound::OutRecord::Outpatient(mut o)) = ins else { panic!() };
    o.common.dmz_seq = w.next_dmz_seq();
    w.drop_batch(&spool, &[Entry::Record(flumon_shared::desens::outbound::OutRecord::Outpatient(o))]);
    ingest_spool(&db, &w.keys(), &spool).await.unwrap();
    assert_eq!(metric(&db, "case", "").await, 0);
    // A delete for a record never seen, then the record's older insert: it never appears.
    let del2 = delete(
        common(&w, ORG_A, "r9", "2025-01-08 10:00:00", "2025-01-08 20:00:00"),
        RecordType::Outpatient,
        Some("c9"),
    );
    let ins2 = outpatient(
        common(&w, ORG_A, "r9", "2025-01-07 10:00:00", "2025-01-08 21:00:00"),
        "c9",
        "2025-01-07 09:00:00",
        |_| {},
    );
    w.drop_batch(&spool, &[del2]);
    w.drop_batch(&spool, &[ins2]);
    ingest_spool(&db, &w.keys(), &spool).await.unwrap();
    assert_eq!(metric(&db, "case", "").await, 0);
    check_rollups(&db).await;
}

#[tokio::test]
async fn discharge_supersedes_outpatient_of_the_same_encounter() {
    let (dir, spool) = setup();
    let db = fresh_db(dir.path()).await;
    let w = World::new();
    w.drop_batch(
        &spool,
        &[
            hospital(ORG_A, "110101"),
            outpatient(
                common(&w, ORG_A, "r1", "2025-01-06 10:00:00", "2025-01-06 20:00:00"),
                "c1",
                "2025-01-06 09:00:00",
                |o| o.jzlx = 3,
            ),
            discharge(
                common(&w, ORG_A, "d1", "2025-01-10 10:00:00", "2025-01-10 20:00:00"),
                "c1",
                "2025-01-06 09:00:00",
                "2025-01-10 09:00:00",
                |_| {},
            ),
        ],
    );
    ingest_spool(&db, &w.keys(), &spool).await.unwrap();
    assert_eq!(metric(&db, "case", "").await, 1);
    assert_eq!(metric(&db, "case_enc", "discharge").await, 1);
    assert_eq!(metric(&db, "case_enc", "3").await, 0);
    assert_eq!(metric(&db, "stay", "").await, 1);
    check_rollups(&db).await;
}

#[tokio::test]
async fn quarantined_entries_are_skipped() {
    let (dir, spool) = setup();
    let db = fresh_db(dir.path()).await;
    let w = World::new();
    let p = w.drop_batch(
        &spool,
        &[
            hospital(ORG_A, "110101"),
            outpatient(
                common(&w, ORG_A, "r1", "2025-01-06 10:00:00", "2025-01-06 20:00:00"),
                "c1",
                "2025-01-06 09:00:00",
                |_| {},
            ),
            outpatient(
                common(&w, ORG_A, "r2", "2025-01-06 10:00:00", "2025-01-06 20:00:00"),
                "c2",
                "2025-01-06 09:00:00",
                |_| {},
            ),
        ],
    );
    let mut side = p.clone();
    side.set_extension("quarantine.json");
    std::fs::write(&side, r#"{"skip":[2]}"#).unwrap();
    let out = ingest_spool(&db, &w.keys(), &spool).await.unwrap();
    let FileOutcome::Ingested(st) = &out[0].1 else { panic!("{out:?}") };
    assert_eq!(st.skipped, 1);
    assert_eq!(metric(&db, "case", "").await, 1);
    assert!(spool.join("done").join(side.file_name().unwrap()).exists());
}

#[tokio::test]
async fn transfer_receivers_skip_sidecar_is_honoured() {
    // The sidecar exactly as `flumon-transfer recv` writes it (transfer/PROTOCOL.md):
    // NAME.fbatch.skip.json with batch, sm3, skip and reasons.
    let (dir, spool) = setup();
    let db = fresh_db(dir.path()).await;
    let w = World::new();
    let p = w.drop_batch(
        &spool,
        &[
            hospital(ORG_A, "110101"),
            outpatient(
                common(&w, ORG_A, "r1", "2025-01-06 10:00:00", "2025-01-06 20:00:00"),
                "c1",
                "2025-01-06 09:00:00",
                |_| {},
            ),
            outpatient(
                common(&w, ORG_A, "r2", "2025-01-06 10:00:00", "2025-01-06 20:00:00"),
                "c2",
                "2025-01-06 09:00:00",
                |_| {},
            ),
        ],
    );
    let name = p.file_name().unwrap().to_string_lossy().into_owned();
    let side = spool.join(format!("{name}.skip.json"));
    let body = serde_json::json!({
        "batch": name,
        "sm3": "00",
        "skip": [1],
        "reasons": [{"index": 1, "field": "ZLGC", "kind": "id_number", "clause": "shape", "offset": 3}],
    });
    std::fs::write(&side, body.to_string()).unwrap();
    let out = ingest_spool(&db, &w.keys(), &spool).await.unwrap();
    let FileOutcome::Ingested(st) = &out[0].1 else { panic!("{out:?}") };
    assert_eq!(st.skipped, 1);
    assert_eq!(metric(&db, "case", "").await, 1, "the quarantined record must not be counted");
}

#[tokio::test]
async fn forged_batches_are_rejected() {
    let (dir, spool) = setup();
    let db = fresh_db(dir.path()).await;
    let w = World::new();
    let p = w.drop_batch(&spool, &[hospital(ORG_A, "110101")]);
    let mut bytes = std::fs::read(&p).unwrap();
    let n = bytes.len();
    bytes[n - 70] ^= 1;
    std::fs::write(&p, bytes).unwrap();
    let out = ingest_file(&db, &w.keys(), &p).await.unwrap();
    assert!(matches!(out, FileOutcome::Rejected(_)));
    assert!(spool.join("rejected").join(p.file_name().unwrap()).exists());
    // Another key pair: rejected too.
    let other = World::new();
    let p = other.drop_batch(&spool, &[hospital(ORG_A, "110101")]);
    assert!(matches!(ingest_file(&db, &w.keys(), &p).await.unwrap(), FileOutcome::Rejected(_)));
}

#[tokio::test]
async fn crash_after_commit_before_move_and_rollback_before_commit() {
    let (dir, spool) = setup();
    let db = fresh_db(dir.path()).await;
    let w = World::new();
    let entries = vec![
        hospital(ORG_A, "110101"),
        outpatient(
            common(&w, ORG_A, "r1", "2025-01-06 10:00:00", "2025-01-06 20:00:00"),
            "c1",
            "2025-01-06 09:00:00",
            |_| {},
        ),
    ];
    let p = w.drop_batch(&spool, &entries);
    let bytes = std::fs::read(&p).unwrap();
    let (h, e) = open_batch::<Entry>(&bytes, &w.keys().link_key, &w.keys().dmz_pubkey, &w.keys().limits).unwrap();
    // "Crash" after the commit: the file is still in the spool.
    flumon_intranet::ingest::apply_batch(&db, &h, &e, &Default::default(), "x").await.unwrap();
    let out = ingest_spool(&db, &w.keys(), &spool).await.unwrap();
    assert_eq!(out[0].1, FileOutcome::AlreadyIngested);
    assert!(!p.exists());
    assert_eq!(metric(&db, "case", "").await, 1);
    // A transaction dropped before its commit leaves nothing.
    {
        let mut tx = db.pool.begin().await.unwrap();
        sqlx::query("DELETE FROM rollup").execute(&mut *tx).await.unwrap();
        drop(tx);
    }
    assert_eq!(metric(&db, "case", "").await, 1);
    check_rollups(&db).await;
}

#[tokio::test]
async fn region_rollups_follow_cases_visits_and_a_hospital_that_moves() {
    let (dir, spool) = setup();
    let db = fresh_db(dir.path()).await;
    let w = World::new();
    // A case on a day without §3.8 visits, then one on a day with them.
    let op = |key: &str, day: &str| {
        outpatient(
            common(&w, ORG_A, key, &format!("{day} 10:00:00"), &format!("{day} 20:00:00")),
            key,
            &format!("{day} 09:00:00"),
            |_| {},
        )
    };
    w.drop_batch(&spool, &[hospital(ORG_A, "110101"), op("k1", "2025-01-06"), op("k2", "2025-01-07")]);
    ingest_spool(&db, &w.keys(), &spool).await.unwrap();
    check_rollups(&db).await;
    assert_eq!(region_metric(&db, "000000", "case").await, 2);
    assert_eq!(region_metric(&db, "110000", "case").await, 2);
    assert_eq!(region_metric(&db, "110100", "case").await, 2);
    assert_eq!(region_metric(&db, "110101", "case").await, 2);
    assert_eq!(region_metric(&db, "000000", "oe_num").await, 0);
    w.drop_batch(
        &spool,
        &[visits(common(&w, ORG_A, "v7", "2025-01-07 23:00:00", "2025-01-08 02:00:00"), "2025-01-07", 100, 20)],
    );
    ingest_spool(&db, &w.keys(), &spool).await.unwrap();
    check_rollups(&db).await;
    let oe = region_metric(&db, "000000", "oe_num").await;
    assert_eq!(metric(&db, "oe_case", "").await, 2);
    assert_eq!(oe, 1, "only the day with visits counts");
    assert_eq!(region_metric(&db, "110000", "oe_num").await, oe);
    // The hospital is re-registered in 深圳 南山: its figures move with it, 全国 unchanged.
    w.drop_batch(&spool, &[hospital(ORG_A, "440305")]);
    ingest_spool(&db, &w.keys(), &spool).await.unwrap();
    check_rollups(&db).await;
    assert_eq!(region_metric(&db, "110000", "case").await, 0);
    assert_eq!(region_metric(&db, "440000", "case").await, 2);
    assert_eq!(region_metric(&db, "440300", "oe_num").await, oe);
    assert_eq!(region_metric(&db, "000000", "case").await, 2);
    // A delete takes the case out everywhere.
    w.drop_batch(
        &spool,
        &[delete(
            common(&w, ORG_A, "k1", "2025-01-09 10:00:00", "2025-01-09 20:00:00"),
            RecordType::Outpatient,
            Some("k1"),
        )],
    );
    ingest_spool(&db, &w.keys(), &spool).await.unwrap();
    check_rollups(&db).await;
    assert_eq!(region_metric(&db, "440305", "case").await, 1);
}

#[tokio::test]
async fn contributions_of_an_older_schema_are_packed_at_open() {
    let (dir, spool) = setup();
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    let db = Db::open(&url).await.unwrap();
    let w = World::new();
    w.drop_batch(
        &spool,
        &[
            hospital(ORG_A, "110101"),
            outpatient(
                common(&w, ORG_A, "r1", "2025-01-06 10:00:00", "2025-01-06 20:00:00"),
                "c1",
                "2025-01-06 09:00:00",
                |_| {},
            ),
        ],
    );
    ingest_spool(&db, &w.keys(), &spool).await.unwrap();
    // Rewrite the case's contribution as schema 3 kept it: one row per cell.
    let packed: String = sqlx::query_scalar("SELECT contrib FROM unit_contrib_packed WHERE unit = 'c:c1'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let cells: Vec<(i64, String, String, i64)> = serde_json::from_str(&packed).unwrap();
    assert!(cells.iter().any(|(_, m, _, v)| m == "case" && *v == 1), "{packed}");
    sqlx::query("DELETE FROM unit_contrib_packed").execute(&db.pool).await.unwrap();
    for (day, metric, dim, v) in &cells {
        sqlx::query(
            "INSERT INTO unit_contrib (org, unit, day, metric, dim, value) VALUES ($1, 'c:c1', $2, $3, $4, $5)",
        )
        .bind(ORG_A)
        .bind(day)
        .bind(metric)
        .bind(dim)
        .bind(v)
        .execute(&db.pool)
        .await
        .unwrap();
    }
    db.pool.close().await;
    let db = Db::open(&url).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM unit_contrib").fetch_one(&db.pool).await.unwrap();
    assert_eq!(n, 0);
    let again: String = sqlx::query_scalar("SELECT contrib FROM unit_contrib_packed WHERE unit = 'c:c1'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(again, packed);
    // A later deletion still removes exactly the old contribution.
    w.drop_batch(
        &spool,
        &[delete(
            common(&w, ORG_A, "r1", "2025-01-07 10:00:00", "2025-01-07 20:00:00"),
            RecordType::Outpatient,
            Some("c1"),
        )],
    );
    ingest_spool(&db, &w.keys(), &spool).await.unwrap();
    assert_eq!(metric(&db, "case", "").await, 0);
    check_rollups(&db).await;
}
