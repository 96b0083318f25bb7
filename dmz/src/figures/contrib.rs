//! The contribution of one unit to the hospital's counters, computed from
//! the live facts of that unit alone (INDICATORS.md definitions).
//!
//! ```text
//!  live facts of a unit ─▶ contribution: counter name → value
//!    Case: case:{day}:{type} · case_lab · treated · treated_fbrq · treated48 · sev_* · stay · severe
//!          critical · icu · vent · ecmo · death · scan_due · lab_* · sub:* · order:* · empiric
//!    Drug: stock_kcl · stock_use7 · stock_day      Own (visits): vis_mz · vis_jz · vis_day
//!    every record: live:{type}, late:{ywrq} (first receipt > 7 days after YWRQ)
//!  stored contribution ─▶ diff ─▶ counters (incremental) · Σ over units (recompute)
//! ```
//! Counter names hold dates, codes and drug names only.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate, NaiveDateTime};

use super::facts::{Facts, Kind};

/// Counter name → value.
pub type Counters = BTreeMap<String, i64>;

fn add(c: &mut Counters, name: String, by: i64) {
    if by != 0 {
        *c.entry(name).or_insert(0) += by;
    }
}

fn d(x: NaiveDate) -> String {
    x.format("%Y-%m-%d").to_string()
}

/// The 型别构成 group of a positive result (INDICATORS, 病原学).
pub fn subtype(bdlx: Option<u8>, yx: Option<u8>) -> &'static str {
    match (bdlx, yx) {
        (_, Some(11)) => "A(H1N1)pdm09",
        (_, Some(12)) => "A(H3N2)",
        (_, Some(13..=15)) => "甲型其他",
        (Some(1), None | Some(19)) => "甲型未分亚型",
        (_, Some(21)) => "B/Victoria",
        (_, Some(22)) => "B/Yamagata",
        (Some(2), None | Some(29)) => "乙型未分系",
        (Some(3), _) => "甲乙混合",
        _ => "型别不详",
    }
}

/// Name of a record type in counters (`live:{ty}`).
pub fn type_of(k: &Kind) -> &'static str {
    match k {
        Kind::Outpatient { .. } => "outpatient",
        Kind::Discharge { .. } => "discharge",
        Kind::Death { .. } => "death",
        Kind::Medication { .. } => "medication",
        Kind::Lab { .. } => "lab",
        Kind::Summary => "summary",
        Kind::Stock { .. } => "stock",
        Kind::Visits { .. } => "visits",
        Kind::Scan => "scan",
    }
}

/// The case view of a unit: the §3.2 record supersedes the §3.1 one.
struct Case {
    date: NaiveDate,
    enc: &'static str,
    fbrq: Option<NaiveDate>,
    lcfx: u8,
    kbd: u8,
    kbdsj: Option<NaiveDateTime>,
    stay: bool,
    icu: bool,
    vent: bool,
    ecmo: bool,
}

fn case_of(live: &[&Facts]) -> Option<Case> {
    let mut out = None;
    let mut dis = None;
    for f in live {
        match &f.kind {
            Some(Kind::Discharge { rysj, fbrq, lcfx, kbd, kbdsj, icu, vent, ecmo, .. }) => {
                dis = Some(Case {
                    date: rysj.date(),
                    enc: "出院",
                    fbrq: *fbrq,
                    lcfx: *lcfx,
                    kbd: *kbd,
                    kbdsj: *kbdsj,
                    stay: true,
                    icu: *icu,
                    vent: *vent,
                    ecmo: *ecmo,
                });
            }
            Some(Kind::Outpatient { jzlx, jzsj, fbrq, lcfx, kbd, kbdsj, icu, vent, ecmo, .. }) => {
                out = Some(Case {
                    date: jzsj.date(),
                    enc: match jzlx {
                        1 => "门诊",
                        2 => "急诊",
                        _ => "在院",
                    },
                    fbrq: *fbrq,
                    lcfx: *lcfx,
                    kbd: *kbd,
                    kbdsj: *kbdsj,
                    stay: *jzlx == 3,
                    icu: *icu,
                    vent: *vent,
                    ecmo: *ecmo,
                });
            }
            _ => {}
        }
    }
    dis.or(out)
}

