//! Writing rows to files in the formats of INTERFACE §1: CSV (UTF-8, UTF-8
//! with BOM, GB18030; RFC 4180 quoting; LF or CRLF), XLSX (codes and ID
//! numbers as text cells, numbers as number cells, dates as date cells where
//! the hospital's export does that) and JSON `{"records":[…]}`; headers as
//! field codes, Chinese names, or a mix. Rows are streamed: nothing holds more
//! than one row (XLSX uses rust_xlsxwriter's constant-memory mode).
//!
//! ```text
//!  Row ─▶ TypeSink (sink.rs: parts, rollover, planted copies, manifest entry)
//!           └─▶ FileWriter (files.rs: Csv | Json | Xlsx) ─▶ OUT/<ZZJGDM>/<date>/<type>.<ext>
//! ```

mod files;
mod sink;

use chrono::{Datelike, NaiveDate, Timelike};
use serde::{Deserialize, Serialize};

use flumon_shared::model::{FieldType, RecordType, type_def};

use super::hospitals::{DateStyle, Style};
use super::rng::{self, R, chance};
use super::row::V;

pub use files::Layout;
pub use sink::{SinkSpec, TypeSink};

/// The layout of a file of a hospital with `style`.
pub fn files_layout(style: Style, quote_all: bool, json_nulls: bool, date_cells: Vec<bool>) -> Layout {
    Layout { style, quote_all, json_nulls, date_cells }
}

/// `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FormatChoice {
    Csv,
    CsvBom,
    Gb18030,
    Xlsx,
    Json,
    /// Each hospital and type its own format.
    Mixed,
}

impl FormatChoice {
    /// Parse a `--format` value.
    pub fn parse(s: &str) -> Option<FormatChoice> {
        Some(match s {
            "csv" => FormatChoice::Csv,
            "csv-bom" => FormatChoice::CsvBom,
            "gb18030" => FormatChoice::Gb18030,
            "xlsx" => FormatChoice::Xlsx,
            "json" => FormatChoice::Json,
            "mixed" => FormatChoice::Mixed,
            _ => return None,
        })
    }
}

/// `--header`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeaderMode {
    /// Field codes (`XM`).
    Code,
    /// Chinese names (`姓名`), with the variants INTERFACE §1 accepts.
    Zh,
    /// Each column either.
    Mixed,
}

impl HeaderMode {
    /// Parse a `--header` value.
    pub fn parse(s: &str) -> Option<HeaderMode> {
        Some(match s {
            "code" => HeaderMode::Code,
            "zh" => HeaderMode::Zh,
            "mixed" => HeaderMode::Mixed,
            _ => return None,
        })
    }

    /// The name in the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            HeaderMode::Code => "code",
            HeaderMode::Zh => "zh",
            HeaderMode::Mixed => "mixed",
        }
    }
}

/// A CSV encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enc {
    Utf8,
    Utf8Bom,
    Gb18030,
}

/// The format of one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    Csv(Enc),
    Json,
    Xlsx,
}

impl FileFormat {
    /// The file name extension.
    pub fn ext(self) -> &'static str {
        match self {
            FileFormat::Csv(_) => "csv",
            FileFormat::Json => "json",
            FileFormat::Xlsx => "xlsx",
        }
    }

    /// `csv`, `json`, `xlsx` (the manifest's `format`).
    pub fn name(self) -> &'static str {
        self.ext()
    }

    /// The manifest's `encoding` (text formats only).
    pub fn encoding(self) -> Option<&'static str> {
        match self {
            FileFormat::Csv(Enc::Utf8) | FileFormat::Json => Some("utf-8"),
            FileFormat::Csv(Enc::Utf8Bom) => Some("utf-8-bom"),
            FileFormat::Csv(Enc::Gb18030) => Some("gb18030"),
            FileFormat::Xlsx => None,
        }
    }

    /// The `Content-Type` to upload with (`declare`: whether a GB18030 file says so).
    pub fn content_type(self, declare: bool) -> Option<String> {
        Some(
            match self {
                FileFormat::Csv(Enc::Gb18030) if !declare => return None,
                FileFormat::Csv(Enc::Gb18030) => "text/csv; charset=gb18030",
                FileFormat::Csv(_) => "text/csv; charset=utf-8",
                FileFormat::Json => "application/json",
                FileFormat::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            }
            .to_owned(),
        )
    }

    /// The format of `choice` (for `Mixed`, drawn from `r`).
    pub fn choose(choice: FormatChoice, r: &mut R) -> FileFormat {
        match choice {
            FormatChoice::Csv => FileFormat::Csv(Enc::Utf8),
            FormatChoice::CsvBom => FileFormat::Csv(Enc::Utf8Bom),
            FormatChoice::Gb18030 => FileFormat::Csv(Enc::Gb18030),
            FormatChoice::Xlsx => FileFormat::Xlsx,
            FormatChoice::Json => FileFormat::Json,
            FormatChoice::Mixed => rng::weighted(
                r,
                &[
                    (FileFormat::Csv(Enc::Utf8), 0.3),
                    (FileFormat::Csv(Enc::Utf8Bom), 0.15),
                    (FileFormat::Csv(Enc::Gb18030), 0.15),
                    (FileFormat::Xlsx, 0.2),
                    (FileFormat::Json, 0.2),
                ],
            ),
        }
    }
}

