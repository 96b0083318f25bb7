//! Receipts (INTERFACE §1): validate every row of a parsed upload, decide its
//! scope, and count what was accepted and rejected.
//!
//! ```text
//!  ParsedFile ─▶ for each row: validate_row ─▶ slot rules (stock/visits) ─▶ scope::decide
//!                 │ errors ─▶ Receipt.errors          │ accepted ─▶ state.accept() ─▶ Accepted
//! ```
//! The same code makes the DMZ's receipts and `flumon-agent check`'s: only the
//! [`CheckState`] differs (durable history in the DMZ, "every link present"
//! offline).

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::model::{ParsedFile, Record, RecordType};
use crate::scope::{self, AllLinksPresent, CaseScope, Decision, ScopeState};
use crate::validate::{Ctx, RowError, message, validate_row};

/// At most this many errors are listed in a receipt; `error_counts` still counts all.
pub const MAX_LISTED_ERRORS: usize = 10_000;

/// The answer to an upload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Assigned by the DMZ; empty from the offline checker.
    pub receipt_id: String,
    /// The record type.
    #[serde(rename = "type")]
    pub ty: RecordType,
    pub received: usize,
    pub accepted: usize,
    pub rejected: usize,
    /// Row errors (at most [`MAX_LISTED_ERRORS`]).
    pub errors: Vec<RowError>,
    /// Number of errors per code, over all rows.
    #[serde(default)]
    pub error_counts: BTreeMap<String, usize>,
    /// Whether `errors` was cut at [`MAX_LISTED_ERRORS`].
    #[serde(default)]
    pub errors_truncated: bool,
}

impl Receipt {
    /// The receipt of a file that could not be read at all: counts 0, one error with row 0.
    pub fn whole_file(ty: RecordType, err: &crate::Error) -> Receipt {
        let (code, message) = match err {
            crate::Error::File { code, message } | crate::Error::TooLarge { code, message } => {
                ((*code).to_owned(), message.clone())
            }
            other => ("FILE_FORMAT".to_owned(), format!("文件无法读取 (unreadable file): {other}")),
        };
        let mut error_counts = BTreeMap::new();
        error_counts.insert(code.clone(), 1);
        Receipt {
            receipt_id: String::new(),
            ty,
            received: 0,
            accepted: 0,
            rejected: 0,
            errors: vec![RowError { row: 0, field: String::new(), code, message }],
            error_counts,
            errors_truncated: false,
        }
    }
}

/// A row that was accepted, with its scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// 1 = first data row.
    pub row: usize,
    pub record: Record,
    /// For §3.1/§3.2 cases: why they are in scope.
    pub case: Option<CaseScope>,
}

/// Earlier accepted records, as far as validation needs them.
pub trait CheckState: ScopeState {
    /// The JLID of the live stock (§3.7) or visits (§3.8) row that holds `slot`
    /// for this hospital, if any.
    fn slot_owner(&self, org: &str, ty: RecordType, slot: &str) -> Option<String>;
    /// Record an accepted row, so later rows of the same upload see it.
    fn accept(&mut self, accepted: &Accepted);
}

/// The one-row-a-day slot of a stock or visits record.
pub fn slot_of(rec: &Record) -> Option<(RecordType, String)> {
    let day = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
    match rec {
        Record::Stock(s) => Some((RecordType::Stock, format!("{}\u{1f}{}\u{1f}{}", day(s.tjrq), s.ypmc, s.ypgg))),
        Record::Visits(v) => Some((RecordType::Visits, day(v.tjrq))),
        _ => None,
    }
}

/// Validate, scope and count every row of `file`.
pub fn check_file(file: &ParsedFile, ctx: &Ctx, state: &mut impl CheckState) -> (Receipt, Vec<Accepted>) {
    let ty = file.ty;
    let td = crate::model::type_def(ty);
    let mut receipt = Receipt {
        receipt_id: String::new(),
        ty,
        received: file.rows.len(),
        accepted: 0,
        rejected: 0,
        errors: Vec::new(),
        error_counts: BTreeMap::new(),
        errors_truncated: false,
    };
    let mut out = Vec::new();
    for raw in &file.rows {
        let result = validate_row(ty, raw, ctx).and_then(|record| {
            let org = record.common().zzjgdm.clone();
            if let Some((slot_ty, slot)) = slot_of(&record)
                && let Some(owner) = state.slot_owner(&org, slot_ty, &slot)
                && owner != record.common().jlid
            {
                let field = if slot_ty == RecordType::Stock { "YPGG" } else { "TJRQ" };
                let detail = "请用同一记录唯一标识修改 (CZLX=2), 或先删除原记录";
                return Err(vec![RowError {
                    row: raw.row,
                    field: field.to_owned(),
                    code: "DUPLICATE_DAY".to_owned(),
                    message: message(td, field, "DUPLICATE_DAY", detail),
                }]);
            }
            match scope::decide(&record, &*state) {
                Decision::Out => Err(vec![RowError {
                    row: raw.row,
                    field: String::new(),
                    code: "OUT_OF_SCOPE".to_owned(),
                    message: message(
                        td,
                        "",
                        "OUT_OF_SCOPE",
                        "该记录不进入监测; 若关联病例尚未上报, 病例上报后的次日重传会自动接收",
                    ),
                }]),
                Decision::Case(c) => Ok(Accepted { row: raw.row, record, case: Some(c) }),
                _ => Ok(Accepted { row: raw.row, record, case: None }),
            }
        });
        match result {
            Ok(acc) => {
                state.accept(&acc);
                receipt.accepted += 1;
                out.push(acc);
            }
            Err(errs) => {
                receipt.rejected += 1;
                for e in errs {
                    *receipt.error_counts.entry(e.code.clone()).or_insert(0) += 1;
                    if receipt.errors.len() < MAX_LISTED_ERRORS {
                        receipt.errors.push(e);
                    } else {
                        receipt.errors_truncated = true;
                    }
                }
            }
        }
    }
    (receipt, out)
}

/// The offline checker's state: every link present, slots tracked within the files checked.
#[derive(Default)]
pub struct OfflineState {
    slots: HashMap<(String, RecordType, String), String>,
}

impl ScopeState for OfflineState {
    fn case_in_scope(&self, org: &str, jzlsh: &str) -> bool {
        AllLinksPresent.case_in_scope(org, jzlsh)
    }
    fn positive_lab(&self, org: &str, jzlsh: &str) -> bool {
        AllLinksPresent.positive_lab(org, jzlsh)
    }
}

impl CheckState for OfflineState {
    fn slot_owner(&self, org: &str, ty: RecordType, slot: &str) -> Option<String> {
        self.slots.get(&(org.to_owned(), ty, slot.to_owned())).cloned()
    }
    fn accept(&mut self, a: &Accepted) {
        if let Some((ty, slot)) = slot_of(&a.record) {
            let org = a.record.common().zzjgdm.clone();
            self.slots.insert((org, ty, slot), a.record.common().jlid.clone());
        }
        if let Record::Delete(d) = &a.record {
            let org = &d.common.zzjgdm;
            let jlid = &d.common.jlid;
            self.slots.retain(|(o, t, _), owner| !(o == org && *t == d.ty && owner == jlid));
        }
    }
}
