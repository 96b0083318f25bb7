//! The sender's memory of what it sent how often: an append-only log of
//! JSON lines, replayed at start and compacted to one line per batch.
//!
//! ```text
//!  send-state.log:  {"ev":"start","seq":7,"attempt":3,…}   a pass attempt begins (its ESIs are used)
//!                   {"ev":"done","seq":7,"attempt":3,"resend":false,…}   that pass went out
//!                   {"ev":"expired","seq":7}   file deleted after the retention window
//!                   {"ev":"batch",…}   compacted record (written at start)
//!  replay ─▶ BTreeMap<seq, Sent> ─▶ which batch needs which pass; next attempt number
//! ```
//! Lines are flushed, not fsynced: losing the last lines to a crash only
//! repeats a pass, with fresh symbols since attempts only grow.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Longest state line read.
const MAX_LINE: usize = 4096;

/// What the sender knows of one batch.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    pub seq: u64,
    pub sm3: String,
    pub size: u64,
    /// Highest pass attempt started (ESIs of attempts ≤ this are used).
    pub attempts: u32,
    /// Passes of the normal schedule completed.
    pub passes: u32,
    /// Passes sent by resends.
    pub resent: u32,
    pub first_ms: u64,
    pub last_ms: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "lowercase", deny_unknown_fields)]
enum Line {
    Start { seq: u64, attempt: u32, sm3: String, size: u64, t: u64 },
    Done { seq: u64, attempt: u32, resend: bool, t: u64 },
    Expired { seq: u64 },
    Batch(Sent),
}

/// The state log, open for appending.
#[derive(Debug)]
pub struct SendState {
    path: PathBuf,
    file: File,
    /// Batches by sequence number.
    pub batches: BTreeMap<u64, Sent>,
}

impl SendState {
    /// Replays and compacts `dir/send-state.log`.
    pub fn open(dir: &Path) -> Result<SendState> {
        crate::fsutil::ensure_dir(dir)?;
        let path = dir.join("send-state.log");
        let mut batches = BTreeMap::new();
        if path.exists() {
            let f = BufReader::new(File::open(&path)?);
            for (n, line) in f.split(b'\n').enumerate() {
                let line = line?;
                if line.is_empty() {
                    continue;
                }
                if line.len() > MAX_LINE {
                    return Err(Error::State(format!("{} line {}: too long", path.display(), n + 1)));
                }
                match serde_json::from_slice::<Line>(&line) {
                    Ok(l) => apply(&mut batches, l),
                    // a torn last line after a crash: ignore it (it is re-done)
                    Err(e) => tracing::warn!(line = n + 1, error = %e, "send state: unreadable line skipped"),
                }
            }
        }
        let mut text = Vec::new();
        for b in batches.values() {
            serde_json::to_writer(&mut text, &Line::Batch(b.clone())).map_err(|e| Error::State(e.to_string()))?;
            text.push(b'\n');
        }
        crate::fsutil::write_atomic(dir, "send-state.log", &text)?;
        let file = OpenOptions::new().append(true).open(&path)?;
        Ok(SendState { path, file, batches })
    }

    fn write(&mut self, l: &Line) -> Result<()> {
        let mut line = serde_json::to_vec(l).map_err(|e| Error::State(e.to_string()))?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(|e| Error::State(format!("{}: {e}", self.path.display())))?;
        Ok(())
    }

    /// Records that pass attempt `attempt` of `seq` begins.
    pub fn start(&mut self, seq: u64, attempt: u32, sm3: &str, size: u64) -> Result<()> {
        let l = Line::Start { seq, attempt, sm3: sm3.to_owned(), size, t: crate::now_ms() };
        self.write(&l)?;
        apply(&mut self.batches, l);
        Ok(())
    }

    /// Records that the pass went out.
    pub fn done(&mut self, seq: u64, attempt: u32, resend: bool) -> Result<()> {
        let l = Line::Done { seq, attempt, resend, t: crate::now_ms() };
        self.write(&l)?;
        apply(&mut self.batches, l);
        Ok(())
    }

    /// Forgets a batch whose file was removed.
    pub fn expire(&mut self, seq: u64) -> Result<()> {
        self.write(&Line::Expired { seq })?;
        self.batches.remove(&seq);
        Ok(())
    }

    /// Fsyncs the log (called once a second and at stop).
    pub fn sync(&mut self) -> Result<()> {
        self.file.sync_data()?;
        Ok(())
    }
}

fn apply(batches: &mut BTreeMap<u64, Sent>, l: Line) {
    match l {
        Line::Start { seq, attempt, sm3, size, t } => {
            let b = batches.entry(seq).or_insert_with(|| Sent { seq, first_ms: t, ..Sent::default() });
            if b.sm3 != sm3 && !b.sm3.is_empty() {
                // the file under this number changed: its history does not apply
                *b = Sent { seq, first_ms: t, attempts: b.attempts, ..Sent::default() };
            }
            b.sm3 = sm3;
            b.size = size;
            b.attempts = b.attempts.max(attempt);
        }
        Line::Done { seq, attempt, resend, t } => {
            if let Some(b) = batches.get_mut(&seq) {
                b.attempts = b.attempts.max(attempt);
                if resend {
                    b.resent += 1;
                } else {
                    b.passes += 1;
                }
                b.last_ms = t;
            }
        }
        Line::Expired { seq } => {
            batches.remove(&seq);
        }
        Line::Batch(b) => {
            batches.insert(b.seq, b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_and_compaction() {
        let d = tempfile::tempdir().unwrap();
        {
            let mut s = SendState::open(d.path()).unwrap();
            s.start(1, 1, "aa", 10).unwrap();
            s.done(1, 1, false).unwrap();
            s.start(1, 2, "aa", 10).unwrap();
            s.start(2, 1, "bb", 20).unwrap();
            s.start(3, 1, "cc", 30).unwrap();
            s.done(3, 1, false).unwrap();
            s.expire(3).unwrap();
        }
        // a torn line
        let p = d.path().join("send-state.log");
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"ev\":\"done\",\"se").unwrap();
        drop(f);
        let s = SendState::open(d.path()).unwrap();
        let b1 = &s.batches[&1];
        assert_eq!((b1.attempts, b1.passes), (2, 1), "pass 2 started, not done: resume at attempt 3");
        assert_eq!(s.batches[&2].passes, 0);
        assert!(!s.batches.contains_key(&3));
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.lines().count(), 2);
    }
}
