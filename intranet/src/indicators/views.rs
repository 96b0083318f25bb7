//! The views beside the indicator report: drug reserve (抗流感药物储备),
//! reporting quality per hospital, the region tree with the children's
//! figures, and time series of one indicator.
//!
//! ```text
//!  reserve:  latest TJRQ ≤ date per (hospital, drug) ─▶ KCL ÷ mean DRXHL(TJRQ−6…TJRQ) ─▶ alert < 7 days
//!  quality:  rollup sums by hospital + expected days since approval ─▶ Quality per hospital
//!  tree:     scope ─▶ children (省 → 市 → 县 → 医院), each through Scoped::narrow ─▶ fetch::children_sums
//!            (one query for all region children) ─▶ complementary cells
//!  series:   the series' metrics only ─▶ report buckets ─▶ one JSON pointer per period
//! ```

use std::collections::BTreeMap;

use serde::Serialize;

use super::cells::{Cell, Ratio, complement, ratio};
use super::compute::{self, EXPECTED_DAYS, Indicators, OE_NUM, Quality};
use super::fetch::{self, Sums};
use super::period::Period;
use super::scope::{Scope, Scoped};
use crate::db::Db;
use crate::regions;
use crate::timeconv::date_of;
use crate::{Error, Result};

/// Days of stock below which a hospital or scope is alerted.
pub const ALERT_DAYS: f64 = 7.0;

/// Stock, mean daily use and days of use left.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reserve {
    pub kcl: i64,
    pub mean_use: f64,
    /// 可用天数; null without use.
    pub days: Option<f64>,
    pub alert: bool,
}

fn reserve(kcl: i64, use7: i64) -> Reserve {
    let mean_use = use7 as f64 / 7.0;
    let days = (use7 > 0).then(|| kcl as f64 / mean_use);
    Reserve { kcl, mean_use, days, alert: days.is_some_and(|d| d < ALERT_DAYS) }
}

/// One hospital's reserve of one drug.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HospitalReserve {
    pub hospital: String,
    pub name: String,
    pub drug: String,
    /// The hospital's latest TJRQ for the drug.
    pub tjrq: String,
    #[serde(flatten)]
    pub reserve: Reserve,
}

/// The drug reserve of a scope on a date.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DrugReserve {
    pub scope: String,
    pub date: String,
    /// Per drug, summed over the scope's hospitals.
    pub by_drug: BTreeMap<String, Reserve>,
    pub hospitals: Vec<HospitalReserve>,
    /// The hospitals below 7 days.
    pub alerts: Vec<HospitalReserve>,
}

/// 抗流感药物储备 of the scope as of `date` (a day number).
pub async fn drug_reserve(db: &Db, s: &Scoped, date: i64) -> Result<DrugReserve> {
    let names: BTreeMap<String, String> =
        fetch::hospitals(db, s).await?.into_iter().map(|h| (h.code, h.name)).collect();
    let mut hospitals = Vec::new();
    let mut totals: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    // Hospitals that reported stock in the last RECENT days: their 7-day windows in one query
    // (from the earliest such report, usually a week); the rare older reports one by one.
    const RECENT: i64 = 31;
    let latest = fetch::latest_stock(db, s, date).await?;
    let from = latest.iter().map(|x| x.2).filter(|t| *t >= date - RECENT).min().unwrap_or(date) - 6;
    let window = fetch::stock_window(db, s, from, date).await?;
    for (org, drug, tjrq) in latest {
        let rows = if tjrq >= date - RECENT {
            window
                .get(&(org.clone(), drug.clone()))
                .map(|m| m.range(tjrq - 6..=tjrq).map(|(d, v)| (*d, *v)).collect())
                .unwrap_or_default()
        } else {
            fetch::stock_days(db, s, &org, &drug, tjrq - 6, tjrq).await?
        };
        let kcl = rows.get(&tjrq).map_or(0, |r| r.0);
        let use7: i64 = rows.values().map(|r| r.1).sum();
        let t = totals.entry(drug.clone()).or_insert((0, 0));
        t.0 += kcl;
        t.1 += use7;
        hospitals.push(HospitalReserve {
            name: names.get(&org).cloned().unwrap_or_default(),
            hospital: org,
            drug,
            tjrq: date_of(tjrq).to_string(),
            reserve: reserve(kcl, use7),
        });
    }
    let alerts = hospitals.iter().filter(|h| h.reserve.alert).cloned().collect();
    Ok(DrugReserve {
        scope: s.scope().code().to_string(),
        date: date_of(date).to_string(),
        by_drug: totals.into_iter().map(|(d, (k, u))| (d, reserve(k, u))).collect(),
        hospitals,
        alerts,
    })
}

