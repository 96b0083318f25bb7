//! What the figures keep of one accepted record: dates and codes only, no
//! identifier and no free text; and the unit whose contribution it feeds.
//!
//! ```text
//!  Record (typed, with identifiers) ─▶ Facts { gxsj, first_seen, ywrq, kind }
//!                                      kind: Outpatient{jzlx, jzsj, fbrq, lcfx, kbd …} | Lab{cysj, jyff, dxjg …} | …
//!  unit: Case(JZLSH) for §3.1–§3.6 · Drug(generic) for §3.7 · Own(record) for §3.8
//! ```

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

use flumon_shared::model::{Op, Record, antiviral_of};

/// The group of records whose figures depend on each other.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Unit {
    /// Everything linked by one JZLSH (held as a keyed hash, or the plain value in a recompute).
    Case(String),
    /// The stock rows of one anti-influenza drug (generic name).
    Drug(String),
    /// A record that feeds no other (visits, by its natural key hash).
    Own(String),
}

impl Unit {
    /// The unit as a store key part.
    pub fn key(&self) -> String {
        match self {
            Unit::Case(h) => format!("c:{h}"),
            Unit::Drug(d) => format!("d:{d}"),
            Unit::Own(h) => format!("o:{h}"),
        }
    }
}

/// What one live record says, for the figures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    Outpatient {
        jzlx: u8,
        jzsj: NaiveDateTime,
        fbrq: Option<NaiveDate>,
        lcfx: u8,
        kbd: u8,
        kbdsj: Option<NaiveDateTime>,
        icu: bool,
        vent: bool,
        ecmo: bool,
        zgzt: u8,
    },
    Discharge {
        rysj: NaiveDateTime,
        cysj: NaiveDateTime,
        fbrq: Option<NaiveDate>,
        lcfx: u8,
        kbd: u8,
        kbdsj: Option<NaiveDateTime>,
        icu: bool,
        vent: bool,
        ecmo: bool,
        lyfs: u8,
    },
    Death {
        swsj: NaiveDateTime,
        gdrq: Option<NaiveDate>,
    },
    Medication {
        kssj: NaiveDateTime,
        /// Generic name and class when an anti-influenza drug.
        drug: Option<(String, String)>,
    },
    Lab {
        cysj: NaiveDateTime,
        jyff: u8,
        dxjg: u8,
        bdlx: Option<u8>,
        yx: Option<u8>,
    },
    Summary,
    Stock {
        tjrq: NaiveDate,
        drug: String,
        kcl: u64,
        drxhl: u64,
    },
    Visits {
        tjrq: NaiveDate,
        mzrc: u32,
        jzrc: u32,
    },
    /// A death full-record scan arrived for the case (nothing of the file is kept).
    Scan,
}

/// The figures' state of one natural key: its latest version (or a tombstone).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub gxsj: NaiveDateTime,
    /// Day of the first receipt of this natural key.
    pub first_seen: NaiveDate,
    pub ywrq: Option<NaiveDate>,
    /// The unit it feeds while live.
    pub unit: Option<Unit>,
    /// `None` for a deleted record.
    pub kind: Option<Kind>,
}

fn yes(v: Option<u8>) -> bool {
    v == Some(1)
}

/// The facts of a record, `None` for a delete. The unit is filled by the caller.
pub fn kind_of(rec: &Record) -> Option<Kind> {
    Some(match rec {
        Record::Outpatient(r) => Kind::Outpatient {
            jzlx: r.jzlx,
            jzsj: r.jzsj,
            fbrq: r.fbrq,
            lcfx: r.lcfx,
            kbd: r.kbd,
            kbdsj: r.kbdsj,
            icu: yes(r.icu),
            vent: yes(r.jxtq),
            ecmo: yes(r.ecmo),
            zgzt: r.zgzt,
        },
        Record::Discharge(r) => Kind::Discharge {
            rysj: r.rysj,
            cysj: r.cysj,
            fbrq: r.fbrq,
            lcfx: r.lcfx,
            kbd: r.kbd,
            kbdsj: r.kbdsj,
            icu: r.icuts.is_some_and(|d| d > 0),
            vent: r.jxtqsj.is_some_and(|h| h > 0),
            ecmo: yes(r.ecmo),
            lyfs: r.lyfs,
        },
        Record::Death(r) => Kind::Death { swsj: r.swsj, gdrq: r.gdrq },
        Record::Medication(r) => {
            Kind::Medication { kssj: r.kssj, drug: antiviral_of(&r.ypmc).map(|(g, c)| (g.to_owned(), c.to_owned())) }
        }
        Record::Lab(r) => Kind::Lab { cysj: r.cysj, jyff: r.jyff, dxjg: r.dxjg, bdlx: r.bdlx, yx: r.yx },
        Record::Summary(_) => Kind::Summary,
        Record::Stock(r) => Kind::Stock {
            tjrq: r.tjrq,
            drug: antiviral_of(&r.ypmc).map_or_else(|| r.ypmc.clone(), |(g, _)| g.to_owned()),
            kcl: r.kcl,
            drxhl: r.drxhl,
        },
        Record::Visits(r) => Kind::Visits { tjrq: r.tjrq, mzrc: r.mzrc, jzrc: r.jzrc },
        Record::Delete(_) => return None,
    })
}

/// The unit a live record feeds: `case` is the unit's name for the record's
/// JZLSH, `own` for its natural key.
pub fn unit_of(kind: &Kind, case: Option<String>, own: String) -> Unit {
    match kind {
        Kind::Stock { drug, .. } => Unit::Drug(drug.clone()),
        Kind::Visits { .. } => Unit::Own(own),
        _ => case.map_or(Unit::Own(own), Unit::Case),
    }
}

/// Whether a record is a delete.
pub fn is_delete(rec: &Record) -> bool {
    rec.common().czlx == Op::Delete || matches!(rec, Record::Delete(_))
}
