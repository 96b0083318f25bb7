//! JSON uploads: `{"records":[{…},…]}`, streamed with serde straight into
//! rows (no `serde_json::Value` tree is built). One decoder serves the whole
//! buffer ([`parse`], rows collected) and the stream
//! ([`stream_json`](super::stream_json), rows handed to a chunker): the same
//! visitors, codes, messages, row numbers and limits, only the row sink differs.
//!
//! ```text
//!  {                      Top: the only key is "records"
//!    "records": [         Records: counts elements (row = 1-based index)
//!      {"ZZJGDM": "…",    Record: key → field (code or 中文名), value → Cell ─▶ RowSink::push
//!       "NL": 35,           string → Text, number → Number, null → None,
//!       "XB": null}         bool / object / array → FILE_JSON
//!    ]
//!  }
//!  decode(from_str | from_reader, sink: Rows (whole buffer) | Chunker (stream))
//! ```
//!
//! Our own errors (with their codes) are kept in [`State::err`] while serde
//! unwinds with a placeholder; serde_json's own errors are reported by line
//! and column only, never by their text (it may quote a value).

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::error::Category;

use super::header::{RowBuilder, Rows};
use super::{FILE_DUPLICATE_COLUMN, FILE_JSON, FILE_TRUNCATED, FILE_UNKNOWN_COLUMN, Limits, excerpt};
use crate::error::Error;
use crate::model::{Cell, ParsedFile, RawRow, RecordType, TypeDef, type_def};

/// Where decoded rows go.
pub(super) trait RowSink {
    /// Adds a finished row (`None`: blank, dropped); `Ok(false)` when the
    /// sink failed and decoding should stop without a file error.
    fn push(&mut self, row: Option<RawRow>) -> Result<bool, Error>;
}

impl RowSink for Rows<'_> {
    fn push(&mut self, row: Option<RawRow>) -> Result<bool, Error> {
        Rows::push(self, row).map(|()| true)
    }
}

struct State<'a> {
    def: &'static TypeDef,
    rows: &'a mut dyn RowSink,
    /// The sink failed: stop without a file error.
    stopped: bool,
    /// Our error, when serde is unwinding because of one.
    err: Option<Error>,
    /// What was expected where serde failed on its own (a type mismatch).
    ctx: &'static str,
}

impl State<'_> {
    fn fail<E: de::Error>(&mut self, err: Error) -> E {
        self.err = Some(err);
        E::custom("flumon")
    }
}

/// Decodes a whole JSON upload from `de` into `sink`; `Ok` also when the sink stopped.
pub(super) fn decode<'de, R: serde_json::de::Read<'de>>(
    ty: RecordType,
    de: &mut serde_json::Deserializer<R>,
    sink: &mut dyn RowSink,
) -> Result<(), Error> {
    let mut state = State { def: type_def(ty), rows: sink, stopped: false, err: None, ctx: CTX_TOP };
    match Top(&mut state).deserialize(&mut *de).and_then(|()| de.end()) {
        Ok(()) => Ok(()),
        Err(_) if state.stopped => Ok(()),
        Err(e) => Err(state.err.take().unwrap_or_else(|| serde_error(&e, state.ctx))),
    }
}

/// Parse a decoded JSON text.
pub(crate) fn parse(ty: RecordType, text: &str, limits: &Limits) -> Result<ParsedFile, Error> {
    let mut rows = Rows::new(limits);
    decode(ty, &mut serde_json::Deserializer::from_str(text), &mut rows)?;
    Ok(ParsedFile { ty, rows: rows.rows })
}

const CTX_TOP: &str = "最外层须为对象 {\"records\":[…]}";
const CTX_RECORDS: &str = "“records” 的值须为数组 [ … ]";
const CTX_RECORD: &str = "“records” 中每条记录须为对象 { … }";
const CTX_VALUE: &str = "字段的值须为字符串、数字或 null";
const CTX_KEY: &str = "键须为字符串";

