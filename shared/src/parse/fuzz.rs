//! Entry points of the fuzz targets (`fuzz/fuzz_targets/parse_{csv,json,xlsx}.rs`),
//! plain functions so that unit tests and proptests run the same checks.
//!
//! ```text
//!  arbitrary bytes ─▶ parse_upload(every type, declared and sniffed, small limits)
//!                  ─▶ Ok(file): invariants hold | Err(File/TooLarge): a documented code
//!                  ─▶ Err(String) names the broken invariant (the target panics on it)
//! ```

use super::{FILE_ERROR_CODES, Limits, parse_upload};
use crate::error::Error;
use crate::model::{Cell, RecordType, type_def};

/// Limits small enough for fuzzing speed.
pub fn fuzz_limits() -> Limits {
    Limits { max_bytes: 1 << 20, max_rows: 1_000, max_xlsx_inflated: 32 << 20, max_xlsx_ratio: 200 }
}

/// Fuzz CSV: declared `text/csv` (UTF-8 and GB18030) and sniffed.
pub fn parse_csv(data: &[u8]) -> Result<(), String> {
    for ct in [Some("text/csv"), Some("text/csv; charset=gb18030"), None] {
        run(data, ct)?;
    }
    Ok(())
}

/// Fuzz JSON: declared `application/json` and sniffed.
pub fn parse_json(data: &[u8]) -> Result<(), String> {
    for ct in [Some("application/json"), None] {
        run(data, ct)?;
    }
    Ok(())
}

/// Fuzz XLSX: `data` as a whole file, and (to get past the zip CRCs into
/// calamine and our cell handling) as the sheet XML of a fixed workbook; a
/// NUL byte in `data` splits off a shared-strings part.
pub fn parse_xlsx(data: &[u8]) -> Result<(), String> {
    run(data, Some(XLSX_TYPE))?;
    let (sheet, shared) = match data.iter().position(|b| *b == 0) {
        Some(at) => (data.get(..at).unwrap_or_default(), data.get(at + 1..)),
        None => (data, None),
    };
    let wb = xlsx_from_sheet(sheet, shared);
    run(&wb, Some(XLSX_TYPE))?;
    if data.starts_with(b"PK\x03\x04") {
        chunks_agree(data)?;
    }
    chunks_agree(&wb)
}

/// `xlsx::parse_chunks` (the DMZ's streamed XLSX, called once the format is
/// known to be XLSX) gives what `parse_upload` gives: the same rows, or a
/// whole-file error with the same code.
fn chunks_agree(data: &[u8]) -> Result<(), String> {
    use super::stream::StreamError;
    let limits = fuzz_limits();
    let ty = RecordType::Outpatient;
    let whole = parse_upload(ty, data, Some(XLSX_TYPE), &limits);
    let mut rows = Vec::new();
    let chunked = super::xlsx::parse_chunks(ty, std::io::Cursor::new(data), &limits, 7, |c| {
        rows.extend(c);
        Ok::<(), ()>(())
    });
    let code = |e: &Error| match e {
        Error::File { code, .. } | Error::TooLarge { code, .. } => Some(*code),
        _ => None,
    };
    match (whole, chunked) {
        (Ok(f), Ok(n)) if f.rows == rows && n == rows.len() => Ok(()),
        (Err(a), Err(StreamError::File(b))) if code(&a) == code(&b) => Ok(()),
        (a, b) => Err(format!("parse_chunks disagrees: {:?} vs {:?}", a.map(|f| f.rows.len()), b.map_err(|_| ()))),
    }
}

const XLSX_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
const NS_MAIN: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
const NS_REL: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
const NS_PKG: &str = "http://schemas.openxmlformats.org/package/2006/relationships";

