//! Every indicator on a small hand-computed fixture, national and below
//! national (small cells), by day / week / season, region tree, drug
//! reserve, reporting quality per hospital.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::*;
use flumon_intranet::indicators::views::{SERIES, drug_reserve, quality, series, tree};
use flumon_intranet::indicators::{Account, By, Cell, Period, Role, Scope, report, scoped};
use flumon_intranet::timeconv::day_of;
use serde_json::json;

fn analyst(scope: &str) -> Account {
    Account { name: "a".into(), role: Role::Analyst, scope: Some(scope.into()) }
}

fn week() -> Period {
    Period::parse("2025-01-06", "2025-01-12", By::Week).unwrap()
}

#[tokio::test]
async fn every_indicator_nationally() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path()).await;
    let s = scoped(&analyst("000000"), &Scope::National).unwrap();
    let r = report(&db, &s, &week()).await.unwrap();
    assert_eq!(r.periods.len(), 1);
    let t = serde_json::to_value(&r.periods[0]).unwrap();
    assert_eq!(r.periods[0].period, "2025-W02");
    assert_eq!(t["cases"]["total"], json!(5));
    assert_eq!(
        t["cases"]["by_encounter"]["parts"],
        json!({"outpatient": 2, "emergency": 1, "inpatient": 1, "discharged": 1})
    );
    assert_eq!(t["cases"]["by_age"]["parts"], json!({"0-4": 1, "5-14": 1, "25-59": 1, "60+": 2}));
    assert_eq!(t["cases"]["by_sex"]["parts"], json!({"1": 3, "2": 2}));
    assert_eq!(t["cases"]["by_basis"]["parts"], json!({"clinical": 5}));
    // 门急诊流感占比: c1 and c2 over 200 visits (c6's hospital-day has no §3.8 record)
    assert_eq!(t["oe_ratio"], json!({"num": 2, "den": 200, "value": 0.01}));
    assert_eq!(t["admissions"], json!(2));
    assert_eq!(t["tested_rate"]["value"], json!(0.4));
    assert_eq!(t["positivity"]["value"], json!(0.5));
    assert_eq!(t["positivity_by_method"]["1"]["value"], json!(1.0));
    assert_eq!(t["positivity_by_method"]["2"]["value"], json!(0.0));
    assert_eq!(t["subtypes"], json!({"total": 1, "parts": {"A(H1N1)pdm09": 1}}));
    assert_eq!(t["antiviral_rate"]["value"], json!(0.4));
    assert_eq!(t["antiviral_by_drug"]["奥司他韦"]["num"], json!(1));
    assert_eq!(t["antiviral_by_class"]["NAI"]["num"], json!(1));
    assert_eq!(t["within_48h"], json!({"num": 1, "den": 2, "value": 0.5}));
    assert_eq!(t["within_48h_severe"]["value"], json!(null));
    assert_eq!(t["empiric_orders"], json!(1));
    assert_eq!(t["stays"], json!(2));
    assert_eq!(t["severe"]["value"], json!(0.5));
    assert_eq!(t["critical"]["value"], json!(0.5));
    assert_eq!(t["icu"]["value"], json!(1.0));
    assert_eq!(t["ventilation"]["value"], json!(0.5));
    assert_eq!(t["ecmo"]["value"], json!(0.0));
    assert_eq!(t["deaths"], json!(1));
    assert_eq!(t["inpatient_fatality"]["value"], json!(1.0));
    assert_eq!(t["death_scan_timely"]["value"], json!(null));
    // (100 + 100 + 200 + 100) 元 / 4 §3.1 cases; 5000 元 / 1 §3.2 case; 3 days; 500 / 5000
    assert_eq!(t["cost_outpatient"]["value"], json!(125.0));
    assert_eq!(t["cost_inpatient"]["value"], json!(5000.0));
    assert_eq!(t["length_of_stay"]["value"], json!(3.0));
    assert_eq!(t["antibiotic_cost_share"]["value"], json!(0.1));
    // 2 timely hospital-days of 2 hospitals × 7 days; 2 of 10 rows rejected; c6 late
    assert_eq!(t["quality"]["timeliness"], json!({"num": 2, "den": 14, "value": 2.0 / 14.0}));
    assert_eq!(t["quality"]["error_rate"]["value"], json!(0.2));
    assert_eq!(t["quality"]["rejected_by_rule"], json!({"E101": 2}));
    assert_eq!(t["quality"]["late"], json!(1));
    assert_eq!(t["quality"]["late_by_type"], json!({"outpatient": 1}));
    let c = t["quality"]["completeness"]["value"].as_f64().unwrap();
    assert!(c > 0.0 && c < 1.0);
    assert_eq!(r.total, {
        let mut x = r.periods[0].clone();
        x.period = "total".into();
        x
    });

    // By day: c1 on 01-06; by season: everything in 2024/2025.
    let by_day = report(&db, &s, &Period::parse("2025-01-06", "2025-01-12", By::Day).unwrap()).await.unwrap();
    assert_eq!(by_day.periods.len(), 7);
    assert_eq!(by_day.periods[0].cases.total, Cell::Value(1));
    assert_eq!(by_day.periods[4].deaths, Cell::Value(1), "the §3.2 death falls on CYSJ 01-10");
    let season = report(&db, &s, &Period::parse("2024-09-30", "2025-09-28", By::Season).unwrap()).await.unwrap();
    assert_eq!(season.periods.len(), 1);
    assert_eq!(season.periods[0].period, "2024/2025");
    assert_eq!(season.periods[0].cases.total, Cell::Value(5));
    // Series.
    let pts = series(&db, &s, &Period::parse("2025-01-06", "2025-01-08", By::Day).unwrap(), "cases").await.unwrap();
    assert_eq!(pts.iter().map(|p| p.value.clone()).collect::<Vec<_>>(), [json!(1), json!(2), json!(2)]);
}

