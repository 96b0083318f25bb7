//! The file writers: CSV (RFC 4180 quoting, UTF-8 / BOM / GB18030, LF or
//! CRLF), JSON (`{"records":[…]}`, numbers or strings, empty as absent or
//! null) and XLSX (rust_xlsxwriter in constant-memory mode, a fixed creation
//! date so that output is byte-for-byte reproducible).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Workbook};

use flumon_shared::model::RecordType;

use super::{Enc, FileFormat, is_date_column, render, render_into};
use crate::synth::hospitals::Style;
use crate::synth::row::{Row, V};

/// How a file is laid out besides its format.
#[derive(Clone, Debug)]
pub struct Layout {
    pub style: Style,
    /// CSV: quote every field.
    pub quote_all: bool,
    /// JSON: empty values as `null` (else the key is left out).
    pub json_nulls: bool,
    /// XLSX: columns written as date cells (when the hospital does that).
    pub date_cells: Vec<bool>,
}

/// One open file.
pub enum FileWriter {
    Csv { out: BufWriter<File>, enc: Enc, crlf: bool, quote_all: bool, line: String, cell: String },
    Json { out: BufWriter<File>, first: bool, numbers: bool, nulls: bool, codes: Vec<String>, buf: String },
    Xlsx(Box<XlsxWriter>),
}

/// An XLSX file being written.
pub struct XlsxWriter {
    wb: Workbook,
    path: PathBuf,
    row: u32,
    date_fmt: Format,
    dt_fmt: Format,
    date_cells: Vec<bool>,
}

fn csv_field(line: &mut String, s: &str, quote_all: bool) {
    if quote_all || s.bytes().any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n')) {
        line.push('"');
        line.push_str(&s.replace('"', "\"\""));
        line.push('"');
    } else {
        line.push_str(s);
    }
}

fn xl_err(e: rust_xlsxwriter::XlsxError) -> anyhow::Error {
    anyhow::anyhow!("xlsx: {e}")
}

fn xl_date(d: NaiveDate) -> anyhow::Result<ExcelDateTime> {
    let y = u16::try_from(d.year()).context("year")?;
    let m = u8::try_from(d.month()).context("month")?;
    let day = u8::try_from(d.day()).context("day")?;
    ExcelDateTime::from_ymd(y, m, day).map_err(xl_err)
}

fn xl_datetime(t: NaiveDateTime, seconds: bool) -> anyhow::Result<ExcelDateTime> {
    let h = u16::try_from(t.hour()).context("hour")?;
    let m = u8::try_from(t.minute()).context("minute")?;
    let s = if seconds { f64::from(t.second()) } else { 0.0 };
    xl_date(t.date())?.and_hms(h, m, s).map_err(xl_err)
}

impl FileWriter {
    /// Create `path` and write the header.
    pub fn create(
        path: &Path,
        format: FileFormat,
        ty: RecordType,
        headers: &[String],
        layout: &Layout,
    ) -> anyhow::Result<FileWriter> {
        let open = || -> anyhow::Result<BufWriter<File>> {
            let f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
            Ok(BufWriter::with_capacity(1 << 16, f))
        };
        let mut w = match format {
            FileFormat::Csv(enc) => {
                let mut out = open()?;
                if enc == Enc::Utf8Bom {
                    out.write_all(b"\xEF\xBB\xBF")?;
                }
                FileWriter::Csv {
                    out,
                    enc,
                    crlf: layout.style.crlf,
                    quote_all: layout.quote_all,
                    line: String::new(),
                    cell: String::new(),
                }
            }
            FileFormat::Json => {
                let mut out = open()?;
                out.write_all(b"{\"records\":[")?;
                let codes = flumon_shared::model::type_def(ty).fields.iter().map(|f| f.code.clone()).collect();
                FileWriter::Json {
                    out,
                    first: true,
                    numbers: layout.style.json_numbers,
                    nulls: layout.json_nulls,
                    codes,
                    buf: String::new(),
                }
            }
            FileFormat::Xlsx => {
                let mut wb = Workbook::new();
                let created = ExcelDateTime::from_ymd(2026, 1, 1).map_err(xl_err)?;
                wb.set_properties(&DocProperties::new().set_creation_datetime(&created).set_author("flumon-synth"));
                wb.add_worksheet_with_constant_memory().map_err(xl_err)?;
                FileWriter::Xlsx(Box::new(XlsxWriter {
                    wb,
                    path: path.to_owned(),
                    row: 0,
                    date_fmt: Format::new().set_num_format("yyyy-mm-dd"),
                    dt_fmt: Format::new().set_num_format(if layout.style.seconds {
                        "yyyy-mm-dd hh:mm:ss"
                    } else {
                        "yyyy-mm-dd hh:mm"
                    }),
                    date_cells: layout.date_cells.clone(),
                }))
            }
        };
        w.header(headers)?;
        Ok(w)
    }

    fn header(&mut self, headers: &[String]) -> anyhow::Result<()> {
        match self {
            FileWriter::Csv { .. } => {
                let cells: Vec<Option<&str>> = headers.iter().map(|h| Some(h.as_str())).collect();
                self.csv_line(&cells).map(|_| ())
            }
            FileWriter::Json { .. } => Ok(()),
            FileWriter::Xlsx(x) => {
                let ws = x.wb.worksheet_from_index(0).map_err(xl_err)?;
                for (c, h) in headers.iter().enumerate() {
                    ws.write_string(0, u16::try_from(c).context("column")?, h).map_err(xl_err)?;
                }
                x.row = 1;
                Ok(())
            }
        }
    }

