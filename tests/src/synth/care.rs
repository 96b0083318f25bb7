//! The care of an encounter: influenza tests and their results, diagnoses
//! (consistent with the results and with when they were reported), orders
//! (anti-influenza drugs by age and severity, other drugs), outpatient costs,
//! and the life of the outpatient records (lab confirmation, cost changes,
//! voided visits, deaths in the emergency room).

use chrono::{Duration, NaiveDateTime};

use super::clinical::{self, Drug, Dx, Test};
use super::encounter::{
    Encounter, Ev, Event, Kind, LabTest, Life, M_CONFIRM, M_COST, M_OUTCOME, M_STOP, M_SUBTYPE, MedOrder, Skeleton,
    World,
};
use super::rng::{self, R, between, chance, weighted};
use super::row::ymd8;
use super::stay;

fn ev(at: NaiveDateTime, ev: Ev) -> Event {
    Event { at, ywrq: at.date(), ev }
}

fn mins(m: i64) -> Duration {
    Duration::minutes(m)
}

/// Remove the events at or after `t` and delete the record at `t` (YWRQ kept).
pub fn kill(life: &mut Life, t: NaiveDateTime) {
    if life.iter().any(|e| e.ev == Ev::Delete) {
        return;
    }
    let ywrq = life.first().map(|e| e.ywrq);
    life.retain(|e| e.at < t);
    if let Some(ywrq) = ywrq {
        life.push(Event { at: t, ywrq, ev: Ev::Delete });
    }
}

/// Influenza tests of the encounter; clears `enc.virus` when no test found it.
pub fn labs(r: &mut R, enc: &mut Encounter, sk: &Skeleton) {
    let tested = match enc.kind {
        Kind::Outpatient => 0.55,
        Kind::Emergency => 0.7,
        Kind::Inpatient => 0.95,
    };
    if !chance(r, tested) {
        enc.virus = None;
        return;
    }
    let n = match enc.kind {
        Kind::Inpatient => weighted(r, &[(1, 0.5), (2, 0.35), (3, 0.15)]),
        _ => weighted(r, &[(1, 0.9), (2, 0.1)]),
    };
    let mut found = false;
    let end = sk.discharge.unwrap_or(enc.jzsj + Duration::days(1));
    let mut cysj = match enc.kind {
        Kind::Inpatient => (enc.jzsj + mins(between(r, 30, 600))).min(end - mins(30)).max(enc.jzsj + mins(10)),
        _ => enc.jzsj + mins(between(r, 5, 40)),
    };
    for j in 0..n {
        let test: Test = if j == 0 { weighted(r, clinical::TESTS) } else { rng::pick(r, clinical::PCR_TESTS) };
        let bgsj = cysj + mins(between(r, test.turnaround.0, test.turnaround.1));
        let sensitivity = if test.jyff == 1 { 0.75 } else { 0.93 };
        let invalid = chance(r, 0.01);
        let positive = !invalid && enc.virus.is_some() && chance(r, sensitivity);
        let dxjg = if invalid {
            4
        } else if positive {
            weighted(r, &[(1u8, 0.92), (3, 0.08)])
        } else {
            2
        };
        let (mut bdlx, mut yx, mut yx_final) = (None, None, None);
        if positive {
            let (b, y) = enc.virus.unwrap_or_default().codes();
            bdlx = Some(b);
            if test.subtypes {
                yx = y;
                if matches!(y, Some(11 | 12)) && chance(r, 0.15) {
                    yx = Some(19);
                    yx_final = y;
                }
            }
        }
        let bblb = if test.jyff == 4 {
            5
        } else if enc.kind == Kind::Inpatient && enc.lcfx_final >= 3 && chance(r, 0.2) {
            4
        } else if enc.kind == Kind::Inpatient && chance(r, 0.2) {
            3
        } else {
            weighted(r, &[(1u8, 0.65), (2, 0.35)])
        };
        let ct =
            if positive && test.jyff == 2 { Some(i32::try_from(between(r, 160, 355)).unwrap_or(250)) } else { None };
        let created = bgsj + mins(between(r, 1, 20));
        let mut life = vec![ev(created, Ev::Create)];
        if yx_final.is_some() {
            let at = created + mins(between(r, 600, 4000));
            life.push(Event { at, ywrq: created.date(), ev: Ev::Modify(M_SUBTYPE) });
        }
        found |= positive;
        enc.labs.push(LabTest {
            bgdh: format!("JY{}{:06}{}", ymd8(enc.day), enc.k, j + 1),
            bblb,
            cysj,
            bgsj,
            jyxmmc: test.jyxmmc,
            jyff: test.jyff,
            dxjg,
            bdlx,
            yx,
            yx_final,
            ct,
            fee: test.fee,
            life,
        });
        cysj = match enc.kind {
            Kind::Inpatient => (cysj + mins(between(r, 600, 2880))).min(end - mins(120)).max(cysj),
            _ => cysj + mins(between(r, 0, 20)),
        };
    }
    if !found {
        enc.virus = None;
    }
    // Rarely a negative report is withdrawn (作废) and the stay goes on.
    if let Some(l) = enc.labs.iter_mut().find(|l| l.dxjg == 2)
        && chance(r, 0.01)
    {
        let t = l.life.last().map_or(l.bgsj, |e| e.at) + mins(between(r, 30, 600));
        kill(&mut l.life, t);
    }
}

