//! MEM levels per scope: the weekly 门急诊流感占比 (%) series from the
//! rollups, seasons as columns, the model equal to `mem` on the same table,
//! the current season's weeks classified.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::*;
use flumon_intranet::db::Db;
use flumon_intranet::indicators::{Account, Role, Scope, scoped};
use flumon_intranet::levels::{Series, levels};
use flumon_intranet::mem::{self, Level, MemData, MemOptions, SeasonSeries};
use flumon_intranet::timeconv::{day_of, iso_monday};

/// Per mille of visits that are influenza cases in week `i` (0-based from week 40) of season `y`.
fn curve(y: i32, i: usize) -> i64 {
    let peak = 15.0 + (y % 3) as f64 * 2.0;
    let x = i as f64 - peak;
    (20.0 + 400.0 * (-x * x / 18.0).exp() * (1.0 + 0.1 * (y % 2) as f64)).round() as i64
}

async fn put(db: &Db, org: &str, day: i64, metric: &str, v: i64) {
    sqlx::query("INSERT INTO rollup (org, day, metric, dim, value) VALUES ($1, $2, $3, '', $4)")
        .bind(org)
        .bind(day)
        .bind(metric)
        .bind(v)
        .execute(&db.pool)
        .await
        .unwrap();
}

/// The region rollups (`rollup_region`) that ingest keeps, rebuilt from the hand-written `rollup` rows.
async fn sync_region_rollups(db: &Db) {
    sqlx::query("DELETE FROM rollup_region").execute(&db.pool).await.unwrap();
    for ((region, day, metric, dim), v) in flumon_intranet::ingest::regional::recomputed(db).await.unwrap() {
        sqlx::query("INSERT INTO rollup_region (region, day, metric, dim, value) VALUES ($1, $2, $3, $4, $5)")
            .bind(region)
            .bind(day)
            .bind(metric)
            .bind(dim)
            .bind(v)
            .execute(&db.pool)
            .await
            .unwrap();
    }
}

fn weeks_of(y: i32) -> Vec<(u32, i64)> {
    let mut v: Vec<(u32, i64)> = (40..=53).filter_map(|w| iso_monday(y, w).map(|m| (w, day_of(m)))).collect();
    v.extend((1..=39).filter_map(|w| iso_monday(y + 1, w).map(|m| (w, day_of(m)))));
    v
}

#[tokio::test]
async fn mem_levels_of_a_scope() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_db(dir.path()).await;
    sqlx::query(
        "INSERT INTO hospitals (code, name, level, region, approved, active) VALUES ($1, 'A', 3, '110101', 0, 1)",
    )
    .bind(ORG_A)
    .execute(&db.pool)
    .await
    .unwrap();
    // Five past seasons 2019/2020 … 2023/2024, and the current 2024/2025 up to 2025-02-16.
    let asof = day_of(d("2025-02-16"));
    for y in 2019..=2024 {
        for (i, (_, monday)) in weeks_of(y).into_iter().enumerate() {
            if monday > asof {
                break;
            }
            // Split over two days so that weekly sums matter; 1000 visits a week.
            let v = curve(y, i);
            put(&db, ORG_A, monday, "oe_case", v / 2).await;
            put(&db, ORG_A, monday + 1, "oe_case", v - v / 2).await;
            for day in [monday, monday + 1] {
                put(&db, ORG_A, day, "visits_day", 1).await;
                put(&db, ORG_A, day, "visits_rc", 500).await;
                put(&db, ORG_A, day, "case", 1).await;
            }
        }
    }
    sync_region_rollups(&db).await;
    let analyst = Account { name: "a".into(), role: Role::Analyst, scope: Some("110000".into()) };
    let s = scoped(&analyst, &Scope::region("110000").unwrap()).unwrap();
    let l = levels(&db, &s, asof, Series::OeRatio, 10).await.unwrap();
    assert_eq!(l.current_season, "2024/2025");
    assert_eq!(l.seasons.keys().collect::<Vec<_>>(), ["2019/2020", "2020/2021", "2021/2022", "2022/2023", "2023/2024"]);
    // Rows 40…52, 53 (2020/2021 has ISO week 53), 1…39.
    assert_eq!(l.week_labels.len(), 53);
    assert_eq!(l.week_labels[13], "53");
    assert_eq!(l.seasons["2019/2020"][0], Some(curve(2019, 0) as f64 / 10.0));
    assert_eq!(l.seasons["2019/2020"][13], None, "no ISO week 53 in 2019");
    // The same table through mem directly.
    let data = MemData {
        weeks: l.week_labels.clone(),
        seasons: (2019..=2023)
            .map(|y| {
                let w = weeks_of(y);
                let values = l
                    .week_labels
                    .iter()
                    .map(|lab| {
                        let n: u32 = lab.parse().unwrap();
                        w.iter().position(|(x, _)| *x == n).map(|i| curve(y, i) as f64 / 10.0)
                    })
                    .collect();
                SeasonSeries { name: format!("{}/{}", y, y + 1), values }
            })
            .collect(),
    };
    let model = mem::memmodel(&data, &MemOptions::default());
    assert_eq!(l.model, model);
    let et = model.epidemic_threshold.unwrap();
    assert!(et > 2.0 && et < 10.0, "{et}");
    assert!(!l.model.interpolated.is_empty(), "week 53 of the other seasons is interpolated and listed");
    // The current season: weeks 40 … 2025-W07, each classified by the thresholds.
    assert_eq!(l.current.first().unwrap().week, "2024-W40");
    assert_eq!(l.current.last().unwrap().week, "2025-W07");
    assert!(l.current.iter().all(|w| w.complete));
    for (i, w) in l.current.iter().enumerate() {
        let v = curve(2024, i) as f64 / 10.0;
        assert_eq!(w.value, Some(v));
        assert_eq!(w.level, model.level_of(v));
    }
    assert_eq!(l.current[0].level, Some(Level::Baseline));
    assert!(l.current.iter().any(|w| matches!(w.level, Some(Level::High | Level::VeryHigh | Level::Medium))));
    // Weekly cases instead: 2 a week.
    let c = levels(&db, &s, asof, Series::Cases, 10).await.unwrap();
    assert_eq!(c.current[0].value, Some(2.0));
    // Another region has no data: no thresholds, and a reason.
    let other = Account { name: "b".into(), role: Role::Analyst, scope: Some("000000".into()) };
    let s2 = scoped(&other, &Scope::region("440000").unwrap()).unwrap();
    let e = levels(&db, &s2, asof, Series::OeRatio, 10).await.unwrap();
    assert!(e.model.epidemic_threshold.is_none());
    assert!(e.model.reason.is_some());
    assert!(e.current.iter().all(|w| w.level.is_none()));
}
