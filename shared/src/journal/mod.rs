//! The audit journal: an append-only file of JSON lines, each holding the
//! SM3 of the line before it, so any edited, removed, inserted or reordered
//! entry breaks the chain (LEVEL3.md 安全审计, TRANSFER.md "Audit").
//!
//! ```text
//!  line n:  {"seq":n,"time":ms,"kind":"batch.sent","detail":{…},"prev":"<SM3 of line n-1>"}\n
//!
//!  seq 1 ── seq 2 ── … ── checkpoint (signed SM2 over seq, time, prev) ── … ── head
//!                     prune_before(s): ▼ rewritten atomically (temp + fsync + rename)
//!  anchor(seq s-1, prev = SM3 of line s-1, signed) ── seq s ── … ── head
//! ```
//!
//! `append` fsyncs (`sync_data`) before it returns. A checkpoint signs the
//! head so truncation and rewriting are caught by whoever holds the signed
//! head (hourly, and the DMZ's heads cross the gate); the last line can only
//! be checked against such a head. One process writes a journal at a time
//! (an exclusive file lock). Line format: docs/FORMATS.md §5.

pub mod reconcile;
mod verify;

pub use verify::{BadLine, JournalEntry, KIND_ANCHOR, KIND_CHECKPOINT, KIND_RECOVERED, MAX_LINE, VerifyReport};

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::crypto::sync_parent_dir;
use crate::crypto::{Sm2PrivateKey, Sm2PublicKey};
use crate::{Error, Result};
use verify::{RESERVED_PREFIX, signature_detail, signed_message, verify_stream};

/// Where a journal stands: the seq of its last entry and the chain value
/// after it (what a checkpoint signs and what crosses the gate).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalHead {
    /// Seq of the last entry (0 for an empty journal).
    pub seq: u64,
    /// Chain value after it (SM3 of its line; zeros for an empty journal).
    pub hash: [u8; 32],
}

/// What `prune_before` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PruneReport {
    /// Entries removed.
    pub removed: u64,
    /// Seq of the new anchor (the last removed entry's seq), if one was written.
    pub anchor_seq: Option<u64>,
}

/// An open journal, locked for appending by this process.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
    head: JournalHead,
    verify_key: Sm2PublicKey,
    /// Set while a write is in flight; a failed write (a full disk, an I/O
    /// error) leaves it set, and the next append first cuts the file back to
    /// `good_len` (the failed entry was never acknowledged) and records a
    /// `journal.recovered` entry, so the service resumes when the disk does.
    broken: bool,
    /// Length of the file after the last acknowledged (fsynced) entry.
    good_len: u64,
}

/// Now, in unix milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn lock(file: &File, path: &Path) -> Result<()> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(TryLockError::WouldBlock) => {
            Err(Error::Journal(format!("{} is open for writing by another process", path.display())))
        }
        Err(TryLockError::Error(e)) => Err(Error::Io(e)),
    }
}

impl Journal {
    /// Creates a new, empty journal (fails if `path` exists). `verify_key`
    /// is the public key its checkpoints are signed with.
    pub fn create(path: &Path, verify_key: &Sm2PublicKey) -> Result<Self> {
        let file = OpenOptions::new().append(true).read(true).create_new(true).open(path)?;
        lock(&file, path)?;
        file.sync_all()?;
        sync_parent_dir(path)?;
        Ok(Journal {
            file,
            path: path.to_path_buf(),
            head: JournalHead { seq: 0, hash: [0; 32] },
            verify_key: verify_key.clone(),
            broken: false,
            good_len: 0,
        })
    }

    /// Opens an existing journal: verifies the whole chain (checkpoint and
    /// anchor signatures with `verify_key`) and finds its head. A journal
    /// that does not verify is not opened, with one exception: a crash in
    /// the middle of an append leaves a last line without its newline; that
    /// entry was never acknowledged (`append` returns only after the newline
    /// is fsynced), so the torn bytes are cut away (fsynced) and a
    /// `journal.recovered` entry records how many there were.
    pub fn open(path: &Path, verify_key: &Sm2PublicKey) -> Result<Self> {
        let file = OpenOptions::new().append(true).read(true).open(path)?;
        lock(&file, path)?;
        let report = verify_stream(&mut BufReader::new(&file), verify_key, |_, _| {})?;
        let torn = match report.first_bad {
            Some(_) if report.torn_tail => {
                let len = file.metadata()?.len();
                file.set_len(report.good_bytes)?;
                file.sync_all()?;
                Some(len.saturating_sub(report.good_bytes))
            }
            Some(bad) => {
                return Err(Error::Journal(format!("{} line {}: {}", path.display(), bad.line, bad.reason)));
            }
            None => None,
        };
        let mut journal = Journal {
            file,
            path: path.to_path_buf(),
            head: JournalHead { seq: report.last_seq, hash: report.head },
            verify_key: verify_key.clone(),
            broken: false,
            good_len: report.good_bytes,
        };
        if let Some(bytes) = torn {
            journal.write_entry(now_ms(), KIND_RECOVERED, serde_json::json!({ "truncated_bytes": bytes }))?;
        }
        Ok(journal)
    }

