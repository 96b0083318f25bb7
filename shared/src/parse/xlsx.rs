//! XLSX uploads: the first sheet, row 1 the header, read as a stream of cells
//! (calamine's cell reader: no dense range is ever built, so a cell at XFD1048576
//! costs nothing).
//!
//! ```text
//!  bytes ─▶ zipguard::check (bounded inflate of every entry)
//!        ─▶ catch_unwind { calamine Xlsx ─▶ first sheet ─▶ next_cell()… }
//!             row 0 cells ─▶ header names ─▶ Header::map
//!             row r cells ─▶ RowBuilder (row = r) ─▶ Rows (≤ max_rows)           parse
//!                                                 └▶ Chunker ─▶ sink, n at a time  parse_chunks
//! ```
//! [`parse_chunks`] reads through any `Read + Seek` (the DMZ's decrypting
//! reader over the raw archive) and never holds more than a chunk of rows.

use std::io::{Cursor, Read, Seek, SeekFrom};
use std::panic::{AssertUnwindSafe, catch_unwind};

use calamine::{DataRef, ExcelDateTime, Reader, Xlsx, XlsxError};
use chrono::NaiveDate;

use super::header::{Header, RowBuilder, Rows, cell_string};
use super::stream::{Chunker, StreamError};
use super::{FILE_EMPTY, FILE_NO_HEADER, FILE_XLSX_CORRUPT, Limits, zipguard};
use crate::error::Error;
use crate::model::{Cell, ParsedFile, RawRow, RecordType, type_def};

/// Excel's grid: 1,048,576 rows × 16,384 columns.
const MAX_ROW: u32 = 1 << 20;
const MAX_COL: u32 = 1 << 14;

/// Parse an XLSX upload (the zip guard first, calamine behind a panic net).
pub(crate) fn parse(ty: RecordType, bytes: &[u8], limits: &Limits) -> Result<ParsedFile, Error> {
    zipguard::check(bytes, limits)?;
    let mut rows = Rows::new(limits);
    match catch_unwind(AssertUnwindSafe(|| read_sheet(ty, Cursor::new(bytes), &mut |r| rows.push(r).map(|()| true)))) {
        Ok(result) => result.map(|_| ParsedFile { ty, rows: rows.rows }),
        Err(_) => Err(corrupt("文件结构异常")),
    }
}

/// [`parse`] of the XLSX read through `reader` (which must seek: a zip is read
/// from its end), handing the rows to `sink` `chunk_rows` at a time instead of
/// collecting them (what `parse::stream::parse_stream` does for CSV and JSON).
/// Returns the number of rows. Memory: calamine's shared strings and one chunk.
pub fn parse_chunks<R: Read + Seek, E>(
    ty: RecordType,
    reader: R,
    limits: &Limits,
    chunk_rows: usize,
    sink: impl FnMut(Vec<RawRow>) -> Result<(), E>,
) -> Result<usize, StreamError<E>> {
    chunks(ty, reader, limits, chunk_rows, sink, true)
}

/// [`parse_chunks`] of bytes that an earlier `parse_chunks` call already read
/// without a whole-file error (the DMZ's second read of an authenticated
/// archive item: the same bytes): the zip-bomb guard is not run again.
pub fn parse_chunks_again<R: Read + Seek, E>(
    ty: RecordType,
    reader: R,
    limits: &Limits,
    chunk_rows: usize,
    sink: impl FnMut(Vec<RawRow>) -> Result<(), E>,
) -> Result<usize, StreamError<E>> {
    chunks(ty, reader, limits, chunk_rows, sink, false)
}

fn chunks<R: Read + Seek, E>(
    ty: RecordType,
    mut reader: R,
    limits: &Limits,
    chunk_rows: usize,
    sink: impl FnMut(Vec<RawRow>) -> Result<(), E>,
    guard: bool,
) -> Result<usize, StreamError<E>> {
    if guard {
        zipguard::check_reader(&mut reader, limits)?;
        reader.seek(SeekFrom::Start(0)).map_err(|_| StreamError::File(corrupt("zip 结构异常")))?;
    }
    let mut chunker = Chunker::new(limits, chunk_rows, sink);
    match catch_unwind(AssertUnwindSafe(|| read_sheet(ty, &mut reader, &mut |r| chunker.push(r)))) {
        Ok(Ok(_)) => chunker.finish(),
        Ok(Err(e)) => Err(StreamError::File(e)),
        Err(_) => Err(StreamError::File(corrupt("文件结构异常"))),
    }
}

