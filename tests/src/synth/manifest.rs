//! `OUT/manifest.json` and `OUT/hospitals.json`: what was generated and what
//! the receipt of each file must be.
//!
//! Expectations are those of the offline checker (`receipt::check_file` with
//! `OfflineState`: every JZLSH link present, no positive result known):
//! `errors` are the planted errors, exactly one per planted row; the rows of
//! `lab_scope_rows` are §3.1/§3.2 records in scope only by a positive test
//! (INTERFACE §4 rule 3), which the offline checker (and the DMZ, before the
//! test has been accepted) rejects as `OUT_OF_SCOPE` with an empty field;
//! `expected_rejected` counts both. At the DMZ, with the day's files uploaded
//! in the order listed, the planted rows are rejected the same; lab-scope rows
//! are accepted once their positive test has been (the next day's resend),
//! and so are, on the first day, the non-antiviral orders and negative tests
//! linked to them.

use serde::{Deserialize, Serialize};

/// One expected row error.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ExpectedError {
    /// 1 = first data row of the file.
    pub row: usize,
    /// Field code; empty for OUT_OF_SCOPE.
    pub field: String,
    pub code: String,
}

/// One identifier planted in a file's free text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlantedIdAt {
    pub row: usize,
    pub field: String,
    /// own_name, own_id, own_phone, other_id, other_mobile, label_value, kin_name.
    pub kind: String,
    /// Exactly as written.
    pub value: String,
    /// INTERFACE §5 clause expected to scrub it: own, shape, label, or none.
    pub rule: String,
}

/// One generated file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to the output directory: `<ZZJGDM>/<date>/<type>.<ext>`.
    pub path: String,
    /// ZZJGDM.
    pub hospital: String,
    /// The upload day.
    pub date: String,
    /// When the upload is made (`YYYY-MM-DD HH:MM:SS`, CST): the receipt's `now`.
    pub upload_time: String,
    /// Record type (`outpatient`, …).
    #[serde(rename = "type")]
    pub ty: String,
    /// 1, 2, … when a type's rows are split over several files.
    pub part: usize,
    /// `csv`, `json` or `xlsx`.
    pub format: String,
    /// `utf-8`, `utf-8-bom`, `gb18030` (text formats).
    pub encoding: Option<String>,
    /// `code`, `zh` or `mixed`.
    pub header: String,
    /// The Content-Type to upload with (`None`: let the server detect it).
    pub content_type: Option<String>,
    /// Data rows.
    pub rows: usize,
    /// Of which deletes (CZLX 3).
    pub deletes: usize,
    pub expected_accepted: usize,
    pub expected_rejected: usize,
    /// Planted errors, by row.
    pub errors: Vec<ExpectedError>,
    /// Rows in scope only by a positive test (rejected OUT_OF_SCOPE offline).
    pub lab_scope_rows: Vec<usize>,
    /// Identifiers planted in free text (with `--plant-ids`).
    pub planted_ids: Vec<PlantedIdAt>,
    pub bytes: u64,
}

/// Totals over all files.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Totals {
    pub files: usize,
    pub rows: usize,
    pub deletes: usize,
    pub planted_errors: usize,
    pub lab_scope_rows: usize,
    pub planted_ids: usize,
    pub bytes: u64,
}

/// `manifest.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub generator: String,
    pub seed: u64,
    pub hospitals: usize,
    /// The upload days generated.
    pub dates: Vec<String>,
    /// Days of YWRQ each upload covers (the trailing window).
    pub days: u32,
    pub format: String,
    pub header: String,
    pub invalid_rate: f64,
    pub plant_ids: bool,
    pub scale: f64,
    /// Every file, per upload day and hospital in upload order (INTERFACE §4).
    pub files: Vec<FileEntry>,
    pub totals: Totals,
}

impl Totals {
    /// Add a file.
    pub fn add(&mut self, f: &FileEntry) {
        self.files += 1;
        self.rows += f.rows;
        self.deletes += f.deletes;
        self.planted_errors += f.errors.len();
        self.lab_scope_rows += f.lab_scope_rows.len();
        self.planted_ids += f.planted_ids.len();
        self.bytes += f.bytes;
    }
}
