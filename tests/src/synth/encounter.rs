//! One influenza encounter of the world (an outpatient or emergency visit, or
//! an inpatient stay) with everything the hospital records about it: patient,
//! diagnoses, tests, orders, the stay and its outcome, and the life of every
//! record (created, modified, deleted, each at a time and with a YWRQ).
//!
//! An encounter is drawn from its own stream `(seed, hospital, day, k)`: first
//! a cheap [`Skeleton`] (kind, time, length of stay), which tells whether any
//! of its records can fall in an upload's window; only then the details.

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};
use rand::Rng;

use super::care;
use super::clinical::Dx;
use super::epidemic::{Season, Virus};
use super::hospitals::Hospital;
use super::people::{Person, birth_date, completed_months, completed_years};
use super::rng::{self, R, between, chance, tag, weighted};
use super::row::ymd8;
use super::stay::{self, DeathInfo, Stay};

/// The kind of encounter (§3.1 JZLX).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Kind {
    /// 门诊 (JZLX 1).
    #[default]
    Outpatient,
    /// 急诊 (JZLX 2).
    Emergency,
    /// 在院, later 出院 (JZLX 3, §3.2).
    Inpatient,
}

/// What happens to a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ev {
    Create,
    /// A change, by the type's modification code (`M_…`).
    Modify(u8),
    Delete,
}

/// One event in the life of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// GXSJ of the version.
    pub at: NaiveDateTime,
    /// YWRQ of the version.
    pub ywrq: NaiveDate,
    pub ev: Ev,
}

/// The events of one record, in time order, the first a `Create`.
pub type Life = Vec<Event>;

/// §3.1 modifications.
pub const M_CONFIRM: u8 = 1;
pub const M_COST: u8 = 2;
pub const M_ESCALATE: u8 = 3;
pub const M_OUTCOME: u8 = 4;

/// A §3.6 test.
#[derive(Clone, Debug)]
pub struct LabTest {
    pub bgdh: String,
    pub bblb: u8,
    pub cysj: NaiveDateTime,
    pub bgsj: NaiveDateTime,
    pub jyxmmc: &'static str,
    pub jyff: u8,
    pub dxjg: u8,
    pub bdlx: Option<u8>,
    /// YX as first reported.
    pub yx: Option<u8>,
    /// YX after the `M_SUBTYPE` change.
    pub yx_final: Option<u8>,
    pub ct: Option<i32>,
    pub fee: i64,
    pub life: Life,
}

/// §3.6 modification: the subtype reported later.
pub const M_SUBTYPE: u8 = 1;

/// A §3.5 order.
#[derive(Clone, Debug)]
pub struct MedOrder {
    pub yzid: String,
    pub line: u32,
    pub yzlb: u8,
    pub drug: super::clinical::Drug,
    /// Thousandths of JLDW.
    pub dcjl: i64,
    pub kssj: NaiveDateTime,
    /// TZSJ as first recorded (outpatient prescriptions, temporary orders).
    pub tzsj: Option<NaiveDateTime>,
    /// TZSJ set by the `M_STOP` change (long-term orders).
    pub stop: Option<NaiveDateTime>,
    /// JE (fen) when known at creation; after `M_STOP` it is `je_final`.
    pub je: Option<i64>,
    pub je_final: i64,
    pub life: Life,
}

/// §3.5 modification: a long-term order stopped.
pub const M_STOP: u8 = 1;

/// One encounter.
#[derive(Clone, Debug)]
pub struct Encounter {
    pub day: NaiveDate,
    pub k: u64,
    pub kind: Kind,
    pub jzlsh: String,
    /// 门诊号 / 住院号.
    pub mzzyh: String,
    pub person: Person,
    pub nl: i64,
    pub months: Option<i64>,
    /// JZSJ (= RYSJ of a stay).
    pub jzsj: NaiveDateTime,
    pub ksmc: &'static str,
    pub fbrq: Option<NaiveDate>,
    /// Tenths of a degree.
    pub zgtw: Option<i32>,
    /// Diagnoses as first recorded (first = main).
    pub dx: Vec<Dx>,
    /// Diagnoses after `M_CONFIRM`.
    pub dx_confirmed: Vec<Dx>,
    pub zdyj: u8,
    pub lcfx: u8,
    /// LCFX after `M_ESCALATE`.
    pub lcfx_final: u8,
    pub gwys: Vec<u8>,
    pub ymjz: Option<u8>,
    pub kbdsj: Option<NaiveDateTime>,
    /// ICU/JXTQ/ECMO flags after `M_ESCALATE` (inpatients).
    pub flags: (u8, u8, u8),
    pub zgzt: u8,
    /// ZGZT after `M_OUTCOME`.
    pub zgzt_final: u8,
    /// ZFY, YPF, JYF, KBDF (fen).
    pub cost: (i64, Option<i64>, Option<i64>, Option<i64>),
    /// ZFY after `M_COST`.
    pub zfy_final: i64,
    /// Whether the §3.1 record is in scope only by a positive test (rule 3).
    pub lab_only: bool,
    /// The virus found, if any test was positive.
    pub virus: Option<Virus>,
    pub op_life: Life,
    pub labs: Vec<LabTest>,
    pub meds: Vec<MedOrder>,
    pub stay: Option<Stay>,
    pub death: Option<DeathInfo>,
}

