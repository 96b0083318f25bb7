//! Inpatient stays: admission to discharge (§3.1 JZLX 3 while in hospital,
//! then §3.2 and the §3.3 summary), severity, ICU, costs, outcome, and deaths
//! (§3.4, with the GDRQ filled in when the record is archived).

use chrono::{Duration, NaiveDate, NaiveDateTime};

use super::clinical::{self, Dx};
use super::encounter::{Encounter, Ev, Event, Life, M_ESCALATE, M_OUTCOME, Skeleton, World, at};
use super::rng::{self, R, between, chance, weighted};
use super::text::{self, PlantedId};

/// §3.2 modification: another diagnosis coded later.
pub const M_DX_ADD: u8 = 1;
/// §3.3 modification: the discharge advice amended.
pub const M_AMEND: u8 = 1;
/// §3.4 modification: GDRQ set when the record is archived.
pub const M_GDRQ: u8 = 1;

/// The free text of a discharge summary.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub ryqk: String,
    pub ryzd: String,
    pub zlgc: String,
    pub cyzd: String,
    pub cyqk: String,
    pub cyyz: String,
    /// CYYZ after `M_AMEND`.
    pub cyyz_amended: String,
}

/// A stay, from admission to discharge.
#[derive(Clone, Debug)]
pub struct Stay {
    pub rysj: NaiveDateTime,
    pub cysj: NaiveDateTime,
    pub rytj: u8,
    pub sjzyts: i64,
    pub zycs: i64,
    pub bah: String,
    pub cykb: &'static str,
    pub zdyj: Option<u8>,
    pub mzzd: Option<Dx>,
    pub zyzd: Dx,
    pub qtzd: Vec<Dx>,
    /// Added by `M_DX_ADD`.
    pub qtzd_late: Dx,
    pub rybq: u8,
    pub icuts: Option<i64>,
    pub jxtqsj: Option<i64>,
    pub ecmo: Option<u8>,
    pub lyfs: u8,
    pub zfy: i64,
    pub zfje: i64,
    pub xyf: Option<i64>,
    pub kjywf: Option<i64>,
    pub hlf: Option<i64>,
    pub ylfuf: Option<i64>,
    /// §3.1 ZFY after `M_ESCALATE` (before discharge).
    pub zfy_mid: i64,
    /// §3.2 events.
    pub life: Life,
    pub summary: Summary,
    pub summary_life: Life,
    /// Identifiers planted in the summary's text.
    pub plants: Vec<PlantedId>,
}

/// A death (§3.4).
#[derive(Clone, Debug)]
pub struct DeathInfo {
    pub rysj: Option<NaiveDateTime>,
    pub swsj: NaiveDateTime,
    pub swdd: Option<u8>,
    pub zjsy: Dx,
    pub gbsy: &'static str,
    pub lgsyxg: u8,
    pub gdrq: NaiveDate,
    pub ryqk: String,
    pub zlgc: String,
    pub life: Life,
    pub plants: Vec<PlantedId>,
}

fn mins(m: i64) -> Duration {
    Duration::minutes(m)
}