/// A stored (uncompressed) XLSX with `sheet` as `xl/worksheets/sheet1.xml`
/// and `shared` (or one string, `XM`) as `xl/sharedStrings.xml`; style 1 is
/// a date format. Empty when the zip writer fails.
pub fn xlsx_from_sheet(sheet: &[u8], shared: Option<&[u8]>) -> Vec<u8> {
    use std::io::Write;
    use zip9::write::SimpleFileOptions;
    let default_shared = format!(r#"<sst xmlns="{NS_MAIN}" count="1" uniqueCount="1"><si><t>XM</t></si></sst>"#);
    let parts: [(&str, Vec<u8>); 7] = [
        (
            "[Content_Types].xml",
            br#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>"#
            .to_vec(),
        ),
        (
            "_rels/.rels",
            format!(
                r#"<Relationships xmlns="{NS_PKG}"><Relationship Id="rId1" Type="{NS_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>"#
            )
            .into_bytes(),
        ),
        (
            "xl/workbook.xml",
            format!(
                r#"<workbook xmlns="{NS_MAIN}" xmlns:r="{NS_REL}"><sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>"#
            )
            .into_bytes(),
        ),
        (
            "xl/_rels/workbook.xml.rels",
            format!(
                r#"<Relationships xmlns="{NS_PKG}"><Relationship Id="rId1" Type="{NS_REL}/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="{NS_REL}/sharedStrings" Target="sharedStrings.xml"/><Relationship Id="rId3" Type="{NS_REL}/styles" Target="styles.xml"/></Relationships>"#
            )
            .into_bytes(),
        ),
        (
            "xl/styles.xml",
            format!(
                r#"<styleSheet xmlns="{NS_MAIN}"><cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="22" applyNumberFormat="1"/></cellXfs></styleSheet>"#
            )
            .into_bytes(),
        ),
        ("xl/sharedStrings.xml", shared.map_or_else(|| default_shared.into_bytes(), <[u8]>::to_vec)),
        ("xl/worksheets/sheet1.xml", sheet.to_vec()),
    ];
    let mut zip = zip9::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip9::CompressionMethod::Stored);
    for (name, data) in parts {
        if zip.start_file(name, options).is_err() || zip.write_all(&data).is_err() {
            return Vec::new();
        }
    }
    zip.finish().map(std::io::Cursor::into_inner).unwrap_or_default()
}

/// Parse `data` as two types (a strict one and `discharge`, which keeps
/// unknown columns) and check the invariants of the result.
pub fn run(data: &[u8], content_type: Option<&str>) -> Result<(), String> {
    let limits = fuzz_limits();
    for ty in [RecordType::Outpatient, RecordType::Discharge] {
        match parse_upload(ty, data, content_type, &limits) {
            Ok(file) => check_file(ty, &file, &limits)?,
            Err(Error::File { code, message } | Error::TooLarge { code, message }) => {
                if !FILE_ERROR_CODES.iter().any(|(c, _)| *c == code) {
                    return Err(format!("undocumented code {code}"));
                }
                if message.chars().count() > 300 {
                    return Err(format!("message too long: {message}"));
                }
            }
            Err(other) => return Err(format!("unexpected error kind: {other}")),
        }
    }
    Ok(())
}