/// The part of an encounter drawn first.
#[derive(Clone, Copy, Debug)]
pub struct Skeleton {
    pub kind: Kind,
    pub visit: NaiveDateTime,
    /// Days from admission to discharge (inpatients).
    pub los: i64,
    /// CYSJ of a stay.
    pub discharge: Option<NaiveDateTime>,
    /// No record of the encounter has a YWRQ after this.
    pub last_ywrq: NaiveDate,
}

/// What details need besides the stream.
pub struct World<'a> {
    pub seed: u64,
    pub hospital: &'a Hospital,
    pub season: &'a Season,
    pub plant_ids: bool,
    /// Share of positive outpatient encounters diagnosed as non-influenza (in scope by rule 3 only).
    pub lab_only_rate: f64,
}

/// A time on `day` (hours may exceed 23 to run into the next day).
pub fn at(day: NaiveDate, minutes: i64) -> NaiveDateTime {
    day.and_time(NaiveTime::MIN) + Duration::minutes(minutes)
}

/// The skeleton of encounter `k` of `day`, and the stream to continue with.
pub fn skeleton(seed: u64, h: &Hospital, day: NaiveDate, k: u64) -> (R, Skeleton) {
    let mut r = rng::stream(seed, &[tag::ENCOUNTER, h.index as u64, rng::day_key(day), k]);
    let inpatient_share = if h.level == 3 { 0.09 } else { 0.07 };
    let kind =
        weighted(&mut r, &[(Kind::Outpatient, 0.70), (Kind::Emergency, 0.21), (Kind::Inpatient, inpatient_share)]);
    let minute = match kind {
        Kind::Outpatient => {
            let hour = weighted(
                &mut r,
                &[
                    (8, 3.0),
                    (9, 4.0),
                    (10, 4.0),
                    (11, 2.5),
                    (13, 1.0),
                    (14, 3.0),
                    (15, 3.0),
                    (16, 2.5),
                    (17, 1.0),
                    (19, 1.0),
                    (20, 0.8),
                ],
            );
            hour * 60 + between(&mut r, 0, 59)
        }
        Kind::Emergency => {
            let hour = weighted(
                &mut r,
                &[
                    (0, 1.0),
                    (2, 0.5),
                    (4, 0.4),
                    (6, 0.6),
                    (8, 1.2),
                    (10, 1.3),
                    (12, 1.2),
                    (14, 1.2),
                    (16, 1.3),
                    (18, 1.6),
                    (20, 1.8),
                    (22, 1.4),
                ],
            );
            hour * 60 + between(&mut r, 0, 119)
        }
        Kind::Inpatient => between(&mut r, 8 * 60, 21 * 60),
    };
    let visit = at(day, minute) + Duration::seconds(between(&mut r, 0, 59));
    let los = if kind == Kind::Inpatient {
        let base = weighted(&mut r, &[(0, 0.02), (2, 0.2), (4, 0.3), (6, 0.25), (9, 0.13), (14, 0.07), (21, 0.03)]);
        base + between(&mut r, 0, 2)
    } else {
        0
    };
    let discharge = match kind {
        Kind::Inpatient if los == 0 => Some(visit + Duration::minutes(between(&mut r, 180, 600))),
        Kind::Inpatient => Some(
            at(day + Duration::days(los), between(&mut r, 8 * 60 + 30, 16 * 60))
                + Duration::seconds(between(&mut r, 0, 59)),
        ),
        _ => None,
    };
    // Labs are reported up to 5 days after sampling; everything else by the discharge date.
    let last_ywrq = if kind == Kind::Inpatient { day + Duration::days(los + 7) } else { day + Duration::days(6) };
    (r, Skeleton { kind, visit, los, discharge, last_ywrq })
}