/// The death date of a case unit: SWSJ of §3.4, else CYSJ of a §3.2 with
/// LYFS 5, else JZSJ of a §3.1 with ZGZT 3.
fn death_of(live: &[&Facts]) -> Option<(NaiveDate, Option<NaiveDate>)> {
    let mut by_death = None;
    let mut by_dis = None;
    let mut by_out = None;
    for f in live {
        match &f.kind {
            Some(Kind::Death { swsj, gdrq }) => by_death = Some((swsj.date(), *gdrq)),
            Some(Kind::Discharge { cysj, lyfs: 5, .. }) => by_dis = Some(cysj.date()),
            Some(Kind::Outpatient { jzsj, zgzt: 3, .. }) => by_out = Some(jzsj.date()),
            _ => {}
        }
    }
    by_death.or(by_dis.or(by_out).map(|x| (x, None)))
}

/// Per-record counters every live record gives.
fn per_record(c: &mut Counters, f: &Facts, kind: &Kind) {
    add(c, format!("live:{}", type_of(kind)), 1);
    if let Some(y) = f.ywrq
        && f.first_seen - y > Duration::days(7)
    {
        add(c, format!("late:{}", d(y)), 1);
    }
}

/// The contribution of a unit, from the live facts that feed it.
pub fn contribution(live: &[&Facts]) -> Counters {
    // a canonical order, so that "the latest" never depends on storage order
    let mut sorted = live.to_vec();
    sorted.sort_by_cached_key(|f| (f.gxsj, format!("{:?}", f.kind)));
    let live = sorted.as_slice();
    let mut c = Counters::new();
    let mut stock: BTreeMap<&str, Vec<(NaiveDate, u64, u64)>> = BTreeMap::new();
    for f in live {
        let Some(kind) = &f.kind else { continue };
        if matches!(kind, Kind::Scan) {
            continue; // counted with its case's death (scan_done)
        }
        per_record(&mut c, f, kind);
        match kind {
            Kind::Lab { cysj, jyff, dxjg, bdlx, yx } => {
                let day = d(cysj.date());
                add(&mut c, format!("lab_n:{day}"), 1);
                if *dxjg != 4 {
                    add(&mut c, format!("lab_valid:{day}:{jyff}"), 1);
                }
                if matches!(dxjg, 1 | 3) {
                    add(&mut c, format!("lab_pos:{day}:{jyff}"), 1);
                    add(&mut c, format!("sub:{day}:{}", subtype(*bdlx, *yx)), 1);
                }
            }
            Kind::Medication { kssj, drug: Some((g, _)) } => {
                add(&mut c, format!("order:{}:{g}", d(kssj.date())), 1);
            }
            Kind::Stock { tjrq, drug, kcl, drxhl } => {
                stock.entry(drug.as_str()).or_default().push((*tjrq, *kcl, *drxhl));
            }
            Kind::Visits { tjrq, mzrc, jzrc } => {
                let day = d(*tjrq);
                add(&mut c, format!("vis_day:{day}"), 1);
                add(&mut c, format!("vis_mz:{day}"), i64::from(*mzrc));
                add(&mut c, format!("vis_jz:{day}"), i64::from(*jzrc));
            }
            _ => {}
        }
    }
    for (drug, rows) in stock {
        stock_contribution(&mut c, drug, &rows);
    }
    case_contribution(&mut c, live);
    c
}

fn stock_contribution(c: &mut Counters, drug: &str, rows: &[(NaiveDate, u64, u64)]) {
    let Some(latest) = rows.iter().map(|r| r.0).max() else { return };
    let kcl: u64 = rows.iter().filter(|r| r.0 == latest).map(|r| r.1).sum();
    let from = latest - Duration::days(6);
    let use7: u64 = rows.iter().filter(|r| r.0 >= from && r.0 <= latest).map(|r| r.2).sum();
    add(c, format!("stock_kcl:{drug}"), i64::try_from(kcl).unwrap_or(i64::MAX));
    add(c, format!("stock_use7:{drug}"), i64::try_from(use7).unwrap_or(i64::MAX));
    add(c, format!("stock_day:{drug}"), i64::from(chrono::Datelike::num_days_from_ce(&latest)));
}