fn check_file(ty: RecordType, file: &crate::model::ParsedFile, limits: &Limits) -> Result<(), String> {
    let width = type_def(ty).fields.len();
    if file.ty != ty {
        return Err("wrong type".into());
    }
    if file.rows.len() > limits.max_rows {
        return Err(format!("{} rows past the limit", file.rows.len()));
    }
    let mut last = 0;
    for r in &file.rows {
        if r.row <= last {
            return Err(format!("row numbers not increasing: {} after {last}", r.row));
        }
        last = r.row;
        if r.cells.len() != width {
            return Err(format!("row {} has {} cells, not {width}", r.row, r.cells.len()));
        }
        for c in r.cells.iter().flatten() {
            match c {
                Cell::Text(s) if s.is_empty() => return Err(format!("row {}: empty text kept", r.row)),
                Cell::Number(x) if !x.is_finite() => return Err(format!("row {}: non-finite number", r.row)),
                _ => {}
            }
        }
        if ty != RecordType::Discharge && !r.extra.is_empty() {
            return Err(format!("row {}: extra columns for {ty}", r.row));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::testutil::{X, xlsx};
    use super::*;

    const SHEET: &str = r#"<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="inlineStr"><is><t>NL</t></is></c><c r="C1" t="inlineStr"><is><t>JZSJ</t></is></c></row><row r="2"><c r="A2" t="inlineStr"><is><t>张三</t></is></c><c r="B2"><v>35</v></c><c r="C2" s="1"><v>45293.5</v></c></row></sheetData></worksheet>"#;

    #[test]
    fn sheet_wrapper_reaches_the_cells() {
        let bytes = xlsx_from_sheet(SHEET.as_bytes(), None);
        let f = parse_upload(RecordType::Outpatient, &bytes, None, &Limits::default()).unwrap();
        let def = type_def(RecordType::Outpatient);
        let at = |code: &str| f.rows[0].cells[def.index(code).unwrap()].clone();
        assert_eq!(at("XM"), Some(Cell::Text("张三".into())));
        assert_eq!(at("NL"), Some(Cell::Number(35.0)));
        let noon = chrono::NaiveDate::from_ymd_opt(2024, 1, 2).unwrap().and_hms_opt(12, 0, 0).unwrap();
        assert_eq!(at("JZSJ"), Some(Cell::DateTime(noon)));
        parse_xlsx(SHEET.as_bytes()).unwrap();
        let mut split = SHEET.as_bytes().to_vec();
        split.push(0);
        split.extend_from_slice(br#"<sst uniqueCount="99999999999"><si><t>XM</t></si></sst>"#);
        parse_xlsx(&split).unwrap();
    }

    #[test]
    fn absurd_cell_references_are_caught() {
        // calamine 0.38 overflows on these (a panic in debug builds only).
        for r in ["ZZZZZZZZZZ1", "A99999999999", "XFE1", "A1048577", "A0", "1A"] {
            let sheet = SHEET.replace("r=\"B2\"", &format!("r=\"{r}\""));
            parse_xlsx(sheet.as_bytes()).unwrap();
        }
        let sheet = SHEET.replace("<row r=\"2\">", "<row r=\"4294967295\">");
        parse_xlsx(sheet.as_bytes()).unwrap();
    }

    fn sample_xlsx() -> Vec<u8> {
        xlsx(&[
            vec![X::S("ZZJGDM"), X::S("姓名"), X::S("NL"), X::S("JZSJ"), X::S("籍贯")],
            vec![X::S("91110000000000000X"), X::S("张三"), X::N(35.0), X::Dt(2024, 1, 2, 8, 0, 0), X::B(true)],
        ])
    }

    #[test]
    fn fixed_inputs() {
        for data in [
            &b""[..],
            b"\xef\xbb\xbf",
            b"{",
            b"[",
            b"\"",
            b"XM\n\"",
            b"PK\x03\x04",
            b"PK\x05\x06",
            b"{\"records\":[{\"XM\":\"\"}]}",
            b"XM,XM",
            b"XM,KSMC\r\n\r\n,\r\n",
        ] {
            parse_csv(data).unwrap();
            parse_json(data).unwrap();
            parse_xlsx(data).unwrap();
        }
        parse_xlsx(&sample_xlsx()).unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            prop_assert_eq!(parse_csv(&data), Ok(()));
            prop_assert_eq!(parse_json(&data), Ok(()));
            prop_assert_eq!(parse_xlsx(&data), Ok(()));
        }

        #[test]
        fn csv_like_text_never_panics(s in "[XMKSC姓名,\"\r\n \u{3000}（）a1]{0,200}") {
            prop_assert_eq!(parse_csv(s.as_bytes()), Ok(()));
        }

        #[test]
        fn json_like_text_never_panics(s in r#"[{}\[\]":,0-9a-zA-Z\-.eE nul truefals\\]{0,200}"#) {
            let doc = format!("{{\"records\":[{s}");
            prop_assert_eq!(parse_json(doc.as_bytes()), Ok(()));
            prop_assert_eq!(parse_json(s.as_bytes()), Ok(()));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn mutated_sheet_xml_never_panics(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
            let mut data = SHEET.as_bytes().to_vec();
            for (at, byte) in flips {
                let i = at.index(data.len());
                data[i] = byte;
            }
            prop_assert_eq!(parse_xlsx(&data), Ok(()));
        }

        #[test]
        fn mutated_xlsx_never_panics(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
            let mut data = sample_xlsx();
            for (at, byte) in flips {
                let i = at.index(data.len());
                data[i] = byte;
            }
            prop_assert_eq!(parse_xlsx(&data), Ok(()));
        }
    }
}
