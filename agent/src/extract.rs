//! What a run sends: every source file checked here with the same code as the
//! DMZ (parse, validate, extraction rules of INTERFACE §4), only rows that
//! pass and whose YWRQ lies in the trailing window kept, written back as CSV
//! chunks in the INTERFACE layout (field-code header, UTF-8).
//!
//! ```text
//!  SourceFile ─▶ parse_upload ─▶ ParsedFile ─┬ pre-pass: positive labs (rule 3) by JZLSH
//!                                           └ check_file(AgentScope) in upload order (§4)
//!     AgentScope: positive labs + in-scope cases of this export + cases remembered from earlier runs
//!  accepted ∧ YWRQ ∈ [today − days, today] (deletes always) ─▶ RawRow ─▶ CSV rows ─▶ chunks of N rows
//!  rejected here ─▶ local receipt (never sent: data minimisation, and the DMZ would refuse them too)
//! ```

use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDate;
use serde::Serialize;

use flumon_shared::model::{Cell, FieldType, ParsedFile, RawRow, Record, RecordType, type_def};
use flumon_shared::parse::{Limits, parse_upload};
use flumon_shared::receipt::{Accepted, CheckState, OfflineState, Receipt, check_file};
use flumon_shared::scope::{Decision, ScopeState, decide};
use flumon_shared::validate::Ctx;

use crate::Error;
use crate::source::SourceFile;

/// One chunk ready to send.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Chunk {
    pub ty: RecordType,
    /// Rows in this chunk.
    pub rows: usize,
    /// CSV, UTF-8, field-code header.
    pub csv: Vec<u8>,
}

/// What the extraction found, per type.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TypeSummary {
    pub files: usize,
    pub rows: usize,
    pub rejected_here: usize,
    pub outside_window: usize,
    pub to_send: usize,
}

/// The result of extraction.
#[derive(Debug, Default)]
pub struct Extraction {
    pub chunks: Vec<Chunk>,
    pub summary: BTreeMap<RecordType, TypeSummary>,
    /// The local receipt of every source file (rows refused here are listed in it).
    pub local_receipts: Vec<(String, Receipt)>,
    /// JZLSH of in-scope cases seen now (remembered for later runs).
    pub cases: HashSet<String>,
}

/// The agent's view of scope: what the export itself shows, plus cases remembered from earlier runs.
pub struct AgentScope {
    pub cases: HashSet<String>,
    pub positive: HashSet<String>,
    slots: OfflineState,
}

impl AgentScope {
    pub fn new(remembered: HashSet<String>) -> Self {
        AgentScope { cases: remembered, positive: HashSet::new(), slots: OfflineState::default() }
    }
}

impl ScopeState for AgentScope {
    fn case_in_scope(&self, _org: &str, jzlsh: &str) -> bool {
        self.cases.contains(jzlsh)
    }
    fn positive_lab(&self, _org: &str, jzlsh: &str) -> bool {
        self.positive.contains(jzlsh)
    }
}

impl CheckState for AgentScope {
    fn slot_owner(&self, org: &str, ty: RecordType, slot: &str) -> Option<String> {
        self.slots.slot_owner(org, ty, slot)
    }
    fn accept(&mut self, a: &Accepted) {
        if a.case.is_some() {
            let j = match &a.record {
                Record::Outpatient(r) => Some(&r.jzlsh),
                Record::Discharge(r) => Some(&r.jzlsh),
                _ => None,
            };
            if let Some(j) = j {
                self.cases.insert(j.clone());
            }
        }
        self.slots.accept(a);
    }
}

/// The text of a cell as a CSV upload carries it (the DMZ reads it back to the same value).
pub fn cell_text(cell: &Cell, code: &str, ty: FieldType, width: Option<u8>) -> String {
    match cell {
        Cell::Text(s) => s.clone(),
        Cell::Number(f) if code == "BBH" => format!("{f:?}"),
        Cell::Number(f) if f.fract() == 0.0 && f.abs() < 1e15 => {
            let s = format!("{}", *f as i64);
            match width {
                Some(w) if s.len() < usize::from(w) => format!("{s:0>w$}", w = usize::from(w)),
                _ => s,
            }
        }
        Cell::Number(f) => f.to_string(),
        Cell::DateTime(dt) if ty == FieldType::Date => dt.format("%Y-%m-%d").to_string(),
        Cell::DateTime(dt) => dt.format("%Y-%m-%d %H:%M:%S").to_string(),
    }
}