fn serde_error(e: &serde_json::Error, ctx: &str) -> Error {
    let (line, col) = (e.line(), e.column().max(1));
    match e.classify() {
        Category::Eof => Error::file(
            FILE_TRUNCATED,
            format!("JSON 在第 {line} 行第 {col} 列意外结束, 文件可能被截断 (unexpected end of JSON)"),
        ),
        Category::Syntax | Category::Io => Error::file(
            FILE_JSON,
            format!("JSON 语法错误, 第 {line} 行第 {col} 列 (JSON syntax error); 请用标准 JSON 库生成文件"),
        ),
        Category::Data => Error::file(
            FILE_JSON,
            format!("JSON 结构不符合接口标准: {ctx}, 第 {line} 行第 {col} 列 (bad JSON structure)"),
        ),
    }
}

fn json_err(message: String) -> Error {
    Error::file(FILE_JSON, message)
}

/// The top-level object.
struct Top<'s, 'a>(&'s mut State<'a>);

impl<'de> DeserializeSeed<'de> for Top<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Top<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object {\"records\": [...]}")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let state = self.0;
        let mut seen = false;
        loop {
            state.ctx = CTX_KEY;
            let Some(key) = map.next_key::<String>()? else { break };
            if key != "records" {
                let e = json_err(format!(
                    "JSON 最外层只能有键 “records”, 不能有 “{}” (unknown top-level key)",
                    excerpt(&key)
                ));
                return Err(state.fail(e));
            }
            if seen {
                return Err(state.fail(json_err("JSON 中 “records” 出现了两次 (duplicate records)".to_owned())));
            }
            seen = true;
            state.ctx = CTX_RECORDS;
            map.next_value_seed(Records(&mut *state))?;
        }
        if !seen {
            let e = json_err("JSON 缺少 “records” 数组 (missing records); 格式为 {\"records\":[…]}".to_owned());
            return Err(state.fail(e));
        }
        Ok(())
    }
}

/// The `records` array.
struct Records<'s, 'a>(&'s mut State<'a>);

impl<'de> DeserializeSeed<'de> for Records<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Records<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of records")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let state = self.0;
        let mut row = 0usize;
        loop {
            row = row.saturating_add(1);
            state.ctx = CTX_RECORD;
            if seq.next_element_seed(Record { state: &mut *state, row })?.is_none() {
                return Ok(());
            }
        }
    }
}

/// One record object.
struct Record<'s, 'a> {
    state: &'s mut State<'a>,
    row: usize,
}

impl<'de> DeserializeSeed<'de> for Record<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Record<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a record object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Record { state, row } = self;
        let def = state.def;
        let mut b = RowBuilder::new(def);
        let mut seen = vec![false; def.fields.len()];
        loop {
            state.ctx = CTX_KEY;
            let Some(key) = map.next_key::<String>()? else { break };
            state.ctx = CTX_VALUE;
            let field = def.resolve_header(&key);
            match field {
                Some(i) => {
                    if seen.get(i).copied().unwrap_or(false) || b.has(i) {
                        let code = def.field(i).map_or("", |f| f.code.as_str());
                        let e = Error::file(
                            FILE_DUPLICATE_COLUMN,
                            format!(
                                "records 第 {row} 条中字段 {code} 出现了两次 (“{}”) (duplicate key)",
                                excerpt(&key)
                            ),
                        );
                        return Err(state.fail(e));
                    }
                    if let Some(s) = seen.get_mut(i) {
                        *s = true;
                    }
                }
                None if def.allows_extra => {}
                None => {
                    let e = Error::file(
                        FILE_UNKNOWN_COLUMN,
                        format!(
                            "records 第 {row} 条中有“{}”不认识的键 “{}” (unknown key); 请对照接口标准的字段代码",
                            def.ty.zh(),
                            excerpt(&key)
                        ),
                    );
                    return Err(state.fail(e));
                }
            }
            let value = map.next_value_seed(Value { state: &mut *state, row, key: &key })?;
            match (field, value) {
                (Some(i), Some(cell)) => b.set(i, cell),
                (None, Some(cell)) => b.push_extra(&key, &cell),
                (_, None) => {}
            }
        }
        let finished = b.finish(row);
        match state.rows.push(finished) {
            Ok(true) => Ok(()),
            Ok(false) => {
                state.stopped = true;
                Err(de::Error::custom("sink stopped"))
            }
            Err(e) => Err(state.fail(e)),
        }
    }
}

