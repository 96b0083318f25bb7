//! `verify JOURNAL` and `reconcile SENDER RECEIVER` (TRANSFER.md "Audit"):
//! chain verification, and per batch sent / received / lost / altered.
//!
//! ```text
//!  sender journal ──visit (verified entries only)──▶ batch.sent / batch.resent: seq ─▶ (sm3, passes)
//!  receiver journal ─visit──────────────────────────▶ batch.received / batch.rejected: seq ─▶ (sm3 | reason)
//!  join on seq ─▶ received | altered | lost | unsent ─▶ rows + summary; exit 1 if lost, altered or a chain broke
//! ```
//!
//! The join itself is `flumon_shared::journal::reconcile` (the intranet uses it
//! too); this module words the notes in English and renders the report.

use std::fmt::Write as _;
use std::path::Path;

use flumon_shared::crypto::Sm2PublicKey;
use flumon_shared::journal::JournalEntry;
pub use flumon_shared::journal::reconcile::{BatchRow, Fate, Tally};
use flumon_shared::journal::reconcile::{Note, join, read_entries};
use serde::Serialize;

use crate::error::{Error, Result};

/// One journal's verification.
#[derive(Clone, Debug, Serialize)]
pub struct ChainReport {
    pub path: String,
    pub intact: bool,
    pub lines: u64,
    pub last_seq: u64,
    pub checkpoints: u64,
    pub head: String,
    /// "line N: reason" of the first bad line.
    pub first_bad: Option<String>,
}

fn read(path: &Path, key: &Sm2PublicKey) -> Result<(ChainReport, Vec<JournalEntry>)> {
    let (r, entries) = read_entries(path, key).map_err(|e| Error::Journal(format!("{}: {e}", path.display())))?;
    let rep = ChainReport {
        path: path.display().to_string(),
        intact: r.is_intact(),
        lines: r.good_lines,
        last_seq: r.last_seq,
        checkpoints: r.checkpoints,
        head: hex::encode(r.head),
        first_bad: r.first_bad.map(|b| format!("line {}: {}", b.line, b.reason)),
    };
    Ok((rep, entries))
}

/// Verifies one journal.
pub fn verify(path: &Path, key: &Sm2PublicKey) -> Result<ChainReport> {
    read(path, key).map(|(r, _)| r)
}

/// One batch's row.
pub type Row = BatchRow;

/// The whole comparison.
#[derive(Clone, Debug, Serialize)]
pub struct Reconciliation {
    pub sender: ChainReport,
    pub receiver: ChainReport,
    pub rows: Vec<Row>,
}

/// The notes in English.
fn note(n: Note<'_>) -> String {
    match n {
        Note::None => String::new(),
        Note::OtherCopyRejected(why) => format!("received; a different copy was rejected: {why}"),
        Note::OtherSm3 => "received with another SM3 than sent".to_owned(),
        Note::Rejected(why) => format!("rejected: {why}"),
        Note::NotInSender(Some(why)) => format!("not in the sender journal; rejected: {why}"),
        Note::NotInSender(None) => "not in the sender journal".to_owned(),
    }
}

/// Compares the two journals.
pub fn reconcile(sender: &Path, skey: &Sm2PublicKey, receiver: &Path, rkey: &Sm2PublicKey) -> Result<Reconciliation> {
    let (srep, sent_entries) = read(sender, skey)?;
    let (rrep, recv_entries) = read(receiver, rkey)?;
    Ok(Reconciliation { sender: srep, receiver: rrep, rows: join(&sent_entries, &recv_entries, note) })
}

impl Reconciliation {
    /// The counts of the summary.
    pub fn tally(&self) -> Tally {
        Tally::of(&self.rows)
    }

    /// True when nothing was lost or altered and both chains verified.
    pub fn ok(&self) -> bool {
        let t = self.tally();
        t.lost == 0 && t.altered == 0 && self.sender.intact && self.receiver.intact
    }

    /// The summary line.
    pub fn summary(&self) -> String {
        let chain = |c: &ChainReport| {
            if c.intact {
                format!("ok ({} entries)", c.lines)
            } else {
                format!(
                    "BROKEN at {} (only the {} entries before it were used)",
                    c.first_bad.as_deref().unwrap_or("?"),
                    c.lines
                )
            }
        };
        let t = self.tally();
        format!(
            "summary: sent {}, received {}, lost {}, altered {}, unsent {}, records quarantined {}; sender chain {}; receiver chain {}",
            t.sent,
            t.received,
            t.lost,
            t.altered,
            t.unsent,
            t.quarantined_records,
            chain(&self.sender),
            chain(&self.receiver),
        )
    }

    /// One line per batch, then the summary.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for r in &self.rows {
            let fate = match r.fate {
                Fate::Received => "received",
                Fate::Altered => "ALTERED",
                Fate::Lost => "LOST",
                Fate::Unsent => "unsent",
            };
            let sm3 = r.sent_sm3.as_deref().or(r.received_sm3.as_deref()).and_then(|s| s.get(..16)).unwrap_or("-");
            let _ = write!(out, "batch {:>8}  {fate:<8}  sm3 {sm3}…  passes {}", r.seq, r.passes);
            if r.quarantined_records > 0 {
                let _ = write!(out, "  records quarantined {}", r.quarantined_records);
            }
            if !r.note.is_empty() {
                let _ = write!(out, "  ({})", r.note);
            }
            out.push('\n');
        }
        out.push_str(&self.summary());
        out.push('\n');
        out
    }
}