/// CSV of `rows` (field-code header).
pub fn to_csv(ty: RecordType, rows: &[&RawRow]) -> Result<Vec<u8>, Error> {
    let td = type_def(ty);
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(td.fields.iter().map(|f| f.code.as_str())).map_err(|e| Error::Source(e.to_string()))?;
    for r in rows {
        let rec: Vec<String> = td
            .fields
            .iter()
            .zip(r.cells.iter())
            .map(|(f, c)| c.as_ref().map(|c| cell_text(c, &f.code, f.ty, f.fixed_width)).unwrap_or_default())
            .collect();
        w.write_record(&rec).map_err(|e| Error::Source(e.to_string()))?;
    }
    w.into_inner().map_err(|e| Error::Source(e.to_string()))
}

/// What extraction needs.
pub struct ExtractConfig {
    pub org: String,
    pub now: chrono::NaiveDateTime,
    pub days: u32,
    pub chunk_rows: usize,
}

fn in_window(rec: &Record, first: NaiveDate, today: NaiveDate) -> bool {
    match rec {
        Record::Delete(_) => true,
        r => r.common().ywrq.is_some_and(|d| d >= first && d <= today),
    }
}

/// Checks every source file and cuts what is to be sent into chunks, in upload order.
pub fn extract(files: Vec<SourceFile>, remembered: HashSet<String>, cfg: &ExtractConfig) -> Result<Extraction, Error> {
    let ctx = Ctx { now: cfg.now, org: Some(cfg.org.clone()) };
    let today = cfg.now.date();
    let first = today - chrono::Duration::days(i64::from(cfg.days.max(1)));
    let mut ex = Extraction::default();
    let mut parsed: Vec<(String, ParsedFile)> = Vec::new();
    for f in files {
        ex.summary.entry(f.ty).or_default().files += 1;
        match parse_upload(f.ty, &f.bytes, f.content_type, &Limits::default()) {
            Ok(p) => parsed.push((f.name, p)),
            Err(e) => ex.local_receipts.push((f.name, Receipt::whole_file(f.ty, &e))),
        }
    }
    let mut scope = AgentScope::new(remembered);
    // pre-pass: positive influenza results (rule 3) of this export
    for (_, p) in parsed.iter().filter(|(_, p)| p.ty == RecordType::Lab) {
        let (_, acc) = check_file(p, &ctx, &mut OfflineState::default());
        for a in acc {
            if let (Record::Lab(l), Decision::ByItself) = (&a.record, decide(&a.record, &scope)) {
                scope.positive.insert(l.jzlsh.clone());
            }
        }
    }
    parsed.sort_by_key(|(_, p)| RecordType::ALL.iter().position(|t| *t == p.ty));
    let mut pending: Option<(RecordType, Vec<String>)> = None;
    let mut buf: Vec<RawRow> = Vec::new();
    for (name, p) in &parsed {
        let (receipt, acc) = check_file(p, &ctx, &mut scope);
        let s = ex.summary.entry(p.ty).or_default();
        s.rows += p.rows.len();
        s.rejected_here += receipt.rejected;
        let keep: HashSet<usize> = acc
            .iter()
            .filter(|a| {
                let ok = in_window(&a.record, first, today);
                if !ok {
                    s.outside_window += 1;
                }
                ok
            })
            .map(|a| a.row)
            .collect();
        s.to_send += keep.len();
        if receipt.rejected > 0 {
            ex.local_receipts.push((name.clone(), receipt));
        }
        if pending.as_ref().is_some_and(|(t, _)| *t != p.ty) {
            flush(&mut ex, &mut pending, &mut buf, cfg.chunk_rows, true)?;
        }
        pending.get_or_insert_with(|| (p.ty, Vec::new()));
        buf.extend(p.rows.iter().filter(|r| keep.contains(&r.row)).cloned());
        flush(&mut ex, &mut pending, &mut buf, cfg.chunk_rows, false)?;
    }
    flush(&mut ex, &mut pending, &mut buf, cfg.chunk_rows, true)?;
    ex.cases = scope.cases;
    Ok(ex)
}

fn flush(
    ex: &mut Extraction,
    pending: &mut Option<(RecordType, Vec<String>)>,
    buf: &mut Vec<RawRow>,
    n: usize,
    all: bool,
) -> Result<(), Error> {
    let Some((ty, _)) = pending.as_ref() else { return Ok(()) };
    let ty = *ty;
    while buf.len() >= n || (all && !buf.is_empty()) {
        let take = buf.len().min(n);
        let rows: Vec<RawRow> = buf.drain(..take).collect();
        let refs: Vec<&RawRow> = rows.iter().collect();
        ex.chunks.push(Chunk { ty, rows: rows.len(), csv: to_csv(ty, &refs)? });
    }
    if all {
        *pending = None;
    }
    Ok(())
}
