//! The intranet's side of the spool contract (PROTOCOL.md §7): open a
//! spooled batch again (every check), and leave out the records the
//! receiver quarantined, as its `<name>.skip.json` lists them.
//!
//! ```text
//!  spool/<name>.fbatch ─read ≤ limit─▶ open_batch (link key, DMZ key) ─▶ entries
//!  spool/<name>.fbatch.skip.json? ─▶ SM3 must match the batch ─▶ drop those indexes ─▶ (index, Entry)…
//! ```

use std::path::Path;

use flumon_shared::batch::{BatchHeader, BatchLimits, open_batch};
use flumon_shared::crypto::{Sm2PublicKey, SymKey, sm3};
use flumon_shared::entries::Entry;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::fsutil::read_bounded;

#[derive(Deserialize)]
struct Skip {
    batch: String,
    sm3: String,
    skip: Vec<usize>,
    #[allow(dead_code)]
    reasons: serde_json::Value,
}

/// A spooled batch with the quarantined records left out.
#[derive(Debug)]
pub struct Spooled {
    pub header: BatchHeader,
    /// (index in the batch, entry) of every entry that may be ingested.
    pub entries: Vec<(usize, Entry)>,
    /// Indexes left out.
    pub skipped: Vec<usize>,
}

/// Opens `path` (a `.fbatch` in the spool) and applies its skip list.
pub fn open_spooled(path: &Path, link_key: &SymKey, dmz: &Sm2PublicKey, limits: &BatchLimits) -> Result<Spooled> {
    let max = limits.max_payload.saturating_mul(2).saturating_add(1 << 20);
    let bytes = read_bounded(path, max)?;
    let (header, entries) = open_batch::<Entry>(&bytes, link_key, dmz, limits)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let skip_path = path.with_file_name(format!("{name}.skip.json"));
    let mut skipped = Vec::new();
    if skip_path.exists() {
        let s: Skip = serde_json::from_slice(&read_bounded(&skip_path, 16 << 20)?)
            .map_err(|e| Error::State(format!("{}: {e}", skip_path.display())))?;
        if s.batch != name || s.sm3 != hex::encode(sm3(&bytes)) {
            return Err(Error::State(format!("{} does not belong to this batch", skip_path.display())));
        }
        skipped = s.skip;
        skipped.sort_unstable();
        skipped.dedup();
    }
    let entries = entries.into_iter().enumerate().filter(|(i, _)| skipped.binary_search(i).is_err()).collect();
    Ok(Spooled { header, entries, skipped })
}