/// Reporting quality of one hospital.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HospitalQuality {
    pub hospital: String,
    pub name: String,
    pub region: String,
    pub quality: Quality,
}

/// 数据质量 per hospital of the scope over the period.
pub async fn quality(db: &Db, s: &Scoped, p: &Period) -> Result<Vec<HospitalQuality>> {
    let metrics = ["upload_day", "opt_filled", "opt_fields", "rows_rejected", "rows_received", "late"];
    let mut by_org = fetch::by_org(db, s, p.from, p.to, &metrics).await?;
    let mut out = Vec::new();
    for h in fetch::hospitals(db, s).await? {
        let mut sums = by_org.remove(&h.code).unwrap_or_default();
        sums.insert(
            (EXPECTED_DAYS.into(), String::new()),
            compute::expected_days(std::slice::from_ref(&h), p.from, p.to),
        );
        let ind = Indicators::from_sums("total", p.from, p.to, &sums, false);
        out.push(HospitalQuality { hospital: h.code, name: h.name, region: h.region, quality: ind.quality });
    }
    Ok(out)
}

/// A node of the region tree with its key figures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Node {
    pub code: String,
    pub name: String,
    pub level: &'static str,
    pub cases: Cell,
    pub deaths: Cell,
    pub admissions: Cell,
    pub oe_ratio: Ratio,
}

/// A scope and its children.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Tree {
    pub from: String,
    pub to: String,
    pub node: Node,
    pub children: Vec<Node>,
}

fn level_name(s: &Scope) -> &'static str {
    match s {
        Scope::National => "national",
        Scope::Province { .. } => "province",
        Scope::City { .. } => "city",
        Scope::County { .. } => "county",
        Scope::Hospital { .. } => "hospital",
    }
}

const TREE_METRICS: [&str; 4] = ["case", "death", "admission", "visits_rc"];

fn node_of(s: &Scoped, sums: &Sums) -> Node {
    let g = |m: &str| sums.get(&(m.to_string(), String::new())).copied().unwrap_or(0);
    let small = s.small_cells();
    Node {
        code: s.scope().code().to_string(),
        name: s.scope().name(),
        level: level_name(s.scope()),
        cases: Cell::count(g("case"), small),
        deaths: Cell::count(g("death"), small),
        admissions: Cell::count(g("admission"), small),
        oe_ratio: ratio(g(OE_NUM), g("visits_rc"), small),
    }
}

async fn figures(db: &Db, s: &Scoped, p: &Period) -> Result<(Sums, Node)> {
    let mut sums = Sums::new();
    for d in fetch::daily(db, s, p.from, p.to, &TREE_METRICS).await?.values() {
        fetch::add_sums(&mut sums, d);
    }
    let oe: i64 = fetch::oe_numerator(db, s, p.from, p.to).await?.values().sum();
    sums.insert((OE_NUM.into(), String::new()), oe);
    let node = node_of(s, &sums);
    Ok((sums, node))
}

