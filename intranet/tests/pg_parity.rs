//! SQLite vs PostgreSQL on the same batches: the same rollups and the same
//! report. Runs when FLUMON_TEST_PG_URL is set (skipped otherwise).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::*;
use flumon_intranet::db::Db;
use flumon_intranet::indicators::{By, Period};
use flumon_intranet::ingest::apply::stored_rollups;

async fn both(dir: &std::path::Path) -> Option<(Db, Db)> {
    std::env::var("FLUMON_TEST_PG_URL").ok()?;
    let pg = fixture(&dir.join("pg")).await; // fresh_db picks PostgreSQL
    let sqlite_dir = dir.join("sqlite");
    std::fs::create_dir_all(&sqlite_dir).unwrap();
    Some((fixture_sqlite(&sqlite_dir).await, pg))
}

#[tokio::test]
async fn sqlite_and_postgres_agree() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("pg")).unwrap();
    let Some((sqlite, pg)) = both(dir.path()).await else {
        eprintln!("FLUMON_TEST_PG_URL not set: PostgreSQL parity skipped");
        return;
    };
    assert_eq!(stored_rollups(&sqlite).await.unwrap(), stored_rollups(&pg).await.unwrap());
    for (scope, by) in [("000000", By::Week), ("110000", By::Day), (ORG_B, By::Season)] {
        let p = Period::parse("2025-01-06", "2025-01-12", by).unwrap();
        let a = flumon_intranet::report::build(&sqlite, scope, &p).await.unwrap();
        let b = flumon_intranet::report::build(&pg, scope, &p).await.unwrap();
        assert_eq!(serde_json::to_value(&a).unwrap(), serde_json::to_value(&b).unwrap(), "{scope}");
    }
}
