//! What each unit adds to the rollups: a pure function from the live
//! records of a unit to `(day, metric, dim) → value`. A unit is everything
//! one count can depend on: a case (`c:` + JZLSH pseudonym: its §3.1, §3.2,
//! §3.3–§3.6 records and scans), a hospital-day of visits (`v:`), of stock
//! (`s:`), one receipt (`r:`), one hospital-day's upload timeliness (`t:`).
//!
//! ```text
//!  live records of unit ─▶ contributions ─▶ diff with unit_contrib ─▶ rollup += delta
//!  case: §3.2 supersedes §3.1 ─▶ case, case_enc, case_age, case_sex, case_basis, case_zdyj, oe_case,
//!        admission, tested, treated(_drug,_class), fbrq_*, stay*, death*, dis_*, cost_*, los_*, abx_*, delay
//!  every record: late (first receipt > 7 d after YWRQ), opt_filled / opt_fields (completeness)
//! ```

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate, NaiveDateTime};
use flumon_shared::desens::outbound::{OutDischarge, OutLab, OutOutpatient, OutPatient, OutRecord};
use flumon_shared::model::antiviral_of;
use flumon_shared::scope::Basis;

use crate::timeconv::{day_of, day_of_dt, secs_to_dt};

/// (day, metric, dim) → value.
pub type Contribs = BTreeMap<(i64, String, String), i64>;

/// A live record with the time its first version reached the DMZ.
#[derive(Clone, Debug)]
pub struct Live {
    pub rec: OutRecord,
    /// Seconds (CST) of the first version's `dmz_time`.
    pub first_dmz_time: i64,
}

fn add(c: &mut Contribs, day: i64, metric: &str, dim: &str, v: i64) {
    if v != 0 {
        *c.entry((day, metric.to_string(), dim.to_string())).or_insert(0) += v;
    }
}

/// The age group of INDICATORS (CNIC): 0–4, 5–14, 15–24, 25–59, 60+.
pub fn age_group(nl: u16) -> &'static str {
    match nl {
        0..=4 => "0-4",
        5..=14 => "5-14",
        15..=24 => "15-24",
        25..=59 => "25-59",
        _ => "60+",
    }
}

/// The 型别构成 category of a positive result.
pub fn lab_category(l: &OutLab) -> &'static str {
    match (l.bdlx, l.yx) {
        (Some(3), _) => "A+B",
        (Some(9), _) => "unknown",
        (_, Some(11)) => "A(H1N1)pdm09",
        (_, Some(12)) => "A(H3N2)",
        (_, Some(13..=15)) => "A_other",
        (Some(1), Some(19) | None) => "A_unsubtyped",
        (_, Some(21)) => "B/Victoria",
        (_, Some(22)) => "B/Yamagata",
        (Some(2), Some(29) | None) => "B_undetermined",
        _ => "unknown",
    }
}

/// The record's YWRQ day, else its event day.
fn report_day(r: &OutRecord) -> Option<i64> {
    r.common().ywrq.map(day_of)
}

fn patient_optional(p: &OutPatient) -> (i64, i64) {
    let filled = [p.gj.is_some(), p.mz.is_some(), p.zy.is_some(), p.ylfkfs.is_some()];
    let mut f = filled.iter().filter(|b| **b).count() as i64;
    let mut n = filled.len() as i64;
    if p.nl == 0 {
        n += 1;
        f += i64::from(p.bzyzs_nl.is_some());
    }
    (f, n)
}

