//! Ingest while analysts are logged in: batches are applied while other tasks
//! keep writing through the web's own write paths (new sessions, the session
//! idle timer `UPDATE sessions SET last_seen`, which a request writes when the
//! stored value is over 60 s old: each writer moves its own clock 61 s per
//! request so every request writes). On SQLite a
//! deferred ingest transaction (read first, write later) that another writer
//! overtakes fails with "database is locked" (SQLITE_BUSY_SNAPSHOT, which the
//! busy timeout does not retry); every pass here must succeed and every batch
//! must be recorded. Runs on PostgreSQL too when FLUMON_TEST_PG_URL is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::*;
use flumon_intranet::auth::Clock;
use flumon_intranet::auth::accounts::{self, authenticate, start_session};
use flumon_intranet::indicators::Role;
use flumon_intranet::ingest::{FileOutcome, ingest_spool};

const BATCHES: usize = 30;
const RECORDS_PER_BATCH: usize = 20;
const WRITERS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ingest_passes_do_not_fail_while_sessions_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("inbound");
    std::fs::create_dir_all(&spool).unwrap();
    let db = fresh_db(dir.path()).await;
    let clock = Clock::default();
    accounts::create_user(&db, &clock, "bj1", Role::Analyst, Some("110000")).await.unwrap();

    // The analysts: each request refreshes the session (an UPDATE), now and then a new login (an INSERT).
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for _ in 0..WRITERS {
        let (db, stop, writes) = (db.clone(), stop.clone(), writes.clone());
        // Its own clock: another writer's advances cannot age this one's session.
        let clock = Clock::default();
        writers.push(tokio::spawn(async move {
            let mut token = start_session(&db, &clock, "bj1").await?.0;
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                clock.advance(accounts::LAST_SEEN_REFRESH_SECONDS + 1);
                if n % 8 == 7 {
                    token = start_session(&db, &clock, "bj1").await?.0;
                } else if authenticate(&db, &clock, &token).await?.is_none() {
                    panic!("session vanished");
                }
                n += 1;
                writes.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<u64, flumon_intranet::Error>(n)
        }));
    }
    // Let the writers get going before the first batch.
    while writes.load(Ordering::Relaxed) < 20 {
        tokio::task::yield_now().await;
    }

    let w = World::new();
    let mut failures = Vec::new();
    let mut ingested = 0;
    for b in 0..BATCHES {
        let mut entries = vec![hospital(ORG_A, "110101")];
        for r in 0..RECORDS_PER_BATCH {
            entries.push(outpatient(
                common(&w, ORG_A, &format!("r{b}_{r}"), "2025-01-06 10:00:00", "2025-01-06 20:00:00"),
                &format!("c{b}_{r}"),
                "2025-01-06 09:00:00",
                |_| {},
            ));
        }
        w.drop_batch(&spool, &entries);
        match ingest_spool(&db, &w.keys(), &spool).await {
            Ok(out) => {
                for (name, o) in out {
                    assert!(matches!(o, FileOutcome::Ingested(_)), "{name}: {o:?}");
                    ingested += 1;
                }
            }
            Err(e) => failures.push(format!("batch {b}: {e}")),
        }
    }
    let during = writes.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    for t in writers {
        t.await.unwrap().expect("session writes failed");
    }

    assert!(failures.is_empty(), "{} of {BATCHES} ingest passes failed: {failures:#?}", failures.len());
    assert_eq!(ingested, BATCHES);
    let recorded: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM batches").fetch_one(&db.pool).await.unwrap();
    assert_eq!(recorded, BATCHES as i64);
    let records: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM records").fetch_one(&db.pool).await.unwrap();
    assert_eq!(records, (BATCHES * RECORDS_PER_BATCH) as i64);
    assert!(during > BATCHES as u64, "the session writers barely ran ({during} writes)");
}
