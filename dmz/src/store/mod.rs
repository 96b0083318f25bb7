//! The DMZ's store: one sled database opened by this process only, its named
//! trees, counters, and the durability barrier every receipt waits for.
//!
//! ```text
//!  data_dir/sled/ ─ trees:  hospitals  hosp_tokens  hosp_certs     (hospitals.rs)
//!                           raw_meta   raw_data                    (archive.rs)
//!                           outbound (queue + dedupe)  batches     (outbound.rs, batcher.rs)
//!                           scope_case scope_lab slots             (scope.rs)
//!                           receipts   counters                    (pipeline.rs)
//!                           web_*                                  (crate::web, its own)
//!                           fig                                    (crate::figures, its own)
//!  write ─▶ … ─▶ durable() ─▶ group commit (commit.rs): flush + fsync blobs + fdatasync db
//!  flush outcomes ─▶ health.rs: a store that keeps failing ─▶ fatal ─▶ run() exits 75 (restart)
//! ```

mod commit;
pub mod filter;
pub mod health;
pub mod scope;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};

/// Tree names used by the DMZ core (the web side uses `web_*`).
pub mod trees {
    pub const HOSPITALS: &str = "hospitals";
    pub const HOSP_TOKENS: &str = "hosp_tokens";
    pub const HOSP_CERTS: &str = "hosp_certs";
    pub const RAW_META: &str = "raw_meta";
    pub const RAW_DATA: &str = "raw_data";
    pub const OUTBOUND: &str = "outbound";
    /// Before the digests moved into `outbound` (outbound::migrate_dedupe).
    pub const DEDUPE: &str = "dedupe";
    pub const BATCHES: &str = "batches";
    pub const SCOPE_CASE: &str = "scope_case";
    pub const SCOPE_LAB: &str = "scope_lab";
    pub const SLOTS: &str = "slots";
    pub const RECEIPTS: &str = "receipts";
    pub const COUNTERS: &str = "counters";
}

/// The sled database and its durability barrier.
pub struct Store {
    pub db: sled::Db,
    dir: PathBuf,
    commit: Arc<commit::GroupCommit>,
    /// Set by [`Store::start_key_filter`] (the server); none: every lookup goes to sled.
    filter: std::sync::OnceLock<Arc<filter::KeyFilter>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("dir", &self.dir).finish()
    }
}

impl Store {
    /// Opens (or creates) the store under `data_dir/sled`. Fails when another
    /// process has it open. `on_commit` observes each group commit's duration.
    pub fn open(data_dir: &Path, on_commit: Box<dyn Fn(Duration) + Send + Sync>) -> Result<Store> {
        let dir = data_dir.join("sled");
        std::fs::create_dir_all(&dir)?;
        let db =
            sled::Config::new().path(&dir).mode(sled::Mode::HighThroughput).cache_capacity(64 << 20).open().map_err(
                |e| match e {
                    sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock || is_lock_error(&io) => {
                        Error::Unavailable(format!("the store {} is open in another process", dir.display()))
                    }
                    other => Error::Sled(other),
                },
            )?;
        let commit = Arc::new(commit::GroupCommit::new(db.clone(), dir.clone(), on_commit));
        Ok(Store { db, dir, commit, filter: std::sync::OnceLock::new() })
    }