/// Optional and conditional fields filled / such fields (INDICATORS 完整率).
pub fn completeness(r: &OutRecord) -> (i64, i64) {
    let count = |xs: &[bool]| (xs.iter().filter(|b| **b).count() as i64, xs.len() as i64);
    let (f, n) = match r {
        OutRecord::Outpatient(o) => {
            let (pf, pn) = patient_optional(&o.patient);
            let (f, n) = count(&[
                o.fbrq.is_some(),
                o.zgtw.is_some(),
                !o.gwys.is_empty(),
                o.ymjz.is_some(),
                o.icu.is_some(),
                o.jxtq.is_some(),
                o.ecmo.is_some(),
                o.ypf.is_some(),
                o.jyf.is_some(),
                o.kbdf.is_some(),
            ]);
            let (kf, kn) = if o.kbd == 1 { (i64::from(o.kbdsj.is_some()), 1) } else { (0, 0) };
            (f + pf + kf, n + pn + kn)
        }
        OutRecord::Discharge(d) => {
            let (pf, pn) = patient_optional(&d.patient);
            let (f, n) = count(&[
                d.fbrq.is_some(),
                d.zdyj.is_some(),
                d.mzzd.is_some(),
                !d.qtzd.is_empty(),
                d.icuts.is_some(),
                d.jxtqsj.is_some(),
                d.ecmo.is_some(),
                d.xyf.is_some(),
                d.kjywf.is_some(),
                d.hlf.is_some(),
                d.ylfuf.is_some(),
            ]);
            let (kf, kn) = if d.kbd == 1 { (i64::from(d.kbdsj.is_some()), 1) } else { (0, 0) };
            (f + pf + kf, n + pn + kn)
        }
        OutRecord::Death(x) => count(&[x.rysj.is_some(), x.swdd.is_some(), x.gdrq.is_some()]),
        OutRecord::Medication(m) => count(&[m.ypbm.is_some(), m.ypgg.is_some(), m.tzsj.is_some(), m.je.is_some()]),
        OutRecord::Lab(l) => count(&[l.bdlx.is_some(), l.yx.is_some(), l.ct.is_some()]),
        _ => (0, 0),
    };
    (f, n)
}

/// Contributions every live record makes by itself: lateness and completeness.
fn per_record(c: &mut Contribs, l: &Live) {
    let Some(day) = report_day(&l.rec) else { return };
    let first = secs_to_dt(l.first_dmz_time).date();
    if let Some(ywrq) = l.rec.common().ywrq
        && (first - ywrq).num_days() > 7
    {
        add(c, day, "late", l.rec_type(), 1);
    }
    let (f, n) = completeness(&l.rec);
    add(c, day, "opt_filled", "", f);
    add(c, day, "opt_fields", "", n);
}

impl Live {
    fn rec_type(&self) -> &'static str {
        match &self.rec {
            OutRecord::Outpatient(_) => "outpatient",
            OutRecord::Discharge(_) => "discharge",
            OutRecord::Summary(_) => "summary",
            OutRecord::Death(_) => "death",
            OutRecord::Medication(_) => "medication",
            OutRecord::Lab(_) => "lab",
            OutRecord::Stock(_) => "stock",
            OutRecord::Visits(_) => "visits",
            OutRecord::Delete { .. } => "delete",
        }
    }

    fn version(&self) -> (NaiveDateTime, u64) {
        (self.rec.common().gxsj, self.rec.common().dmz_seq)
    }
}

fn latest<'a, T>(items: impl Iterator<Item = (&'a Live, &'a T)>) -> Option<(&'a Live, &'a T)> {
    items.max_by_key(|(l, _)| l.version())
}