fn case_contribution(c: &mut Counters, live: &[&Facts]) {
    let orders: Vec<(NaiveDateTime, &str)> = live
        .iter()
        .filter_map(|f| match &f.kind {
            Some(Kind::Medication { kssj, drug: Some((_, class)) }) => Some((*kssj, class.as_str())),
            _ => None,
        })
        .collect();
    if let Some((day, gdrq)) = death_of(live) {
        add(c, format!("death:{}", d(day)), 1);
        if let Some(g) = gdrq {
            let due = d(g + Duration::days(7));
            add(c, format!("scan_due:{due}"), 1);
            if live.iter().any(|f| matches!(f.kind, Some(Kind::Scan))) {
                add(c, format!("scan_done:{due}"), 1);
            }
        }
    }
    let Some(case) = case_of(live) else {
        // orders whose encounter has no in-scope diagnosis: 经验性用药
        for (kssj, _) in &orders {
            add(c, format!("empiric:{}", d(kssj.date())), 1);
        }
        return;
    };
    let day = d(case.date);
    add(c, format!("case:{day}:{}", case.enc), 1);
    if live.iter().any(|f| matches!(f.kind, Some(Kind::Lab { .. }))) {
        add(c, format!("case_lab:{day}"), 1);
    }
    if case.stay {
        add(c, format!("stay:{day}"), 1);
        add(c, format!("severe:{day}"), i64::from(case.lcfx == 3));
        add(c, format!("critical:{day}"), i64::from(case.lcfx == 4));
        add(c, format!("icu:{day}"), i64::from(case.icu));
        add(c, format!("vent:{day}"), i64::from(case.vent));
        add(c, format!("ecmo:{day}"), i64::from(case.ecmo));
    }
    let treated = case.kbd == 1 || !orders.is_empty();
    if !treated {
        return;
    }
    add(c, format!("treated:{day}"), 1);
    let classes: std::collections::BTreeSet<&str> = orders.iter().map(|o| o.1).collect();
    for class in classes {
        add(c, format!("treated_class:{day}:{class}"), 1);
    }
    let Some(fbrq) = case.fbrq else { return };
    let first = orders.iter().map(|o| o.0).chain(case.kbdsj).min();
    let onset = fbrq.and_time(chrono::NaiveTime::MIN);
    let in48 = first.is_some_and(|t| t - onset <= Duration::hours(48));
    add(c, format!("treated_fbrq:{day}"), 1);
    add(c, format!("treated48:{day}"), i64::from(in48));
    if case.lcfx >= 3 {
        add(c, format!("sev_treated_fbrq:{day}"), 1);
        add(c, format!("sev_treated48:{day}"), i64::from(in48));
    }
}

/// Counters of one receipt (reporting quality): uploads, rows, rejections by rule.
pub fn receipt_contribution(
    day: NaiveDate,
    ty: &str,
    received: usize,
    rejected: usize,
    by_rule: &BTreeMap<String, usize>,
) -> Counters {
    let mut c = Counters::new();
    let day = d(day);
    add(&mut c, format!("upl:{day}:{ty}"), 1);
    add(&mut c, format!("rows:{day}:{ty}"), i64::try_from(received).unwrap_or(i64::MAX));
    add(&mut c, format!("rej:{day}:{ty}"), i64::try_from(rejected).unwrap_or(i64::MAX));
    for (code, n) in by_rule {
        add(&mut c, format!("rule:{code}"), i64::try_from(*n).unwrap_or(i64::MAX));
    }
    c
}