impl Default for FileFormat {
    fn default() -> Self {
        FileFormat::Csv(Enc::Utf8)
    }
}

/// The extra HQMS front-page columns some hospitals' `discharge` files carry.
pub const DISCHARGE_EXTRA: &[&str] = &["入院科别", "主治医师", "质控日期"];

fn zh_variant(r: &mut R, zh: &str) -> String {
    // Full-width brackets and stray spaces are accepted (compared normalised).
    let mut s = zh.to_owned();
    if chance(r, 0.3) {
        s = s.replace('(', "（").replace(')', "）");
    }
    if chance(r, 0.05) {
        s = format!(" {s}");
    }
    s
}

/// The header names of a file of `ty`.
pub fn headers(ty: RecordType, mode: HeaderMode, extra: bool, r: &mut R) -> Vec<String> {
    let td = type_def(ty);
    let mut v: Vec<String> = td
        .fields
        .iter()
        .map(|f| {
            let zh = match mode {
                HeaderMode::Code => false,
                HeaderMode::Zh => true,
                HeaderMode::Mixed => chance(r, 0.5),
            };
            if !zh {
                if mode == HeaderMode::Mixed && chance(r, 0.1) { f.code.to_ascii_lowercase() } else { f.code.clone() }
            } else if !f.alt_zh.is_empty() && chance(r, 0.2) {
                rng::pick_ref(r, &f.alt_zh).cloned().unwrap_or_else(|| f.zh.clone())
            } else {
                zh_variant(r, &f.zh)
            }
        })
        .collect();
    if extra && ty == RecordType::Discharge {
        v.extend(DISCHARGE_EXTRA.iter().map(|s| (*s).to_owned()));
    }
    v
}

/// Whether a column of `ty` holds dates (for XLSX date cells).
pub fn is_date_column(ty: RecordType, i: usize) -> bool {
    type_def(ty).fields.get(i).is_some_and(|f| matches!(f.ty, FieldType::Date | FieldType::DateTime))
}

