//! Helpers for the parser tests: real XLSX files (rust_xlsxwriter), hand-made
//! zip archives (for bombs and lies), and short accessors.

use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};

use super::{Limits, parse_upload};
use crate::error::Error;
use crate::model::{Cell, ParsedFile, RecordType, type_def};

pub(crate) const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// One cell to write into a test workbook.
#[derive(Clone, Debug)]
pub(crate) enum X {
    S(&'static str),
    N(f64),
    /// A date-time cell (y, m, d, h, mi, s).
    Dt(u16, u8, u8, u16, u8, u8),
    /// A date cell (y, m, d).
    D(u16, u8, u8),
    B(bool),
    /// A number cell with a date format but a serial out of Excel's range.
    BadDate(f64),
    Skip,
}

/// An XLSX file with `rows` in its first sheet (row 0 = the header).
pub(crate) fn xlsx(rows: &[Vec<X>]) -> Vec<u8> {
    let mut wb = Workbook::new();
    let dt_fmt = Format::new().set_num_format("yyyy-mm-dd hh:mm:ss");
    let d_fmt = Format::new().set_num_format("yyyy-mm-dd");
    let ws = wb.add_worksheet();
    for (r, row) in rows.iter().enumerate() {
        let r = u32::try_from(r).unwrap();
        for (c, cell) in row.iter().enumerate() {
            let c = u16::try_from(c).unwrap();
            match cell {
                X::S(s) => drop(ws.write_string(r, c, *s).unwrap()),
                X::N(x) => drop(ws.write_number(r, c, *x).unwrap()),
                X::Dt(y, m, d, h, mi, s) => {
                    let dt = ExcelDateTime::from_ymd(*y, *m, *d).unwrap().and_hms(*h, *mi, *s).unwrap();
                    ws.write_datetime_with_format(r, c, &dt, &dt_fmt).unwrap();
                }
                X::D(y, m, d) => {
                    let dt = ExcelDateTime::from_ymd(*y, *m, *d).unwrap();
                    ws.write_datetime_with_format(r, c, &dt, &d_fmt).unwrap();
                }
                X::B(b) => drop(ws.write_boolean(r, c, *b).unwrap()),
                X::BadDate(x) => drop(ws.write_number_with_format(r, c, *x, &d_fmt).unwrap()),
                X::Skip => {}
            }
        }
    }
    // A second sheet that must be ignored.
    wb.add_worksheet().write_string(0, 0, "不应读取").unwrap();
    wb.save_to_buffer().unwrap()
}

/// One entry of a hand-made zip.
pub(crate) struct Entry<'a> {
    pub name: &'a str,
    /// 0 = stored, 8 = deflated.
    pub method: u16,
    pub data: &'a [u8],
    pub crc: u32,
    /// The uncompressed size written in the headers (may lie).
    pub size: u32,
}

/// A zip archive written byte by byte (no checks: the sizes may lie).
pub(crate) fn raw_zip(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let offset = u32::try_from(out.len()).unwrap();
        let name = e.name.as_bytes();
        let clen = u32::try_from(e.data.len()).unwrap();
        let nlen = u16::try_from(name.len()).unwrap();
        out.extend_from_slice(b"PK\x03\x04");
        out.extend_from_slice(&20u16.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&e.method.to_le_bytes());
        out.extend_from_slice(&[0, 0, 0x21, 0]); // time, date
        out.extend_from_slice(&e.crc.to_le_bytes());
        out.extend_from_slice(&clen.to_le_bytes());
        out.extend_from_slice(&e.size.to_le_bytes());
        out.extend_from_slice(&nlen.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(e.data);
        central.extend_from_slice(b"PK\x01\x02");
        central.extend_from_slice(&20u16.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&e.method.to_le_bytes());
        central.extend_from_slice(&[0, 0, 0x21, 0]);
        central.extend_from_slice(&e.crc.to_le_bytes());
        central.extend_from_slice(&clen.to_le_bytes());
        central.extend_from_slice(&e.size.to_le_bytes());
        central.extend_from_slice(&nlen.to_le_bytes());
        central.extend_from_slice(&[0; 8]); // extra, comment, disk, internal attrs
        central.extend_from_slice(&0u32.to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name);
    }
    let cd_offset = u32::try_from(out.len()).unwrap();
    let n = u16::try_from(entries.len()).unwrap();
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06");
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&u32::try_from(central.len()).unwrap().to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// `bytes` (a zip) rewritten with stored entries, each entry's data passed
/// through `edit(name, data)`.
pub(crate) fn rezip(bytes: &[u8], edit: impl Fn(&str, &[u8]) -> Vec<u8>) -> Vec<u8> {
    use std::io::Read;
    let mut archive = zip9::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut parts = Vec::new();
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).unwrap();
        let mut data = Vec::new();
        f.read_to_end(&mut data).unwrap();
        let name = f.name().unwrap().to_string();
        let data = edit(&name, &data);
        parts.push((name, data));
    }
    let entries: Vec<Entry<'_>> = parts
        .iter()
        .map(|(name, data)| {
            let mut c = flate2::Crc::new();
            c.update(data);
            Entry { name, method: 0, data, crc: c.sum(), size: u32::try_from(data.len()).unwrap() }
        })
        .collect();
    raw_zip(&entries)
}

