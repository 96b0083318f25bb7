//! From cells to values: text, integers, fixed-point decimals, dates and
//! date-times, as INTERFACE §1 reads them (accepted date formats, XLSX number
//! cells made text, zero-padding of fixed-width codes).

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use crate::model::{Cell, FieldDef, FieldType};

/// A converted field value.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Text(String),
    Int(i64),
    /// Fixed point: `units` of 10^-scale.
    Dec(i64),
    Date(NaiveDate),
    DateTime(NaiveDateTime),
}

/// Why a cell could not be converted. The caller turns it into a row error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellProblem {
    /// SFZH stored as an XLSX/JSON number.
    IdAsNumber,
    BadNumber,
    /// Too many digits for Nn,m (or too many decimals).
    NumberRange,
    BadDate,
    BadDateTime,
    TooLong,
}

/// Text of a number cell for a text field (INTERFACE §1 XLSX).
fn number_text(f: &FieldDef, x: f64) -> Option<String> {
    if !x.is_finite() {
        return None;
    }
    if f.code == "BBH" {
        return Some(format!("{x:.1}"));
    }
    if x.fract() == 0.0 && x.abs() < 1e17 {
        #[allow(clippy::cast_possible_truncation)]
        let n = x as i64;
        let s = n.to_string();
        return Some(match f.fixed_width {
            Some(w) if n >= 0 && s.len() < usize::from(w) => format!("{:0>width$}", s, width = usize::from(w)),
            _ => s,
        });
    }
    Some(format!("{x}"))
}

/// The text of a cell (numbers as §1 says, date cells in the canonical format).
pub fn cell_text(f: &FieldDef, c: &Cell) -> Result<String, CellProblem> {
    match c {
        Cell::Text(s) => Ok(s.trim().to_owned()),
        Cell::Number(x) => {
            if f.code == "SFZH" {
                return Err(CellProblem::IdAsNumber);
            }
            number_text(f, *x).ok_or(CellProblem::BadNumber)
        }
        Cell::DateTime(dt) => Ok(if dt.time() == NaiveTime::MIN && f.ty == FieldType::Date {
            dt.date().format("%Y-%m-%d").to_string()
        } else {
            dt.format("%Y-%m-%d %H:%M:%S").to_string()
        }),
    }
}

/// Convert a cell to the value of its field's type. `Ok(None)` for a blank.
pub fn convert(f: &FieldDef, c: &Cell) -> Result<Option<Val>, CellProblem> {
    match f.ty {
        FieldType::Char(n) | FieldType::Text(n) => {
            let s = cell_text(f, c)?;
            if s.is_empty() {
                return Ok(None);
            }
            if s.chars().count() > usize::from(n) {
                return Err(CellProblem::TooLong);
            }
            Ok(Some(Val::Text(s)))
        }
        FieldType::Int(digits) => {
            let s = cell_text(f, c)?;
            if s.is_empty() {
                return Ok(None);
            }
            let (units, _) = parse_decimal(&s, digits, 0)?;
            Ok(Some(Val::Int(units)))
        }
        FieldType::Dec(digits, scale) => {
            let s = match c {
                Cell::Number(x) if x.is_finite() => format!("{x}"),
                _ => cell_text(f, c)?,
            };
            if s.is_empty() {
                return Ok(None);
            }
            let (units, _) = parse_decimal(&s, digits, scale)?;
            Ok(Some(Val::Dec(units)))
        }
        FieldType::Date => match c {
            Cell::DateTime(dt) => Ok(Some(Val::Date(dt.date()))),
            _ => {
                let s = cell_text(f, c)?;
                if s.is_empty() {
                    return Ok(None);
                }
                parse_date(&s).map(|d| Some(Val::Date(d))).ok_or(CellProblem::BadDate)
            }
        },
        FieldType::DateTime => match c {
            Cell::DateTime(dt) => Ok(Some(Val::DateTime(*dt))),
            _ => {
                let s = cell_text(f, c)?;
                if s.is_empty() {
                    return Ok(None);
                }
                parse_datetime(&s).map(|d| Some(Val::DateTime(d))).ok_or(CellProblem::BadDateTime)
            }
        },
    }
}

/// Parse a non-negative plain decimal (`123`, `12.5`) into units of 10^-scale.
/// At most `digits` digits in all, at most `scale` after the point.
pub fn parse_decimal(s: &str, digits: u8, scale: u8) -> Result<(i64, u8), CellProblem> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    let int = if int.is_empty() && !frac.is_empty() { "0" } else { int };
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CellProblem::BadNumber);
    }
    if s.ends_with('.') {
        return Err(CellProblem::BadNumber);
    }
    // Trailing zeros after the point do not count against the scale.
    let frac = frac.trim_end_matches('0');
    let int = int.trim_start_matches('0');
    if frac.len() > usize::from(scale) || int.len() + usize::from(scale) > usize::from(digits) {
        return Err(CellProblem::NumberRange);
    }
    let mut units: i64 = 0;
    for b in int.bytes() {
        units =
            units.checked_mul(10).and_then(|u| u.checked_add(i64::from(b - b'0'))).ok_or(CellProblem::NumberRange)?;
    }
    for i in 0..scale {
        let d = frac.as_bytes().get(usize::from(i)).map_or(0, |b| b - b'0');
        units = units.checked_mul(10).and_then(|u| u.checked_add(i64::from(d))).ok_or(CellProblem::NumberRange)?;
    }
    Ok((units, scale))
}