fn corrupt(what: &str) -> Error {
    Error::file(
        FILE_XLSX_CORRUPT,
        format!("XLSX 文件无法读取: {what} (corrupt XLSX); 请用 Excel 打开并重新保存为 .xlsx 后上传"),
    )
}

fn xlsx_error(e: &XlsxError) -> Error {
    match e {
        XlsxError::Password => {
            Error::file(FILE_XLSX_CORRUPT, "XLSX 文件加了密码 (password-protected XLSX); 请上传不加密的文件")
        }
        XlsxError::NotAWorksheet(_) | XlsxError::WorksheetNotFound(_) => {
            corrupt("第一个工作表不是普通数据表 (first sheet is not a worksheet)")
        }
        XlsxError::Zip(_) | XlsxError::Io(_) => corrupt("zip 结构异常"),
        XlsxError::FileNotFound(_) | XlsxError::RelationshipNotFound => corrupt("缺少工作簿的组成部分"),
        _ => corrupt("XML 内容异常"),
    }
}

/// Reads the first sheet, giving each finished row (or `None` for a blank
/// one) to `push`; stops early when `push` says `false` (`Ok(false)`).
fn read_sheet<R: Read + Seek>(
    ty: RecordType,
    reader: R,
    push: &mut dyn FnMut(Option<RawRow>) -> Result<bool, Error>,
) -> Result<bool, Error> {
    let def = type_def(ty);
    let mut wb: Xlsx<_> = Xlsx::new(reader).map_err(|e| xlsx_error(&e))?;
    let Some(first) = wb.sheet_names().first().cloned() else {
        return Err(corrupt("工作簿中没有工作表 (no sheet)"));
    };
    let mut cells = wb.worksheet_cells_reader(&first).map_err(|e| xlsx_error(&e))?;

    let mut names: Vec<Option<String>> = Vec::new();
    let mut header: Option<Header> = None;
    let mut current: Option<(u32, RowBuilder)> = None;
    let mut last_row: u32 = 0;
    while let Some(c) = cells.next_cell().map_err(|e| xlsx_error(&e))? {
        let (r, col) = c.get_position();
        if r >= MAX_ROW || col >= MAX_COL {
            return Err(corrupt("单元格位置超出 Excel 的范围 (cell outside the sheet)"));
        }
        if r < last_row {
            return Err(corrupt("单元格行序错乱 (rows out of order)"));
        }
        last_row = r;
        let Some(cell) = convert(c.get_value()) else { continue };
        if r == 0 {
            let slot = usize::try_from(col).unwrap_or(usize::MAX);
            if names.len() <= slot {
                names.resize(slot.saturating_add(1), None);
            }
            if let Some(n) = names.get_mut(slot) {
                *n = Some(cell_string(&cell));
            }
            continue;
        }
        let h = match &header {
            Some(h) => h,
            None => header.insert(map_header(def, &names)?),
        };
        match &mut current {
            Some((cr, _)) if *cr == r => {}
            _ => {
                if let Some((cr, b)) = current.take()
                    && !push(b.finish(row_number(cr)))?
                {
                    return Ok(false);
                }
                current = Some((r, RowBuilder::new(def)));
            }
        }
        if let Some((_, b)) = &mut current {
            b.place(h, usize::try_from(col).unwrap_or(usize::MAX), cell, row_number(r))?;
        }
    }
    if header.is_none() {
        if names.iter().all(Option::is_none) {
            return Err(Error::file(FILE_EMPTY, "XLSX 的第一个工作表为空 (empty sheet)"));
        }
        map_header(def, &names)?;
    }
    if let Some((cr, b)) = current.take() {
        return push(b.finish(row_number(cr)));
    }
    Ok(true)
}