fn jzlsh(h: &Hospital, kind: Kind, day: NaiveDate, k: u64) -> String {
    let prefix = match kind {
        Kind::Outpatient => "MZ",
        Kind::Emergency => "JZ",
        Kind::Inpatient => "ZY",
    };
    // Some hospitals number visits with their own prefix.
    if h.index % 3 == 1 {
        format!("{}{}{:07}", prefix, ymd8(day).get(2..).unwrap_or_default(), k)
    } else {
        format!("{}{}{:06}", prefix, ymd8(day), k)
    }
}

/// The encounter of `sk`, continuing the stream.
pub fn details(w: &World<'_>, mut r: R, sk: &Skeleton, day: NaiveDate, k: u64) -> Encounter {
    let r = &mut r;
    let h = w.hospital;
    let kind = sk.kind;
    let csrq = birth_date(r, day, kind == Kind::Inpatient);
    let person = Person::generate(r, h, csrq, day);
    let nl = completed_years(csrq, day);
    let months = if nl == 0 { Some(completed_months(csrq, day)) } else { None };
    let child = nl < 14;
    let ksmc = match (kind, child) {
        (Kind::Outpatient, false) => rng::pick(r, super::clinical::DEPT_OUTPATIENT),
        (Kind::Outpatient, true) => rng::pick(r, super::clinical::DEPT_CHILD_OUTPATIENT),
        (Kind::Emergency, false) => rng::pick(r, super::clinical::DEPT_EMERGENCY),
        (Kind::Emergency, true) => rng::pick(r, super::clinical::DEPT_CHILD_EMERGENCY),
        (Kind::Inpatient, false) => rng::pick(r, super::clinical::DEPT_WARD),
        (Kind::Inpatient, true) => rng::pick(r, super::clinical::DEPT_CHILD_WARD),
    };
    let fbrq = if chance(r, 0.9) { Some(day - Duration::days(between(r, 0, 4))) } else { None };
    let zgtw = if chance(r, 0.92) { Some(i32::try_from(between(r, 372, 408)).unwrap_or(385)) } else { None };
    let elderly = nl >= 65;
    let lcfx = match kind {
        Kind::Outpatient => weighted(r, &[(1u8, 0.88), (2, 0.11), (3, 0.01)]),
        Kind::Emergency => weighted(r, &[(1u8, 0.70), (2, 0.25), (3, 0.045), (4, 0.005)]),
        Kind::Inpatient => {
            let old = if elderly || nl < 2 { 1.6 } else { 1.0 };
            weighted(r, &[(1u8, 0.15), (2, 0.55), (3, 0.25 * old), (4, 0.05 * old)])
        }
    };
    let lcfx_final =
        if kind == Kind::Inpatient && lcfx < 4 && sk.los >= 2 && chance(r, 0.15) { lcfx + 1 } else { lcfx };
    let positive = chance(r, w.season.positivity(day));
    let virus = if positive { Some(w.season.virus(r, day)) } else { None };
    let mut enc = Encounter {
        day,
        k,
        kind,
        jzlsh: jzlsh(h, kind, day, k),
        mzzyh: String::new(),
        person,
        nl,
        months,
        jzsj: sk.visit,
        ksmc,
        fbrq,
        zgtw,
        dx: Vec::new(),
        dx_confirmed: Vec::new(),
        zdyj: 1,
        lcfx,
        lcfx_final,
        gwys: Vec::new(),
        ymjz: if chance(r, 0.9) { Some(weighted(r, &[(1u8, 0.12), (2, 0.6), (9, 0.28)])) } else { None },
        kbdsj: None,
        flags: (2, 2, 2),
        zgzt: 1,
        zgzt_final: 1,
        cost: (0, None, None, None),
        zfy_final: 0,
        lab_only: false,
        virus,
        op_life: Vec::new(),
        labs: Vec::new(),
        meds: Vec::new(),
        stay: None,
        death: None,
    };
    enc.mzzyh = match kind {
        Kind::Inpatient => format!("{}{:06}", day.format("%y"), r.random_range(0..1_000_000u32)),
        _ => format!("{:010}", r.random_range(0..10_000_000_000u64)),
    };
    care::labs(r, &mut enc, sk);
    care::diagnoses(w, r, &mut enc);
    care::meds(r, &mut enc, sk);
    if kind == Kind::Inpatient {
        stay::admit(w, r, &mut enc, sk);
    } else {
        care::outpatient_life(w, r, &mut enc);
    }
    enc
}
