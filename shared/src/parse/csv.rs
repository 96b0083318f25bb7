//! CSV uploads: RFC 4180 (comma, `"` quoting with `""` inside quotes, line
//! breaks inside quotes), first record the header.
//!
//! ```text
//!  decoded text ─▶ quote balance (an unclosed quote swallows the rest: FILE_TRUNCATED)
//!               ─▶ csv::Reader (flexible widths) ─▶ header ─▶ Header::map
//!               ─▶ each record: row number from its line ─▶ RowBuilder ─▶ Rows
//! ```
//!
//! Row numbers: `row` k is the record k rows below the header as Excel shows
//! the file: blank lines (which the csv crate skips) count, a quoted line
//! break does not.

use csv::{ReaderBuilder, StringRecord};

use super::header::{Header, RowBuilder, Rows};
use super::{FILE_CSV, FILE_TRUNCATED, Limits};
use crate::error::Error;
use crate::model::{Cell, ParsedFile, RecordType, type_def};

/// Parse a decoded CSV text.
pub(crate) fn parse(ty: RecordType, text: &str, limits: &Limits) -> Result<ParsedFile, Error> {
    check_quotes(text)?;
    let def = type_def(ty);
    let mut rdr = ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut rec = StringRecord::new();
    if !read(&mut rdr, &mut rec)? {
        return Ok(ParsedFile { ty, rows: Vec::new() });
    }
    let names: Vec<Option<String>> = rec.iter().map(|s| Some(s.to_owned())).collect();
    let header = Header::map(def, &names)?;
    let mut prev = Span::of(&rec);
    let mut row = 0usize;
    let mut rows = Rows::new(limits);
    while read(&mut rdr, &mut rec)? {
        let span = Span::of(&rec);
        // Blank lines between the previous record's end and this one's start.
        let blank = span.start.saturating_sub(prev.start).saturating_sub(prev.newlines).saturating_sub(1);
        row = row.saturating_add(1).saturating_add(usize::try_from(blank).unwrap_or(usize::MAX));
        prev = span;
        let mut b = RowBuilder::new(def);
        for (c, field) in rec.iter().enumerate() {
            b.place(&header, c, Cell::Text(field.to_owned()), row)?;
        }
        rows.push(b.finish(row))?;
    }
    Ok(ParsedFile { ty, rows: rows.rows })
}

/// Where a record starts and how many line breaks its quoted fields hold.
#[derive(Clone, Copy)]
struct Span {
    start: u64,
    newlines: u64,
}

impl Span {
    fn of(rec: &StringRecord) -> Span {
        let start = rec.position().map_or(0, csv::Position::line);
        let newlines = rec.iter().map(|f| f.bytes().filter(|b| *b == b'\n').count()).sum::<usize>();
        Span { start, newlines: u64::try_from(newlines).unwrap_or(u64::MAX) }
    }
}

fn read(rdr: &mut csv::Reader<&[u8]>, rec: &mut StringRecord) -> Result<bool, Error> {
    rdr.read_record(rec).map_err(|e| {
        let line = e.position().map_or(0, csv::Position::line);
        Error::file(FILE_CSV, format!("CSV 第 {line} 行无法解析 (unreadable CSV); 请按 RFC 4180 导出"))
    })
}