fn push_padded(out: &mut String, n: u32, width: usize) {
    let mut buf = [b'0'; 10];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        if let Some(b) = buf.get_mut(i) {
            *b = b'0' + u8::try_from(n % 10).unwrap_or(0);
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    let start = i.min(buf.len().saturating_sub(width));
    for b in buf.get(start..).unwrap_or_default() {
        out.push(char::from(*b));
    }
}

fn push_decimal(out: &mut String, n: i64, scale: u32) {
    use std::fmt::Write;
    let p = 10i64.pow(scale);
    let (i, f) = (n / p, (n % p).abs());
    let _ = write!(out, "{i}");
    match scale {
        2 => {
            out.push('.');
            push_padded(out, u32::try_from(f).unwrap_or(0), 2);
        }
        1 => {
            out.push('.');
            push_padded(out, u32::try_from(f).unwrap_or(0), 1);
        }
        _ => {
            let mut frac = String::new();
            push_padded(&mut frac, u32::try_from(f).unwrap_or(0), 3);
            let frac = frac.trim_end_matches('0');
            if !frac.is_empty() {
                out.push('.');
                out.push_str(frac);
            }
        }
    }
}

fn push_date(out: &mut String, d: NaiveDate, sep: Option<char>) {
    push_padded(out, u32::try_from(d.year()).unwrap_or(0), 4);
    if let Some(c) = sep {
        out.push(c);
    }
    push_padded(out, d.month(), 2);
    if let Some(c) = sep {
        out.push(c);
    }
    push_padded(out, d.day(), 2);
}

/// Append a value as text in the hospital's style; `false` (nothing written) for empty.
pub fn render_into(out: &mut String, v: &V, style: &Style) -> bool {
    match v {
        V::E => return false,
        V::S(s) | V::Raw(s) => out.push_str(s),
        V::St(s) => out.push_str(s),
        V::I(n) => {
            use std::fmt::Write;
            let _ = write!(out, "{n}");
        }
        V::D2(n) => push_decimal(out, *n, 2),
        V::D1(n) => push_decimal(out, *n, 1),
        V::D3(n) => push_decimal(out, *n, 3),
        V::Date(d) => {
            let sep = match style.date {
                DateStyle::Dash => Some('-'),
                DateStyle::Slash => Some('/'),
                DateStyle::Compact => None,
            };
            push_date(out, *d, sep);
        }
        V::Dt(t) => {
            push_date(out, t.date(), Some(if style.date == DateStyle::Slash { '/' } else { '-' }));
            out.push(if style.t_sep { 'T' } else { ' ' });
            push_padded(out, t.hour(), 2);
            out.push(':');
            push_padded(out, t.minute(), 2);
            if style.seconds {
                out.push(':');
                push_padded(out, t.second(), 2);
            }
        }
    }
    true
}

/// A value as text, in the hospital's style (`None` for empty).
pub fn render(v: &V, style: &Style) -> Option<String> {
    let mut s = String::new();
    render_into(&mut s, v, style).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decimal(n: i64, scale: u32) -> String {
        let mut s = String::new();
        push_decimal(&mut s, n, scale);
        s
    }

    #[test]
    fn decimals_render() {
        assert_eq!(decimal(12345, 2), "123.45");
        assert_eq!(decimal(5, 2), "0.05");
        assert_eq!(decimal(385, 1), "38.5");
        assert_eq!(decimal(75_000, 3), "75");
        assert_eq!(decimal(200, 3), "0.2");
        assert_eq!(decimal(1_400, 3), "1.4");
        assert_eq!(decimal(1_050, 3), "1.05");
    }

    #[test]
    fn headers_resolve() {
        let mut r = rng::stream(1, &[]);
        for ty in RecordType::ALL {
            for mode in [HeaderMode::Code, HeaderMode::Zh, HeaderMode::Mixed] {
                let h = headers(ty, mode, false, &mut r);
                let td = type_def(ty);
                for (i, name) in h.iter().enumerate() {
                    assert_eq!(td.resolve_header(name), Some(i), "{ty} {name}");
                }
            }
        }
        let d = headers(RecordType::Discharge, HeaderMode::Zh, true, &mut r);
        let td = type_def(RecordType::Discharge);
        for x in DISCHARGE_EXTRA {
            assert!(d.iter().any(|h| h == x));
            assert_eq!(td.resolve_header(x), None);
        }
    }

    #[test]
    fn dates_render() {
        let d = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
        let t = d.and_hms_opt(8, 3, 9).unwrap();
        let mut s = super::super::hospitals::Hospital::generate(1, 0).style;
        s.date = DateStyle::Compact;
        s.t_sep = true;
        s.seconds = false;
        assert_eq!(render(&V::Date(d), &s).unwrap(), "20260105");
        assert_eq!(render(&V::Dt(t), &s).unwrap(), "2026-01-05T08:03");
        s.date = DateStyle::Slash;
        s.t_sep = false;
        s.seconds = true;
        assert_eq!(render(&V::Date(d), &s).unwrap(), "2026/01/05");
        assert_eq!(render(&V::Dt(t), &s).unwrap(), "2026/01/05 08:03:09");
        assert_eq!(render(&V::I(0), &s).unwrap(), "0");
        assert_eq!(render(&V::E, &s), None);
    }
}