/// Admit the encounter: the stay, the §3.1 life of an inpatient, §3.2, summary, death.
pub fn admit(w: &World<'_>, r: &mut R, enc: &mut Encounter, sk: &Skeleton) {
    let rysj = enc.jzsj;
    let cysj = sk.discharge.unwrap_or(rysj + Duration::days(3));
    let sjzyts = (cysj.date() - rysj.date()).num_days().max(1);
    let severe = enc.lcfx_final;
    let icu = match severe {
        4 => chance(r, 0.9),
        3 => chance(r, 0.25),
        _ => false,
    };
    let jxtq = icu && chance(r, if severe == 4 { 0.75 } else { 0.35 });
    let ecmo = jxtq && severe == 4 && chance(r, 0.1);
    let yn = |b: bool| if b { 1u8 } else { 2 };
    enc.flags = (yn(icu), yn(jxtq), yn(ecmo));
    let p_death = match severe {
        4 => 0.2,
        3 => 0.04,
        _ => 0.002,
    } * if enc.nl >= 80 { 2.0 } else { 1.0 };
    let died = chance(r, p_death);
    let lyfs = if died { 5 } else { weighted(r, &[(1u8, 0.88), (2, 0.04), (3, 0.02), (4, 0.05), (9, 0.01)]) };
    enc.zgzt = 1;
    enc.zgzt_final = match lyfs {
        5 => 3,
        2 => 4,
        9 => 9,
        _ => 2,
    };
    let icuts = if icu {
        Some(between(r, 1, sjzyts))
    } else if chance(r, 0.5) {
        Some(0)
    } else {
        None
    };
    let jxtqsj = if jxtq { Some(between(r, 12, 24 * icuts.unwrap_or(1).max(1))) } else { None };
    // Costs (fen).
    let live_orders = enc.meds.iter().filter(|o| o.life.iter().all(|e| e.ev != Ev::Delete));
    let drugs: i64 = live_orders.clone().map(|o| o.je_final).sum();
    let antibacterial: i64 = live_orders.filter(|o| o.drug.antibacterial).map(|o| o.je_final).sum();
    let xyf = drugs + between(r, 2_000, 20_000) * sjzyts;
    let hlf = between(r, 2_500, 8_000) * sjzyts + if icu { 30_000 * icuts.unwrap_or(1) } else { 0 };
    let ylfuf = between(r, 5_000, 20_000) * sjzyts;
    let other = enc.labs.iter().map(|l| l.fee).sum::<i64>()
        + between(r, 20_000, 80_000)
        + if icu { 150_000 * icuts.unwrap_or(1) } else { 0 };
    let zfy = xyf + hlf + ylfuf + other;
    let self_pay = if enc.person.ylfkfs == Some("07") { 1.0 } else { r_share(r) };
    #[allow(clippy::cast_possible_truncation)]
    let zfje = ((zfy as f64) * self_pay).round() as i64;
    let zyzd = enc.dx_confirmed.first().copied().unwrap_or(clinical::flu_dx(enc.virus, false));
    let mut qtzd: Vec<Dx> = enc.dx_confirmed.iter().skip(1).copied().collect();
    if died && !qtzd.iter().any(|d| d.0 == "J96.000") {
        qtzd.push(("J96.000", "急性呼吸衰竭"));
    }
    qtzd.truncate(14);
    let mzzd = if chance(r, 0.7) {
        Some(rng::pick(r, &[clinical::flu_dx(None, false), ("R50.900", "发热"), ("J18.900", "肺炎")]))
    } else {
        None
    };
    let created = cysj + mins(between(r, 120, 2880));
    let mut life = vec![Event { at: created, ywrq: cysj.date(), ev: Ev::Create }];
    if chance(r, 0.1) {
        life.push(Event { at: created + mins(between(r, 1440, 5760)), ywrq: cysj.date(), ev: Ev::Modify(M_DX_ADD) });
    }
    let s_created = cysj + mins(between(r, 60, 1200));
    let mut summary_life = vec![Event { at: s_created, ywrq: cysj.date(), ev: Ev::Create }];
    if chance(r, 0.05) {
        summary_life.push(Event {
            at: s_created + mins(between(r, 120, 2880)),
            ywrq: cysj.date(),
            ev: Ev::Modify(M_AMEND),
        });
    }
    let mut stay = Stay {
        rysj,
        cysj,
        rytj: weighted(r, &[(1u8, 0.45), (2, 0.5), (3, 0.04), (9, 0.01)]),
        sjzyts,
        zycs: if enc.nl >= 60 && chance(r, 0.4) {
            between(r, 2, 9)
        } else {
            weighted(r, &[(1, 0.85), (2, 0.1), (3, 0.05)])
        },
        bah: format!(
            "{:08}",
            rng::hash(w.seed, &[enc.k, rng::day_key(enc.day), w.hospital.index as u64]) % 100_000_000
        ),
        cykb: if icu && chance(r, 0.4) { clinical::DEPT_ICU } else { enc.ksmc },
        zdyj: if chance(r, 0.9) { Some(if enc.virus.is_some() { 2 } else { 1 }) } else { None },
        mzzd,
        zyzd,
        qtzd,
        qtzd_late: rng::pick(
            r,
            &[("R05.x00", "咳嗽"), ("E87.600", "低钾血症"), ("K59.000", "便秘"), ("R00.000", "心动过速")],
        ),
        rybq: weighted(r, &[(1u8, 0.85), (2, 0.1), (3, 0.04), (4, 0.01)]),
        icuts,
        jxtqsj,
        ecmo: if severe >= 3 || chance(r, 0.3) { Some(yn(ecmo)) } else { None },
        lyfs,
        zfy,
        zfje,
        xyf: Some(xyf),
        kjywf: if antibacterial > 0 || chance(r, 0.3) { Some(antibacterial) } else { None },
        hlf: if chance(r, 0.95) { Some(hlf) } else { None },
        ylfuf: if chance(r, 0.95) { Some(ylfuf) } else { None },
        zfy_mid: zfy * 2 / 5,
        life,
        summary: Summary::default(),
        summary_life,
        plants: Vec::new(),
    };
    if died {
        // A death gets a death record (§3.4), not a discharge summary.
        stay.summary_life.clear();
    } else {
        let (summary, plants) = text::summary(w, r, enc, &stay);
        stay.summary = summary;
        stay.plants = plants;
    }
    enc.cost = (zfy / 12, None, None, None);
    enc.zfy_final = zfy;
    // The §3.1 record while in hospital.
    let window = (cysj - rysj).num_minutes();
    if window > 26 * 60 && (enc.lcfx_final != enc.lcfx || icu || chance(r, 0.5)) {
        let t = rysj + mins(between(r, 20 * 60, (window - 120).min(44 * 60)));
        enc.op_life.push(Event { at: t, ywrq: t.date(), ev: Ev::Modify(M_ESCALATE) });
    }
    let t = cysj + mins(between(r, 10, 240));
    let ev = if w.hospital.style.deletes_inpatient { Ev::Delete } else { Ev::Modify(M_OUTCOME) };
    enc.op_life.push(Event { at: t, ywrq: cysj.date(), ev });
    enc.op_life.sort_by_key(|e| e.at);
    if let Some(i) = enc.op_life.iter().position(|e| e.ev == Ev::Delete) {
        enc.op_life.truncate(i + 1);
    }
    let mut last = enc.jzsj.date();
    for e in &mut enc.op_life {
        last = last.max(e.ywrq);
        e.ywrq = last;
    }
    if died {
        let swdd = if icu {
            Some(1)
        } else if chance(r, 0.95) {
            Some(2)
        } else {
            Some(9)
        };
        death(w, r, enc, Some(rysj), cysj, swdd, zyzd.0);
    }
    enc.stay = Some(stay);
}