    /// Starts the key filter of `mib` MiB (0: none) and its builder thread
    /// (filter.rs). Call before the first upload; once only.
    pub fn start_key_filter(&self, mib: u32) -> Result<()> {
        let Some(f) = filter::KeyFilter::new(mib) else { return Ok(()) };
        let f = Arc::new(f);
        if self.filter.set(Arc::clone(&f)).is_err() {
            return Err(Error::Internal("the key filter was started twice".into()));
        }
        let (outbound, cases, labs) =
            (self.tree(trees::OUTBOUND)?, self.tree(trees::SCOPE_CASE)?, self.tree(trees::SCOPE_LAB)?);
        std::thread::Builder::new().name("key-filter".into()).spawn(move || {
            let t = std::time::Instant::now();
            let trees = [
                (filter::Keys::Dedupe, outbound, crate::outbound::DEDUPE_PREFIX),
                (filter::Keys::ScopeCase, cases, &[][..]),
                (filter::Keys::ScopeLab, labs, &[][..]),
            ];
            match f.build(&trees) {
                Ok(n) => tracing::info!(keys = n, secs = t.elapsed().as_secs_f64(), "key filter built"),
                Err(e) => tracing::warn!(error = %e, "key filter not built; lookups go to sled"),
            }
        })?;
        Ok(())
    }

    /// The key filter, when started.
    pub fn key_filter(&self) -> Option<&Arc<filter::KeyFilter>> {
        self.filter.get()
    }

    /// True when `key` is certainly not in `tree` (filter.rs).
    pub fn absent(&self, tree: filter::Keys, key: &[u8]) -> bool {
        self.filter.get().is_some_and(|f| f.absent(tree, key))
    }

    /// Notes that `key` is about to be written to `tree` (before the write).
    pub fn note_key(&self, tree: filter::Keys, key: &[u8]) {
        if let Some(f) = self.filter.get() {
            f.add(tree, key);
        }
    }

    /// A named tree.
    pub fn tree(&self, name: &str) -> Result<sled::Tree> {
        Ok(self.db.open_tree(name)?)
    }

    /// Returns once everything written before the call is durable (flushed
    /// and fdatasynced), sharing the sync with concurrent callers.
    pub async fn durable(&self) -> Result<()> {
        self.commit.durable().await
    }

    /// The same, synchronously, for blocking contexts (CLI, shutdown).
    pub fn durable_blocking(&self) -> Result<()> {
        self.commit.flush_and_sync()
    }

    /// Whether the store keeps failing and the process must restart (health.rs).
    pub fn health(&self) -> &health::Health {
        &self.commit.health
    }

    /// The task that retries a failing store and checks an idle one (health.rs); ends on `stop`.
    pub fn watchdog(&self, stop: tokio::sync::watch::Receiver<bool>) -> impl Future<Output = ()> + Send + 'static {
        Arc::clone(&self.commit).watchdog(stop)
    }

    /// The sled folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A monotonic id, unique for the life of the store (gaps possible).
    pub fn next_id(&self) -> Result<u64> {
        Ok(self.db.generate_id()?)
    }

    /// Adds `by` to the counter `name` and returns the new value.
    pub fn add_counter(&self, name: &str, by: u64) -> Result<u64> {
        let t = self.tree(trees::COUNTERS)?;
        let v = t.update_and_fetch(name.as_bytes(), |old| {
            let cur = old.and_then(|b| <[u8; 8]>::try_from(b).ok()).map_or(0, u64::from_be_bytes);
            Some(cur.saturating_add(by).to_be_bytes().to_vec())
        })?;
        Ok(v.as_deref().and_then(|b| <[u8; 8]>::try_from(b).ok()).map_or(0, u64::from_be_bytes))
    }

    /// The counter `name` (0 when never set).
    pub fn counter(&self, name: &str) -> Result<u64> {
        let t = self.tree(trees::COUNTERS)?;
        Ok(t.get(name.as_bytes())?.as_deref().and_then(|b| <[u8; 8]>::try_from(b).ok()).map_or(0, u64::from_be_bytes))
    }
}

fn is_lock_error(io: &std::io::Error) -> bool {
    let s = io.to_string();
    s.contains("lock") || s.contains("Resource temporarily unavailable")
}

/// `u64` as 8 big-endian bytes (sled keys sort by bytes).
pub fn be(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

/// 8 big-endian bytes as `u64`.
pub fn from_be(b: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(b).ok().map(u64::from_be_bytes)
}
