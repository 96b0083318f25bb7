//! Row validation: every rule of INTERFACE §2–§3, turning a [`RawRow`] into a
//! typed [`Record`] or a list of [`RowError`]s with stable codes and Chinese
//! messages a hospital IT person can act on.
//!
//! ```text
//!  RawRow ─▶ generic pass (field table: type, length, code table, required)
//!        ─▶ type rules (rules.rs: dates in order, ages, ID numbers, costs …)
//!        ─▶ Record | Vec<RowError>
//! ```
//! Messages never repeat a value (a value may be an identifier).

pub mod cells;
pub mod ids;
mod rules;

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

use crate::model::{FieldType, RawRow, RecordType, Req, TypeDef, type_def};
use cells::{CellProblem, Val};

pub use rules::validate_row;

/// What a row is validated against.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// The time of receipt, China Standard Time. "Today" is its date.
    pub now: NaiveDateTime,
    /// The uploading hospital's 统一社会信用代码, when known.
    pub org: Option<String>,
}

impl Ctx {
    /// Today, the day of receipt.
    pub fn today(&self) -> NaiveDate {
        self.now.date()
    }
}

/// One error of one row (INTERFACE §1 receipt).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    /// 1 = first data row; 0 for a whole-file error.
    pub row: usize,
    /// The field code (empty for whole-row and whole-file errors).
    pub field: String,
    /// Stable error code.
    pub code: String,
    /// Chinese message with the English gist.
    pub message: String,
}

/// The stable row error codes and what they mean (listed in docs/INTERFACE.md).
pub const ROW_ERROR_CODES: &[(&str, &str)] = &[
    ("REQUIRED", "必填字段为空 (required field empty)"),
    ("COND_REQUIRED", "条件必填字段为空 (required under a condition)"),
    ("MUST_BE_EMPTY", "该条件下字段应为空 (must be empty under a condition)"),
    ("TOO_LONG", "超过最大长度, 按字符计 (too long, in characters)"),
    ("BAD_CODE", "不在代码表中 (not in the code table)"),
    ("BAD_NUMBER", "不是非负数字 (not a non-negative number)"),
    ("NUMBER_RANGE", "数字位数或取值超出范围 (number out of range)"),
    ("BAD_DATE", "日期格式错误, 应为 YYYY-MM-DD, YYYYMMDD 或 YYYY/MM/DD (bad date)"),
    ("BAD_DATETIME", "日期时间格式错误, 应为 YYYY-MM-DD HH:MM:SS (bad date-time)"),
    ("BAD_VERSION", "接口版本应为 1.0 (interface version must be 1.0)"),
    ("BAD_ORG_CODE", "统一社会信用代码校验位错误 (bad unified social credit code)"),
    ("ORG_MISMATCH", "组织机构代码不是本院的 (not the uploading hospital's code)"),
    ("FUTURE_TIME", "时间晚于接收时间 (in the future)"),
    ("YWRQ_WINDOW", "业务日期不在近 30 天内 (business date outside the last 30 days)"),
    ("BAD_ID_NUMBER", "身份证号码格式或校验位错误 (bad citizen ID number)"),
    ("ID_AS_NUMBER", "证件号码被存成了数字, 请把该列设为文本 (ID number stored as a number)"),
    ("ID_BIRTH_MISMATCH", "身份证号码中的出生日期与出生日期字段不一致 (ID birth date differs)"),
    ("ID_SEX_MISMATCH", "身份证号码中的性别与性别字段不一致 (ID sex differs)"),
    ("AGE_MISMATCH", "年龄与出生日期、就诊时间不符 (age differs from birth date)"),
    ("DATE_ORDER", "日期先后顺序错误 (dates out of order)"),
    ("BAD_REGION", "行政区划代码错误 (bad GB/T 2260 region code)"),
    ("BAD_ICD", "诊断编码形状不符合 ICD-10 (not an ICD-10 shaped code)"),
    ("DIAG_PAIR", "诊断编码与名称须成对填写 (code and name go together)"),
    ("COST_RULE", "费用关系错误 (cost rule violated)"),
    ("STAY_DAYS", "实际住院天数与入出院日期不符 (length of stay differs from dates)"),
    ("SUBTYPE_MISMATCH", "亚型/系与型别不符 (subtype does not fit the type)"),
    ("NOT_ANTIVIRAL", "不是抗流感药物 (not an anti-influenza drug)"),
    ("DUPLICATE_DAY", "同一统计日期已有另一条有效记录 (another live row for the same day)"),
    ("OUT_OF_SCOPE", "不符合流感病例纳入规则, 或关联的病例尚未上报 (not an influenza case in scope)"),
];

/// The generic pass's result: a converted value per field.
pub(crate) struct Row<'a> {
    pub(crate) td: &'static TypeDef,
    pub(crate) raw: &'a RawRow,
    vals: Vec<Option<Val>>,
    pub(crate) errs: Vec<RowError>,
}

