//! Reading an upload (INTERFACE §1): JSON, CSV or XLSX bytes in, one
//! [`RawRow`](crate::model::RawRow) per data row out, or one whole-file
//! [`Error`] with a stable code (the table [`FILE_ERROR_CODES`]).
//!
//! ```text
//!  HTTP body ─▶ read_limited (≤ max_bytes, else TooLarge)
//!     │
//!     ▼
//!  parse_upload(ty, bytes, Content-Type, limits)
//!     ├─ size check                      ─▶ TooLarge FILE_TOO_LARGE
//!     ├─ detect.rs   declared type vs. magic bytes ─▶ Json | Csv | Xlsx
//!     ├─ encoding.rs (text) UTF-8 / BOM / GB18030 ─▶ &str
//!     ├─ json.rs     {"records":[…]} streamed with serde, no Value tree
//!     ├─ csv.rs      RFC 4180 (csv crate), quote balance pre-check
//!     └─ xlsx.rs     zipguard.rs inflates every entry once, bounded
//!                    (total and ratio) ─▶ calamine cell stream, first sheet
//!     │
//!     ▼ header.rs: headers → field indices (code or 中文名), rows → cells,
//!       row limit counted while reading
//!  ParsedFile { ty, rows: [RawRow { row, cells, extra }] } ─▶ validate
//! ```
//!
//! # Decisions
//!
//! * **Values are not validated or converted here.** Text stays text
//!   (untrimmed), numbers stay [`Cell::Number`](crate::model::Cell) (always
//!   finite: a non-finite XLSX number becomes its text, e.g. `NaN`), so that
//!   validation can zero-pad fixed-width codes and refuse an SFZH stored as a
//!   number. An empty string, JSON `null` and an absent key are all `None`.
//! * **Row numbers**: `row` 1 is the first data row; rows keep the number of
//!   their position in the file even when empty rows before them were skipped,
//!   so that `row + 1` is the row number Excel shows (CSV: blank lines and
//!   quoted line breaks are accounted for). JSON: `row` is the 1-based index in
//!   `records`.
//! * **Empty rows are skipped**: a CSV/XLSX row whose cells are all empty or
//!   whitespace is not returned (spreadsheets leave such rows behind), and
//!   does not count towards `max_rows`. A JSON record `{}` (or all `null`) is
//!   skipped the same way.
//! * **Headers** (CSV, XLSX, and also JSON keys): a field code in any case, or
//!   the Chinese name, compared ignoring spaces and bracket width
//!   ([`TypeDef::resolve_header`](crate::model::TypeDef::resolve_header)).
//!   A column with a blank header is tolerated while all its cells are empty; a
//!   value under it (or past the last header in CSV) is `FILE_ROW_WIDTH`. A
//!   first row where no header names a field is `FILE_NO_HEADER`. Unknown
//!   columns reject the file except for `discharge`, which keeps them in
//!   `extra` as `(header as written, value as text)`; empty extra values are
//!   not kept; duplicated extra headers are kept as they come. Two columns for
//!   one field are `FILE_DUPLICATE_COLUMN`, also for JSON keys (`"xm"` and
//!   `"XM"` in one record).
//! * **Missing cells**: a CSV row shorter than the header has `None` for the
//!   missing columns; missing required columns are validation's business.
//! * **Encodings**: UTF-8 (BOM optional) or GB18030, for CSV and for JSON alike.
//!   A UTF-8 BOM decides UTF-8 whatever was declared. Declared `charset=`
//!   `gb18030`, `gbk`, `gb2312` (and `cp936`, `windows-936`) are all decoded as
//!   GB18030 (its superset); `utf-8`/`utf8` must be valid UTF-8; any other
//!   charset is `FILE_ENCODING`. Undeclared: valid UTF-8, else GB18030 if it
//!   decodes without error, else `FILE_ENCODING`. GB18030 is `encoding_rs`'s,
//!   which since 0.8.35 follows GB18030-2022 (the WHATWG Encoding Standard);
//!   the one difference from the national standard is that the single byte
//!   `0x80` decodes to `€` (a Windows code page 936 habit) instead of being an
//!   error. UTF-16 (BOM `FF FE`/`FE FF`) is refused with a hint to save as UTF-8.
//! * **Content types**: `application/json`, `text/csv` (also `application/csv`,
//!   `text/comma-separated-values`), the XLSX type; absent,
//!   `application/octet-stream`, `text/plain` and `application/vnd.ms-excel`
//!   (what browsers call a `.csv` on Windows) are sniffed. Any other type is
//!   `FILE_FORMAT`. A legacy `.xls` (OLE2) file is `FILE_FORMAT` with a hint.
//! * **JSON**: exactly `{"records":[…]}`; other top-level keys, a missing
//!   `records`, or a record that is not an object are `FILE_JSON`; a value that
//!   is a boolean, an object or an array is `FILE_JSON` (whole file: the
//!   producer is broken, not the row). Numbers are read as `f64` (integers
//!   beyond 2^53 lose precision; validation refuses SFZH numbers anyway).
//!   Duplicate keys are `FILE_DUPLICATE_COLUMN`.
//! * **XLSX**: the first sheet in workbook order; its row 1 is the header (an
//!   empty row 1 is `FILE_NO_HEADER`). Number cells → `Number`, date/date-time
//!   cells → `DateTime` (out of Excel's range 0 … 9999-12-31 or 1900-02-29 →
//!   `Number` of the serial), duration cells → `Number` (the serial), ISO
//!   date cells (`t="d"`) → `Text`, booleans → `Text("TRUE"/"FALSE")` as Excel
//!   shows them (validation refuses them, no field takes a boolean), error
//!   cells → `Text("#N/A")` etc., formulas → their cached value. Cells must
//!   come in row order (every writer does): a cell of an earlier row after a
//!   later row, or a cell outside Excel's grid, is `FILE_XLSX_CORRUPT`. Before calamine sees the bytes, every
//!   zip entry is inflated once through a bounded reader: more than
//!   [`Limits::max_xlsx_inflated`] in total, an entry above
//!   [`Limits::max_xlsx_ratio`] (checked for entries of 1 MiB or more
//!   inflated), or more than [`zipguard::MAX_ENTRIES`] entries is
//!   `FILE_XLSX_BOMB`. Encrypted entries, or compression other than stored
//!   and deflate, are `FILE_XLSX_CORRUPT`; a zip without its end record (cut) is
//!   `FILE_TRUNCATED`. A shared-strings part whose `uniqueCount` is larger
//!   than its size allows is `FILE_XLSX_CORRUPT`: calamine 0.38 reserves that
//!   many strings up front, and a forged count aborts the process (allocation
//!   failure, not a catchable panic; verified). The guard uses the zip crate of calamine's own major
//!   version (`zip9`), so what was checked is what calamine reads. Calamine
//!   runs inside `catch_unwind` as a second line: a panic there (calamine
//!   0.38 has integer overflows on absurd cell references such as
//!   `ZZZZZZZZ1`, which panic in debug builds only) becomes
//!   `FILE_XLSX_CORRUPT`. An empty first sheet is `FILE_EMPTY`.
//! * **Limits**: bytes checked before anything else; rows counted while
//!   reading (non-empty data rows), the reading stops at `max_rows + 1`.
//! * **Messages**: Chinese first, English gist in brackets; at most 24
//!   characters of a header or key are echoed (two of them at most), control characters replaced;
//!   cell values are never echoed (a value may be an identifier).

