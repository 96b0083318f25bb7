//! What CSV, XLSX and JSON have in common: a header row (or a record's keys)
//! mapped to field indices, cells placed into a [`RawRow`], and the row limit.
//!
//! ```text
//!  ["组织机构代码", "jlid", "备注"] ──map──▶ [Field(0), Field(1), Extra("备注") | refused]
//!  cell (column c) ──place──▶ RowBuilder.cells[field] | extra | FILE_ROW_WIDTH
//!  RowBuilder ──finish──▶ Some(RawRow) | None (blank row)  ──▶ Rows (≤ max_rows)
//! ```

use crate::error::Error;
use crate::model::{Cell, RawRow, TypeDef};

use super::{
    FILE_DUPLICATE_COLUMN, FILE_NO_HEADER, FILE_ROW_WIDTH, FILE_UNKNOWN_COLUMN, Limits, column_name, excerpt,
    too_many_rows,
};

/// What one column of the header is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Col {
    /// A field of the type's table.
    Field(usize),
    /// An unknown column that the type keeps (discharge), with its header as written.
    Extra(String),
    /// A blank header: only empty cells allowed below it.
    Blank,
}

/// The header row, mapped.
#[derive(Debug)]
pub(crate) struct Header {
    cols: Vec<Col>,
}

impl Header {
    /// Map the header cells of a CSV or XLSX file (`None` = no cell there).
    pub(crate) fn map(def: &TypeDef, names: &[Option<String>]) -> Result<Header, Error> {
        let mut cols = Vec::with_capacity(names.len());
        let mut first_col_of: Vec<Option<usize>> = vec![None; def.fields.len()];
        let mut unknown: Vec<(usize, &str)> = Vec::new();
        let mut known = 0usize;
        for (c, name) in names.iter().enumerate() {
            let name = name.as_deref().unwrap_or("");
            if name.trim().is_empty() {
                cols.push(Col::Blank);
                continue;
            }
            match def.resolve_header(name) {
                Some(i) => {
                    known += 1;
                    if let Some(slot) = first_col_of.get_mut(i) {
                        if let Some(prev) = *slot {
                            return Err(duplicate(def, i, prev, c));
                        }
                        *slot = Some(c);
                    }
                    cols.push(Col::Field(i));
                }
                None => {
                    unknown.push((c, name));
                    cols.push(Col::Extra(name.trim().to_owned()));
                }
            }
        }
        if known == 0 {
            let message = if unknown.is_empty() {
                "第 1 行 (表头) 为空 (empty header row); 第 1 行须为表头: 字段代码或中文名".to_owned()
            } else {
                format!(
                    "第 1 行应为表头, 但其中没有一个是“{}”的字段代码或中文名 (no header row); \
                     请在第 1 行写表头, 并确认上传的类型正确",
                    def.ty.zh()
                )
            };
            return Err(Error::file(FILE_NO_HEADER, message));
        }
        if !unknown.is_empty() && !def.allows_extra {
            let listed: Vec<String> = unknown
                .iter()
                .take(2)
                .map(|(c, n)| format!("第 {} 列 ({}) “{}”", c + 1, column_name(*c), excerpt(n.trim())))
                .collect();
            let more = if unknown.len() > 2 { format!(" 等 {} 列", unknown.len()) } else { String::new() };
            return Err(Error::file(
                FILE_UNKNOWN_COLUMN,
                format!(
                    "表头中有“{}”不认识的列: {}{more} (unknown column); 请对照接口标准的字段代码或中文名",
                    def.ty.zh(),
                    listed.join("、")
                ),
            ));
        }
        Ok(Header { cols })
    }

    /// The column at `c` (past the header: `Blank`).
    pub(crate) fn col(&self, c: usize) -> &Col {
        self.cols.get(c).unwrap_or(&Col::Blank)
    }
}

fn duplicate(def: &TypeDef, field: usize, first: usize, second: usize) -> Error {
    let code = def.field(field).map_or("", |f| f.code.as_str());
    Error::file(
        FILE_DUPLICATE_COLUMN,
        format!(
            "第 {} 列 ({}) 与第 {} 列 ({}) 都是字段 {code} (duplicate column); 每个字段只能有一列",
            first + 1,
            column_name(first),
            second + 1,
            column_name(second)
        ),
    )
}

/// Whether a cell holds nothing worth keeping (empty or whitespace text).
pub(crate) fn is_blank(cell: &Cell) -> bool {
    matches!(cell, Cell::Text(s) if s.trim().is_empty())
}

/// The text of a cell kept in `extra`.
pub(crate) fn cell_string(cell: &Cell) -> String {
    match cell {
        Cell::Text(s) => s.clone(),
        Cell::Number(x) => format!("{x}"),
        Cell::DateTime(dt) => dt.format("%Y-%m-%d %H:%M:%S").to_string(),
    }
}

/// One row being filled.
pub(crate) struct RowBuilder {
    cells: Vec<Option<Cell>>,
    extra: Vec<(String, String)>,
    nonblank: bool,
}

impl RowBuilder {
    pub(crate) fn new(def: &TypeDef) -> Self {
        RowBuilder { cells: vec![None; def.fields.len()], extra: Vec::new(), nonblank: false }
    }