/// Format the standard message of `code` for `field`.
pub(crate) fn message(td: &TypeDef, field: &str, code: &str, detail: &str) -> String {
    let zh = td.index(field).and_then(|i| td.field(i)).map_or("", |f| f.zh.as_str());
    let base = ROW_ERROR_CODES.iter().find(|(c, _)| *c == code).map_or("", |(_, m)| *m);
    let mut s = if field.is_empty() { base.to_owned() } else { format!("「{zh}」({field}): {base}") };
    if !detail.is_empty() {
        s.push_str("; ");
        s.push_str(detail);
    }
    s
}

impl<'a> Row<'a> {
    /// Convert the cells of `raw`; with `only` given, only those fields.
    pub(crate) fn convert(ty: RecordType, raw: &'a RawRow, delete: bool) -> Row<'a> {
        let td = type_def(ty);
        let mut row = Row { td, raw, vals: vec![None; td.fields.len()], errs: Vec::new() };
        for (i, f) in td.fields.iter().enumerate() {
            let common = matches!(f.code.as_str(), "ZZJGDM" | "JLID" | "CZLX" | "GXSJ" | "YWRQ" | "BBH" | "JZLSH");
            if delete && !common {
                continue;
            }
            let cell = raw.cells.get(i).and_then(|c| c.as_ref());
            let val = match cell.map(|c| cells::convert(f, c)) {
                None | Some(Ok(None)) => None,
                Some(Ok(Some(v))) => Some(v),
                Some(Err(p)) => {
                    let (code, detail) = match p {
                        CellProblem::IdAsNumber => {
                            ("ID_AS_NUMBER", "Excel 只保留 15 位有效数字, 请把证件号码列设置为“文本”格式后重新导出")
                        }
                        CellProblem::BadNumber => ("BAD_NUMBER", ""),
                        CellProblem::NumberRange => ("NUMBER_RANGE", ""),
                        CellProblem::BadDate => ("BAD_DATE", ""),
                        CellProblem::BadDateTime => ("BAD_DATETIME", ""),
                        CellProblem::TooLong => ("TOO_LONG", ""),
                    };
                    let detail = match (p, f.ty) {
                        (CellProblem::TooLong, FieldType::Char(n) | FieldType::Text(n)) => format!("最多 {n} 个字符"),
                        (CellProblem::NumberRange, t) => format!("类型 {}", t.notation()),
                        _ => detail.to_owned(),
                    };
                    let code_s = f.code.clone();
                    row.error(&code_s, code, &detail);
                    continue;
                }
            };
            match val {
                None => {
                    let skip_ywrq = delete && f.code == "YWRQ";
                    if f.req == Req::Required && !skip_ywrq {
                        let c = f.code.clone();
                        row.error(&c, "REQUIRED", "");
                    }
                }
                Some(v) => {
                    if let (Some(table), Val::Text(s)) = (f.codes, &v) {
                        let ok = if f.code == "GWYS" {
                            s.split([';', '；'])
                                .map(str::trim)
                                .filter(|p| !p.is_empty())
                                .all(|p| crate::model::in_table(table, p))
                        } else {
                            crate::model::in_table(table, s)
                        };
                        if !ok {
                            let c = f.code.clone();
                            row.error(&c, "BAD_CODE", &code_list(table));
                            continue;
                        }
                    }
                    if let Some(slot) = row.vals.get_mut(i) {
                        *slot = Some(v);
                    }
                }
            }
        }
        row
    }

    /// Record an error on `field`.
    pub(crate) fn error(&mut self, field: &str, code: &str, detail: &str) {
        let message = message(self.td, field, code, detail);
        self.errs.push(RowError { row: self.raw.row, field: field.to_owned(), code: code.to_owned(), message });
    }

    fn val(&self, code: &str) -> Option<&Val> {
        self.td.index(code).and_then(|i| self.vals.get(i)).and_then(|v| v.as_ref())
    }

    /// Whether the field has a value (a field whose conversion failed has none).
    pub(crate) fn has(&self, code: &str) -> bool {
        self.val(code).is_some()
    }

    /// Whether the field already has an error.
    pub(crate) fn failed(&self, code: &str) -> bool {
        self.errs.iter().any(|e| e.field == code)
    }

    pub(crate) fn text(&self, code: &str) -> Option<String> {
        match self.val(code) {
            Some(Val::Text(s)) => Some(s.clone()),
            _ => None,
        }
    }

    /// A single-digit code field as a number.
    pub(crate) fn code(&self, code: &str) -> Option<u8> {
        self.text(code).and_then(|s| s.parse().ok())
    }

    pub(crate) fn int(&self, code: &str) -> Option<i64> {
        match self.val(code) {
            Some(Val::Int(n) | Val::Dec(n)) => Some(*n),
            _ => None,
        }
    }

    pub(crate) fn date(&self, code: &str) -> Option<NaiveDate> {
        match self.val(code) {
            Some(Val::Date(d)) => Some(*d),
            _ => None,
        }
    }

    pub(crate) fn datetime(&self, code: &str) -> Option<NaiveDateTime> {
        match self.val(code) {
            Some(Val::DateTime(d)) => Some(*d),
            _ => None,
        }
    }
}

fn code_list(table: crate::model::CodeTable) -> String {
    let items: Vec<String> = table.iter().map(|(c, m)| format!("{c} {m}")).collect();
    format!("可选值: {}", items.join(", "))
}

#[cfg(test)]
pub(crate) mod tests;
