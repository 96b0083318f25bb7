//! The transfer reconciliation (TRANSFER.md "Audit"): the sender's journal
//! joined with the receiver's on the batch sequence number, one row per batch.
//! Used by `flumon-transfer reconcile` and the intranet's security page; each
//! words the notes in its own language through the `Note` it is handed.
//!
//! ```text
//!  sender journal   ─▶ batch.sent / batch.resent: seq ─▶ (sm3 of the last with one, passes summed)
//!  receiver journal ─▶ batch.received: seq ─▶ (sm3, quarantined records) / batch.rejected: seq ─▶ reason
//!  join on seq ─▶ received | altered | lost | unsent (+ Note) ─▶ BatchRow; Tally counts the rows
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use super::{JournalEntry, VerifyReport, visit};
use crate::Result;
use crate::crypto::Sm2PublicKey;

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

/// Why a row reads as it does; the caller turns it into its note text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note<'a> {
    /// Nothing to add.
    None,
    /// Received as sent, and another copy was rejected for this reason.
    OtherCopyRejected(&'a str),
    /// Received with another SM3 than sent.
    OtherSm3,
    /// Sent, but the receiver only rejected it, for this reason.
    Rejected(&'a str),
    /// Not in the sender's journal; the reason when the receiver only rejected it.
    NotInSender(Option<&'a str>),
}

/// One batch of the reconciliation.
#[derive(Clone, Debug, Serialize)]
pub struct BatchRow {
    pub seq: u64,
    pub fate: Fate,
    pub sent_sm3: Option<String>,
    pub received_sm3: Option<String>,
    pub passes: u64,
    pub quarantined_records: u64,
    pub note: String,
}

/// The counts of a reconciliation's summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Batches in the sender's journal.
    pub sent: usize,
    pub received: usize,
    pub lost: usize,
    pub altered: usize,
    pub unsent: usize,
    /// Records the receiver quarantined, over all batches.
    pub quarantined_records: u64,
}

impl Tally {
    /// Counts the rows.
    pub fn of(rows: &[BatchRow]) -> Self {
        let mut t = Tally::default();
        for r in rows {
            t.sent += usize::from(r.sent_sm3.is_some());
            t.quarantined_records += r.quarantined_records;
            *t.fate_mut(r.fate) += 1;
        }
        t
    }

    /// Rows of one fate.
    pub fn fate(&self, f: Fate) -> usize {
        match f {
            Fate::Received => self.received,
            Fate::Altered => self.altered,
            Fate::Lost => self.lost,
            Fate::Unsent => self.unsent,
        }
    }

    fn fate_mut(&mut self, f: Fate) -> &mut usize {
        match f {
            Fate::Received => &mut self.received,
            Fate::Altered => &mut self.altered,
            Fate::Lost => &mut self.lost,
            Fate::Unsent => &mut self.unsent,
        }
    }
}

/// Verifies a journal and keeps its verified entries (those before any bad line).
pub fn read_entries(path: &Path, key: &Sm2PublicKey) -> Result<(VerifyReport, Vec<JournalEntry>)> {
    let mut entries = Vec::new();
    let r = visit(path, key, |e| entries.push(e.clone()))?;
    Ok((r, entries))
}

#[derive(Default)]
struct Side {
    sm3: Option<String>,
    passes: u64,
    rejected: Option<String>,
    quarantined: u64,
}

fn u(e: &JournalEntry, k: &str) -> Option<u64> {
    e.detail.get(k).and_then(serde_json::Value::as_u64)
}

fn s(e: &JournalEntry, k: &str) -> Option<String> {
    e.detail.get(k).and_then(|v| v.as_str()).map(str::to_owned)
}

/// Joins the two journals on the batch sequence number, rows in seq order;
/// `note` words each row's `Note`.
pub fn join(
    sent_entries: &[JournalEntry],
    recv_entries: &[JournalEntry],
    note: impl Fn(Note<'_>) -> String,
) -> Vec<BatchRow> {
    let mut sent: BTreeMap<u64, Side> = BTreeMap::new();
    for e in sent_entries.iter().filter(|e| e.kind == "batch.sent" || e.kind == "batch.resent") {
        let Some(seq) = u(e, "seq") else { continue };
        let x = sent.entry(seq).or_default();
        x.sm3 = s(e, "sm3").or(x.sm3.take());
        x.passes += u(e, "passes").unwrap_or(0);
    }
    let mut got: BTreeMap<u64, Side> = BTreeMap::new();
    for e in recv_entries {
        let Some(seq) = u(e, "seq") else { continue };
        match e.kind.as_str() {
            "batch.received" => {
                let x = got.entry(seq).or_default();
                x.sm3 = s(e, "sm3");
                x.quarantined = u(e, "quarantined_records").unwrap_or(0);
            }
            "batch.rejected" => {
                got.entry(seq).or_default().rejected = Some(s(e, "reason").unwrap_or_else(|| "?".into()))
            }
            _ => {}
        }
    }
    let seqs: BTreeSet<u64> = sent.keys().chain(got.keys()).copied().collect();
    let mut rows = Vec::new();
    for seq in seqs {
        let (sx, rx) = (sent.get(&seq), got.get(&seq));
        let (fate, why) = match (sx, rx) {
            (Some(sx), Some(rx)) => match (&rx.sm3, &rx.rejected) {
                (Some(rs), why) if Some(rs) == sx.sm3.as_ref() => {
                    (Fate::Received, why.as_deref().map_or(Note::None, Note::OtherCopyRejected))
                }
                (Some(_), _) => (Fate::Altered, Note::OtherSm3),
                (None, Some(why)) => (Fate::Altered, Note::Rejected(why)),
                (None, None) => (Fate::Lost, Note::None),
            },
            (Some(_), None) => (Fate::Lost, Note::None),
            (None, Some(rx)) => (Fate::Unsent, Note::NotInSender(rx.rejected.as_deref().filter(|_| rx.sm3.is_none()))),
            (None, None) => continue,
        };
        rows.push(BatchRow {
            seq,
            fate,
            sent_sm3: sx.and_then(|x| x.sm3.clone()),
            received_sm3: rx.and_then(|x| x.sm3.clone()),
            passes: sx.map_or(0, |x| x.passes),
            quarantined_records: rx.map_or(0, |x| x.quarantined),
            note: if why == Note::None { String::new() } else { note(why) },
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn e(kind: &str, detail: serde_json::Value) -> JournalEntry {
        JournalEntry { seq: 0, time: 0, kind: kind.into(), detail, prev: String::new() }
    }

    fn words(n: Note<'_>) -> String {
        format!("{n:?}")
    }

    #[test]
    fn each_fate_and_note() {
        let sent = [
            e("batch.sent", json!({"seq": 1, "sm3": "a", "passes": 1})),
            e("batch.sent", json!({"seq": 2, "sm3": "b", "passes": 1})),
            e("batch.resent", json!({"seq": 2, "passes": 2})),
            e("batch.sent", json!({"seq": 3, "sm3": "c", "passes": 1})),
            e("batch.sent", json!({"seq": 4, "sm3": "d", "passes": 1})),
            e("batch.sent", json!({"seq": 5, "sm3": "e", "passes": 1})),
            e("heartbeat", json!({"seq": 9})),
        ];
        let recv = [
            e("batch.received", json!({"seq": 1, "sm3": "a", "quarantined_records": 2})),
            e("batch.rejected", json!({"seq": 1, "reason": "late copy"})),
            e("batch.received", json!({"seq": 2, "sm3": "x"})),
            e("batch.rejected", json!({"seq": 3, "reason": "bad mac"})),
            e("batch.rejected", json!({"seq": 7})),
            e("batch.received", json!({"seq": 8, "sm3": "h"})),
        ];
        let rows = join(&sent, &recv, words);
        let got: Vec<_> = rows.iter().map(|r| (r.seq, r.fate, r.passes, r.note.as_str())).collect();
        assert_eq!(
            got,
            [
                (1, Fate::Received, 1, "OtherCopyRejected(\"late copy\")"),
                (2, Fate::Altered, 3, "OtherSm3"),
                (3, Fate::Altered, 1, "Rejected(\"bad mac\")"),
                (4, Fate::Lost, 1, ""),
                (5, Fate::Lost, 1, ""),
                (7, Fate::Unsent, 0, "NotInSender(Some(\"?\"))"),
                (8, Fate::Unsent, 0, "NotInSender(None)"),
            ]
        );
        assert_eq!(rows.first().map(|r| r.quarantined_records), Some(2));
        assert_eq!(rows.get(1).and_then(|r| r.sent_sm3.as_deref()), Some("b"));
        let t = Tally::of(&rows);
        assert_eq!(t, Tally { sent: 5, received: 1, lost: 2, altered: 2, unsent: 2, quarantined_records: 2 });
        assert_eq!(t.fate(Fate::Lost), 2);
    }
}
