//! A generated row: one value per field of the type's table (by field code),
//! typed so that each writer can render it its own way (text in CSV and JSON,
//! number and date cells in XLSX), plus what the manifest needs to know of it.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::LazyLock;

use chrono::{NaiveDate, NaiveDateTime};

use flumon_shared::model::{RecordType, type_def};

use super::text::PlantedId;

/// `YYYYMMDD` of a date (without chrono's format parser, for hot paths).
pub fn ymd8(d: NaiveDate) -> String {
    use chrono::Datelike;
    format!("{:04}{:02}{:02}", d.year(), d.month(), d.day())
}

/// A value.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum V {
    /// Empty.
    #[default]
    E,
    /// Text (names, free text, numbers of the record).
    S(String),
    /// Static text (codes, names from the tables).
    St(&'static str),
    /// An integer.
    I(i64),
    /// A decimal in hundredths (money).
    D2(i64),
    /// A decimal in tenths (temperature, Ct).
    D1(i64),
    /// A decimal in thousandths (dose).
    D3(i64),
    Date(NaiveDate),
    Dt(NaiveDateTime),
    /// Text written exactly as given in every format (planted bad values).
    Raw(String),
}

impl V {
    /// Text of a `&str`.
    pub fn s(s: &str) -> V {
        V::S(s.to_owned())
    }

    /// Text or empty.
    pub fn opt_s(s: Option<&str>) -> V {
        s.map_or(V::E, V::s)
    }

    /// A code of up to two digits.
    pub fn code(c: u8) -> V {
        const CODES: [&str; 30] = [
            "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16", "17", "18",
            "19", "20", "21", "22", "23", "24", "25", "26", "27", "28", "29",
        ];
        CODES.get(usize::from(c)).map_or_else(|| V::S(c.to_string()), |s| V::St(s))
    }

    /// Static text or empty.
    pub fn opt_st(s: Option<&'static str>) -> V {
        s.map_or(V::E, V::St)
    }

    /// A code or empty.
    pub fn opt_code(c: Option<u8>) -> V {
        c.map_or(V::E, V::code)
    }
}

/// FNV-1a, for the small field-code maps below (faster than SipHash here).
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type CodeMap = HashMap<&'static str, usize, BuildHasherDefault<Fnv>>;

/// The index of field `code` in the table of `ty`.
fn index(ty: RecordType, code: &str) -> Option<usize> {
    static MAPS: LazyLock<Vec<CodeMap>> = LazyLock::new(|| {
        RecordType::ALL
            .iter()
            .map(|t| type_def(*t).fields.iter().enumerate().map(|(i, f)| (f.code.as_str(), i)).collect())
            .collect()
    });
    let t = RecordType::ALL.iter().position(|t| *t == ty)?;
    MAPS.get(t)?.get(code).copied()
}

/// One row of one type.
#[derive(Clone, Debug)]
pub struct Row {
    pub ty: RecordType,
    pub cells: Vec<V>,
    /// Values of the extra HQMS columns (`discharge` only; see the writer).
    pub extra: Vec<String>,
    /// Identifiers planted in its free text.
    pub plants: Vec<PlantedId>,
    /// A §3.1/§3.2 record in scope only by a positive test (INTERFACE §4 rule 3).
    pub lab_scope: bool,
    /// A delete (CZLX 3).
    pub delete: bool,
}

impl Row {
    /// An empty row of `ty`.
    pub fn new(ty: RecordType) -> Row {
        Row {
            ty,
            cells: vec![V::E; type_def(ty).fields.len()],
            extra: Vec::new(),
            plants: Vec::new(),
            lab_scope: false,
            delete: false,
        }
    }

    /// Set the field `code` (ignored when the type has no such field).
    pub fn set(&mut self, code: &str, v: V) {
        if let Some(slot) = index(self.ty, code).and_then(|i| self.cells.get_mut(i)) {
            *slot = v;
        }
    }

    /// The value of `code`.
    pub fn get(&self, code: &str) -> Option<&V> {
        index(self.ty, code).and_then(|i| self.cells.get(i))
    }

    /// Text of `code`, if it is text.
    pub fn text(&self, code: &str) -> Option<&str> {
        match self.get(code) {
            Some(V::S(s) | V::Raw(s)) => Some(s),
            Some(V::St(s)) => Some(s),
            _ => None,
        }
    }

    /// Whether `code` has a value.
    pub fn has(&self, code: &str) -> bool {
        !matches!(self.get(code), None | Some(V::E))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_and_get() {
        let mut r = Row::new(RecordType::Lab);
        r.set("BGDH", V::s("JY1"));
        r.set("NOPE", V::s("x"));
        assert_eq!(r.text("BGDH"), Some("JY1"));
        assert!(!r.has("CT"));
        assert!(r.get("NOPE").is_none());
    }
}
