//! Where the records come from: a folder of HIS exports, optionally in the
//! HIS's own column names through a mapping file, and SQL queries (`sql.rs`).
//!
//! ```text
//!  folder/<type>*.csv|xlsx|json   (type = outpatient … visits, or its Chinese name; case ignored)
//!    ─▶ mapping.toml?  FIELD_CODE = "HIS 列名"  (top level: every type; [outpatient] …: one type)
//!         CSV: header renamed (UTF-8 / GB18030 read, UTF-8 written)   JSON: keys renamed
//!    ─▶ SourceFile { ty, name, bytes, content type }
//! ```

use std::collections::HashMap;
use std::path::Path;

use flumon_shared::model::RecordType;

use crate::Error;

/// One file (or query result) of one type.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub ty: RecordType,
    pub name: String,
    pub bytes: Vec<u8>,
    pub content_type: Option<&'static str>,
}

/// HIS column name → field code, per type.
#[derive(Clone, Debug, Default)]
pub struct Mapping {
    all: HashMap<String, String>,
    by_type: HashMap<RecordType, HashMap<String, String>>,
}

fn norm(s: &str) -> String {
    flumon_shared::model::normalize_header(s)
}

impl Mapping {
    /// Reads a mapping file: `FIELD_CODE = "his column"` at top level, or in `[type]` tables.
    pub fn load(path: &Path) -> Result<Mapping, Error> {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::Source(format!("映射文件 {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| Error::Source(format!("映射文件 {}: {e}", path.display())))
    }

    /// Parses the mapping text.
    pub fn parse(text: &str) -> Result<Mapping, String> {
        let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut m = Mapping::default();
        let put = |into: &mut HashMap<String, String>, code: &str, v: &toml::Value| -> Result<(), String> {
            let col = v.as_str().ok_or_else(|| format!("{code}: 值应为 HIS 列名字符串 (a column name string)"))?;
            if into.insert(norm(col), code.to_owned()).is_some() {
                return Err(format!("HIS 列名 “{col}” 被映射了两次 (mapped twice)"));
            }
            Ok(())
        };
        for (k, v) in &table {
            if let Some(t) = v.as_table() {
                let ty = RecordType::parse(k).ok_or_else(|| format!("[{k}]: 未知的记录类型 (unknown type)"))?;
                let into = m.by_type.entry(ty).or_default();
                for (code, col) in t {
                    put(into, code, col)?;
                }
            } else {
                put(&mut m.all, k, v)?;
            }
        }
        Ok(m)
    }

    /// The field code for a HIS column of type `ty` (the column itself when unmapped).
    pub fn map<'a>(&'a self, ty: RecordType, col: &'a str) -> &'a str {
        let n = norm(col);
        self.by_type.get(&ty).and_then(|t| t.get(&n)).or_else(|| self.all.get(&n)).map_or(col, String::as_str)
    }

    fn is_empty(&self) -> bool {
        self.all.is_empty() && self.by_type.is_empty()
    }
}

/// The record type a file name announces.
pub fn type_of_name(name: &str) -> Option<RecordType> {
    let lower = name.to_ascii_lowercase();
    RecordType::ALL.into_iter().find(|t| lower.starts_with(t.as_str()) || name.starts_with(t.zh()))
}

/// The content type of an extension.
fn content_type(ext: &str) -> Option<&'static str> {
    match ext {
        "csv" | "txt" => Some("text/csv"),
        "xlsx" => Some("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        "json" => Some("application/json"),
        _ => None,
    }
}

/// Decodes CSV bytes: UTF-8 (BOM or not), else GB18030.
fn decode(bytes: &[u8]) -> String {
    let b = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(b) {
        Ok(s) => s.to_owned(),
        Err(_) => encoding_rs::GB18030.decode(b).0.into_owned(),
    }
}

/// Renames a CSV's header through the mapping.
pub fn map_csv(ty: RecordType, bytes: &[u8], m: &Mapping) -> Result<Vec<u8>, Error> {
    let text = decode(bytes);
    let mut r = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut w = csv::Writer::from_writer(Vec::with_capacity(bytes.len()));
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| Error::Source(format!("CSV 无法读取 (unreadable CSV): {e}")))?;
        if i == 0 {
            w.write_record(rec.iter().map(|c| m.map(ty, c))).map_err(|e| Error::Source(e.to_string()))?;
        } else {
            w.write_record(&rec).map_err(|e| Error::Source(e.to_string()))?;
        }
    }
    w.into_inner().map_err(|e| Error::Source(e.to_string()))
}

