//! Every indicator of INDICATORS.md from the rollup sums of one period:
//! a pure function (tested on hand-computed sums) plus the read that feeds it.
//!
//! ```text
//!  fetch::daily (+ oe numerator, hospitals' expected days) ─▶ buckets of the Period ─▶ Sums per bucket
//!     ─▶ Indicators::from_sums(sums, small_cells) ─▶ cases · 门急诊流感占比 · 新增住院 · pathogen · treatment
//!                                                    · severity · deaths · cost · reporting quality
//! ```

use std::collections::BTreeMap;

use serde::Serialize;

use super::cells::{Cell, Group, Mean, Ratio, group, mean, plain_ratio, ratio};
use super::fetch::{self, Sums, add_sums};
use super::period::{By, Period};
use super::scope::Scoped;
use crate::Result;
use crate::db::Db;
use crate::timeconv::date_of;

/// The synthetic metric holding the 门急诊 numerator over hospital-days with visits.
pub const OE_NUM: &str = "oe_num";
/// The synthetic metric holding the expected hospital-days (上报及时率 denominator).
pub const EXPECTED_DAYS: &str = "expected_days";

fn get(s: &Sums, metric: &str, dim: &str) -> i64 {
    s.get(&(metric.to_string(), dim.to_string())).copied().unwrap_or(0)
}

fn dims(s: &Sums, metric: &str) -> BTreeMap<String, i64> {
    s.iter().filter(|((m, _), _)| m == metric).map(|((_, d), v)| (d.clone(), *v)).collect()
}

fn total(s: &Sums, metric: &str) -> i64 {
    s.iter().filter(|((m, _), _)| m == metric).map(|(_, v)| *v).sum()
}

/// Encounter types by their API names.
fn encounter_name(dim: &str) -> String {
    match dim {
        "1" => "outpatient".into(),
        "2" => "emergency".into(),
        "3" => "inpatient".into(),
        "discharge" => "discharged".into(),
        other => other.into(),
    }
}

/// 流感病例数 and its breakdowns.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cases {
    pub total: Cell,
    /// outpatient 门诊, emergency 急诊, inpatient 在院 (§3.1 JZLX 3), discharged 出院 (§3.2).
    pub by_encounter: Group,
    pub by_age: Group,
    /// GB/T 2261.1: 0 unknown, 1 male, 2 female, 9 unspecified.
    pub by_sex: Group,
    /// lab 实验室确诊 / clinical 临床诊断 (INTERFACE §4).
    pub by_basis: Group,
    /// The hospitals' own ZDYJ ("-" when absent).
    pub by_zdyj: Group,
}

/// 数据质量.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Quality {
    /// 上报及时率: hospital-days with an upload by 08:00 the next day ÷ hospital-days expected.
    pub timeliness: Ratio,
    /// 完整率: optional and conditional fields filled ÷ such fields.
    pub completeness: Ratio,
    /// 逻辑错误率: rows rejected ÷ rows received.
    pub error_rate: Ratio,
    pub rejected_by_rule: BTreeMap<String, i64>,
    /// 迟报量 (records first received more than 7 days after YWRQ), by record type.
    pub late: i64,
    pub late_by_type: BTreeMap<String, i64>,
}