fn first_positive(enc: &Encounter) -> Option<NaiveDateTime> {
    enc.labs.iter().filter(|l| matches!(l.dxjg, 1 | 3) && (1..=4).contains(&l.jyff)).map(|l| l.bgsj).min()
}

/// Diagnoses, ZDYJ, GWYS, and the creation time of the §3.1 record.
pub fn diagnoses(w: &World<'_>, r: &mut R, enc: &mut Encounter) {
    let pneumonia = match enc.kind {
        Kind::Inpatient => enc.lcfx_final >= 2 && chance(r, 0.6),
        Kind::Emergency => enc.lcfx >= 3 && chance(r, 0.5),
        Kind::Outpatient => false,
    };
    let p_comorbid = if enc.nl >= 65 {
        0.55
    } else if enc.nl >= 18 {
        0.15
    } else {
        0.05
    };
    let mut secondary: Vec<Dx> = Vec::new();
    let mut gwys: Vec<u8> = Vec::new();
    if enc.nl < 5 {
        gwys.push(1);
    }
    if enc.nl >= 65 {
        gwys.push(2);
    }
    for _ in 0..2 {
        if chance(r, p_comorbid) {
            let (dx, risk) = rng::pick(r, clinical::COMORBIDITIES);
            if !secondary.contains(&dx) {
                secondary.push(dx);
                gwys.push(risk);
            }
        }
    }
    if enc.person.xb == 2 && (20..=40).contains(&enc.nl) && chance(r, 0.03) {
        gwys.push(12);
    }
    if chance(r, 0.01) {
        gwys.push(99);
    }
    gwys.sort_unstable();
    gwys.dedup();
    enc.gwys = gwys;
    if enc.kind == Kind::Inpatient && enc.lcfx_final >= 3 {
        secondary.push(rng::pick(r, clinical::COMPLICATIONS.get(1..4).unwrap_or(clinical::COMPLICATIONS)));
    }
    if enc.kind != Kind::Inpatient && chance(r, 0.4) {
        secondary.push(rng::pick(r, clinical::MINOR));
    }
    secondary.truncate(9);
    let with =
        |main: Dx, secondary: &[Dx]| -> Vec<Dx> { std::iter::once(main).chain(secondary.iter().copied()).collect() };
    let created = match enc.kind {
        Kind::Inpatient => enc.jzsj + mins(between(r, 180, 600)),
        _ => enc.jzsj + mins(between(r, 30, 120)),
    };
    enc.op_life = vec![Event { at: created, ywrq: enc.jzsj.date(), ev: Ev::Create }];
    let confirmed = clinical::flu_dx(enc.virus, pneumonia);
    let clinical_dx = clinical::flu_dx(None, pneumonia);
    match first_positive(enc) {
        Some(_) if enc.kind != Kind::Inpatient && chance(r, w.lab_only_rate) => {
            enc.lab_only = true;
            enc.zdyj = 2;
            enc.dx = with(rng::pick(r, clinical::NOT_FLU_DX), &[]);
        }
        Some(t) if t <= created => {
            enc.zdyj = 2;
            enc.dx = with(confirmed, &secondary);
        }
        Some(t) => {
            enc.zdyj = 1;
            enc.dx = with(clinical_dx, &secondary);
            if chance(r, 0.6) {
                enc.dx_confirmed = with(confirmed, &secondary);
                let at = (t + mins(between(r, 10, 240))).max(created + mins(5));
                enc.op_life.push(Event { at, ywrq: enc.jzsj.date(), ev: Ev::Modify(M_CONFIRM) });
            }
        }
        None => {
            enc.zdyj = 1;
            let main = if chance(r, 0.04) { rng::pick(r, clinical::NAME_ONLY_DX) } else { clinical_dx };
            enc.dx = with(main, &secondary);
        }
    }
    if enc.dx_confirmed.is_empty() {
        enc.dx_confirmed = enc.dx.clone();
    }
}