/// The scope's figures and its direct children's: a constant number of queries
/// (the node's two, then one for region children or two for hospital children).
pub async fn tree(db: &Db, s: &Scoped, p: &Period) -> Result<Tree> {
    let (_, node) = figures(db, s, p).await?;
    let children: Vec<Scope> = match s.scope() {
        Scope::County { code } => fetch::hospitals(db, s)
            .await?
            .into_iter()
            .map(|h| Scope::Hospital { code: h.code, region: code.clone() })
            .collect(),
        Scope::Hospital { .. } => Vec::new(),
        other => regions::children(other.code()).iter().filter_map(|r| Scope::region(&r.code).ok()).collect(),
    };
    let children: Vec<Scoped> = children.into_iter().map(|c| s.narrow(c)).collect::<Result<_, _>>()?;
    let mut all = fetch::children_sums(db, &children, p.from, p.to, &TREE_METRICS).await?;
    let mut nodes = Vec::new();
    let mut raw: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
    for child in &children {
        let sums = all.remove(child.scope().code()).unwrap_or_default();
        let n = node_of(child, &sums);
        let g = |m: &str| sums.get(&(m.to_string(), String::new())).copied().unwrap_or(0);
        raw.insert(n.code.clone(), (g("case"), g("death"), g("admission")));
        nodes.push(n);
    }
    // Complementary suppression across the children of a shown total.
    for (k, total) in [(0usize, node.cases), (1, node.deaths), (2, node.admissions)] {
        let values: BTreeMap<String, i64> = raw
            .iter()
            .map(|(c, v)| {
                (
                    c.clone(),
                    match k {
                        0 => v.0,
                        1 => v.1,
                        _ => v.2,
                    },
                )
            })
            .collect();
        let mut cells: BTreeMap<String, Cell> = nodes
            .iter()
            .map(|n| {
                (
                    n.code.clone(),
                    match k {
                        0 => n.cases,
                        1 => n.deaths,
                        _ => n.admissions,
                    },
                )
            })
            .collect();
        complement(&mut cells, &values, total.shown().is_some());
        for n in &mut nodes {
            if let Some(c) = cells.get(&n.code) {
                match k {
                    0 => n.cases = *c,
                    1 => n.deaths = *c,
                    _ => n.admissions = *c,
                }
            }
        }
    }
    Ok(Tree { from: date_of(p.from).to_string(), to: date_of(p.to).to_string(), node, children: nodes })
}

/// A series that `/timeseries` offers: its name, the JSON pointer into
/// [`Indicators`], and the rollup metrics its value is computed from (so that a
/// year of one series reads those metrics only, not every metric of the year).
pub struct Series {
    pub name: &'static str,
    pub pointer: &'static str,
    pub metrics: &'static [&'static str],
}

const fn ser(name: &'static str, pointer: &'static str, metrics: &'static [&'static str]) -> Series {
    Series { name, pointer, metrics }
}

/// Every series of `/timeseries`. The metrics must be those that
/// [`Indicators::from_sums`] reads for the pointer; a test compares every series
/// with the one taken from the full report.
pub const SERIES: &[Series] = &[
    ser("cases", "/cases/total", &["case"]),
    ser("oe_ratio", "/oe_ratio/value", &[OE_NUM, "visits_rc"]),
    ser("admissions", "/admissions", &["admission"]),
    ser("deaths", "/deaths", &["death"]),
    ser("tested_rate", "/tested_rate/value", &["tested", "case"]),
    ser("positivity", "/positivity/value", &["lab_pos", "lab_valid"]),
    ser("antiviral_rate", "/antiviral_rate/value", &["treated", "case"]),
    ser("within_48h", "/within_48h/value", &["fbrq_48h", "fbrq_treated"]),
    ser("severe", "/severe/value", &["stay_severe", "stay"]),
    ser("icu", "/icu/value", &["stay_icu", "stay"]),
    ser("inpatient_fatality", "/inpatient_fatality/value", &["dis_death", "dis_stay"]),
    ser("timeliness", "/quality/timeliness/value", &["upload_day", EXPECTED_DAYS]),
    ser("completeness", "/quality/completeness/value", &["opt_filled", "opt_fields"]),
    ser("error_rate", "/quality/error_rate/value", &["rows_rejected", "rows_received"]),
];

/// One point of a series.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Point {
    pub period: String,
    pub from: String,
    pub to: String,
    pub value: serde_json::Value,
}

/// The series `name` of the scope over the period, one point per bucket.
pub async fn series(db: &Db, s: &Scoped, p: &Period, name: &str) -> Result<Vec<Point>> {
    let ser = SERIES
        .iter()
        .find(|x| x.name == name)
        .ok_or_else(|| Error::BadRequest(format!("未知的序列 (unknown series): {name:.40}")))?;
    let r = compute::report_of(db, s, p, ser.metrics).await?;
    let mut out = Vec::new();
    for ind in r.periods {
        let v = serde_json::to_value(&ind)?;
        out.push(Point {
            period: ind.period,
            from: ind.from,
            to: ind.to,
            value: v.pointer(ser.pointer).cloned().unwrap_or(serde_json::Value::Null),
        });
    }
    Ok(out)
}