    /// Whether the field already has a cell.
    pub(crate) fn has(&self, field: usize) -> bool {
        matches!(self.cells.get(field), Some(Some(_)))
    }

    /// Set the cell of a field; an empty text is `None`.
    pub(crate) fn set(&mut self, field: usize, cell: Cell) {
        if !is_blank(&cell) {
            self.nonblank = true;
        }
        if matches!(&cell, Cell::Text(s) if s.is_empty()) {
            return;
        }
        if let Some(slot) = self.cells.get_mut(field) {
            *slot = Some(cell);
        }
    }

    /// Keep an unknown column (discharge); empty values are not kept.
    pub(crate) fn push_extra(&mut self, name: &str, cell: &Cell) {
        if is_blank(cell) {
            if matches!(cell, Cell::Text(s) if s.is_empty()) {
                return;
            }
        } else {
            self.nonblank = true;
        }
        self.extra.push((name.to_owned(), cell_string(cell)));
    }

    /// Place the cell of column `c` of CSV/XLSX data row `row`.
    pub(crate) fn place(&mut self, header: &Header, c: usize, cell: Cell, row: usize) -> Result<(), Error> {
        match header.col(c) {
            Col::Field(i) => self.set(*i, cell),
            Col::Extra(name) => self.push_extra(name, &cell),
            Col::Blank => {
                if !is_blank(&cell) {
                    return Err(Error::file(
                        FILE_ROW_WIDTH,
                        format!(
                            "第 {row} 行数据 (表格第 {} 行) 的第 {} 列 ({}) 有内容, 但该列没有表头 \
                             (value outside the header); 请检查分隔符、引号, 或补上表头",
                            row.saturating_add(1),
                            c.saturating_add(1),
                            column_name(c)
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The finished row, or `None` when every cell was empty or whitespace.
    pub(crate) fn finish(self, row: usize) -> Option<RawRow> {
        self.nonblank.then_some(RawRow { row, cells: self.cells, extra: self.extra })
    }
}

/// The rows read so far, at most `max_rows`.
pub(crate) struct Rows<'a> {
    pub(crate) rows: Vec<RawRow>,
    limits: &'a Limits,
}

impl<'a> Rows<'a> {
    pub(crate) fn new(limits: &'a Limits) -> Self {
        Rows { rows: Vec::new(), limits }
    }

    /// Add a finished row (blank rows are dropped).
    pub(crate) fn push(&mut self, row: Option<RawRow>) -> Result<(), Error> {
        if let Some(row) = row {
            if self.rows.len() >= self.limits.max_rows {
                return Err(too_many_rows(self.limits));
            }
            self.rows.push(row);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{RecordType, type_def};

    fn names(v: &[&str]) -> Vec<Option<String>> {
        v.iter().map(|s| Some((*s).to_owned())).collect()
    }

    fn code(r: Result<Header, Error>) -> &'static str {
        match r {
            Err(Error::File { code, .. }) => code,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn maps_codes_and_chinese() {
        let d = type_def(RecordType::Visits);
        let h = Header::map(d, &names(&["统计 日期", "mzrc", "", "急诊总诊疗人次"])).unwrap();
        assert_eq!(h.col(0), &Col::Field(d.index("TJRQ").unwrap()));
        assert_eq!(h.col(1), &Col::Field(d.index("MZRC").unwrap()));
        assert_eq!(h.col(2), &Col::Blank);
        assert_eq!(h.col(99), &Col::Blank);
    }

    #[test]
    fn refusals() {
        let d = type_def(RecordType::Visits);
        assert_eq!(code(Header::map(d, &names(&["", " "]))), FILE_NO_HEADER);
        assert_eq!(code(Header::map(d, &names(&["2024-01-01", "12"]))), FILE_NO_HEADER);
        assert_eq!(code(Header::map(d, &names(&["TJRQ", "ABC"]))), FILE_UNKNOWN_COLUMN);
        assert_eq!(code(Header::map(d, &names(&["TJRQ", "统计日期"]))), FILE_DUPLICATE_COLUMN);
        let Err(Error::File { message, .. }) = Header::map(d, &names(&["TJRQ", "A", "B", "C", "D"])) else { panic!() };
        assert!(message.contains("“A”") && message.contains("等 4 列"), "{message}");
    }

    #[test]
    fn discharge_keeps_unknown() {
        let d = type_def(RecordType::Discharge);
        let h = Header::map(d, &names(&["XM", "籍贯"])).unwrap();
        assert_eq!(h.col(1), &Col::Extra("籍贯".into()));
    }

    #[test]
    fn rows_limit() {
        let l = Limits { max_rows: 1, ..Limits::default() };
        let d = type_def(RecordType::Visits);
        let mut rows = Rows::new(&l);
        let mut b = RowBuilder::new(d);
        b.set(0, Cell::Text(" ".into()));
        assert_eq!(b.finish(1), None);
        rows.push(None).unwrap();
        let mut b = RowBuilder::new(d);
        b.set(0, Cell::Number(1.0));
        rows.push(b.finish(2)).unwrap();
        let mut b = RowBuilder::new(d);
        b.set(0, Cell::Number(1.0));
        assert!(matches!(rows.push(b.finish(3)), Err(Error::TooLarge { .. })));
    }
}