/// Every indicator of one period.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Indicators {
    pub period: String,
    pub from: String,
    pub to: String,
    pub cases: Cases,
    /// 门急诊流感占比 (fraction; ×100 for percent).
    pub oe_ratio: Ratio,
    /// 新增住院.
    pub admissions: Cell,
    /// 病原学检测率.
    pub tested_rate: Ratio,
    /// 阳性率, all methods and by JYFF.
    pub positivity: Ratio,
    pub positivity_by_method: BTreeMap<String, Ratio>,
    /// 型别构成 (parts of the positive results).
    pub subtypes: Group,
    /// 抗病毒使用率, by drug and class.
    pub antiviral_rate: Ratio,
    pub antiviral_by_drug: BTreeMap<String, Ratio>,
    pub antiviral_by_class: BTreeMap<String, Ratio>,
    /// 48小时内用药率 / 重症48小时内用药率.
    pub within_48h: Ratio,
    pub within_48h_severe: Ratio,
    /// 经验性用药 (orders).
    pub empiric_orders: Cell,
    /// Inpatient stays (§3.1 JZLX 3 and §3.2) and 重症 / 危重症 / ICU / 机械通气 / ECMO among them.
    pub stays: Cell,
    pub severe: Ratio,
    pub critical: Ratio,
    pub icu: Ratio,
    pub ventilation: Ratio,
    pub ecmo: Ratio,
    /// 死亡例数, 住院病死率, 死亡病例扫描件及时率.
    pub deaths: Cell,
    pub inpatient_fatality: Ratio,
    pub death_scan_timely: Ratio,
    /// 次均费用 (元), §3.1 and §3.2 cases; 平均住院日; 抗菌药物费用占比.
    pub cost_outpatient: Mean,
    pub cost_inpatient: Mean,
    pub length_of_stay: Mean,
    pub antibiotic_cost_share: Ratio,
    pub quality: Quality,
}

impl Indicators {
    /// The indicators of one period's sums (`OE_NUM` and `EXPECTED_DAYS` included).
    pub fn from_sums(period: &str, from: i64, to: i64, s: &Sums, small: bool) -> Indicators {
        let cases = get(s, "case", "");
        let enc: BTreeMap<String, i64> =
            dims(s, "case_enc").into_iter().map(|(k, v)| (encounter_name(&k), v)).collect();
        let treated = get(s, "treated", "");
        let stays = get(s, "stay", "");
        let lab_valid = dims(s, "lab_valid");
        let lab_pos = dims(s, "lab_pos");
        let per_method = lab_valid
            .iter()
            .map(|(m, v)| (m.clone(), ratio(lab_pos.get(m).copied().unwrap_or(0), *v, small)))
            .collect();
        let by = |metric: &str| {
            dims(s, metric).into_iter().map(|(k, v)| (k, ratio(v, cases, small))).collect::<BTreeMap<_, _>>()
        };
        let abx_zfy = get(s, "abx_zfy", "");
        Indicators {
            period: period.to_string(),
            from: date_of(from).to_string(),
            to: date_of(to).to_string(),
            cases: Cases {
                total: Cell::count(cases, small),
                by_encounter: group(cases, &enc, small),
                by_age: group(cases, &dims(s, "case_age"), small),
                by_sex: group(cases, &dims(s, "case_sex"), small),
                by_basis: group(cases, &dims(s, "case_basis"), small),
                by_zdyj: group(cases, &dims(s, "case_zdyj"), small),
            },
            oe_ratio: ratio(get(s, OE_NUM, ""), get(s, "visits_rc", ""), small),
            admissions: Cell::count(get(s, "admission", ""), small),
            tested_rate: ratio(get(s, "tested", ""), cases, small),
            positivity: ratio(total(s, "lab_pos"), total(s, "lab_valid"), small),
            positivity_by_method: per_method,
            subtypes: group(total(s, "lab_pos"), &dims(s, "lab_type"), small),
            antiviral_rate: ratio(treated, cases, small),
            antiviral_by_drug: by("treated_drug"),
            antiviral_by_class: by("treated_class"),
            within_48h: ratio(get(s, "fbrq_48h", ""), get(s, "fbrq_treated", ""), small),
            within_48h_severe: ratio(get(s, "fbrq_48h_severe", ""), get(s, "fbrq_treated_severe", ""), small),
            empiric_orders: Cell::count(get(s, "empiric_order", ""), small),
            stays: Cell::count(stays, small),
            severe: ratio(get(s, "stay_severe", ""), stays, small),
            critical: ratio(get(s, "stay_critical", ""), stays, small),
            icu: ratio(get(s, "stay_icu", ""), stays, small),
            ventilation: ratio(get(s, "stay_mv", ""), stays, small),
            ecmo: ratio(get(s, "stay_ecmo", ""), stays, small),
            deaths: Cell::count(get(s, "death", ""), small),
            inpatient_fatality: ratio(get(s, "dis_death", ""), get(s, "dis_stay", ""), small),
            death_scan_timely: ratio(get(s, "death_scan_timely", ""), get(s, "death_gdrq", ""), small),
            cost_outpatient: mean(get(s, "cost_o_sum", ""), get(s, "cost_o_n", ""), 100.0, small),
            cost_inpatient: mean(get(s, "cost_d_sum", ""), get(s, "cost_d_n", ""), 100.0, small),
            length_of_stay: mean(get(s, "los_sum", ""), get(s, "los_n", ""), 1.0, small),
            antibiotic_cost_share: plain_ratio(get(s, "abx_sum", ""), abx_zfy),
            quality: Quality {
                timeliness: plain_ratio(get(s, "upload_day", ""), get(s, EXPECTED_DAYS, "")),
                completeness: plain_ratio(get(s, "opt_filled", ""), get(s, "opt_fields", "")),
                error_rate: plain_ratio(total(s, "rows_rejected"), total(s, "rows_received")),
                rejected_by_rule: dims(s, "rows_rejected"),
                late: total(s, "late"),
                late_by_type: dims(s, "late"),
            },
        }
    }
}

