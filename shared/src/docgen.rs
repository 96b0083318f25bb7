//! Generates docs/INTERFACE.md from the field tables, code tables and error
//! codes, so the published interface standard can never drift from what the
//! parser and validator do. A test fails when the committed file is stale;
//! `FLUMON_UPDATE_DOCS=1 cargo test -p flumon-shared docgen` rewrites it.

use std::fmt::Write as _;

use crate::model::{FieldDef, RecordType, Sensitivity, type_def};

fn sens_zh(s: Sensitivity) -> &'static str {
    match s {
        Sensitivity::Plain => "原样传输",
        Sensitivity::Identifier => "删除 (不出 DMZ)",
        Sensitivity::IdNumber => "替换为人员密钥",
        Sensitivity::Pseudonym => "替换为假名",
        Sensitivity::BirthDate => "删除",
        Sensitivity::FreeText => "清除标识后传输",
    }
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn rule_of(f: &FieldDef) -> String {
    let mut rule = f.rule.clone();
    if let Some(table) = f.codes {
        let items: Vec<String> = table.iter().map(|(c, m)| format!("{c} {m}")).collect();
        if !rule.is_empty() {
            rule.push_str("; ");
        }
        rule.push_str(&items.join(", "));
    }
    if !f.alt_zh.is_empty() {
        let _ = write!(rule, " (表头也可写作: {})", f.alt_zh.join("、"));
    }
    rule
}

/// The whole of docs/INTERFACE.md.
pub fn interface_markdown() -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# flumon 接口标准 1.0 — 字段表 (generated)\n");
    let _ = writeln!(
        s,
        "本文件由 `flumon-shared` 的字段表生成 (`FLUMON_UPDATE_DOCS=1 cargo test -p flumon-shared docgen`), \
         与解析、校验代码同源; 请勿手工修改。传输规则、纳入规则与脱敏规则见项目规格 INTERFACE.md。\n\n\
         This file is generated from the field tables that drive the parser and the validator.\n"
    );
    let _ = writeln!(s, "上传顺序 (upload order): {}\n", RecordType::ALL.map(|t| t.as_str()).join(", "));
    for ty in RecordType::ALL {
        let td = type_def(ty);
        let _ = writeln!(s, "## `{}` — {}\n", ty.as_str(), ty.zh());
        if td.allows_extra {
            let _ = writeln!(s, "表外的其他列 (病案首页其余字段) 可以上传, 只保存在加密原始档案中, 不进入统计。\n");
        } else {
            let _ = writeln!(s, "表外的列会使整个文件被拒收 (FILE_UNKNOWN_COLUMN)。\n");
        }
        let _ = writeln!(s, "| 代码 code | 中文表头 | 类型 | 必填 | 规则 | 出 DMZ 时 |");
        let _ = writeln!(s, "| --- | --- | --- | --- | --- | --- |");
        for f in &td.fields {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                f.code,
                cell(&f.zh),
                f.ty.notation(),
                f.req.letter(),
                cell(&rule_of(f)),
                sens_zh(f.sens)
            );
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "## 行错误代码 (row error codes)\n");
    let _ = writeln!(s, "每个错误为 `{{row, field, code, message}}`; 有任何错误的行被拒收, 其余行照常接收。\n");
    let _ = writeln!(s, "| code | 含义 |");
    let _ = writeln!(s, "| --- | --- |");
    for (c, m) in crate::validate::ROW_ERROR_CODES {
        let _ = writeln!(s, "| `{c}` | {} |", cell(m));
    }
    let _ = writeln!(s, "\n## 整个文件的错误代码 (whole-file error codes)\n");
    let _ =
        writeln!(s, "文件无法读取时整份拒收: received、accepted、rejected 均为 0, 一条 row 为 0、field 为空的错误。\n");
    let _ = writeln!(s, "| code | 含义 |");
    let _ = writeln!(s, "| --- | --- |");
    for (c, m) in crate::parse::FILE_ERROR_CODES {
        let _ = writeln!(s, "| `{c}` | {} |", cell(m));
    }
    s
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    #[test]
    fn docgen_interface_md_is_current() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/INTERFACE.md");
        let want = super::interface_markdown();
        if std::env::var_os("FLUMON_UPDATE_DOCS").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "docs/INTERFACE.md is stale: run FLUMON_UPDATE_DOCS=1 cargo test -p flumon-shared docgen"
        );
    }
}