/// Renames the keys of a JSON upload's records through the mapping.
pub fn map_json(ty: RecordType, bytes: &[u8], m: &Mapping) -> Result<Vec<u8>, Error> {
    let mut v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| Error::Source(format!("JSON 无法读取: {e}")))?;
    if let Some(recs) = v.get_mut("records").and_then(|r| r.as_array_mut()) {
        for r in recs.iter_mut() {
            if let Some(o) = r.as_object_mut() {
                let old = std::mem::take(o);
                for (k, val) in old {
                    o.insert(m.map(ty, &k).to_owned(), val);
                }
            }
        }
    }
    Ok(serde_json::to_vec(&v)?)
}

/// Every export file of `folder` (not recursive; hidden and unknown files skipped).
pub fn read_folder(folder: &Path, mapping: Option<&Mapping>) -> Result<Vec<SourceFile>, Error> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir(folder).map_err(|e| Error::Source(format!("导出目录 {}: {e}", folder.display())))?;
    let mut paths: Vec<_> = rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
    paths.sort();
    for p in paths {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.starts_with('.') {
            continue;
        }
        let ext = p.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
        let (Some(ty), Some(ct)) = (type_of_name(&name), content_type(&ext)) else {
            tracing::debug!(file = %name, "跳过: 文件名不以记录类型开头或扩展名不支持 (skipped)");
            continue;
        };
        let f = std::fs::File::open(&p).map_err(|source| Error::Read { path: p.display().to_string(), source })?;
        let mut bytes = flumon_shared::parse::read_limited(f, &flumon_shared::parse::Limits::default())
            .map_err(|e| Error::Source(format!("{name}: {e}")))?;
        if let Some(m) = mapping.filter(|m| !m.is_empty()) {
            bytes = match ext.as_str() {
                "csv" | "txt" => map_csv(ty, &bytes, m)?,
                "json" => map_json(ty, &bytes, m)?,
                _ => {
                    return Err(Error::Source(format!(
                        "{name}: 映射文件目前只适用于 CSV 和 JSON; 请把 XLSX 另存为 CSV, 或在 XLSX 中使用接口列名 \
                         (mapping applies to CSV and JSON only)"
                    )));
                }
            };
        }
        out.push(SourceFile { ty, name, bytes, content_type: Some(ct) });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_renames_headers() {
        let m = Mapping::parse("JLID = \"记录号\"\n[outpatient]\nJZLSH = \"门诊号\"\n").unwrap();
        let out = map_csv(RecordType::Outpatient, "记录号,门诊号,XM\n1,2,张三\n".as_bytes(), &m).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "JLID,JZLSH,XM\n1,2,张三\n");
        assert_eq!(m.map(RecordType::Lab, "门诊号"), "门诊号");
        assert!(Mapping::parse("[nonsense]\nA = \"b\"").is_err());
        assert_eq!(type_of_name("Outpatient-2025.csv"), Some(RecordType::Outpatient));
        assert_eq!(type_of_name("notes.csv"), None);
    }

    #[test]
    fn mutated_mapping_files_never_panic() {
        // issue 8: the deploy template of mapping.toml, thousands of variants: Ok or Err, never a panic
        const TEMPLATE: &str = include_str!("../../deploy/config/mapping.toml");
        Mapping::parse(TEMPLATE).unwrap();
        let variants = crate::config::config_mutants::mutants(TEMPLATE, 0x3a99, 3000);
        // parse errors carry no file name (load adds it, below): "" matches every message
        let seen = crate::config::config_mutants::check_all(&variants, "", |t| Mapping::parse(t).map(drop));
        assert!(seen.ok > 100 && seen.err > 500, "{seen:?}");
        crate::config::config_mutants::check_not_utf8_files(&seen, "mapping.toml", 10, |f| {
            Mapping::load(f).map(drop).map_err(|e| e.to_string())
        });
        let cases = [
            (TEMPLATE.replace("JLID = \"记录号\"", "JLID = 7"), "JLID"),
            (TEMPLATE.replace("[lab]", "[labx]"), "labx"),
            (TEMPLATE.replace("[lab]", "[lab]\nXM = \"就诊号\""), "就诊号"),
        ];
        // parse errors carry no file name: "" matches every message
        crate::config::config_mutants::check_keys_named(TEMPLATE, "", &cases, |t| Mapping::parse(t).map(drop));
    }
}