mod csv;
mod detect;
mod encoding;
pub mod fuzz;
mod header;
mod json;
pub mod stream;
mod stream_json;
#[cfg(test)]
mod testutil;
pub mod xlsx;
pub mod zipguard;

use std::io::Read;

use crate::error::Error;
use crate::model::{ParsedFile, RecordType};

pub use detect::detect;

/// Limits of one upload (INTERFACE §1 "limits").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest upload in bytes (64 MiB).
    pub max_bytes: usize,
    /// Most data rows (200,000).
    pub max_rows: usize,
    /// Most bytes all XLSX zip entries may inflate to, together (512 MiB).
    pub max_xlsx_inflated: u64,
    /// Largest inflated/compressed ratio of one XLSX zip entry (200).
    pub max_xlsx_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bytes: 64 << 20, max_rows: 200_000, max_xlsx_inflated: 512 << 20, max_xlsx_ratio: 200 }
    }
}

/// The three upload formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Json,
    Csv,
    Xlsx,
}

impl Format {
    /// Lower-case name (`json`, `csv`, `xlsx`).
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
        }
    }
}

/// The character encoding of a text upload. XLSX reports `Utf8` (its XML
/// declares its own encoding; the value means nothing there).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Charset {
    Utf8,
    Gb18030,
}

