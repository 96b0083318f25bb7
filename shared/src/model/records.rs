//! Typed records: what validation makes of a row that passed every rule.
//!
//! These types still hold identifiers (names, ID numbers, addresses); they
//! live only inside the DMZ and the hospital. What crosses the gate is the
//! separate family of types in [`crate::desens`], which has no field for an
//! identifier.
//!
//! Units: money in fen (分, 0.01 元) as `i64`; decimals with one place (体温,
//! Ct) in tenths as `i32`; 单次剂量 in thousandths as `i64`.

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

use super::RecordType;

/// 操作类型 CZLX.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    /// 1 新增
    Insert,
    /// 2 修改
    Update,
    /// 3 删除
    Delete,
}

impl Op {
    /// The code of INTERFACE §2.
    pub fn code(self) -> u8 {
        match self {
            Op::Insert => 1,
            Op::Update => 2,
            Op::Delete => 3,
        }
    }
}

/// Fields of INTERFACE §2 that every record has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Common {
    pub zzjgdm: String,
    pub jlid: String,
    pub czlx: Op,
    pub gxsj: NaiveDateTime,
    /// Not checked (and possibly absent) on deletes.
    pub ywrq: Option<NaiveDate>,
    pub bbh: String,
}

/// The patient block of §3.1 and §3.2.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Patient {
    pub xm: String,
    pub xb: u8,
    pub csrq: NaiveDate,
    pub nl: u16,
    pub bzyzs_nl: Option<u8>,
    pub zjlx: u8,
    /// Upper-cased; `None` only when ZJLX = 9.
    pub sfzh: Option<String>,
    pub gj: Option<String>,
    pub mz: Option<String>,
    pub zy: Option<String>,
    pub xzz: String,
    pub xzz_xzqh: String,
    pub dh: Option<String>,
    pub ylfkfs: Option<String>,
}

/// A diagnosis: code and name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnosis {
    pub code: String,
    pub name: String,
}

/// §3.1 门急诊和在院流感病例.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outpatient {
    pub common: Common,
    pub jzlsh: String,
    pub patient: Patient,
    pub jzlx: u8,
    pub mzzyh: String,
    pub jzsj: NaiveDateTime,
    pub ksmc: String,
    pub fbrq: Option<NaiveDate>,
    /// Tenths of a degree.
    pub zgtw: Option<i32>,
    /// ZDBM1/ZDMC1 first (主要诊断); at least one.
    pub diagnoses: Vec<Diagnosis>,
    pub zdyj: u8,
    pub lcfx: u8,
    pub gwys: Vec<u8>,
    pub ymjz: Option<u8>,
    pub kbd: u8,
    pub kbdsj: Option<NaiveDateTime>,
    pub icu: Option<u8>,
    pub jxtq: Option<u8>,
    pub ecmo: Option<u8>,
    pub zgzt: u8,
    pub zfy: i64,
    pub ypf: Option<i64>,
    pub jyf: Option<i64>,
    pub kbdf: Option<i64>,
}

/// §3.2 出院流感病例病案首页.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discharge {
    pub common: Common,
    pub jzlsh: String,
    pub patient: Patient,
    pub bah: String,
    pub zycs: u16,
    pub rytj: u8,
    pub rysj: NaiveDateTime,
    pub cysj: NaiveDateTime,
    pub fbrq: Option<NaiveDate>,
    pub zdyj: Option<u8>,
    pub sjzyts: u16,
    pub cykb: String,
    pub mzzd: Option<Diagnosis>,
    pub zyzd: Diagnosis,
    pub rybq: u8,
    pub qtzd: Vec<Diagnosis>,
    pub lcfx: u8,
    pub icuts: Option<u16>,
    pub jxtqsj: Option<u32>,
    pub ecmo: Option<u8>,
    pub kbd: u8,
    pub kbdsj: Option<NaiveDateTime>,
    pub lyfs: u8,
    pub zfy: i64,
    pub zfje: i64,
    pub xyf: Option<i64>,
    pub kjywf: Option<i64>,
    pub hlf: Option<i64>,
    pub ylfuf: Option<i64>,
}

/// Identifier fields of §3.3/§3.4 that serve only to scrub the text.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrubIds {
    pub xm: Option<String>,
    pub bah: Option<String>,
    pub sfzh: Option<String>,
    pub dh: Option<String>,
}

/// §3.3 出院小结.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub common: Common,
    pub jzlsh: String,
    pub ids: ScrubIds,
    pub rysj: NaiveDateTime,
    pub cysj: NaiveDateTime,
    pub ryqk: String,
    pub ryzd: String,
    pub zlgc: String,
    pub cyzd: String,
    pub cyqk: String,
    pub cyyz: String,
}