fn map_header(def: &crate::model::TypeDef, names: &[Option<String>]) -> Result<Header, Error> {
    if names.iter().all(Option::is_none) {
        return Err(Error::file(
            FILE_NO_HEADER,
            "第一个工作表的第 1 行为空 (empty header row); 第 1 行须为表头: 字段代码或中文名",
        ));
    }
    Header::map(def, names)
}

/// Sheet row index (0 = header) as the data row number.
fn row_number(r: u32) -> usize {
    usize::try_from(r).unwrap_or(usize::MAX)
}

/// A calamine value as a cell (see the decisions in `parse/mod.rs`).
#[allow(clippy::cast_precision_loss)]
fn convert(v: &DataRef<'_>) -> Option<Cell> {
    Some(match v {
        DataRef::Empty => return None,
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => Cell::Text(s.clone()),
        DataRef::SharedString(s) => Cell::Text((*s).to_owned()),
        DataRef::Int(i) => Cell::Number(*i as f64),
        DataRef::Float(f) => number(*f),
        DataRef::Bool(b) => Cell::Text(if *b { "TRUE" } else { "FALSE" }.to_owned()),
        DataRef::DateTime(dt) => match date_time(dt) {
            Some(d) => Cell::DateTime(d),
            None => number(dt.as_f64()),
        },
        DataRef::Error(e) => Cell::Text(e.to_string()),
    })
}

fn number(f: f64) -> Cell {
    if f.is_finite() { Cell::Number(f) } else { Cell::Text(format!("{f}")) }
}