    fn csv_line(&mut self, cells: &[Option<&str>]) -> anyhow::Result<u64> {
        let FileWriter::Csv { quote_all, line, .. } = self else { return Ok(0) };
        line.clear();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            csv_field(line, c.unwrap_or(""), *quote_all);
        }
        self.flush_line()
    }

    /// End the CSV line in `line` and write it, encoded.
    fn flush_line(&mut self) -> anyhow::Result<u64> {
        let FileWriter::Csv { out, enc, crlf, line, .. } = self else { return Ok(0) };
        line.push_str(if *crlf { "\r\n" } else { "\n" });
        if *enc == Enc::Gb18030 {
            let (bytes, _, _) = encoding_rs::GB18030.encode(line);
            out.write_all(&bytes)?;
            Ok(bytes.len() as u64)
        } else {
            out.write_all(line.as_bytes())?;
            Ok(line.len() as u64)
        }
    }

    /// Write one row; returns the bytes it took (an estimate for XLSX).
    pub fn row(&mut self, row: &Row, style: &Style) -> anyhow::Result<u64> {
        match self {
            FileWriter::Csv { line, cell, quote_all, .. } => {
                line.clear();
                for (i, v) in row.cells.iter().enumerate() {
                    if i > 0 {
                        line.push(',');
                    }
                    cell.clear();
                    render_into(cell, v, style);
                    csv_field(line, cell, *quote_all);
                }
                for x in &row.extra {
                    line.push(',');
                    csv_field(line, x, *quote_all);
                }
                self.flush_line()
            }
            FileWriter::Json { out, first, numbers, nulls, codes, buf } => {
                buf.clear();
                buf.push_str(if *first { "\n{" } else { ",\n{" });
                *first = false;
                let mut sep = "";
                let mut text = String::new();
                let extra =
                    super::DISCHARGE_EXTRA.iter().copied().zip(row.extra.iter().map(|s| (None, Some(s.as_str()))));
                let all = codes.iter().map(String::as_str).zip(row.cells.iter().map(|v| (Some(v), None))).chain(extra);
                for (code, (v, x)) in all {
                    text.clear();
                    let has = match (v, x) {
                        (Some(v), _) => render_into(&mut text, v, style),
                        (None, Some(x)) => {
                            text.push_str(x);
                            true
                        }
                        (None, None) => false,
                    };
                    if !has && !*nulls {
                        continue;
                    }
                    buf.push_str(sep);
                    sep = ",";
                    buf.push('"');
                    buf.push_str(code);
                    buf.push_str("\":");
                    match v {
                        _ if !has => buf.push_str("null"),
                        Some(V::I(_) | V::D1(_) | V::D2(_) | V::D3(_)) if *numbers => buf.push_str(&text),
                        _ => buf.push_str(&serde_json::to_string(&text)?),
                    }
                }
                buf.push('}');
                out.write_all(buf.as_bytes())?;
                Ok(buf.len() as u64)
            }
            FileWriter::Xlsx(x) => x.row(row, style),
        }
    }

    /// Finish the file.
    pub fn finish(self) -> anyhow::Result<()> {
        match self {
            FileWriter::Csv { mut out, .. } => out.flush().context("flushing CSV"),
            FileWriter::Json { mut out, .. } => {
                out.write_all(b"\n]}\n")?;
                out.flush().context("flushing JSON")
            }
            FileWriter::Xlsx(mut x) => {
                let path = x.path.clone();
                x.wb.save(&path).map_err(xl_err).with_context(|| format!("saving {}", path.display()))
            }
        }
    }
}

impl XlsxWriter {
    fn row(&mut self, row: &Row, style: &Style) -> anyhow::Result<u64> {
        let r = self.row;
        self.row += 1;
        let ws = self.wb.worksheet_from_index(0).map_err(xl_err)?;
        let mut bytes = 0u64;
        for (i, v) in row.cells.iter().enumerate() {
            let c = u16::try_from(i).context("column")?;
            let as_date = self.date_cells.get(i).copied().unwrap_or(false) && is_date_column(row.ty, i);
            match v {
                V::E => continue,
                V::S(s) | V::Raw(s) => {
                    ws.write_string(r, c, s).map_err(xl_err)?;
                    bytes += s.len() as u64 + 8;
                }
                V::St(s) => {
                    ws.write_string(r, c, *s).map_err(xl_err)?;
                    bytes += s.len() as u64 + 8;
                }
                V::I(n) => {
                    ws.write_number(r, c, *n as f64).map_err(xl_err)?;
                    bytes += 12;
                }
                V::D1(n) | V::D2(n) | V::D3(n) => {
                    let scale = match v {
                        V::D1(_) => 10.0,
                        V::D2(_) => 100.0,
                        _ => 1000.0,
                    };
                    ws.write_number(r, c, *n as f64 / scale).map_err(xl_err)?;
                    bytes += 14;
                }
                V::Date(d) if as_date => {
                    ws.write_datetime_with_format(r, c, &xl_date(*d)?, &self.date_fmt).map_err(xl_err)?;
                    bytes += 12;
                }
                V::Dt(t) if as_date => {
                    ws.write_datetime_with_format(r, c, &xl_datetime(*t, style.seconds)?, &self.dt_fmt)
                        .map_err(xl_err)?;
                    bytes += 20;
                }
                V::Date(_) | V::Dt(_) => {
                    let s = render(v, style).unwrap_or_default();
                    ws.write_string(r, c, &s).map_err(xl_err)?;
                    bytes += s.len() as u64 + 8;
                }
            }
        }
        let base = row.cells.len();
        for (j, s) in row.extra.iter().enumerate() {
            ws.write_string(r, u16::try_from(base + j).context("column")?, s).map_err(xl_err)?;
            bytes += s.len() as u64 + 8;
        }
        Ok(bytes)
    }
}