#[tokio::test]
async fn scopes_below_national_and_small_cells() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path()).await;
    // A national analyst reading Beijing sees 4 cases; a Beijing analyst sees <5.
    let bj = Scope::region("110000").unwrap();
    let national = report(&db, &scoped(&analyst("000000"), &bj).unwrap(), &week()).await.unwrap();
    assert_eq!(national.total.cases.total, Cell::Value(4));
    let own = report(&db, &scoped(&analyst("110000"), &bj).unwrap(), &week()).await.unwrap();
    let t = serde_json::to_value(&own.total).unwrap();
    assert_eq!(t["cases"]["total"], json!("<5"));
    assert_eq!(t["oe_ratio"]["value"], json!(null));
    assert_eq!(t["oe_ratio"]["den"], json!(200));
    assert_eq!(t["deaths"], json!("<5"));
    // The city and the county of hospital A, and hospital A itself, give the same 4.
    for code in ["110100", "110101"] {
        let sc = scoped(&analyst("000000"), &Scope::region(code).unwrap()).unwrap();
        assert_eq!(report(&db, &sc, &week()).await.unwrap().total.cases.total, Cell::Value(4), "{code}");
    }
    let ha = Scope::resolve(&db, ORG_A).await.unwrap();
    let sc = scoped(&analyst("000000"), &ha).unwrap();
    assert_eq!(report(&db, &sc, &week()).await.unwrap().total.cases.total, Cell::Value(4));
    // Shenzhen: 1 case, at B.
    let sz = Scope::region("440300").unwrap();
    assert_eq!(
        report(&db, &scoped(&analyst("000000"), &sz).unwrap(), &week()).await.unwrap().total.cases.total,
        Cell::Value(1)
    );
    // A Beijing analyst may not read Shenzhen, nor hospital B, nor the nation.
    let hb = Scope::resolve(&db, ORG_B).await.unwrap();
    assert!(scoped(&analyst("110000"), &sz).is_err());
    assert!(scoped(&analyst("110000"), &hb).is_err());
    assert!(scoped(&analyst("110000"), &Scope::National).is_err());
}

/// `series` reads only the metrics its table lists; each series must still equal
/// the one taken from the full report, for every scope (small cells below the
/// nation) and bucket size. A metric missing from the table shows up here as a
/// zero or a null where the report has a value.
#[tokio::test]
async fn every_series_equals_the_full_report() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path()).await;
    let ha = Scope::resolve(&db, ORG_A).await.unwrap();
    let scopes = [
        scoped(&analyst("000000"), &Scope::National).unwrap(),
        scoped(&analyst("110000"), &Scope::region("110000").unwrap()).unwrap(),
        scoped(&analyst("000000"), &Scope::region("110101").unwrap()).unwrap(),
        scoped(&analyst("000000"), &ha).unwrap(),
    ];
    let periods = [week(), Period::parse("2025-01-04", "2025-01-14", By::Day).unwrap()];
    let mut non_null = std::collections::BTreeSet::new();
    for s in &scopes {
        for p in &periods {
            let full = report(&db, s, p).await.unwrap();
            for ser in SERIES {
                let pts = series(&db, s, p, ser.name).await.unwrap();
                assert_eq!(pts.len(), full.periods.len(), "{}", ser.name);
                for (pt, ind) in pts.iter().zip(&full.periods) {
                    let want = serde_json::to_value(ind).unwrap().pointer(ser.pointer).cloned().unwrap();
                    assert_eq!(pt.value, want, "{} {} {}", ser.name, s.scope().code(), pt.period);
                    assert_eq!(pt.period, ind.period);
                    if !want.is_null() && want != json!(0) {
                        non_null.insert(ser.name);
                    }
                }
            }
        }
    }
    // The fixture gives every series a value somewhere, so that the comparison means something.
    let all: std::collections::BTreeSet<&str> = SERIES.iter().map(|x| x.name).collect();
    assert_eq!(non_null, all, "series without any value in the fixture");
    // An unknown series is a clear error.
    assert!(series(&db, &scopes[0], &week(), "nope").await.is_err());
}