/// The file is empty.
pub const FILE_EMPTY: &str = "FILE_EMPTY";
/// Binary content where text was expected.
pub const FILE_BINARY: &str = "FILE_BINARY";
/// Not the declared format, or not a supported format.
pub const FILE_FORMAT: &str = "FILE_FORMAT";
/// Neither UTF-8 nor GB18030.
pub const FILE_ENCODING: &str = "FILE_ENCODING";
/// The file ends early (cut zip, unterminated CSV quote, JSON cut short).
pub const FILE_TRUNCATED: &str = "FILE_TRUNCATED";
/// The XLSX file cannot be read.
pub const FILE_XLSX_CORRUPT: &str = "FILE_XLSX_CORRUPT";
/// The XLSX file inflates to too much (a zip bomb).
pub const FILE_XLSX_BOMB: &str = "FILE_XLSX_BOMB";
/// The first row is not a header.
pub const FILE_NO_HEADER: &str = "FILE_NO_HEADER";
/// A column (JSON key) the type does not know.
pub const FILE_UNKNOWN_COLUMN: &str = "FILE_UNKNOWN_COLUMN";
/// Two columns (JSON keys) for the same field.
pub const FILE_DUPLICATE_COLUMN: &str = "FILE_DUPLICATE_COLUMN";
/// A value in a column without a header.
pub const FILE_ROW_WIDTH: &str = "FILE_ROW_WIDTH";
/// CSV that the CSV reader refused.
pub const FILE_CSV: &str = "FILE_CSV";
/// JSON that is not `{"records":[…]}` of flat objects, or not JSON.
pub const FILE_JSON: &str = "FILE_JSON";
/// More bytes than allowed (answered with 413).
pub const FILE_TOO_LARGE: &str = "FILE_TOO_LARGE";
/// More rows than allowed (answered with 413).
pub const FILE_TOO_MANY_ROWS: &str = "FILE_TOO_MANY_ROWS";

/// The stable whole-file error codes and what they mean (for docs/INTERFACE.md).
pub const FILE_ERROR_CODES: &[(&str, &str)] = &[
    (FILE_EMPTY, "文件为空, 或只有空白 (empty file)"),
    (FILE_BINARY, "文件含二进制内容, 不是文本 (binary content)"),
    (FILE_FORMAT, "文件不是所声明的格式, 或不是 JSON/CSV/XLSX (wrong or unsupported format)"),
    (FILE_ENCODING, "文本编码不是 UTF-8 或 GB18030 (encoding not UTF-8/GB18030)"),
    (FILE_TRUNCATED, "文件不完整, 可能被截断 (truncated file)"),
    (FILE_XLSX_CORRUPT, "XLSX 文件损坏或无法读取 (corrupt XLSX)"),
    (FILE_XLSX_BOMB, "XLSX 解压后过大或压缩比异常, 疑似压缩炸弹 (zip bomb)"),
    (FILE_NO_HEADER, "第一行不是表头 (no header row)"),
    (FILE_UNKNOWN_COLUMN, "表头或 JSON 键中有接口标准之外的列 (unknown column)"),
    (FILE_DUPLICATE_COLUMN, "同一字段出现两列 (duplicate column)"),
    (FILE_ROW_WIDTH, "数据出现在没有表头的列 (value outside the header)"),
    (FILE_CSV, "CSV 无法解析 (unreadable CSV)"),
    (FILE_JSON, "JSON 结构不符合 {\"records\":[…]} (bad JSON structure)"),
    (FILE_TOO_LARGE, "文件超过 64 MiB (file too large)"),
    (FILE_TOO_MANY_ROWS, "数据超过 200,000 行 (too many rows)"),
];

/// Whether `parse_upload` would read these bytes as XLSX (a zip, by its magic
/// or the declared type): such an upload is better read with
/// [`xlsx::parse_chunks`], which never holds more than a chunk of rows.
pub fn is_xlsx(content_type: Option<&str>, bytes: &[u8]) -> bool {
    matches!(detect::sniff(content_type, bytes), Ok((Format::Xlsx, _)))
}