/// `a - b`, without zero entries.
pub fn diff(new: &Counters, old: &Counters) -> Counters {
    let mut out = new.clone();
    for (k, v) in old {
        *out.entry(k.clone()).or_insert(0) -= v;
    }
    out.retain(|_, v| *v != 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDateTime;

    fn t(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    fn facts(kind: Kind) -> Facts {
        let day = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        Facts { gxsj: t("2026-11-20 10:00:00"), first_seen: day, ywrq: Some(day), unit: None, kind: Some(kind) }
    }

    fn out(jzlx: u8, kbdsj: Option<&str>) -> Facts {
        facts(Kind::Outpatient {
            jzlx,
            jzsj: t("2026-11-18 09:00:00"),
            fbrq: NaiveDate::from_ymd_opt(2026, 11, 17),
            lcfx: 3,
            kbd: if kbdsj.is_some() { 1 } else { 2 },
            kbdsj: kbdsj.map(t),
            icu: false,
            vent: false,
            ecmo: false,
            zgzt: 1,
        })
    }

    #[test]
    fn discharge_supersedes_outpatient_one_case() {
        let o = out(3, None);
        let d = facts(Kind::Discharge {
            rysj: t("2026-11-19 08:00:00"),
            cysj: t("2026-11-22 08:00:00"),
            fbrq: None,
            lcfx: 4,
            kbd: 2,
            kbdsj: None,
            icu: true,
            vent: false,
            ecmo: false,
            lyfs: 5,
        });
        let c = contribution(&[&o, &d]);
        assert_eq!(c.get("case:2026-11-19:出院"), Some(&1));
        assert!(!c.keys().any(|k| k.starts_with("case:2026-11-18")), "{c:?}");
        assert_eq!(c.get("critical:2026-11-19"), Some(&1));
        assert_eq!(c.get("death:2026-11-22"), Some(&1), "LYFS 5 by CYSJ");
        assert_eq!(c.get("live:outpatient"), Some(&1));
    }

    #[test]
    fn treatment_within_48_hours_counts_the_earliest_dose() {
        let o = out(1, Some("2026-11-20 12:00:00")); // 60 h after FBRQ 00:00 by KBDSJ
        let late = contribution(&[&o]);
        assert_eq!(late.get("treated_fbrq:2026-11-18"), Some(&1));
        assert_eq!(late.get("treated48:2026-11-18"), None);
        let order = facts(Kind::Medication {
            kssj: t("2026-11-18 10:00:00"),
            drug: Some(("奥司他韦".into(), "NAI".into())),
        });
        let early = contribution(&[&o, &order]);
        assert_eq!(early.get("treated48:2026-11-18"), Some(&1));
        assert_eq!(early.get("sev_treated48:2026-11-18"), Some(&1));
        assert_eq!(early.get("treated_class:2026-11-18:NAI"), Some(&1));
        assert_eq!(early.get("order:2026-11-18:奥司他韦"), Some(&1));
        // the order alone (no case): empirical use
        assert_eq!(contribution(&[&order]).get("empiric:2026-11-18"), Some(&1));
    }

    #[test]
    fn stock_reserve_and_subtypes() {
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
        let rows: Vec<Facts> = (14..=21)
            .map(|d| {
                facts(Kind::Stock { tjrq: day(d), drug: "奥司他韦".into(), kcl: 100 + u64::from(d), drxhl: 10 })
            })
            .collect();
        let c = contribution(&rows.iter().collect::<Vec<_>>());
        assert_eq!(c.get("stock_kcl:奥司他韦"), Some(&121), "stock of the latest day");
        assert_eq!(c.get("stock_use7:奥司他韦"), Some(&70), "use over TJRQ-6 … TJRQ");
        assert_eq!(subtype(Some(1), Some(11)), "A(H1N1)pdm09");
        assert_eq!(subtype(Some(1), None), "甲型未分亚型");
        assert_eq!(subtype(Some(2), Some(29)), "乙型未分系");
        assert_eq!(subtype(Some(3), None), "甲乙混合");
        assert_eq!(subtype(Some(9), None), "型别不详");
        assert_eq!(diff(&c, &c), Counters::new());
    }

    #[test]
    fn a_death_scan_marks_the_due_scan_done_and_counts_no_record() {
        let death = facts(Kind::Death { swsj: t("2026-11-19 03:00:00"), gdrq: NaiveDate::from_ymd_opt(2026, 11, 20) });
        let without = contribution(&[&death]);
        assert_eq!(without.get("scan_due:2026-11-27"), Some(&1));
        assert_eq!(without.get("scan_done:2026-11-27"), None);
        let scan = facts(Kind::Scan);
        let with = contribution(&[&death, &scan]);
        assert_eq!(with.get("scan_done:2026-11-27"), Some(&1));
        assert_eq!(with.get("live:scan"), None, "a scan is not a record");
        assert_eq!(diff(&with, &without), Counters::from([("scan_done:2026-11-27".to_owned(), 1)]));
        // a scan of a case without a death record counts nothing
        assert!(contribution(&[&scan]).is_empty());
    }
}