/// An Excel date serial as a date-time, when it is a date (not a duration)
/// within Excel's range and a real calendar day (not 1900-02-29).
fn date_time(dt: &ExcelDateTime) -> Option<chrono::NaiveDateTime> {
    let v = dt.as_f64();
    if !dt.is_datetime() || !v.is_finite() || !(0.0..2_958_466.0).contains(&v) {
        return None;
    }
    let (y, m, d, h, mi, s, ms) = dt.to_ymd_hms_milli();
    NaiveDate::from_ymd_opt(i32::from(y), u32::from(m), u32::from(d))?.and_hms_milli_opt(
        u32::from(h),
        u32::from(mi),
        u32::from(s),
        u32::from(ms),
    )
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{X, XLSX, cell, code, parse, text, xlsx};
    use super::super::*;
    use crate::model::{Cell, RecordType};
    use X::{B, D, Dt, N, S, Skip};
    use chrono::NaiveDate;

    const OP: RecordType = RecordType::Outpatient;
    const CT: Option<&str> = Some(XLSX);

    fn dt(y: i32, m: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<Cell> {
        Some(Cell::DateTime(NaiveDate::from_ymd_opt(y, m, d).unwrap().and_hms_opt(h, mi, s).unwrap()))
    }

    #[test]
    fn text_number_date_cells() {
        let bytes = xlsx(&[
            vec![
                S("ZZJGDM"),
                S("姓名"),
                S("年龄（岁）"),
                S("就诊/入院时间"),
                S("出生日期"),
                S("gj"),
                S("KBD"),
                S("BBH"),
            ],
            vec![
                S("91110000000000000X"),
                S("张三"),
                N(35.0),
                Dt(2024, 1, 2, 8, 30, 15),
                D(1989, 5, 6),
                N(4.0),
                B(true),
                N(1.0),
            ],
            vec![],
            vec![S(" "), S("")],
            vec![Skip, S("李四"), S("35"), S("2024-01-02 08:30"), Skip, S("004"), B(false), S("1.0")],
        ]);
        for ct in [CT, None, Some("application/octet-stream")] {
            let f = parse(OP, &bytes, ct).unwrap();
            assert_eq!(f.rows.len(), 2);
            assert_eq!((f.rows[0].row, f.rows[1].row), (1, 4));
            assert_eq!(cell(&f, 0, "ZZJGDM"), text("91110000000000000X").as_ref());
            assert_eq!(cell(&f, 0, "XM"), text("张三").as_ref());
            assert_eq!(cell(&f, 0, "NL"), Some(&Cell::Number(35.0)));
            assert_eq!(cell(&f, 0, "JZSJ"), dt(2024, 1, 2, 8, 30, 15).as_ref());
            assert_eq!(cell(&f, 0, "CSRQ"), dt(1989, 5, 6, 0, 0, 0).as_ref());
            assert_eq!(cell(&f, 0, "GJ"), Some(&Cell::Number(4.0)));
            assert_eq!(cell(&f, 0, "KBD"), text("TRUE").as_ref());
            assert_eq!(cell(&f, 0, "BBH"), Some(&Cell::Number(1.0)));
            assert_eq!(cell(&f, 1, "ZZJGDM"), None);
            assert_eq!(cell(&f, 1, "NL"), text("35").as_ref());
            assert_eq!(cell(&f, 1, "JZSJ"), text("2024-01-02 08:30").as_ref());
            assert_eq!(cell(&f, 1, "GJ"), text("004").as_ref());
            assert_eq!(cell(&f, 1, "KBD"), text("FALSE").as_ref());
        }
    }

    #[test]
    fn out_of_range_dates_stay_numbers() {
        let bytes = xlsx(&[vec![S("CSRQ"), S("JZSJ")], vec![X::BadDate(-5.0), X::BadDate(60.0)]]);
        let f = parse(OP, &bytes, CT).unwrap();
        assert_eq!(cell(&f, 0, "CSRQ"), Some(&Cell::Number(-5.0)));
        assert_eq!(cell(&f, 0, "JZSJ"), Some(&Cell::Number(60.0)));
    }

    #[test]
    fn header_only_and_empty() {
        let f = parse(OP, &xlsx(&[vec![S("XM"), S("KSMC")]]), CT).unwrap();
        assert!(f.rows.is_empty());
        let f = parse(OP, &xlsx(&[vec![S("XM"), S("KSMC")], vec![], vec![S("  ")]]), CT).unwrap();
        assert!(f.rows.is_empty());
        assert_eq!(code(parse(OP, &xlsx(&[]), CT)), FILE_EMPTY);
        assert_eq!(code(parse(OP, &xlsx(&[vec![], vec![S("XM")]]), CT)), FILE_NO_HEADER);
        assert_eq!(code(parse(OP, &xlsx(&[vec![S("张三"), N(3.0)]]), CT)), FILE_NO_HEADER);
    }

    #[test]
    fn columns() {
        assert_eq!(code(parse(OP, &xlsx(&[vec![S("XM"), S("备注")]]), CT)), FILE_UNKNOWN_COLUMN);
        assert_eq!(code(parse(OP, &xlsx(&[vec![S("XM"), S("姓名")]]), CT)), FILE_DUPLICATE_COLUMN);
        assert_eq!(code(parse(OP, &xlsx(&[vec![S("XM")], vec![S("A"), S("B")]]), CT)), FILE_ROW_WIDTH);
        assert_eq!(parse(OP, &xlsx(&[vec![S("XM")], vec![S("A"), S("")]]), CT).unwrap().rows.len(), 1);
        let bytes = xlsx(&[vec![S("XM"), S("籍贯"), S("床位")], vec![S("A"), S("北京"), N(12.0)], vec![S("B")]]);
        let f = parse(RecordType::Discharge, &bytes, CT).unwrap();
        assert_eq!(f.rows[0].extra, vec![("籍贯".into(), "北京".into()), ("床位".into(), "12".into())]);
        assert!(f.rows[1].extra.is_empty());
    }

    #[test]
    fn too_many_rows() {
        let rows = vec![vec![S("XM")], vec![S("A")], vec![S("B")], vec![], vec![S("C")]];
        let bytes = xlsx(&rows);
        let l = Limits { max_rows: 3, ..Limits::default() };
        assert_eq!(parse_upload(OP, &bytes, CT, &l).unwrap().rows.len(), 3);
        let l = Limits { max_rows: 2, ..Limits::default() };
        assert_eq!(code(parse_upload(OP, &bytes, CT, &l)), FILE_TOO_MANY_ROWS);
    }

    #[test]
    fn truncated_and_corrupt() {
        let bytes = xlsx(&[vec![S("XM"), S("KSMC")], vec![S("张三"), S("儿科")]]);
        for cut in [bytes.len() - 1, bytes.len() - 30, bytes.len() / 2, 100, 10] {
            let r = parse(OP, &bytes[..cut], CT);
            assert_eq!(code(r), FILE_TRUNCATED, "cut at {cut}");
        }
        // Every prefix: an error, never a panic.
        for cut in (4..bytes.len()).step_by(53) {
            let c = code(parse(OP, &bytes[..cut], CT));
            assert!([FILE_TRUNCATED, FILE_XLSX_CORRUPT].contains(&c), "cut at {cut}: {c}");
        }
        // Declared XLSX but not a zip.
        assert_eq!(code(parse(OP, b"XM\nA\n", CT)), FILE_FORMAT);
        // A zip without a workbook.
        let z = super::super::testutil::raw_zip(&[]);
        assert_eq!(code(parse(OP, &z, CT)), FILE_XLSX_CORRUPT);
    }

    /// `parse_chunks` gives the rows of `parse`, in order, `n` at a time; whole-file errors
    /// (also past `max_rows`) are `StreamError::File`; a failing sink stops the reading.
    #[test]
    fn chunks_equal_the_whole_parse() {
        use super::super::stream::StreamError;
        use std::io::Cursor;
        let names: Vec<&'static str> = (0..25).map(|i| &*format!("病人{i}").leak()).collect();
        let mut rows = vec![vec![S("XM"), S("KSMC")]];
        for (i, n) in names.iter().enumerate() {
            rows.push(if i % 7 == 3 { vec![] } else { vec![S(n), S("儿科")] });
        }
        let bytes = xlsx(&rows);
        let whole = parse(OP, &bytes, CT).unwrap().rows;
        assert_eq!(whole.len(), 21);
        for n in [1, 4, 21, 1000] {
            let mut got = Vec::new();
            let mut sizes = Vec::new();
            let count = super::parse_chunks(OP, Cursor::new(&bytes), &Limits::default(), n, |c| {
                sizes.push(c.len());
                got.extend(c);
                Ok::<(), ()>(())
            })
            .unwrap();
            assert_eq!(count, 21);
            assert_eq!(got, whole, "chunks of {n}");
            assert!(sizes.iter().all(|s| *s <= n && *s > 0), "{sizes:?}");
        }
        let mut again = Vec::new();
        super::parse_chunks_again(OP, Cursor::new(&bytes), &Limits::default(), 4, |c| {
            again.extend(c);
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(again, whole, "the second read without the guard");
        let l = Limits { max_rows: 20, ..Limits::default() };
        match super::parse_chunks(OP, Cursor::new(&bytes), &l, 4, |_| Ok::<(), ()>(())) {
            Err(StreamError::File(e)) => assert_eq!(code::<()>(Err(e)), FILE_TOO_MANY_ROWS),
            other => panic!("{other:?}"),
        }
        let mut calls = 0;
        let r = super::parse_chunks(OP, Cursor::new(&bytes), &Limits::default(), 4, |_| {
            calls += 1;
            if calls == 2 { Err("sink failed") } else { Ok(()) }
        });
        assert!(matches!(r, Err(StreamError::Sink("sink failed"))), "{r:?}");
        assert_eq!(calls, 2, "no chunk after the sink failed");
        let bad = xlsx(&[vec![S("XM"), S("备注")], vec![S("A"), S("B")]]);
        match super::parse_chunks(OP, Cursor::new(&bad), &Limits::default(), 4, |_| Ok::<(), ()>(())) {
            Err(StreamError::File(e)) => assert_eq!(code::<()>(Err(e)), FILE_UNKNOWN_COLUMN),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            super::parse_chunks(
                OP,
                Cursor::new(&bytes[..bytes.len() / 2]),
                &Limits::default(),
                4,
                |_| Ok::<(), ()>(())
            ),
            Err(StreamError::File(_))
        ));
    }
}
