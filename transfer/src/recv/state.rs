//! The receiver's memory of what it received (for duplicates, replays and
//! gaps): an append-only, fsynced log of JSON lines, replayed at start.
//!
//! ```text
//!  recv-state.log:  {"ev":"received","seq":7,"sm3":"…","t":…}
//!                   {"ev":"rejected","seq":8,"sm3":"…","t":…}
//!  replay ─▶ received: seq ─▶ sm3      rejected: {sm3}
//! ```

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "lowercase", deny_unknown_fields)]
enum Line {
    Received { seq: u64, sm3: String, t: u64 },
    Rejected { seq: u64, sm3: String, t: u64 },
}

/// What the receiver has taken in.
#[derive(Debug)]
pub struct RecvState {
    file: File,
    /// Received batches: seq ─▶ SM3 hex.
    pub received: BTreeMap<u64, String>,
    /// SM3 of rejected batch files (a repeat is counted, not re-quarantined).
    pub rejected: HashSet<String>,
}

impl RecvState {
    /// Replays `dir/recv-state.log`.
    pub fn open(dir: &Path) -> Result<RecvState> {
        crate::fsutil::ensure_dir(dir)?;
        let path = dir.join("recv-state.log");
        let mut received = BTreeMap::new();
        let mut rejected = HashSet::new();
        if path.exists() {
            for (n, line) in BufReader::new(File::open(&path)?).split(b'\n').enumerate() {
                let line = line?;
                if line.is_empty() {
                    continue;
                }
                if line.len() > 4096 {
                    return Err(Error::State(format!("{} line {}: too long", path.display(), n + 1)));
                }
                match serde_json::from_slice::<Line>(&line) {
                    Ok(Line::Received { seq, sm3, .. }) => {
                        received.insert(seq, sm3);
                    }
                    Ok(Line::Rejected { sm3, .. }) => {
                        rejected.insert(sm3);
                    }
                    Err(e) => tracing::warn!(line = n + 1, error = %e, "recv state: unreadable line skipped"),
                }
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(RecvState { file, received, rejected })
    }

    fn write(&mut self, l: &Line) -> Result<()> {
        let mut line = serde_json::to_vec(l).map_err(|e| Error::State(e.to_string()))?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.sync_data()?;
        Ok(())
    }

    /// Records a batch committed to the spool.
    pub fn received(&mut self, seq: u64, sm3: &str) -> Result<()> {
        self.write(&Line::Received { seq, sm3: sm3.to_owned(), t: crate::now_ms() })?;
        self.received.insert(seq, sm3.to_owned());
        Ok(())
    }

    /// Records a rejected batch file.
    pub fn rejected(&mut self, seq: u64, sm3: &str) -> Result<()> {
        self.write(&Line::Rejected { seq, sm3: sm3.to_owned(), t: crate::now_ms() })?;
        self.rejected.insert(sm3.to_owned());
        Ok(())
    }
}