#[tokio::test]
async fn region_tree_reserve_and_quality() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path()).await;
    let s = scoped(&analyst("000000"), &Scope::National).unwrap();
    let t = tree(&db, &s, &week()).await.unwrap();
    assert_eq!(t.node.cases, Cell::Value(5));
    assert_eq!(t.children.len(), 34);
    let by: std::collections::BTreeMap<_, _> = t.children.iter().map(|n| (n.code.as_str(), n.cases)).collect();
    assert_eq!(by["110000"], Cell::Value(4));
    assert_eq!(by["440000"], Cell::Value(1));
    // Guangdong's analyst: its cities, Shenzhen's 1 case as <5; the total (1) is <5 too.
    let gd = scoped(&analyst("440000"), &Scope::region("440000").unwrap()).unwrap();
    let t = tree(&db, &gd, &week()).await.unwrap();
    assert_eq!(t.node.cases, Cell::Small);
    assert_eq!(t.children.iter().find(|n| n.code == "440300").unwrap().cases, Cell::Small);
    // A county's children are its hospitals.
    let county = scoped(&analyst("000000"), &Scope::region("110101").unwrap()).unwrap();
    let t = tree(&db, &county, &week()).await.unwrap();
    assert_eq!(t.children.len(), 1);
    assert_eq!(t.children[0].code, ORG_A);
    assert_eq!(t.children[0].level, "hospital");
    // Every child read in bulk equals the child read on its own (national account: no suppression).
    for code in ["000000", "110000", "110100", "440000", "440300", "110101"] {
        let parent = scoped(&analyst("000000"), &Scope::resolve(&db, code).await.unwrap()).unwrap();
        for child in tree(&db, &parent, &week()).await.unwrap().children {
            let c = scoped(&analyst("000000"), &Scope::resolve(&db, &child.code).await.unwrap()).unwrap();
            assert_eq!(tree(&db, &c, &week()).await.unwrap().node, child, "{code} → {}", child.code);
        }
    }

    // Drug reserve on 01-10: A's oseltamivir: stock 30 + 20 on 01-08, use (10 + 20 + 5) / 7 = 5 a day → 10 days;
    // B's baloxavir: 6 in stock, 1 a day → 6 days: alert.
    let r = drug_reserve(&db, &s, day_of(d("2025-01-10"))).await.unwrap();
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["by_drug"]["奥司他韦"], json!({"kcl": 50, "mean_use": 5.0, "days": 10.0, "alert": false}));
    assert_eq!(v["by_drug"]["玛巴洛沙韦"], json!({"kcl": 6, "mean_use": 1.0, "days": 6.0, "alert": true}));
    assert_eq!(r.alerts.len(), 1);
    assert_eq!(r.alerts[0].hospital, ORG_B);
    assert_eq!(r.alerts[0].tjrq, "2025-01-08");
    // On 01-07, A's latest oseltamivir row is 01-06: 100 in stock, 10 / 7 a day.
    let r = drug_reserve(&db, &s, day_of(d("2025-01-07"))).await.unwrap();
    assert_eq!(r.hospitals.len(), 1);
    assert_eq!(r.hospitals[0].reserve.days, Some(70.0));
    // Months later nothing newer was reported: the old reports are read one by one (outside the
    // page's one-query recent window) and give the same figures as on the day.
    let late = drug_reserve(&db, &s, day_of(d("2025-04-10"))).await.unwrap();
    let v_late = serde_json::to_value(&late).unwrap();
    assert_eq!(v_late["by_drug"], v["by_drug"], "old reports outside the recent window");
    assert_eq!(late.alerts.len(), 1);

    // Reporting quality per hospital.
    let q = quality(&db, &s, &week()).await.unwrap();
    assert_eq!(q.len(), 2);
    let a = q.iter().find(|h| h.hospital == ORG_A).unwrap();
    assert_eq!(a.quality.timeliness.value, Some(2.0 / 7.0));
    assert_eq!(a.quality.error_rate.value, Some(0.2));
    let b = q.iter().find(|h| h.hospital == ORG_B).unwrap();
    assert_eq!(b.quality.timeliness.value, Some(0.0));
    assert_eq!(b.quality.late, 1);
}