/// A raw deflate stream of `mib` MiB of zeros, built without inflating it
/// (the steady-state block is repeated), about 1 KiB per MiB.
pub(crate) fn deflated_zeros(mib: usize) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let chunk = vec![0u8; 1 << 20];
    let mut c = Compress::new(Compression::best(), false);
    let mut step = |input: &[u8], flush: FlushCompress| {
        let mut out = Vec::with_capacity(64 << 10);
        let before = c.total_in();
        c.compress_vec(input, &mut out, flush).unwrap();
        assert_eq!(usize::try_from(c.total_in() - before).unwrap(), input.len());
        out
    };
    let first = step(&chunk, FlushCompress::Sync);
    let second = step(&chunk, FlushCompress::Sync);
    let third = step(&chunk, FlushCompress::Sync);
    assert_eq!(second, third, "steady state");
    let mut out = first;
    for _ in 1..mib {
        out.extend_from_slice(&second);
    }
    out.extend(step(&[], FlushCompress::Finish));
    out
}

/// Parse with default limits.
pub(crate) fn parse(ty: RecordType, bytes: &[u8], ct: Option<&str>) -> Result<ParsedFile, Error> {
    parse_upload(ty, bytes, ct, &Limits::default())
}

/// The code of a whole-file or too-large error.
pub(crate) fn code<T: std::fmt::Debug>(r: Result<T, Error>) -> &'static str {
    match r {
        Err(Error::File { code, .. } | Error::TooLarge { code, .. }) => code,
        other => panic!("expected a file error, got {other:?}"),
    }
}

/// The message of a whole-file or too-large error.
pub(crate) fn message<T: std::fmt::Debug>(r: Result<T, Error>) -> String {
    match r {
        Err(Error::File { message, .. } | Error::TooLarge { message, .. }) => message,
        other => panic!("expected a file error, got {other:?}"),
    }
}

/// The cell of field `code` in data row `i` (0-based index into `rows`).
pub(crate) fn cell<'a>(f: &'a ParsedFile, i: usize, code: &str) -> Option<&'a Cell> {
    let idx = type_def(f.ty).index(code).unwrap_or_else(|| panic!("no field {code}"));
    f.rows[i].cells[idx].as_ref()
}

/// Shorthand for a text cell.
pub(crate) fn text(s: &str) -> Option<Cell> {
    Some(Cell::Text(s.to_owned()))
}

/// A visits CSV with `n` data rows.
pub(crate) fn visits_csv(n: usize) -> String {
    let mut s = String::from("ZZJGDM,JLID,CZLX,GXSJ,YWRQ,BBH,TJRQ,MZRC,JZRC,ZYRS\n");
    for i in 0..n {
        s.push_str(&format!("91110000000000000X,{i},1,2024-01-01 00:00:00,2024-01-01,1.0,2024-01-01,1,2,3\n"));
    }
    s
}