/// §3.4 死亡记录.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Death {
    pub common: Common,
    pub jzlsh: String,
    pub ids: ScrubIds,
    pub rysj: Option<NaiveDateTime>,
    pub swsj: NaiveDateTime,
    pub ryqk: String,
    pub zlgc: String,
    pub zjsy: String,
    pub zjsy_jbdm: String,
    pub gbsy_jbdm: String,
    pub lgsyxg: u8,
    pub swdd: Option<u8>,
    pub gdrq: Option<NaiveDate>,
}

/// §3.5 用药记录.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Medication {
    pub common: Common,
    pub jzlsh: String,
    pub yzid: String,
    pub yzlb: u8,
    pub ypbm: Option<String>,
    pub ypmc: String,
    pub ypgg: Option<String>,
    /// Thousandths of the unit.
    pub dcjl: i64,
    pub jldw: String,
    pub pc: String,
    pub yytj: String,
    pub kssj: NaiveDateTime,
    pub tzsj: Option<NaiveDateTime>,
    pub je: Option<i64>,
}

/// §3.6 检验记录.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lab {
    pub common: Common,
    pub jzlsh: String,
    pub bgdh: String,
    pub bblb: u8,
    pub cysj: NaiveDateTime,
    pub bgsj: NaiveDateTime,
    pub jyxmmc: String,
    pub jyff: u8,
    pub dxjg: u8,
    pub bdlx: Option<u8>,
    pub yx: Option<u8>,
    /// Tenths.
    pub ct: Option<i32>,
}

impl Lab {
    /// A positive influenza result that brings its encounter into scope (§4 rule 3).
    pub fn is_positive_flu(&self) -> bool {
        (1..=4).contains(&self.jyff) && matches!(self.dxjg, 1 | 3)
    }
}

/// §3.7 抗流感药物库存日报.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stock {
    pub common: Common,
    pub tjrq: NaiveDate,
    pub ypmc: String,
    pub ypgg: String,
    pub kcl: u64,
    pub drxhl: u64,
}

/// §3.8 门急诊诊疗人次日报.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visits {
    pub common: Common,
    pub tjrq: NaiveDate,
    pub mzrc: u32,
    pub jzrc: u32,
    pub zyrs: u32,
}

/// A delete (CZLX = 3): only the common fields and, where the type has it, JZLSH.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delete {
    pub ty: RecordType,
    pub common: Common,
    pub jzlsh: Option<String>,
}

/// A record that passed validation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    Outpatient(Box<Outpatient>),
    Discharge(Box<Discharge>),
    Summary(Box<Summary>),
    Death(Box<Death>),
    Medication(Box<Medication>),
    Lab(Box<Lab>),
    Stock(Box<Stock>),
    Visits(Box<Visits>),
    Delete(Box<Delete>),
}

impl Record {
    /// The record's type.
    pub fn ty(&self) -> RecordType {
        match self {
            Record::Outpatient(_) => RecordType::Outpatient,
            Record::Discharge(_) => RecordType::Discharge,
            Record::Summary(_) => RecordType::Summary,
            Record::Death(_) => RecordType::Death,
            Record::Medication(_) => RecordType::Medication,
            Record::Lab(_) => RecordType::Lab,
            Record::Stock(_) => RecordType::Stock,
            Record::Visits(_) => RecordType::Visits,
            Record::Delete(d) => d.ty,
        }
    }

    /// The common fields.
    pub fn common(&self) -> &Common {
        match self {
            Record::Outpatient(r) => &r.common,
            Record::Discharge(r) => &r.common,
            Record::Summary(r) => &r.common,
            Record::Death(r) => &r.common,
            Record::Medication(r) => &r.common,
            Record::Lab(r) => &r.common,
            Record::Stock(r) => &r.common,
            Record::Visits(r) => &r.common,
            Record::Delete(r) => &r.common,
        }
    }

    /// The JZLSH that links the record to its case, where the type has one.
    pub fn jzlsh(&self) -> Option<&str> {
        match self {
            Record::Outpatient(r) => Some(&r.jzlsh),
            Record::Discharge(r) => Some(&r.jzlsh),
            Record::Summary(r) => Some(&r.jzlsh),
            Record::Death(r) => Some(&r.jzlsh),
            Record::Medication(r) => Some(&r.jzlsh),
            Record::Lab(r) => Some(&r.jzlsh),
            Record::Stock(_) | Record::Visits(_) => None,
            Record::Delete(r) => r.jzlsh.as_deref(),
        }
    }
}

/// Death full-record scan metadata (§3.9).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanMeta {
    pub zzjgdm: String,
    pub jzlsh: String,
    /// 文件序号, 1-based.
    pub wjxh: u16,
    /// 文件总数.
    pub wjzs: u16,
    /// 内容类别.
    pub nrlb: u8,
}