fn oseltamivir_for(nl: i64) -> (Drug, i64) {
    match nl {
        0 => (clinical::OSELTAMIVIR_KIDS, 20_000),
        1..=2 => (clinical::OSELTAMIVIR_KIDS, 30_000),
        3..=6 => (clinical::OSELTAMIVIR_KIDS, 45_000),
        7..=12 => (clinical::OSELTAMIVIR_KIDS, 60_000),
        _ => (clinical::OSELTAMIVIR, 75_000),
    }
}

fn antiviral(r: &mut R, enc: &Encounter) -> (Drug, i64) {
    if enc.kind == Kind::Inpatient && enc.lcfx_final >= 3 && enc.nl >= 18 && chance(r, 0.3) {
        return (clinical::PERAMIVIR, 300_000);
    }
    if enc.nl >= 5 && chance(r, 0.18) {
        return (
            clinical::BALOXAVIR,
            if enc.nl < 12 {
                20_000
            } else if chance(r, 0.1) {
                80_000
            } else {
                40_000
            },
        );
    }
    if enc.nl >= 7 && chance(r, 0.03) {
        return (clinical::ZANAMIVIR, 10_000);
    }
    if enc.nl >= 18 && chance(r, 0.06) {
        return (clinical::ARBIDOL, 200);
    }
    oseltamivir_for(enc.nl)
}

fn order(yzid: String, line: u32, yzlb: u8, drug: Drug, dcjl: i64, kssj: NaiveDateTime) -> MedOrder {
    let je = drug.dose_price * drug.per_day * drug.days;
    let tzsj = if drug.days > 1 { Some(kssj + Duration::days(drug.days)) } else { Some(kssj) };
    let created = kssj + mins(i64::from(line % 5) + 1);
    MedOrder {
        yzid,
        line,
        yzlb,
        drug,
        dcjl,
        kssj,
        tzsj,
        stop: None,
        je: Some(je),
        je_final: je,
        life: vec![ev(created, Ev::Create)],
    }
}

/// Orders of the encounter, KBDSJ, and the outpatient costs.
pub fn meds(r: &mut R, enc: &mut Encounter, sk: &Skeleton) {
    let p_av = match enc.kind {
        Kind::Inpatient => 0.92,
        _ if enc.virus.is_some() => 0.85,
        _ => 0.6,
    };
    let created = enc.op_life.first().map_or(enc.jzsj, |e| e.at);
    let day = ymd8(enc.day);
    let mut orders = Vec::new();
    if enc.kind == Kind::Inpatient {
        let end = sk.discharge.unwrap_or(enc.jzsj + Duration::days(3));
        let mut line = 1u32;
        let mut long_term = |drug: Drug, dcjl: i64, kssj: NaiveDateTime, r: &mut R| {
            let mut o = order(format!("YZ{day}{:06}{line:02}", enc.k), line, 1, drug, dcjl, kssj);
            o.tzsj = None;
            o.je = None;
            let stop = (kssj + Duration::days(drug.days)).min(end).max(kssj);
            let doses = ((stop - kssj).num_hours() * drug.per_day / 24).max(1);
            o.je_final = drug.dose_price * doses;
            o.stop = Some(stop);
            o.life.push(ev(stop + mins(between(r, 1, 60)), Ev::Modify(M_STOP)));
            line += 1;
            o
        };
        if chance(r, p_av) {
            let (drug, dcjl) = antiviral(r, enc);
            let gap = (created - enc.jzsj).num_minutes();
            let kssj = enc.jzsj + mins(between(r, 30, (gap - 20).max(30)));
            orders.push(long_term(drug, dcjl, kssj, r));
        }
        let pneumonia =
            enc.dx.iter().chain(&enc.dx_confirmed).any(|d| d.0.starts_with("J10.0") || d.0.starts_with("J11.0"));
        let span = (end - enc.jzsj).num_minutes().max(120);
        let later = |r: &mut R| enc.jzsj + mins(between(r, 60, (span - 60).max(61)));
        if pneumonia && chance(r, 0.7) {
            let d = rng::pick(r, clinical::INPATIENT.get(0..3).unwrap_or(clinical::INPATIENT));
            let k = later(r);
            orders.push(long_term(d, d.dose_milli, k, r));
        }
        for (i, p) in [(3usize, if enc.lcfx_final >= 3 { 0.4 } else { 0.05 }), (4, 0.3), (5, 0.5)] {
            if chance(r, p) {
                let d = clinical::INPATIENT.get(i).copied().unwrap_or_default();
                let k = later(r);
                orders.push(long_term(d, d.dose_milli, k, r));
            }
        }
        if chance(r, 0.5) {
            let d = clinical::OTHERS.first().copied().unwrap_or_default();
            let k = later(r);
            let mut o = order(format!("LS{day}{:06}{line:02}", enc.k), line, 2, d, d.dose_milli, k);
            o.tzsj = Some(k);
            orders.push(o);
        }
    } else {
        let yzid = format!("CF{day}{:06}", enc.k);
        let gap = (created - enc.jzsj).num_minutes();
        let kssj = enc.jzsj + mins(between(r, 10, (gap - 10).max(10)));
        let mut line = 1;
        if chance(r, p_av) {
            let (drug, dcjl) = antiviral(r, enc);
            orders.push(order(yzid.clone(), line, 3, drug, dcjl, kssj));
            line += 1;
        }
        for _ in 0..weighted(r, &[(0, 0.3), (1, 0.5), (2, 0.2)]) {
            let d = if enc.nl < 12 {
                rng::pick(r, clinical::OTHERS.get(1..).unwrap_or(clinical::OTHERS))
            } else {
                rng::pick(r, clinical::OTHERS)
            };
            if orders.iter().all(|o: &MedOrder| o.drug.ypmc != d.ypmc) {
                orders.push(order(yzid.clone(), line, 3, d, d.dose_milli, kssj));
                line += 1;
            }
        }
        for o in orders.iter_mut().filter(|o| !o.drug.antiviral) {
            if chance(r, 0.02) {
                let t = o.kssj + mins(between(r, 10, 120));
                kill(&mut o.life, t);
            }
        }
    }
    enc.kbdsj = orders.iter().filter(|o| o.drug.antiviral).map(|o| o.kssj).min();
    enc.meds = orders;
    if enc.kind != Kind::Inpatient {
        let live = |o: &&MedOrder| o.life.iter().all(|e| e.ev != Ev::Delete);
        let ypf: i64 = enc.meds.iter().filter(live).map(|o| o.je_final).sum();
        let kbdf: i64 = enc.meds.iter().filter(live).filter(|o| o.drug.antiviral).map(|o| o.je_final).sum();
        let mut jyf: i64 = enc.labs.iter().map(|l| l.fee).sum();
        if chance(r, 0.7) {
            jyf += 2_500;
        }
        if chance(r, 0.4) {
            jyf += 3_000;
        }
        let obs = if enc.kind == Kind::Emergency { between(r, 3_000, 30_000) } else { 0 };
        let zfy = between(r, 1_000, 5_000) + jyf + ypf + obs;
        let opt = |r: &mut R, v: i64| if chance(r, 0.95) { Some(v) } else { None };
        enc.cost = (zfy, opt(r, ypf), opt(r, jyf), opt(r, kbdf));
        enc.zfy_final = zfy;
    }
}