/// Parse one upload of type `ty` (INTERFACE §1).
///
/// `content_type` is the request's `Content-Type` header, if any.
pub fn parse_upload(
    ty: RecordType,
    bytes: &[u8],
    content_type: Option<&str>,
    limits: &Limits,
) -> Result<ParsedFile, Error> {
    check_size(bytes.len(), limits)?;
    let (format, declared) = detect::sniff(content_type, bytes)?;
    match format {
        Format::Xlsx => xlsx::parse(ty, bytes, limits),
        Format::Json => {
            let (text, _) = encoding::decode(bytes, declared)?;
            json::parse(ty, &text, limits)
        }
        Format::Csv => {
            let (text, _) = encoding::decode(bytes, declared)?;
            csv::parse(ty, &text, limits)
        }
    }
}

/// Read a request body, refusing (while reading) anything past `max_bytes`.
pub fn read_limited(r: impl Read, limits: &Limits) -> Result<Vec<u8>, Error> {
    let cap = u64::try_from(limits.max_bytes).unwrap_or(u64::MAX).saturating_add(1);
    let mut out = Vec::new();
    r.take(cap).read_to_end(&mut out)?;
    check_size(out.len(), limits)?;
    Ok(out)
}

fn check_size(len: usize, limits: &Limits) -> Result<(), Error> {
    if len > limits.max_bytes {
        return Err(too_large(
            FILE_TOO_LARGE,
            format!("文件超过 {} 字节的上限 (file too large); 请分多个文件上传", limits.max_bytes),
        ));
    }
    Ok(())
}

pub(crate) fn too_large(code: &'static str, message: String) -> Error {
    Error::TooLarge { code, message }
}

pub(crate) fn too_many_rows(limits: &Limits) -> Error {
    too_large(FILE_TOO_MANY_ROWS, format!("数据超过 {} 行的上限 (too many rows); 请分多个文件上传", limits.max_rows))
}

/// At most 24 characters of `s`, control characters shown as `�`, for echoing
/// a header or key in a message.
pub(crate) fn excerpt(s: &str) -> String {
    const MAX: usize = 24;
    let mut out: String = s.chars().take(MAX).map(|c| if c.is_control() { '\u{fffd}' } else { c }).collect();
    if s.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

/// The spreadsheet name of a 0-based column (`A`, `Z`, `AA`, …).
pub(crate) fn column_name(index: usize) -> String {
    let mut n = index.saturating_add(1);
    let mut out = Vec::new();
    while n > 0 {
        let rem = (n - 1) % 26;
        out.push(char::from(b'A'.saturating_add(u8::try_from(rem).unwrap_or(0))));
        n = (n - 1) / 26;
    }
    out.iter().rev().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_match_interface() {
        let l = Limits::default();
        assert_eq!(l.max_bytes, 64 * 1024 * 1024);
        assert_eq!(l.max_rows, 200_000);
    }

    #[test]
    fn error_codes_are_unique_and_documented() {
        let mut seen = std::collections::HashSet::new();
        for (code, zh) in FILE_ERROR_CODES {
            assert!(seen.insert(*code), "{code} twice");
            assert!(code.starts_with("FILE_"));
            assert!(!zh.is_empty());
        }
        assert_eq!(FILE_ERROR_CODES.len(), 15);
    }

    #[test]
    fn read_limited_refuses_past_max() {
        let l = Limits { max_bytes: 10, ..Limits::default() };
        assert_eq!(read_limited(&b"0123456789"[..], &l).unwrap().len(), 10);
        let e = read_limited(std::io::repeat(b'x'), &l).unwrap_err();
        assert!(matches!(e, Error::TooLarge { code: FILE_TOO_LARGE, .. }), "{e}");
    }

    #[test]
    fn too_large_before_parsing() {
        let l = Limits { max_bytes: 4, ..Limits::default() };
        let e = parse_upload(RecordType::Visits, b"\x00\x01\x02\x03\x04", None, &l).unwrap_err();
        assert!(matches!(e, Error::TooLarge { code: FILE_TOO_LARGE, .. }));
    }

    #[test]
    fn excerpt_and_columns() {
        assert_eq!(excerpt("a\nb"), "a\u{fffd}b");
        assert_eq!(excerpt(&"长".repeat(40)).chars().count(), 25);
        assert_eq!(column_name(0), "A");
        assert_eq!(column_name(25), "Z");
        assert_eq!(column_name(26), "AA");
        assert_eq!(column_name(16383), "XFD");
    }
}
