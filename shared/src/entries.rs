//! The typed entries of a batch payload (TRANSFER.md "What crosses"): what
//! the DMZ's batcher seals and the intranet ingests. Nothing here can hold an
//! identifier: records are [`OutRecord`]s, receipts carry counts per error
//! code, scans carry only metadata.
//!
//! ```text
//!  DMZ outbound queue ─▶ Vec<Entry> ─▶ batch::seal_batch ═ gate ═▶ batch::open_batch ─▶ Vec<Entry> ─▶ ingest
//! ```

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

use crate::batch::EntryCounts;
use crate::desens::outbound::OutRecord;
use crate::model::RecordType;

/// A hospital as the intranet's registry knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HospitalInfo {
    /// 统一社会信用代码.
    pub code: String,
    pub name: String,
    /// 2 or 3 (二级, 三级).
    pub level: u8,
    /// GB/T 2260 county-level code of the hospital.
    pub region: String,
    /// The day its registration was approved (reporting is expected from then on).
    pub approved: NaiveDate,
    /// Whether it is active (false after the DMZ deactivates it).
    pub active: bool,
}

/// One upload's receipt, as counts (for the reporting-quality indicators).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptSummary {
    pub receipt_id: String,
    pub org: String,
    pub ty: RecordType,
    /// When the DMZ answered (China Standard Time).
    pub time: NaiveDateTime,
    pub received: u64,
    pub accepted: u64,
    pub rejected: u64,
    /// Errors per code (whole-file errors included).
    pub error_counts: BTreeMap<String, u64>,
    /// Accepted records by YWRQ, for the 迟报 indicator: (YWRQ, count).
    #[serde(default)]
    pub accepted_by_ywrq: Vec<(NaiveDate, u64)>,
}

/// A death full-record scan's metadata (INTERFACE §3.9): the intranet learns it arrived.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanInfo {
    pub org: String,
    /// Pseudonym of the death record's JZLSH.
    pub case_key: String,
    pub wjxh: u16,
    pub wjzs: u16,
    pub nrlb: u8,
    /// Pages, when known (PDF page count, TIFF frames).
    pub pages: Option<u32>,
    pub bytes: u64,
    /// SM3 of the file, hex.
    pub sm3: String,
    pub received: NaiveDateTime,
}

/// The head of the DMZ's audit journal at the time of the batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalHeadInfo {
    pub node: String,
    pub seq: u64,
    /// SM3 of the last entry, hex.
    pub hash: String,
    pub time: NaiveDateTime,
}

/// One entry of a batch payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Entry {
    Record(OutRecord),
    Hospital(HospitalInfo),
    Receipt(ReceiptSummary),
    Scan(ScanInfo),
    JournalHead(JournalHeadInfo),
}

/// The header's counts for a list of entries.
pub fn count_entries(entries: &[Entry]) -> EntryCounts {
    let mut c = EntryCounts::default();
    for e in entries {
        count_entry(&mut c, e);
    }
    c
}

/// Adds one entry to the header's counts.
pub fn count_entry(c: &mut EntryCounts, e: &Entry) {
    let slot = match e {
        Entry::Record(_) => &mut c.records,
        Entry::Hospital(_) => &mut c.registry,
        Entry::Receipt(_) => &mut c.receipts,
        Entry::Scan(_) => &mut c.scans,
        Entry::JournalHead(_) => &mut c.journal_heads,
    };
    *slot = slot.saturating_add(1);
}