/// Every indicator of a scope, per bucket and over the whole range.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub scope: String,
    pub scope_name: String,
    pub from: String,
    pub to: String,
    pub by: By,
    /// Whether counts of 1–4 are shown as `<5`.
    pub small_cells: bool,
    pub total: Indicators,
    pub periods: Vec<Indicators>,
}

/// Hospital-days expected between `from` and `to` (every day since approval).
pub fn expected_days(hospitals: &[fetch::Hospital], from: i64, to: i64) -> i64 {
    hospitals.iter().map(|h| (to - from.max(h.approved) + 1).max(0)).sum()
}

/// The rollup sums of each day of the period, with the synthetic metrics
/// (`OE_NUM`, `EXPECTED_DAYS`). `metrics` restricts the read to those metrics
/// (synthetic ones included); empty reads every metric.
pub async fn daily_sums(db: &Db, s: &Scoped, p: &Period, metrics: &[&str]) -> Result<BTreeMap<i64, Sums>> {
    let all = metrics.is_empty();
    let stored: Vec<&str> = metrics.iter().copied().filter(|m| *m != OE_NUM && *m != EXPECTED_DAYS).collect();
    let mut days =
        if all || !stored.is_empty() { fetch::daily(db, s, p.from, p.to, &stored).await? } else { BTreeMap::new() };
    if all || metrics.contains(&OE_NUM) {
        for (day, n) in fetch::oe_numerator(db, s, p.from, p.to).await? {
            days.entry(day).or_default().insert((OE_NUM.into(), String::new()), n);
        }
    }
    if all || metrics.contains(&EXPECTED_DAYS) {
        let hospitals = fetch::hospitals(db, s).await?;
        for day in p.from..=p.to {
            let e = expected_days(&hospitals, day, day);
            if e > 0 {
                days.entry(day).or_default().insert((EXPECTED_DAYS.into(), String::new()), e);
            }
        }
    }
    Ok(days)
}

/// Every indicator of the scope over the period.
pub async fn report(db: &Db, s: &Scoped, p: &Period) -> Result<Report> {
    report_of(db, s, p, &[]).await
}

/// The report computed from the listed metrics only (every metric when empty):
/// the indicators that need other metrics come out as zero or without value.
/// For callers that want a few indicators of a long period (`views::series`).
pub async fn report_of(db: &Db, s: &Scoped, p: &Period, metrics: &[&str]) -> Result<Report> {
    let days = daily_sums(db, s, p, metrics).await?;
    let small = s.small_cells();
    let mut all = Sums::new();
    let mut periods = Vec::new();
    for (label, a, b) in p.buckets() {
        let mut sums = Sums::new();
        for (_, d) in days.range(a..=b) {
            add_sums(&mut sums, d);
        }
        add_sums(&mut all, &sums);
        periods.push(Indicators::from_sums(&label, a, b, &sums, small));
    }
    Ok(Report {
        scope: s.scope().code().to_string(),
        scope_name: s.scope().name(),
        from: date_of(p.from).to_string(),
        to: date_of(p.to).to_string(),
        by: p.by,
        small_cells: small,
        total: Indicators::from_sums("total", p.from, p.to, &all, small),
        periods,
    })
}
