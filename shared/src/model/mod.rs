//! The data model of INTERFACE.md: record types, the field tables that describe
//! every field, the cells a parser produces and the typed records validation
//! produces.
//!
//! ```text
//!   fields.rs (one table per type) ──▶ parse   (headers: code or 中文名)
//!                                  ├─▶ validate (types, lengths, code tables)
//!                                  └─▶ docs/INTERFACE.md (generated, tested for staleness)
//! ```

mod codes;
mod fields;
mod records;

pub use codes::*;
pub use fields::{TypeDef, type_def};
pub use records::*;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

/// The record types of INTERFACE §3, in the order agents upload them (§4).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, bincode::Encode, bincode::Decode,
)]
#[serde(rename_all = "lowercase")]
pub enum RecordType {
    Outpatient,
    Discharge,
    Lab,
    Medication,
    Summary,
    Death,
    Stock,
    Visits,
}

impl RecordType {
    /// Every type, in upload order.
    pub const ALL: [RecordType; 8] = [
        RecordType::Outpatient,
        RecordType::Discharge,
        RecordType::Lab,
        RecordType::Medication,
        RecordType::Summary,
        RecordType::Death,
        RecordType::Stock,
        RecordType::Visits,
    ];

    /// The name used in URLs and receipts (`outpatient`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::Outpatient => "outpatient",
            RecordType::Discharge => "discharge",
            RecordType::Summary => "summary",
            RecordType::Death => "death",
            RecordType::Medication => "medication",
            RecordType::Lab => "lab",
            RecordType::Stock => "stock",
            RecordType::Visits => "visits",
        }
    }

    /// Chinese name of the type.
    pub fn zh(self) -> &'static str {
        match self {
            RecordType::Outpatient => "门急诊和在院流感病例",
            RecordType::Discharge => "出院流感病例病案首页",
            RecordType::Summary => "出院小结",
            RecordType::Death => "死亡记录",
            RecordType::Medication => "用药记录",
            RecordType::Lab => "检验记录",
            RecordType::Stock => "抗流感药物库存日报",
            RecordType::Visits => "门急诊诊疗人次日报",
        }
    }

    /// Parse a type name as used in URLs and on the command line.
    pub fn parse(s: &str) -> Option<RecordType> {
        RecordType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Whether the type links to a case by JZLSH.
    pub fn has_jzlsh(self) -> bool {
        !matches!(self, RecordType::Stock | RecordType::Visits)
    }
}

impl std::fmt::Display for RecordType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The data type of a field (INTERFACE's type column).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    /// `Cn`: text of at most n characters.
    Char(u16),
    /// `Tn`: free text of at most n characters.
    Text(u16),
    /// `Nn`: a non-negative integer of at most n digits.
    Int(u8),
    /// `Nn,m`: a non-negative decimal of at most n digits, m of them after the point.
    Dec(u8, u8),
    /// `D`: a date.
    Date,
    /// `DT`: a date-time.
    DateTime,
}

impl FieldType {
    /// The notation of INTERFACE.md (`C50`, `N10,2`, `DT`).
    pub fn notation(self) -> String {
        match self {
            FieldType::Char(n) => format!("C{n}"),
            FieldType::Text(n) => format!("T{n}"),
            FieldType::Int(n) => format!("N{n}"),
            FieldType::Dec(n, m) => format!("N{n},{m}"),
            FieldType::Date => "D".to_owned(),
            FieldType::DateTime => "DT".to_owned(),
        }
    }
}

/// Whether a field must be given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Req {
    /// Y: always required (except on deletes, which need only the common fields and JZLSH).
    Required,
    /// N: optional.
    Optional,
    /// C: required under a condition the rule text states.
    Conditional,
}

impl Req {
    /// The letter of INTERFACE.md.
    pub fn letter(self) -> &'static str {
        match self {
            Req::Required => "Y",
            Req::Optional => "N",
            Req::Conditional => "C",
        }
    }
}

/// What desensitisation (INTERFACE §5) does with a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sensitivity {
    /// Crosses as it is.
    Plain,
    /// A direct identifier: removed (XM, DH, XZZ, MZZYH, BAH).
    Identifier,
    /// SFZH: replaced by a person key.
    IdNumber,
    /// JZLSH, JLID: replaced by a keyed pseudonym.
    Pseudonym,
    /// CSRQ: removed.
    BirthDate,
    /// Free text: identifiers scrubbed.
    FreeText,
}

/// One field of a record type.
#[derive(Clone, Debug)]
pub struct FieldDef {
    /// Field code, e.g. `ZDBM3`.
    pub code: String,
    /// Chinese header, e.g. `诊断编码3`.
    pub zh: String,
    /// Other accepted Chinese headers.
    pub alt_zh: Vec<String>,
    /// Data type.
    pub ty: FieldType,
    /// Requirement.
    pub req: Req,
    /// The rule in words (for the generated documentation).
    pub rule: String,
    /// The code table, where the field takes codes.
    pub codes: Option<&'static [(&'static str, &'static str)]>,
    /// How desensitisation treats it.
    pub sens: Sensitivity,
    /// Width of a fixed-width numeric code, for zero-padding XLSX number cells.
    pub fixed_width: Option<u8>,
}

/// One cell as a parser read it, before validation.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// Text (CSV, JSON strings, XLSX text cells).
    Text(String),
    /// A number (JSON numbers, XLSX number cells).
    Number(f64),
    /// An XLSX date or date-time cell.
    DateTime(NaiveDateTime),
}

/// One data row of an upload: a cell (or nothing) for each field of the type's table,
/// in table order, and for `discharge` the columns outside the table.
#[derive(Clone, Debug, PartialEq)]
pub struct RawRow {
    /// 1 = first data row.
    pub row: usize,
    /// One entry per field of [`TypeDef::fields`]; `None` for empty or absent.
    pub cells: Vec<Option<Cell>>,
    /// Columns outside the table (only `discharge` keeps them; raw archive only).
    pub extra: Vec<(String, String)>,
}

/// A whole upload as parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedFile {
    /// The record type.
    pub ty: RecordType,
    /// Data rows, in file order.
    pub rows: Vec<RawRow>,
}

/// Normalise a header for comparison: spaces removed (ASCII and full-width),
/// full-width brackets made half-width.
pub fn normalize_header(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && *c != '\u{3000}' && *c != '\u{feff}')
        .map(|c| match c {
            '（' => '(',
            '）' => ')',
            '［' => '[',
            '］' => ']',
            c => c,
        })
        .collect()
}