fn num(s: &str, min_len: usize, max_len: usize) -> Option<u32> {
    if s.len() < min_len || s.len() > max_len || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Dates: `YYYY-MM-DD`, `YYYYMMDD`, `YYYY/MM/DD` (month and day may have one digit
/// with a separator).
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    if s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) {
        let y = num(s.get(0..4)?, 4, 4)?;
        let m = num(s.get(4..6)?, 2, 2)?;
        let d = num(s.get(6..8)?, 2, 2)?;
        return NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d);
    }
    let sep = if s.contains('-') { '-' } else { '/' };
    let mut it = s.split(sep);
    let y = num(it.next()?, 4, 4)?;
    let m = num(it.next()?, 1, 2)?;
    let d = num(it.next()?, 1, 2)?;
    if it.next().is_some() {
        return None;
    }
    NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d)
}

/// Date-times: a date as [`parse_date`] (with `-` or `/`), then a space or `T`,
/// then `HH:MM[:SS]`. China Standard Time, no zone suffix.
pub fn parse_datetime(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    let (d, t) = s.split_once(['T', ' '])?;
    let date = parse_date(d)?;
    let mut it = t.trim_start().split(':');
    let h = num(it.next()?, 1, 2)?;
    let m = num(it.next()?, 2, 2)?;
    let sec = match it.next() {
        Some(x) => num(x, 2, 2)?,
        None => 0,
    };
    if it.next().is_some() {
        return None;
    }
    date.and_hms_opt(h, m, sec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{RecordType, type_def};

    fn field(ty: RecordType, code: &str) -> &'static FieldDef {
        let t = type_def(ty);
        t.field(t.index(code).unwrap()).unwrap()
    }

    #[test]
    fn dates() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 5).unwrap();
        for s in ["2026-11-05", "20261105", "2026/11/05", "2026/11/5", " 2026-11-05 "] {
            assert_eq!(parse_date(s), Some(d), "{s}");
        }
        for s in ["2026-13-01", "2026-02-30", "26-11-05", "2026-11", "2026-11-05-01", "", "２０２６-11-05"] {
            assert_eq!(parse_date(s), None, "{s}");
        }
        let dt = d.and_hms_opt(8, 30, 0).unwrap();
        for s in ["2026-11-05 08:30:00", "2026-11-05T08:30:00", "2026/11/05 08:30", "2026-11-05 8:30"] {
            assert_eq!(parse_datetime(s), Some(dt), "{s}");
        }
        for s in ["2026-11-05", "2026-11-05 25:00", "2026-11-05 08:30:00+08:00", "2026-11-05 08:30:00.5"] {
            assert_eq!(parse_datetime(s), None, "{s}");
        }
    }

    #[test]
    fn decimals() {
        assert_eq!(parse_decimal("12.5", 10, 2), Ok((1250, 2)));
        assert_eq!(parse_decimal("0.50", 10, 2), Ok((50, 2)));
        assert_eq!(parse_decimal(".5", 10, 2), Ok((50, 2)));
        assert_eq!(parse_decimal("12.345", 10, 2), Err(CellProblem::NumberRange));
        assert_eq!(parse_decimal("12.340", 10, 2), Ok((1234, 2)));
        assert_eq!(parse_decimal("-1", 10, 2), Err(CellProblem::BadNumber));
        assert_eq!(parse_decimal("1e5", 10, 2), Err(CellProblem::BadNumber));
        assert_eq!(parse_decimal("12.", 10, 2), Err(CellProblem::BadNumber));
        assert_eq!(parse_decimal("123", 3, 0), Ok((123, 0)));
        assert_eq!(parse_decimal("1234", 3, 0), Err(CellProblem::NumberRange));
        assert_eq!(parse_decimal("999", 4, 1), Ok((9990, 1)));
        assert_eq!(parse_decimal("1000", 4, 1), Err(CellProblem::NumberRange));
        assert_eq!(parse_decimal("99999999999999999999999", 30, 0), Err(CellProblem::NumberRange));
    }

    #[test]
    fn number_cells() {
        let bbh = field(RecordType::Lab, "BBH");
        assert_eq!(cell_text(bbh, &Cell::Number(1.0)).unwrap(), "1.0");
        let mz = field(RecordType::Outpatient, "MZ");
        assert_eq!(cell_text(mz, &Cell::Number(1.0)).unwrap(), "01");
        let gj = field(RecordType::Outpatient, "GJ");
        assert_eq!(cell_text(gj, &Cell::Number(156.0)).unwrap(), "156");
        assert_eq!(cell_text(gj, &Cell::Number(4.0)).unwrap(), "004");
        let jlid = field(RecordType::Lab, "JLID");
        assert_eq!(cell_text(jlid, &Cell::Number(1234.0)).unwrap(), "1234");
        let sfzh = field(RecordType::Outpatient, "SFZH");
        assert_eq!(cell_text(sfzh, &Cell::Number(1.1e17)), Err(CellProblem::IdAsNumber));
        let zfy = field(RecordType::Outpatient, "ZFY");
        assert_eq!(convert(zfy, &Cell::Number(12.5)).unwrap(), Some(Val::Dec(1250)));
        let nl = field(RecordType::Outpatient, "NL");
        assert_eq!(convert(nl, &Cell::Number(35.0)).unwrap(), Some(Val::Int(35)));
        assert_eq!(convert(nl, &Cell::Number(35.5)), Err(CellProblem::NumberRange));
    }
}