    /// Opens `path` if it exists, creates it otherwise.
    pub fn open_or_create(path: &Path, verify_key: &Sm2PublicKey) -> Result<Self> {
        if path.exists() { Self::open(path, verify_key) } else { Self::create(path, verify_key) }
    }

    /// The current head.
    pub fn head(&self) -> JournalHead {
        self.head
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends an entry stamped now; returns the new head once it is on disk.
    pub fn append(&mut self, kind: &str, detail: &serde_json::Value) -> Result<JournalHead> {
        self.append_at(now_ms(), kind, detail)
    }

    /// Appends an entry with the given time (unix ms).
    pub fn append_at(&mut self, time: u64, kind: &str, detail: &serde_json::Value) -> Result<JournalHead> {
        if kind.is_empty() || kind.len() > 64 || kind.starts_with(RESERVED_PREFIX) {
            return Err(Error::Journal(format!("kind {kind:?} must be 1..=64 bytes and not start with 'journal.'")));
        }
        self.write_entry(time, kind, detail.clone())
    }

    /// Appends a checkpoint: an SM2 signature over (seq, time, head).
    pub fn checkpoint(&mut self, signing_key: &Sm2PrivateKey) -> Result<JournalHead> {
        self.check_key(signing_key)?;
        let time = now_ms();
        let seq = self.next_seq()?;
        let sig = signing_key.sign(&signed_message(1, seq, time, &self.head.hash))?;
        self.write_entry(time, KIND_CHECKPOINT, signature_detail(signing_key.public_key(), &sig))
    }

    fn check_key(&self, signing_key: &Sm2PrivateKey) -> Result<()> {
        if signing_key.public_key() != &self.verify_key {
            return Err(Error::Journal("signing key does not match the journal's verify key".into()));
        }
        Ok(())
    }

    fn next_seq(&self) -> Result<u64> {
        self.head.seq.checked_add(1).ok_or_else(|| Error::Journal("seq overflow".into()))
    }

    /// After a failed write: cuts the file back to the last acknowledged
    /// entry (fsynced) and records how many bytes were cut.
    fn recover(&mut self) -> Result<()> {
        let len = self.file.metadata()?.len();
        if len > self.good_len {
            self.file.set_len(self.good_len)?;
        }
        self.file.sync_all()?;
        self.broken = false;
        let cut = len.saturating_sub(self.good_len);
        self.write_entry(
            now_ms(),
            KIND_RECOVERED,
            serde_json::json!({ "truncated_bytes": cut, "after": "failed write" }),
        )?;
        Ok(())
    }

    fn write_entry(&mut self, time: u64, kind: &str, detail: serde_json::Value) -> Result<JournalHead> {
        if self.broken {
            self.recover()?;
        }
        let entry = JournalEntry {
            seq: self.next_seq()?,
            time,
            kind: kind.to_string(),
            detail,
            prev: hex::encode(self.head.hash),
        };
        let mut line = serde_json::to_vec(&entry).map_err(|e| Error::Journal(format!("cannot encode entry: {e}")))?;
        if line.len() > MAX_LINE {
            return Err(Error::Journal(format!(
                "entry of {} bytes is over the {MAX_LINE}-byte line limit",
                line.len()
            )));
        }
        let hash = crate::crypto::sm3(&line);
        line.push(b'\n');
        self.broken = true;
        self.file.write_all(&line)?;
        self.file.sync_data()?;
        self.broken = false;
        self.good_len = self.good_len.saturating_add(line.len() as u64);
        self.head = JournalHead { seq: entry.seq, hash };
        Ok(self.head)
    }

    /// Removes every entry with seq < `seq`, replacing them with a signed
    /// anchor that carries the chain value they left (the SM3 of entry
    /// `seq - 1`). The journal is verified first and rewritten atomically.
    pub fn prune_before(&mut self, seq: u64, signing_key: &Sm2PrivateKey) -> Result<PruneReport> {
        self.check_key(signing_key)?;
        if self.broken {
            self.recover()?;
        }
        let next = self.next_seq()?;
        if seq > next {
            return Err(Error::Journal(format!("cannot prune before {seq}: the last entry is {}", self.head.seq)));
        }
        // Find where entry `seq` starts and the chain value before it.
        let mut cut: Option<(u64, String)> = None;
        let mut first_seq: Option<u64> = None;
        self.file.seek(SeekFrom::Start(0))?;
        let report = verify_stream(&mut BufReader::new(&self.file), &self.verify_key, |e, off| {
            if e.kind != KIND_ANCHOR && first_seq.is_none() {
                first_seq = Some(e.seq);
            }
            if e.seq == seq && e.kind != KIND_ANCHOR {
                cut = Some((off, e.prev.clone()));
            }
        })?;
        if let Some(bad) = &report.first_bad {
            return Err(Error::Journal(format!("will not prune a broken journal: line {}: {}", bad.line, bad.reason)));
        }
        let already_from = first_seq.unwrap_or(next);
        if seq <= already_from {
            return Ok(PruneReport { removed: 0, anchor_seq: None });
        }
        let file_len = self.file.metadata()?.len();
        let (offset, prev) = match cut {
            Some((off, prev_hex)) => {
                let mut prev = [0u8; 32];
                hex::decode_to_slice(prev_hex, &mut prev).map_err(|_| Error::Journal("bad prev".into()))?;
                (off, prev)
            }
            None if seq == next => (file_len, self.head.hash), // pruning every entry
            None => return Err(Error::Journal(format!("entry {seq} not found"))),
        };
        let anchor_seq = seq - 1;
        let time = now_ms();
        let sig = signing_key.sign(&signed_message(2, anchor_seq, time, &prev))?;
        let anchor = JournalEntry {
            seq: anchor_seq,
            time,
            kind: KIND_ANCHOR.into(),
            detail: signature_detail(signing_key.public_key(), &sig),
            prev: hex::encode(prev),
        };
        let mut anchor_line = serde_json::to_vec(&anchor).map_err(|e| Error::Journal(format!("encode anchor: {e}")))?;
        anchor_line.push(b'\n');

        let tmp = self.temp_path();
        let _ = std::fs::remove_file(&tmp); // left over by a crashed prune; we hold the journal lock
        let mut out = OpenOptions::new().append(true).read(true).create_new(true).open(&tmp)?;
        lock(&out, &tmp)?;
        out.write_all(&anchor_line)?;
        self.file.seek(SeekFrom::Start(offset))?;
        std::io::copy(&mut Read::take(&self.file, file_len - offset), &mut out)?;
        out.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        sync_parent_dir(&self.path)?;
        self.good_len = out.metadata()?.len();
        self.file = out;
        Ok(PruneReport { removed: seq - already_from, anchor_seq: Some(anchor_seq) })
    }

    fn temp_path(&self) -> PathBuf {
        let name = self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        self.path.with_file_name(format!(".{name}.prune.tmp"))
    }
}

/// Verifies the journal at `path`: every line's form, sequence, chain link
/// and every checkpoint / anchor signature (by `verify_key`). Chain problems
/// are reported in [`VerifyReport::first_bad`]; only I/O fails.
pub fn verify(path: &Path, verify_key: &Sm2PublicKey) -> Result<VerifyReport> {
    let f = File::open(path)?;
    Ok(verify_stream(&mut BufReader::new(f), verify_key, |_, _| {})?)
}

/// As [`verify`], calling `visit` with every entry that verified, in order
/// (for reconcile and audit views).
pub fn visit(path: &Path, verify_key: &Sm2PublicKey, mut visit: impl FnMut(&JournalEntry)) -> Result<VerifyReport> {
    let f = File::open(path)?;
    Ok(verify_stream(&mut BufReader::new(f), verify_key, |e, _| visit(e))?)
}

/// Verifies a journal held in memory (used by the fuzz target).
pub fn verify_bytes(bytes: &[u8], verify_key: &Sm2PublicKey) -> VerifyReport {
    let mut r = bytes;
    verify_stream(&mut r, verify_key, |_, _| {}).unwrap_or_else(|e| VerifyReport {
        first_bad: Some(BadLine { line: 0, reason: e.to_string() }),
        ..VerifyReport::default()
    })
}

/// The body of the `journal_verify` fuzz target: verifies arbitrary bytes
/// with a fixed public test key. Never panics; `Err` means an invariant
/// broke (an intact report for input that is not newline-terminated).
pub fn fuzz_verify_journal(data: &[u8]) -> std::result::Result<(), String> {
    static KEY: std::sync::OnceLock<Option<Sm2PrivateKey>> = std::sync::OnceLock::new();
    let Some(key) = KEY.get_or_init(|| Sm2PrivateKey::from_scalar_bytes(&[0x17; 32]).ok()) else { return Ok(()) };
    let report = verify_bytes(data, key.public_key());
    if report.is_intact() && !data.is_empty() && data.last() != Some(&b'\n') {
        return Err("an unterminated journal verified".into());
    }
    if report.is_intact() && report.good_lines == 0 && !data.is_empty() {
        return Err("non-empty input verified with no lines".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
