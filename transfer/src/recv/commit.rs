//! Taking one assembled batch (or ferry file) into the spool, or into
//! quarantine with the reason (PROTOCOL.md §7): duplicate check, temp file
//! and fsync, full verification, identifier re-scan, skip list, commit
//! without overwrite, journal.
//!
//! ```text
//!  bytes ─▶ seen? (same SM3: duplicate; other SM3: quarantine) ─▶ spool/.name.rand.tmp + fsync
//!        ─▶ open_batch (link key, DMZ key, limits) ─▶ node id and seq are ours?
//!        ─▶ scan every record's free text ─▶ hits? skip.json first + copy to quarantine/
//!        ─▶ hard link to spool/<node>-<seq:020>.fbatch (never overwrites) ─▶ journal batch.received
//!  failure ─▶ quarantine/<name>.<ms>.fbatch + .reason.json ─▶ journal batch.rejected
//! ```

use std::path::{Path, PathBuf};

use flumon_shared::batch::{BatchHeader, BatchLimits, open_batch};
use flumon_shared::crypto::{Sm2PublicKey, SymKey};
use flumon_shared::desens::scan::scan;
use flumon_shared::entries::Entry;
use serde_json::json;

use super::state::RecvState;
use crate::audit::Audit;
use crate::error::Result;
use crate::fsutil::{batch_name, commit_new, write_atomic, write_temp};

/// Records named in one `record.quarantined` entry (keeps lines far below the journal's 64 KiB).
const RECORDS_PER_ENTRY: usize = 20;
/// Hits named per field (the count is always given).
const HITS_PER_FIELD: usize = 8;

/// What the committer needs.
#[derive(Debug)]
pub struct Committer<'a> {
    pub node: &'a str,
    pub spool: &'a Path,
    pub quarantine: &'a Path,
    pub link_key: &'a SymKey,
    pub dmz: &'a Sm2PublicKey,
    pub limits: BatchLimits,
    pub mode: &'a str,
}

/// The outcome for one batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Received { quarantined_records: usize },
    Duplicate,
    Rejected(String),
}

/// One record that matched the identifier scan.
#[derive(Debug, serde::Serialize)]
struct Hit {
    index: usize,
    /// [{field, hits: [{kind, clause, at}]}]
    fields: Vec<serde_json::Value>,
}

