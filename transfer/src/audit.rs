//! The side's audit journal (TRANSFER.md "Audit"; kinds in PROTOCOL.md §8):
//! flumon-shared's hash-chained journal, checkpointed with the side's SM2
//! journal key hourly and when the process stops.
//!
//! ```text
//!  event ─▶ Audit::record(kind, detail) ─▶ Journal::append (fsynced) ─▶ journal file
//!  every hour / at stop ─▶ Journal::checkpoint(SM2)
//! ```

use std::path::Path;
use std::time::{Duration, Instant};

use flumon_shared::crypto::Sm2PrivateKey;
use flumon_shared::journal::{Journal, JournalHead};

use crate::error::{Error, Result};

/// Time between checkpoints.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(3600);

/// An open journal and the key that checkpoints it.
#[derive(Debug)]
pub struct Audit {
    journal: Journal,
    key: Sm2PrivateKey,
    last_checkpoint: Instant,
}

impl Audit {
    /// Opens (verifying the chain) or creates the journal at `path`.
    pub fn open(path: &Path, key: Sm2PrivateKey) -> Result<Audit> {
        if let Some(dir) = path.parent() {
            crate::fsutil::ensure_dir(dir)?;
        }
        let journal = Journal::open_or_create(path, key.public_key())
            .map_err(|e| Error::Journal(format!("{}: {e}", path.display())))?;
        Ok(Audit { journal, key, last_checkpoint: Instant::now() })
    }

    /// Appends one entry (fsynced when this returns).
    pub fn record(&mut self, kind: &str, detail: serde_json::Value) -> Result<JournalHead> {
        self.journal.append(kind, &detail).map_err(|e| Error::Journal(format!("append {kind}: {e}")))
    }

    /// Checkpoints if an hour has passed.
    pub fn tick(&mut self) -> Result<()> {
        if self.last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Signs the head now.
    pub fn checkpoint(&mut self) -> Result<()> {
        self.journal.checkpoint(&self.key).map_err(|e| Error::Journal(format!("checkpoint: {e}")))?;
        self.last_checkpoint = Instant::now();
        Ok(())
    }

    /// The current head.
    pub fn head(&self) -> JournalHead {
        self.journal.head()
    }
}
