//! `verify JOURNAL` and `reconcile SENDER RECEIVER` (TRANSFER.md "Audit"):
//! chain verification, and per batch sent / received / lost / altered.
//!
//! ```text
//!  sender journal ──visit (verified entries only)──▶ batch.sent / batch.resent: seq ─▶ (sm3, passes)
//!  receiver journal ─visit──────────────────────────▶ batch.received / batch.rejected: seq ─▶ (sm3 | reason)
//!  join on seq ─▶ received | altered | lost | unsent ─▶ rows + summary; exit 1 if lost, altered or a chain broke
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use flumon_shared::crypto::Sm2PublicKey;
use flumon_shared::journal::{JournalEntry, visit};
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
    let mut entries = Vec::new();
    let r = visit(path, key, |e| entries.push(e.clone()))
        .map_err(|e| Error::Journal(format!("{}: {e}", path.display())))?;
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

/// What became of one batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fate {
    Received,
    Altered,
    Lost,
    /// Received (or rejected) but not in the sender's journal.
    Unsent,
}

/// One batch's row.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub seq: u64,
    pub fate: Fate,
    pub sent_sm3: Option<String>,
    pub received_sm3: Option<String>,
    pub passes: u64,
    pub quarantined_records: u64,
    pub note: String,
}

/// The whole comparison.
#[derive(Clone, Debug, Serialize)]
pub struct Reconciliation {
    pub sender: ChainReport,
    pub receiver: ChainReport,
    pub rows: Vec<Row>,
}

#[derive(Default)]
struct Side {
    sm3: Option<String>,
    passes: u64,
    rejected: Option<String>,
    quarantined: u64,
}

fn field<'a>(e: &'a JournalEntry, k: &str) -> Option<&'a serde_json::Value> {
    e.detail.get(k)
}

/// Compares the two journals.
pub fn reconcile(sender: &Path, skey: &Sm2PublicKey, receiver: &Path, rkey: &Sm2PublicKey) -> Result<Reconciliation> {
    let (srep, sent_entries) = read(sender, skey)?;
    let (rrep, recv_entries) = read(receiver, rkey)?;
    let mut sent: BTreeMap<u64, Side> = BTreeMap::new();
    for e in &sent_entries {
        if e.kind != "batch.sent" && e.kind != "batch.resent" {
            continue;
        }
        let Some(seq) = field(e, "seq").and_then(|v| v.as_u64()) else { continue };
        let s = sent.entry(seq).or_default();
        s.sm3 = field(e, "sm3").and_then(|v| v.as_str()).map(str::to_owned).or(s.sm3.take());
        s.passes += field(e, "passes").and_then(|v| v.as_u64()).unwrap_or(0);
    }
    let mut got: BTreeMap<u64, Side> = BTreeMap::new();
    for e in &recv_entries {
        let Some(seq) = field(e, "seq").and_then(|v| v.as_u64()) else { continue };
        match e.kind.as_str() {
            "batch.received" => {
                let s = got.entry(seq).or_default();
                s.sm3 = field(e, "sm3").and_then(|v| v.as_str()).map(str::to_owned);
                s.quarantined = field(e, "quarantined_records").and_then(|v| v.as_u64()).unwrap_or(0);
            }
            "batch.rejected" => {
                let s = got.entry(seq).or_default();
                let reason = field(e, "reason").and_then(|v| v.as_str()).unwrap_or("?").to_owned();
                s.rejected = Some(reason);
            }
            _ => {}
        }
    }
    let mut rows = Vec::new();
    let seqs: std::collections::BTreeSet<u64> = sent.keys().chain(got.keys()).copied().collect();
    for seq in seqs {
        let s = sent.get(&seq);
        let r = got.get(&seq);
        let (fate, note) = match (s, r) {
            (Some(s), Some(r)) => match (&r.sm3, &r.rejected) {
                (Some(rs), _) if Some(rs) == s.sm3.as_ref() => {
                    let note = match &r.rejected {
                        Some(why) => format!("received; a different copy was rejected: {why}"),
                        None => String::new(),
                    };
                    (Fate::Received, note)
                }
                (Some(_), _) => (Fate::Altered, "received with another SM3 than sent".to_owned()),
                (None, Some(why)) => (Fate::Altered, format!("rejected: {why}")),
                (None, None) => (Fate::Lost, String::new()),
            },
            (Some(_), None) => (Fate::Lost, String::new()),
            (None, Some(r)) => (
                Fate::Unsent,
                match &r.rejected {
                    Some(why) if r.sm3.is_none() => format!("not in the sender journal; rejected: {why}"),
                    _ => "not in the sender journal".to_owned(),
                },
            ),
            (None, None) => continue,
        };
        rows.push(Row {
            seq,
            fate,
            sent_sm3: s.and_then(|x| x.sm3.clone()),
            received_sm3: r.and_then(|x| x.sm3.clone()),
            passes: s.map_or(0, |x| x.passes),
            quarantined_records: r.map_or(0, |x| x.quarantined),
            note,
        });
    }
    Ok(Reconciliation { sender: srep, receiver: rrep, rows })
}

impl Reconciliation {
    fn n(&self, f: Fate) -> usize {
        self.rows.iter().filter(|r| r.fate == f).count()
    }

    /// True when nothing was lost or altered and both chains verified.
    pub fn ok(&self) -> bool {
        self.n(Fate::Lost) == 0 && self.n(Fate::Altered) == 0 && self.sender.intact && self.receiver.intact
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
        format!(
            "summary: sent {}, received {}, lost {}, altered {}, unsent {}, records quarantined {}; sender chain {}; receiver chain {}",
            self.rows.iter().filter(|r| r.sent_sm3.is_some()).count(),
            self.n(Fate::Received),
            self.n(Fate::Lost),
            self.n(Fate::Altered),
            self.n(Fate::Unsent),
            self.rows.iter().map(|r| r.quarantined_records).sum::<u64>(),
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