/// The source of a case: §3.2 supersedes §3.1.
enum Src<'a> {
    Out(&'a OutOutpatient),
    Dis(&'a OutDischarge),
}

/// The contributions of one case unit (all live records with that JZLSH pseudonym, and its scans' receipt times).
pub fn case_contrib(records: &[Live], scans: &[i64]) -> Contribs {
    let mut c = Contribs::new();
    for l in records {
        per_record(&mut c, l);
    }
    let o = latest(records.iter().filter_map(|l| match &l.rec {
        OutRecord::Outpatient(o) => Some((l, o.as_ref())),
        _ => None,
    }));
    let d = latest(records.iter().filter_map(|l| match &l.rec {
        OutRecord::Discharge(d) => Some((l, d.as_ref())),
        _ => None,
    }));
    let labs: Vec<&OutLab> = records
        .iter()
        .filter_map(|l| match &l.rec {
            OutRecord::Lab(x) => Some(x.as_ref()),
            _ => None,
        })
        .collect();
    let orders: Vec<(&str, &str, NaiveDateTime)> = records
        .iter()
        .filter_map(|l| match &l.rec {
            OutRecord::Medication(m) => antiviral_of(&m.ypmc).map(|(g, k)| (g, k, m.kssj)),
            _ => None,
        })
        .collect();
    let death = latest(records.iter().filter_map(|l| match &l.rec {
        OutRecord::Death(x) => Some((l, x.as_ref())),
        _ => None,
    }));
    // Lab results count by themselves (by sampling day).
    for x in &labs {
        let day = day_of_dt(x.cysj);
        let jyff = x.jyff.to_string();
        if x.dxjg != 4 {
            add(&mut c, day, "lab_valid", &jyff, 1);
        }
        if matches!(x.dxjg, 1 | 3) {
            add(&mut c, day, "lab_pos", &jyff, 1);
            add(&mut c, day, "lab_type", lab_category(x), 1);
        }
    }
    let src = match (d, o) {
        (Some((l, d)), _) => Some((l, Src::Dis(d))),
        (None, Some((l, o))) => Some((l, Src::Out(o))),
        _ => None,
    };
    // Anti-influenza orders whose encounter has no in-scope diagnosis.
    let diagnosed = match &src {
        Some((_, Src::Dis(d))) => d.scope.by_code || d.scope.by_name,
        Some((_, Src::Out(o))) => o.scope.by_code || o.scope.by_name,
        None => false,
    };
    if !diagnosed {
        for (_, _, kssj) in &orders {
            add(&mut c, day_of_dt(*kssj), "empiric_order", "", 1);
        }
    }
    // Death: §3.4 SWSJ, else §3.2 CYSJ, else §3.1 JZSJ.
    let death_day = match (death, d, o) {
        (Some((_, x)), _, _) => Some(day_of_dt(x.swsj)),
        (None, Some((_, d)), _) if d.lyfs == 5 => Some(day_of_dt(d.cysj)),
        (None, _, Some((_, o))) if o.zgzt == 3 => Some(day_of_dt(o.jzsj)),
        _ => None,
    };
    if let Some(day) = death_day {
        add(&mut c, day, "death", "", 1);
        if let Some(gdrq) = death.and_then(|(_, x)| x.gdrq) {
            add(&mut c, day, "death_gdrq", "", 1);
            let due = secs_of_date(gdrq + Duration::days(8));
            if scans.iter().min().is_some_and(|&t| t < due) {
                add(&mut c, day, "death_scan_timely", "", 1);
            }
        }
    }
    let Some((src_live, src)) = src else { return c };
    // The case.
    let (event, patient, scope_basis, zdyj, lcfx, kbd, kbdsj, fbrq) = match &src {
        Src::Dis(d) => (d.rysj, &d.patient, d.scope.basis(), d.zdyj, d.lcfx, d.kbd, d.kbdsj, d.fbrq),
        Src::Out(o) => (o.jzsj, &o.patient, o.scope.basis(), Some(o.zdyj), o.lcfx, o.kbd, o.kbdsj, o.fbrq),
    };
    let day = day_of_dt(event);
    add(&mut c, day, "case", "", 1);
    let enc = match &src {
        Src::Dis(_) => "discharge".to_string(),
        Src::Out(o) => o.jzlx.to_string(),
    };
    add(&mut c, day, "case_enc", &enc, 1);
    add(&mut c, day, "case_age", age_group(patient.nl), 1);
    add(&mut c, day, "case_sex", &patient.xb.to_string(), 1);
    add(&mut c, day, "case_basis", if scope_basis == Basis::Lab { "lab" } else { "clinical" }, 1);
    add(&mut c, day, "case_zdyj", &zdyj.map_or("-".to_string(), |z| z.to_string()), 1);
    let delay = (secs_to_dt(src_live.first_dmz_time).date() - event.date()).num_days().clamp(0, 60);
    add(&mut c, day, "delay", &delay.to_string(), 1);
    if let Src::Out(o) = &src
        && matches!(o.jzlx, 1 | 2)
    {
        add(&mut c, day, "oe_case", "", 1);
    }
    if !labs.is_empty() {
        add(&mut c, day, "tested", "", 1);
    }
    // Treatment.
    let treated = kbd == 1 || !orders.is_empty();
    if treated {
        add(&mut c, day, "treated", "", 1);
        let mut drugs: Vec<&str> = orders.iter().map(|(g, _, _)| *g).collect();
        drugs.sort_unstable();
        drugs.dedup();
        for g in drugs {
            add(&mut c, day, "treated_drug", g, 1);
        }
        let mut classes: Vec<&str> = orders.iter().map(|(_, k, _)| *k).collect();
        classes.sort_unstable();
        classes.dedup();
        for k in classes {
            add(&mut c, day, "treated_class", k, 1);
        }
        let first_dose = orders.iter().map(|(_, _, t)| *t).chain(kbdsj).min();
        if let Some(f) = fbrq {
            let severe = lcfx >= 3;
            add(&mut c, day, "fbrq_treated", "", 1);
            if severe {
                add(&mut c, day, "fbrq_treated_severe", "", 1);
            }
            let limit = f.and_hms_opt(0, 0, 0).map(|t| t + Duration::hours(48));
            if let (Some(dose), Some(limit)) = (first_dose, limit)
                && dose <= limit
            {
                add(&mut c, day, "fbrq_48h", "", 1);
                if severe {
                    add(&mut c, day, "fbrq_48h_severe", "", 1);
                }
            }
        }
    }
    // Inpatient stays, severity, costs.
    let stay = match &src {
        Src::Dis(_) => true,
        Src::Out(o) => o.jzlx == 3,
    };
    if stay {
        add(&mut c, day, "admission", "", 1);
        add(&mut c, day, "stay", "", 1);
        if lcfx == 3 {
            add(&mut c, day, "stay_severe", "", 1);
        }
        if lcfx == 4 {
            add(&mut c, day, "stay_critical", "", 1);
        }
        let (icu, mv, ecmo) = match &src {
            Src::Dis(d) => (d.icuts.is_some_and(|v| v > 0), d.jxtqsj.is_some_and(|v| v > 0), d.ecmo == Some(1)),
            Src::Out(o) => (o.icu == Some(1), o.jxtq == Some(1), o.ecmo == Some(1)),
        };
        add(&mut c, day, "stay_icu", "", i64::from(icu));
        add(&mut c, day, "stay_mv", "", i64::from(mv));
        add(&mut c, day, "stay_ecmo", "", i64::from(ecmo));
    }
    match &src {
        Src::Dis(d) => {
            add(&mut c, day, "dis_stay", "", 1);
            add(&mut c, day, "dis_death", "", i64::from(d.lyfs == 5));
            add(&mut c, day, "cost_d_sum", "", d.zfy);
            add(&mut c, day, "cost_d_n", "", 1);
            add(&mut c, day, "los_sum", "", i64::from(d.sjzyts));
            add(&mut c, day, "los_n", "", 1);
            if let Some(k) = d.kjywf {
                add(&mut c, day, "abx_sum", "", k);
                add(&mut c, day, "abx_zfy", "", d.zfy);
            }
        }
        Src::Out(o) => {
            add(&mut c, day, "cost_o_sum", "", o.zfy);
            add(&mut c, day, "cost_o_n", "", 1);
        }
    }
    c
}

fn secs_of_date(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0).map_or(0, |t| t.and_utc().timestamp())
}