impl Committer<'_> {
    /// Takes batch `seq` (its number as the link or the ferry file name gave it).
    pub fn commit(
        &self,
        seq: u64,
        bytes: &[u8],
        sm3: &[u8; 32],
        extra: serde_json::Value,
        state: &mut RecvState,
        audit: &mut Audit,
    ) -> Result<Verdict> {
        let name = batch_name(self.node, seq);
        let sm3_hex = hex::encode(sm3);
        if let Some(prev) = state.received.get(&seq) {
            if *prev == sm3_hex {
                audit.record("batch.duplicate", json!({"seq": seq, "sm3": sm3_hex, "extra": extra}))?;
                return Ok(Verdict::Duplicate);
            }
            let reason = format!("sequence {seq} reused with different content (received earlier with SM3 {prev})");
            return self.reject(seq, bytes, &sm3_hex, &reason, extra, state, audit);
        }
        if state.rejected.contains(&sm3_hex) {
            audit.record(
                "batch.duplicate",
                json!({"seq": seq, "sm3": sm3_hex, "previously": "rejected", "extra": extra}),
            )?;
            return Ok(Verdict::Duplicate);
        }
        let tmp = write_temp(self.spool, &name, bytes)?;
        let (header, entries) = match open_batch::<Entry>(bytes, self.link_key, self.dmz, &self.limits) {
            Ok(x) => x,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return self.reject(seq, bytes, &sm3_hex, &e.to_string(), extra, state, audit);
            }
        };
        if header.node_id != self.node || header.sequence != seq {
            let _ = std::fs::remove_file(&tmp);
            let reason = format!(
                "not ours: header names {}-{} where {}-{seq} was expected",
                header.node_id, header.sequence, self.node
            );
            return self.reject(seq, bytes, &sm3_hex, &reason, extra, state, audit);
        }
        let hits = scan_entries(&entries);
        if !hits.is_empty() {
            let skip: Vec<usize> = hits.iter().map(|h| h.index).collect();
            let sidecar = json!({"batch": name, "sm3": sm3_hex, "skip": skip, "reasons": hits});
            let body = serde_json::to_vec_pretty(&sidecar).map_err(|e| crate::Error::State(e.to_string()))?;
            let qname = self.quarantine_name(&name)?;
            write_atomic(self.quarantine, &qname, bytes)?;
            let reason = json!({"batch": name, "sm3": sm3_hex, "reason": "records matched identifier patterns",
                                "records": skip.len(), "skip_list": format!("{name}.skip.json")});
            write_atomic(self.quarantine, &format!("{qname}.reason.json"), reason.to_string().as_bytes())?;
            write_atomic(self.spool, &format!("{name}.skip.json"), &body)?;
            for part in hits.chunks(RECORDS_PER_ENTRY) {
                audit.record(
                    "record.quarantined",
                    json!({"seq": seq, "sm3": sm3_hex, "records": part, "quarantine": qname}),
                )?;
            }
        }
        if !commit_new(&tmp, &self.spool.join(&name))? {
            // a spool file of that name exists though the state log does not know it
            // (a crash between commit and log): same bytes is a duplicate, others a conflict
            let _ = std::fs::remove_file(&tmp);
            let existing = crate::fsutil::read_bounded(&self.spool.join(&name), bytes.len() as u64 + 1).ok();
            if existing.is_some_and(|e| flumon_shared::crypto::sm3(&e) == *sm3) {
                state.received(seq, &sm3_hex)?;
                audit.record("batch.duplicate", json!({"seq": seq, "sm3": sm3_hex, "extra": extra}))?;
                return Ok(Verdict::Duplicate);
            }
            let reason = format!("spool already holds a different {name}: refusing to overwrite");
            return self.reject(seq, bytes, &sm3_hex, &reason, extra, state, audit);
        }
        state.received(seq, &sm3_hex)?;
        audit.record(
            "batch.received",
            json!({"seq": seq, "sm3": sm3_hex, "size": bytes.len(), "counts": counts_json(&header),
                   "created_ms": header.created_ms, "quarantined_records": hits.len(), "mode": self.mode,
                   "extra": extra}),
        )?;
        Ok(Verdict::Received { quarantined_records: hits.len() })
    }

    fn quarantine_name(&self, name: &str) -> Result<String> {
        let stem = name.strip_suffix(".fbatch").unwrap_or(name);
        Ok(format!("{stem}.{}.{}.fbatch", crate::now_ms(), crate::fsutil::random_hex::<3>()?))
    }

    /// Puts the bytes into quarantine with the reason, and journals it.
    #[allow(clippy::too_many_arguments)]
    pub fn reject(
        &self,
        seq: u64,
        bytes: &[u8],
        sm3_hex: &str,
        reason: &str,
        extra: serde_json::Value,
        state: &mut RecvState,
        audit: &mut Audit,
    ) -> Result<Verdict> {
        let qname = self.quarantine_name(&batch_name(self.node, seq))?;
        write_atomic(self.quarantine, &qname, bytes)?;
        let why =
            json!({"seq": seq, "sm3": sm3_hex, "size": bytes.len(), "reason": reason, "time_ms": crate::now_ms()});
        write_atomic(self.quarantine, &format!("{qname}.reason.json"), why.to_string().as_bytes())?;
        state.rejected(seq, sm3_hex)?;
        audit.record(
            "batch.rejected",
            json!({"seq": seq, "sm3": sm3_hex, "size": bytes.len(), "reason": reason, "quarantine": qname,
                   "mode": self.mode, "extra": extra}),
        )?;
        tracing::warn!(seq, %reason, "batch rejected");
        Ok(Verdict::Rejected(reason.to_owned()))
    }

    /// Moves a file that could not even be read into quarantine (ferry).
    pub fn reject_file(
        &self,
        seq: u64,
        path: &Path,
        reason: &str,
        state: &mut RecvState,
        audit: &mut Audit,
    ) -> Result<PathBuf> {
        let qname = self.quarantine_name(&batch_name(self.node, seq))?;
        let dest = self.quarantine.join(&qname);
        if std::fs::rename(path, &dest).is_err() {
            std::fs::copy(path, &dest)?;
            std::fs::remove_file(path)?;
        }
        crate::fsutil::sync_dir(self.quarantine)?;
        let why = json!({"seq": seq, "reason": reason, "time_ms": crate::now_ms()});
        write_atomic(self.quarantine, &format!("{qname}.reason.json"), why.to_string().as_bytes())?;
        state.rejected(seq, "")?;
        audit
            .record("batch.rejected", json!({"seq": seq, "reason": reason, "quarantine": qname, "mode": self.mode}))?;
        Ok(dest)
    }
}

fn counts_json(h: &BatchHeader) -> serde_json::Value {
    let c = &h.counts;
    json!({"records": c.records, "registry": c.registry, "receipts": c.receipts, "scans": c.scans,
           "journal_heads": c.journal_heads})
}

/// Every record whose free text matches an identifier pattern: index,
/// field, and the kind and clause of each hit — never the text.
fn scan_entries(entries: &[Entry]) -> Vec<Hit> {
    let mut out = Vec::new();
    for (index, e) in entries.iter().enumerate() {
        let Entry::Record(r) = e else { continue };
        let mut fields = Vec::new();
        for (field, text) in r.free_text() {
            let hits = scan(text);
            if !hits.is_empty() {
                let n = hits.len();
                let hits: Vec<_> = hits
                    .iter()
                    .take(HITS_PER_FIELD)
                    .map(|h| json!({"kind": h.kind, "clause": h.clause, "at": h.start}))
                    .collect();
                fields.push(json!({"field": field, "hit_count": n, "hits": hits}));
            }
        }
        if !fields.is_empty() {
            out.push(Hit { index, fields });
        }
    }
    out
}
