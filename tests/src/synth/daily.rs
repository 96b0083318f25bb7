//! The daily reports of a hospital: anti-influenza drug stock (§3.7, one row
//! per drug and 规格 a day, use following the epidemic, some hospitals short
//! of a drug) and outpatient/emergency attendance (§3.8, the denominator of
//! the flu share). Each is created shortly after midnight and sometimes
//! corrected the next morning (CZLX 2).

use chrono::{Duration, NaiveDate};
use rand::Rng;

use flumon_shared::model::RecordType;

use super::clinical::{self, Drug};
use super::encounter::{Ev, Event, at};
use super::epidemic::Season;
use super::records::{Upload, common, jlid, select};
use super::rng::{self, between, chance, tag};
use super::row::{Row, V, ymd8};

/// The drugs a hospital stocks.
pub fn stocked(level: u8) -> Vec<Drug> {
    if level == 3 {
        clinical::STOCKED.to_vec()
    } else {
        vec![clinical::OSELTAMIVIR, clinical::OSELTAMIVIR_KIDS, clinical::BALOXAVIR, clinical::ARBIDOL]
    }
}

fn share(d: &Drug) -> f64 {
    match d.ypmc {
        "磷酸奥司他韦胶囊" => 0.45,
        "磷酸奥司他韦颗粒" => 0.2,
        "玛巴洛沙韦片" => 0.12,
        "帕拉米韦氯化钠注射液" => 0.02,
        "扎那米韦吸入粉雾剂" => 0.01,
        _ => 0.03,
    }
}

fn life(r: &mut rng::R, d: NaiveDate) -> Vec<Event> {
    let next = d + Duration::days(1);
    let created = at(next, between(r, 5, 95));
    let mut life = vec![Event { at: created, ywrq: d, ev: Ev::Create }];
    if chance(r, 0.05) {
        life.push(Event { at: at(next, between(r, 9 * 60, 11 * 60)), ywrq: d, ev: Ev::Modify(1) });
    }
    life
}

/// The stock rows of day `d` that the upload carries.
pub fn stock(
    u: &Upload<'_>,
    season: &Season,
    d: NaiveDate,
    out: &mut dyn FnMut(Row) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let h = u.hospital;
    for (i, drug) in stocked(h.level).iter().enumerate() {
        let mut r = rng::stream(u.seed, &[tag::STOCK, h.index as u64, rng::day_key(d), i as u64]);
        let lf = life(&mut r, d);
        let Some(v) = select(&lf, u) else { continue };
        let Some(e) = lf.get(v) else { continue };
        let per_day = (drug.per_day * drug.units_per_dose) as f64;
        let mean = season.expected(h, d) * share(drug) * per_day;
        let use_today = rng::poisson(&mut r, mean);
        // Days of cover: a property of the hospital and drug, some short (< 7 days).
        let cover = 3 + rng::hash(u.seed, &[tag::STOCK, h.index as u64, i as u64]) % 58;
        let noise: f64 = r.random_range(0.8..1.2);
        let mut kcl = (mean.max(1.0) * cover as f64 * noise).round() as i64 + between(&mut r, 0, 40);
        if e.ev == Ev::Modify(1) {
            kcl += between(&mut r, 1, 20);
        }
        let mut row = Row::new(RecordType::Stock);
        let natural = format!("KC{}{:02}", ymd8(d), i + 1);
        common(&mut row, u, jlid(u, RecordType::Stock, &natural), e);
        row.set("TJRQ", V::Date(d));
        row.set("YPMC", V::St(drug.ypmc));
        row.set("YPGG", V::St(drug.ypgg));
        row.set("KCL", V::I(kcl));
        row.set("DRXHL", V::I(i64::try_from(use_today).unwrap_or(0)));
        out(row)?;
    }
    Ok(())
}

/// The visits row of day `d`, if the upload carries it.
pub fn visits(u: &Upload<'_>, season: &Season, d: NaiveDate) -> Option<Row> {
    let h = u.hospital;
    let mut r = rng::stream(u.seed, &[tag::VISITS, h.index as u64, rng::day_key(d)]);
    let lf = life(&mut r, d);
    let e = lf.get(select(&lf, u)?)?;
    let base = if h.level == 3 { 3000.0 } else { 800.0 } * h.size / if h.level == 3 { 1.4 } else { 0.42 };
    let flu = season.expected(h, d);
    let mz = base
        * season.scale
        * Season::weekday_factor(d)
        * (1.0 + 0.25 * season.intensity(d))
        * r.random_range(0.93..1.07);
    let mut mzrc = (mz.round() as i64).max((flu * 1.5) as i64 + 1);
    let jzrc = ((mz * r.random_range(0.08..0.15)).round() as i64).max((flu * 0.5) as i64 + 1);
    let zyrs = (f64::from(h.beds) * r.random_range(0.85..1.05)).round() as i64;
    if e.ev == Ev::Modify(1) {
        mzrc += between(&mut r, 1, 50);
    }
    let mut row = Row::new(RecordType::Visits);
    let natural = format!("RC{}", ymd8(d));
    common(&mut row, u, jlid(u, RecordType::Visits, &natural), e);
    row.set("TJRQ", V::Date(d));
    row.set("MZRC", V::I(mzrc));
    row.set("JZRC", V::I(jzrc));
    row.set("ZYRS", V::I(zyrs));
    Some(row)
}