/// One value of a record: string, number or null.
struct Value<'s, 'a, 'k> {
    state: &'s mut State<'a>,
    row: usize,
    key: &'k str,
}

impl Value<'_, '_, '_> {
    fn refuse<E: de::Error>(self, what: &str) -> E {
        let e = json_err(format!(
            "records 第 {} 条中 “{}” 的值是{what}, 只能是字符串、数字或 null (bad value type)",
            self.row,
            excerpt(self.key)
        ));
        self.state.fail(e)
    }
}

impl<'de> DeserializeSeed<'de> for Value<'_, '_, '_> {
    type Value = Option<Cell>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Cell>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Value<'_, '_, '_> {
    type Value = Option<Cell>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string, a number or null")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<Cell>, E> {
        Ok((!v.is_empty()).then(|| Cell::Text(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Option<Cell>, E> {
        Ok((!v.is_empty()).then_some(Cell::Text(v)))
    }
    #[allow(clippy::cast_precision_loss)]
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<Cell>, E> {
        Ok(Some(Cell::Number(v as f64)))
    }
    #[allow(clippy::cast_precision_loss)]
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<Cell>, E> {
        Ok(Some(Cell::Number(v as f64)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Option<Cell>, E> {
        Ok(v.is_finite().then_some(Cell::Number(v)).or_else(|| Some(Cell::Text(format!("{v}")))))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<Cell>, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Option<Cell>, E> {
        Ok(None)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Option<Cell>, E> {
        Err(self.refuse("布尔值 true/false"))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Option<Cell>, A::Error> {
        Err(self.refuse("对象 { … } (嵌套)"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Option<Cell>, A::Error> {
        Err(self.refuse("数组 [ … ] (嵌套; 编号字段请平铺为 ZDBM1、ZDBM2 …)"))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{cell, code, message, parse, text};
    use super::super::*;
    use crate::model::{Cell, RecordType};

    const V: RecordType = RecordType::Visits;
    const J: Option<&str> = Some("application/json");

    #[test]
    fn numbers_strings_null_absent() {
        let s = r#"{"records":[
            {"ZZJGDM":"91110000000000000X","MZRC":12,"JZRC":null,"ZYRS":3.5,"TJRQ":"","BBH":"1.0"},
            {},
            {"zzjgdm":"A","门诊总诊疗人次":-1,"JLID":18446744073709551615}
        ]}"#;
        let f = parse(V, s.as_bytes(), J).unwrap();
        assert_eq!(f.rows.len(), 2);
        assert_eq!((f.rows[0].row, f.rows[1].row), (1, 3));
        assert_eq!(cell(&f, 0, "ZZJGDM"), text("91110000000000000X").as_ref());
        assert_eq!(cell(&f, 0, "MZRC"), Some(&Cell::Number(12.0)));
        assert_eq!(cell(&f, 0, "JZRC"), None);
        assert_eq!(cell(&f, 0, "ZYRS"), Some(&Cell::Number(3.5)));
        assert_eq!(cell(&f, 0, "TJRQ"), None);
        assert_eq!(cell(&f, 0, "GXSJ"), None);
        assert_eq!(cell(&f, 0, "BBH"), text("1.0").as_ref());
        assert_eq!(cell(&f, 1, "ZZJGDM"), text("A").as_ref());
        assert_eq!(cell(&f, 1, "MZRC"), Some(&Cell::Number(-1.0)));
        assert_eq!(cell(&f, 1, "JLID"), Some(&Cell::Number(18446744073709551615.0)));
    }

    #[test]
    fn empty_records_and_sniffing() {
        assert!(parse(V, br#"{"records":[]}"#, J).unwrap().rows.is_empty());
        assert!(parse(V, b"\xef\xbb\xbf\n {\"records\" : [ ] }\n", None).unwrap().rows.is_empty());
        // GB18030 JSON decodes too.
        let (gb, _, _) = encoding_rs::GB18030.encode(r#"{"records":[{"TJRQ":"二〇二四"}]}"#);
        assert_eq!(cell(&parse(V, &gb, None).unwrap(), 0, "TJRQ"), text("二〇二四").as_ref());
    }

    #[test]
    fn structure_errors() {
        for s in [
            r#"{"records":[],"extra":1}"#,
            r#"{"rows":[]}"#,
            r#"{}"#,
            r#"[]"#,
            r#"{"records":{}}"#,
            r#"{"records":"张三"}"#,
            r#"{"records":[[]]}"#,
            r#"{"records":[null]}"#,
            r#"{"records":["张三"]}"#,
            r#"{"records":[{"MZRC":true}]}"#,
            r#"{"records":[{"MZRC":{"a":1}}]}"#,
            r#"{"records":[{"MZRC":[1,2]}]}"#,
            r#"{"records":[],"records":[]}"#,
            r#"{"records":[]} x"#,
            r#"{"records":[{"MZRC":1e999}]}"#,
            r#"{"records":[{"MZRC":01}]}"#,
        ] {
            let r = parse(V, s.as_bytes(), J);
            let m = message(parse(V, s.as_bytes(), J));
            assert_eq!(code(r), FILE_JSON, "{s}: {m}");
            assert!(!m.contains("张三"), "{m}");
        }
        let m = message(parse(V, br#"{"records":[{},{"MZRC":false}]}"#, J));
        assert!(m.contains("第 2 条") && m.contains("MZRC"), "{m}");
    }

    #[test]
    fn truncated() {
        for s in [r#"{"records":[{"MZRC":1}"#, r#"{"records":[{"MZRC":"#, r#"{"rec"#, "{"] {
            assert_eq!(code(parse(V, s.as_bytes(), J)), FILE_TRUNCATED, "{s}");
        }
    }

    #[test]
    fn unknown_and_duplicate_keys() {
        let s = r#"{"records":[{"MZRC":1},{"MZRC":1,"备注":"x"}]}"#;
        let m = message(parse(V, s.as_bytes(), J));
        assert_eq!(code(parse(V, s.as_bytes(), J)), FILE_UNKNOWN_COLUMN);
        assert!(m.contains("第 2 条") && m.contains("“备注”"), "{m}");
        let s = r#"{"records":[{"MZRC":1,"mzrc":null}]}"#;
        assert_eq!(code(parse(V, s.as_bytes(), J)), FILE_DUPLICATE_COLUMN);
        let s = r#"{"records":[{"XM":"A","籍贯":"北京","床位":12,"空":null,"空串":""}]}"#;
        let f = parse(RecordType::Discharge, s.as_bytes(), J).unwrap();
        assert_eq!(f.rows[0].extra, vec![("籍贯".to_owned(), "北京".to_owned()), ("床位".to_owned(), "12".to_owned())]);
    }

    #[test]
    fn too_many_rows() {
        let l = Limits { max_rows: 2, ..Limits::default() };
        let s = r#"{"records":[{"MZRC":1},{},{"MZRC":2}]}"#;
        assert_eq!(parse_upload(V, s.as_bytes(), J, &l).unwrap().rows.len(), 2);
        let s = r#"{"records":[{"MZRC":1},{"MZRC":2},{"MZRC":3}]}"#;
        assert_eq!(code(parse_upload(V, s.as_bytes(), J, &l)), FILE_TOO_MANY_ROWS);
    }
}