/// Refuse a text whose last quoted field never closes (RFC 4180 as the csv
/// crate reads it: a quote opens a field only at its start; `""` inside
/// quotes is one quote).
fn check_quotes(text: &str) -> Result<(), Error> {
    #[derive(Clone, Copy, PartialEq)]
    enum S {
        Start,
        Unquoted,
        Quoted,
        QuoteInQuoted,
    }
    let mut s = S::Start;
    let mut line: u64 = 1;
    let mut opened_at: u64 = 1;
    for b in text.bytes() {
        if b == b'\n' {
            line += 1;
        }
        s = match (s, b) {
            (S::Start, b'"') => {
                opened_at = line;
                S::Quoted
            }
            // `""` inside quotes: one quote, still quoted.
            (S::QuoteInQuoted, b'"') => S::Quoted,
            (S::Start | S::Unquoted | S::QuoteInQuoted, b',' | b'\r' | b'\n') => S::Start,
            (S::Start | S::Unquoted | S::QuoteInQuoted, _) => S::Unquoted,
            (S::Quoted, b'"') => S::QuoteInQuoted,
            (S::Quoted, _) => S::Quoted,
        };
    }
    if s == S::Quoted {
        return Err(Error::file(
            FILE_TRUNCATED,
            format!(
                "CSV 第 {opened_at} 行开始的引号没有结束, 文件可能被截断或引号未成对 \
                 (unterminated quote); 字段中的引号须写成两个引号 \"\""
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{cell, code, message, parse, text, visits_csv};
    use super::super::*;
    use crate::model::{Cell, RecordType, type_def};

    const OP: RecordType = RecordType::Outpatient;

    #[test]
    fn utf8_codes() {
        let f = parse(RecordType::Visits, visits_csv(2).as_bytes(), Some("text/csv")).unwrap();
        assert_eq!(f.rows.len(), 2);
        assert_eq!((f.rows[0].row, f.rows[1].row), (1, 2));
        assert_eq!(cell(&f, 1, "JLID"), text("1").as_ref());
        assert_eq!(cell(&f, 0, "MZRC"), text("1").as_ref());
        assert_eq!(f.rows[0].cells.len(), type_def(RecordType::Visits).fields.len());
        assert!(f.rows[0].extra.is_empty());
    }

    #[test]
    fn utf8_bom_and_crlf() {
        let s = format!("\u{feff}{}", visits_csv(1).replace('\n', "\r\n"));
        let f = parse(RecordType::Visits, s.as_bytes(), None).unwrap();
        assert_eq!(f.rows.len(), 1);
        assert_eq!(cell(&f, 0, "ZZJGDM"), text("91110000000000000X").as_ref());
        assert_eq!(cell(&f, 0, "ZYRS"), text("3").as_ref());
    }

    #[test]
    fn gb18030_chinese_headers() {
        let s = "组织机构代码,统计日期,门诊总诊疗人次,备注\n91110000000000000X,2024-01-02,十二,\n";
        let s = s.replace(",备注", "").replace(",\n", "\n");
        let (bytes, _, bad) = encoding_rs::GB18030.encode(&s);
        assert!(!bad);
        for ct in [None, Some("text/csv; charset=GB18030"), Some("text/csv;charset=gbk")] {
            let f = parse(RecordType::Visits, &bytes, ct).unwrap();
            assert_eq!(cell(&f, 0, "MZRC"), text("十二").as_ref(), "{ct:?}");
            assert_eq!(cell(&f, 0, "TJRQ"), text("2024-01-02").as_ref());
        }
        // Declared UTF-8 but GB18030 bytes.
        assert_eq!(code(parse(RecordType::Visits, &bytes, Some("text/csv; charset=utf-8"))), FILE_ENCODING);
    }

    #[test]
    fn quoting_rfc4180() {
        let s = "XM,KSMC,ZDMC1,ZGTW\n\"张\"\"三\",\"呼吸\r\n内科\",\"流行性感冒, 伴肺炎\",38.5\n李四,儿科,\"\",\n";
        let f = parse(OP, s.as_bytes(), Some("text/csv")).unwrap();
        assert_eq!(f.rows.len(), 2);
        assert_eq!(cell(&f, 0, "XM"), text("张\"三").as_ref());
        assert_eq!(cell(&f, 0, "KSMC"), text("呼吸\r\n内科").as_ref());
        assert_eq!(cell(&f, 0, "ZDMC1"), text("流行性感冒, 伴肺炎").as_ref());
        // Numbers stay text in CSV; empty and missing cells are None.
        assert_eq!(cell(&f, 0, "ZGTW"), text("38.5").as_ref());
        assert_eq!(cell(&f, 1, "ZDMC1"), None);
        assert_eq!(cell(&f, 1, "ZGTW"), None);
        // The quoted line break does not count as a row: Excel shows row 3.
        assert_eq!(f.rows[1].row, 2);
    }

    #[test]
    fn chinese_headers_brackets_spaces_mixed_numbered() {
        let s = "组织机构代码, jlid ,最高体温（℃）, 诊断 名称1 ,ZDBM1,诊断编码10,zdmc10,年龄（岁）\n\
                 X,1,39.1,流感,J10.1,J18.9,肺炎,35\n";
        let f = parse(OP, s.as_bytes(), None).unwrap();
        for (code, v) in [
            ("ZZJGDM", "X"),
            ("JLID", "1"),
            ("ZGTW", "39.1"),
            ("ZDMC1", "流感"),
            ("ZDBM1", "J10.1"),
            ("ZDBM10", "J18.9"),
            ("ZDMC10", "肺炎"),
            ("NL", "35"),
        ] {
            assert_eq!(cell(&f, 0, code), text(v).as_ref(), "{code}");
        }
        let d = "门（急）诊诊断编码,首剂时间,其他诊断编码15\nJ11,2024-01-01 08:00,J18\n";
        let f = parse(RecordType::Discharge, d.as_bytes(), None).unwrap();
        assert_eq!(cell(&f, 0, "MZZD_JBBM"), text("J11").as_ref());
        assert_eq!(cell(&f, 0, "KBDSJ"), text("2024-01-01 08:00").as_ref());
        assert_eq!(cell(&f, 0, "QTZD_JBDM15"), text("J18").as_ref());
        assert!(f.rows[0].extra.is_empty());
    }

    #[test]
    fn header_only_is_a_valid_empty_upload() {
        for s in ["ZZJGDM,JLID", "ZZJGDM,JLID\n", "ZZJGDM,JLID\r\n\r\n\n", "ZZJGDM,JLID\n,\n , \n"] {
            let f = parse(OP, s.as_bytes(), Some("text/csv")).unwrap();
            assert!(f.rows.is_empty(), "{s:?}");
        }
    }

    #[test]
    fn blank_rows_skipped_numbering_kept() {
        let s = "XM,KSMC\nA,x\n\n,,\n\" \", \nB,\"y\nz\"\nC,w\n\n\n";
        let f = parse(OP, s.as_bytes(), None).unwrap();
        let rows: Vec<usize> = f.rows.iter().map(|r| r.row).collect();
        // Excel rows: header 1, A 2, blank 3, ",," 4, "  " 5, B 6 (two lines), C 7.
        assert_eq!(rows, vec![1, 5, 6]);
        assert_eq!(cell(&f, 2, "XM"), text("C").as_ref());
    }

    #[test]
    fn row_width() {
        // Trailing empty cells past the header are fine, short rows too.
        let f = parse(OP, b"XM,KSMC\nA,x,,\nB\n", None).unwrap();
        assert_eq!(f.rows.len(), 2);
        assert_eq!(cell(&f, 1, "KSMC"), None);
        let r = parse(OP, b"XM,KSMC\nA,x\nB,y,secret\n", None);
        let m = message(parse(OP, b"XM,KSMC\nA,x\nB,y,secret\n", None));
        assert_eq!(code(r), FILE_ROW_WIDTH);
        assert!(m.contains("第 2 行数据") && m.contains("(C)") && !m.contains("secret"), "{m}");
        // A blank header column with a value under it.
        assert_eq!(code(parse(OP, b"XM,,KSMC\nA,v,x\n", None)), FILE_ROW_WIDTH);
        assert_eq!(parse(OP, b"XM,,KSMC\nA,,x\n", None).unwrap().rows.len(), 1);
    }

    #[test]
    fn unknown_and_duplicate_columns() {
        let r = parse(OP, "XM,备注,KSMC\nA,b,c\n".as_bytes(), None);
        let m = message(parse(OP, "XM,备注,KSMC\nA,b,c\n".as_bytes(), None));
        assert_eq!(code(r), FILE_UNKNOWN_COLUMN);
        assert!(m.contains("“备注”") && m.contains("第 2 列 (B)"), "{m}");
        assert_eq!(code(parse(OP, "XM,姓名\nA,B\n".as_bytes(), None)), FILE_DUPLICATE_COLUMN);
        assert_eq!(code(parse(OP, "xm,XM\nA,B\n".as_bytes(), None)), FILE_DUPLICATE_COLUMN);
        // discharge keeps unknown columns (raw archive only), empty values are not kept.
        let f = parse(RecordType::Discharge, "XM,籍贯, 血型 \nA,北京,\nB,,O\n".as_bytes(), None).unwrap();
        assert_eq!(f.rows[0].extra, vec![("籍贯".to_owned(), "北京".to_owned())]);
        assert_eq!(f.rows[1].extra, vec![("血型".to_owned(), "O".to_owned())]);
        assert_eq!(cell(&f, 1, "XM"), Some(&Cell::Text("B".into())));
    }

    #[test]
    fn no_header() {
        let r = parse(OP, "张三,1,北京\n李四,2,上海\n".as_bytes(), None);
        let m = message(parse(OP, "张三,1,北京\n".as_bytes(), None));
        assert_eq!(code(r), FILE_NO_HEADER);
        assert!(!m.contains("张三"), "{m}");
        assert_eq!(code(parse(OP, b",,\nA,B,C\n", None)), FILE_NO_HEADER);
    }

    #[test]
    fn unterminated_quote() {
        let r = parse(OP, b"XM,KSMC\nA,\"x\nB,y\n", None);
        let m = message(parse(OP, b"XM,KSMC\nA,\"x\nB,y\n", None));
        assert_eq!(code(r), FILE_TRUNCATED);
        assert!(m.contains("第 2 行"), "{m}");
        // Closed quotes, doubled quotes and stray quotes inside unquoted fields are fine.
        assert!(parse(OP, b"XM,KSMC\n\"a\"\"\",b\"c\n", None).is_ok());
        assert!(parse(OP, b"XM,KSMC\n\"\",\"\"\"\"\n", None).is_ok());
    }

    #[test]
    fn too_many_rows() {
        let l = Limits { max_rows: 3, ..Limits::default() };
        let ok = parse_upload(RecordType::Visits, visits_csv(3).as_bytes(), None, &l).unwrap();
        assert_eq!(ok.rows.len(), 3);
        let e = parse_upload(RecordType::Visits, visits_csv(4).as_bytes(), None, &l).unwrap_err();
        assert!(matches!(e, crate::Error::TooLarge { code: FILE_TOO_MANY_ROWS, .. }), "{e}");
        // Blank rows do not count.
        let s = format!("{}\n,,,\n,,,\n", visits_csv(3));
        assert!(parse_upload(RecordType::Visits, s.as_bytes(), None, &l).is_ok());
    }

    #[test]
    fn too_large() {
        let l = Limits { max_bytes: 100, ..Limits::default() };
        let e = parse_upload(RecordType::Visits, visits_csv(5).as_bytes(), None, &l).unwrap_err();
        assert!(matches!(e, crate::Error::TooLarge { code: FILE_TOO_LARGE, .. }), "{e}");
    }

    #[test]
    fn empty_and_binary() {
        assert_eq!(code(parse(OP, b"", Some("text/csv"))), FILE_EMPTY);
        assert_eq!(code(parse(OP, b"\xef\xbb\xbf\r\n", None)), FILE_EMPTY);
        assert_eq!(code(parse(OP, b"XM\n\x00\x01\x02", Some("text/csv"))), FILE_BINARY);
        assert_eq!(code(parse(OP, b"XM\nA\n", Some("application/json"))), FILE_FORMAT);
    }
}