/// A hospital-day of §3.8 visits (one live row per hospital and day).
pub fn visits_contrib(records: &[Live]) -> Contribs {
    let mut c = Contribs::new();
    for l in records {
        per_record(&mut c, l);
        if let OutRecord::Visits(v) = &l.rec {
            let day = day_of(v.tjrq);
            add(&mut c, day, "visits_day", "", 1);
            add(&mut c, day, "visits_rc", "", i64::from(v.mzrc) + i64::from(v.jzrc));
            add(&mut c, day, "visits_zyrs", "", i64::from(v.zyrs));
        }
    }
    c
}

/// A hospital-day of §3.7 stock: per generic drug, stock and use summed over 规格.
pub fn stock_contrib(records: &[Live]) -> Contribs {
    let mut c = Contribs::new();
    for l in records {
        per_record(&mut c, l);
        if let OutRecord::Stock(s) = &l.rec {
            let Some((generic, _)) = antiviral_of(&s.ypmc) else { continue };
            let day = day_of(s.tjrq);
            let kcl = i64::try_from(s.kcl).unwrap_or(i64::MAX);
            let use_ = i64::try_from(s.drxhl).unwrap_or(i64::MAX);
            // Marker so a stock of 0 still marks the day as reported.
            c.insert((day, "stock_day".into(), generic.into()), 1);
            add(&mut c, day, "stock_kcl", generic, kcl);
            add(&mut c, day, "stock_use", generic, use_);
        }
    }
    c
}

/// One receipt: rows received (by type) and rejected (by rule code), on its day.
pub fn receipt_contrib(ty: &str, time: i64, received: i64, errors: &BTreeMap<String, u64>) -> Contribs {
    let mut c = Contribs::new();
    let day = day_of_dt(secs_to_dt(time));
    add(&mut c, day, "rows_received", ty, received);
    for (code, n) in errors {
        add(&mut c, day, "rows_rejected", code, i64::try_from(*n).unwrap_or(i64::MAX));
    }
    c
}

/// A hospital-day counts as timely when an upload came between its 00:00 and 08:00 of the next day.
pub fn timely_contrib(day: i64, has_upload: bool) -> Contribs {
    let mut c = Contribs::new();
    if has_upload {
        add(&mut c, day, "upload_day", "", 1);
    }
    c
}