/// The life of an outpatient or emergency §3.1 record: cost changes, voided
/// visits (every record of the visit deleted), deaths in the emergency room.
pub fn outpatient_life(w: &World<'_>, r: &mut R, enc: &mut Encounter) {
    enc.zgzt = weighted(r, &[(1u8, 0.65), (2, 0.3), (9, 0.05)]);
    enc.zgzt_final = enc.zgzt;
    let created = enc.op_life.first().map_or(enc.jzsj, |e| e.at);
    let ywrq = enc.jzsj.date();
    if chance(r, 0.1) {
        let at = created + mins(between(r, 60, 1440));
        enc.zfy_final = enc.cost.0 + between(r, 2_000, 20_000);
        enc.op_life.push(Event { at, ywrq, ev: Ev::Modify(M_COST) });
    }
    if enc.kind == Kind::Emergency && enc.lcfx >= 3 && chance(r, 0.04) {
        let swsj = enc.jzsj + mins(between(r, 120, 1200));
        enc.zgzt_final = 3;
        enc.op_life.push(Event { at: swsj + mins(between(r, 20, 120)), ywrq, ev: Ev::Modify(M_OUTCOME) });
        stay::emergency_death(w, r, enc, swsj);
    } else if !enc.lab_only && chance(r, 0.01) {
        // A voided visit: every record of it is deleted.
        let last = enc
            .op_life
            .iter()
            .chain(enc.labs.iter().flat_map(|l| l.life.iter()))
            .chain(enc.meds.iter().flat_map(|m| m.life.iter()))
            .map(|e| e.at)
            .max()
            .unwrap_or(created);
        let t = last + mins(between(r, 30, 2000));
        kill(&mut enc.op_life, t);
        for l in &mut enc.labs {
            kill(&mut l.life, t + mins(1));
        }
        for m in &mut enc.meds {
            kill(&mut m.life, t + mins(2));
        }
    }
    enc.op_life.sort_by_key(|e| e.at);
}

/// Orders of a long-term order that was stopped (`M_STOP`).
pub fn stopped(o: &MedOrder) -> bool {
    o.life.iter().any(|e| e.ev == Ev::Modify(M_STOP))
}