fn r_share(r: &mut R) -> f64 {
    f64::from(u32::try_from(between(r, 15, 45)).unwrap_or(30)) / 100.0
}

fn death(
    w: &World<'_>,
    r: &mut R,
    enc: &mut Encounter,
    rysj: Option<NaiveDateTime>,
    swsj: NaiveDateTime,
    swdd: Option<u8>,
    gbsy: &'static str,
) {
    let zjsy = rng::pick(r, clinical::COMPLICATIONS.get(1..5).unwrap_or(clinical::COMPLICATIONS));
    let gdrq = swsj.date() + Duration::days(between(r, 1, 6));
    let created = swsj + mins(between(r, 60, 600));
    let archived = at(gdrq, between(r, 9 * 60, 17 * 60)).max(created + mins(30));
    let life = vec![
        Event { at: created, ywrq: swsj.date(), ev: Ev::Create },
        Event { at: archived, ywrq: swsj.date(), ev: Ev::Modify(M_GDRQ) },
    ];
    let mut d = DeathInfo {
        rysj,
        swsj,
        swdd,
        zjsy,
        gbsy,
        lgsyxg: weighted(r, &[(1u8, 0.6), (2, 0.35), (3, 0.05)]),
        gdrq,
        ryqk: String::new(),
        zlgc: String::new(),
        life,
        plants: Vec::new(),
    };
    let (ryqk, zlgc, plants) = text::death(w, r, enc, &d);
    d.ryqk = ryqk;
    d.zlgc = zlgc;
    d.plants = plants;
    enc.death = Some(d);
}

/// A death in the emergency room (SWDD 3, no RYSJ).
pub fn emergency_death(w: &World<'_>, r: &mut R, enc: &mut Encounter, swsj: NaiveDateTime) {
    let gbsy = clinical::flu_dx(enc.virus, true).0;
    death(w, r, enc, None, swsj, Some(3), gbsy);
}
