//! A table as a page shows it, and the same table exported as CSV (UTF-8 with
//! BOM, for Excel) or XLSX: one struct, three renderings, so an export holds
//! exactly the cells the page shows (small cells included as `<5` / `—`).
//!
//! ```text
//!  Table { name, title, headers, rows[cells{text, class}] } ─┬▶ html(url)  (sortable, export links keep the filters)
//!                                                             ├▶ csv()
//!                                                             └▶ xlsx()  (rust_xlsxwriter; numbers as numbers)
//! ```

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use crate::{Error, Result};

/// One cell: its text, and whether it is numeric (right-aligned, a number in XLSX).
#[derive(Clone, Debug, PartialEq)]
pub struct Td {
    pub text: String,
    pub numeric: bool,
    /// A link (page only).
    pub href: Option<String>,
}

impl Td {
    pub fn text(s: impl Into<String>) -> Td {
        Td { text: s.into(), numeric: false, href: None }
    }
    pub fn num(s: impl Into<String>) -> Td {
        Td { text: s.into(), numeric: true, href: None }
    }
    pub fn link(s: impl Into<String>, href: impl Into<String>) -> Td {
        Td { text: s.into(), numeric: false, href: Some(href.into()) }
    }
}

/// A row and its highlight (`alert`, `warn` or none).
#[derive(Clone, Debug, PartialEq)]
pub struct Tr {
    pub cells: Vec<Td>,
    pub class: Option<&'static str>,
}

/// A table.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// Short ASCII name, used in `?table=` and the file name.
    pub name: &'static str,
    pub title: String,
    pub headers: Vec<String>,
    pub rows: Vec<Tr>,
}

impl Table {
    pub fn new(name: &'static str, title: impl Into<String>, headers: &[&str]) -> Table {
        Table {
            name,
            title: title.into(),
            headers: headers.iter().map(|h| (*h).to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, cells: Vec<Td>) {
        self.rows.push(Tr { cells, class: None });
    }

    pub fn push_class(&mut self, cells: Vec<Td>, class: Option<&'static str>) {
        self.rows.push(Tr { cells, class });
    }

    /// The page markup; `export` is the page URL with its filters (`…?a=b`), to which `format` is added.
    pub fn html(&self, export: Option<&str>) -> Markup {
        html! {
            div.tablebar {
                h3 { (self.title) }
                @if let Some(u) = export {
                    span.exports {
                        "导出: "
                        a.export href=(format!("{u}&format=csv&table={}", self.name)) { "CSV" }
                        a.export href=(format!("{u}&format=xlsx&table={}", self.name)) { "Excel (XLSX)" }
                    }
                }
            }
            table.data id={ "t-" (self.name) } {
                thead { tr { @for h in &self.headers { th.sortable { (h) } } } }
                tbody {
                    @if self.rows.is_empty() {
                        tr { td colspan=(self.headers.len().max(1)) { "暂无数据" } }
                    }
                    @for r in &self.rows {
                        tr class=[r.class] {
                            @for c in &r.cells {
                                td class=[c.numeric.then_some("num")] {
                                    @if let Some(h) = &c.href { a href=(h) { (c.text) } } @else { (c.text) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// CSV with a UTF-8 BOM.
    pub fn csv(&self) -> Result<Vec<u8>> {
        let mut w = csv::Writer::from_writer(vec![0xEF, 0xBB, 0xBF]);
        w.write_record(&self.headers).map_err(|e| Error::Internal(format!("csv: {e}")))?;
        for r in &self.rows {
            w.write_record(r.cells.iter().map(|c| c.text.as_str()))
                .map_err(|e| Error::Internal(format!("csv: {e}")))?;
        }
        w.into_inner().map_err(|e| Error::Internal(format!("csv: {e}")))
    }

    /// XLSX: a bold header row, numbers as numbers, percentages as text with `%`.
    pub fn xlsx(&self) -> Result<Vec<u8>> {
        let x = |e: rust_xlsxwriter::XlsxError| Error::Internal(format!("xlsx: {e}"));
        let mut wb = rust_xlsxwriter::Workbook::new();
        let bold = rust_xlsxwriter::Format::new().set_bold();
        let ws = wb.add_worksheet();
        ws.set_name(self.name).map_err(x)?;
        for (c, h) in self.headers.iter().enumerate() {
            let col = u16::try_from(c).map_err(|_| Error::Internal("xlsx: too many columns".into()))?;
            ws.write_string_with_format(0, col, h, &bold).map_err(x)?;
            ws.set_column_width(col, 16).map_err(x)?;
        }
        for (r, row) in self.rows.iter().enumerate() {
            let rr = u32::try_from(r + 1).map_err(|_| Error::Internal("xlsx: too many rows".into()))?;
            for (c, cell) in row.cells.iter().enumerate() {
                let col = u16::try_from(c).map_err(|_| Error::Internal("xlsx: too many columns".into()))?;
                match cell.numeric.then(|| cell.text.replace(',', "").parse::<f64>().ok()).flatten() {
                    Some(v) => ws.write_number(rr, col, v).map_err(x)?,
                    None => ws.write_string(rr, col, &cell.text).map_err(x)?,
                };
            }
        }
        wb.save_to_buffer().map_err(x)
    }
}

/// The export answer for `format` (`csv` or `xlsx`) of the table named `name` (default: the first).
pub fn export(tables: &[Table], name: Option<&str>, format: &str, file_stem: &str) -> Result<Response> {
    let t = match name {
        Some(n) => tables.iter().find(|t| t.name == n),
        None => tables.first(),
    }
    .ok_or(Error::NotFound)?;
    let (body, ty, ext) = match format {
        "csv" => (t.csv()?, "text/csv; charset=utf-8", "csv"),
        "xlsx" => (t.xlsx()?, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
        _ => return Err(Error::BadRequest("format 须为 csv 或 xlsx (format: csv|xlsx)".into())),
    };
    let stem: String = file_stem.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ty));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"flumon-{stem}-{}.{ext}\"", t.name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new("t1", "测试表", &["地区", "病例数", "阳性率"]);
        t.push(vec![Td::text("北京市"), Td::num("1,234"), Td::num("12.5%")]);
        t.push_class(vec![Td::text("a,\"b\""), Td::num("<5"), Td::num("—")], Some("alert"));
        t
    }

    #[test]
    fn csv_quotes_and_keeps_small_cells() {
        let s = String::from_utf8(sample().csv().unwrap()).unwrap();
        assert!(s.starts_with('\u{feff}'));
        assert!(s.contains("北京市,\"1,234\",12.5%"));
        assert!(s.contains("\"a,\"\"b\"\"\",<5,—"));
    }

    #[test]
    fn xlsx_is_a_zip_and_html_escapes() {
        let x = sample().xlsx().unwrap();
        assert_eq!(&x[..2], b"PK");
        let h = sample().html(Some("/map?scope=000000")).into_string();
        assert!(h.contains("a,&quot;b&quot;") || h.contains("a,\"b\""));
        assert!(h.contains("format=xlsx&amp;table=t1"));
        assert!(h.contains("class=\"alert\""));
        assert!(export(&[sample()], Some("nope"), "csv", "x").is_err());
        assert!(export(&[sample()], None, "pdf", "x").is_err());
    }
}
