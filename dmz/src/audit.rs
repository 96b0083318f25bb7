//! The DMZ's audit journal (LEVEL3 安全审计): the shared SM3 hash-chained
//! journal in `data_dir/audit.jsonl`, appended from async code on the
//! blocking pool, checkpointed (SM2-signed head) every hour; its head
//! crosses the gate in every batch.
//!
//! ```text
//!  handlers ─▶ state.audit(kind, detail) ─▶ spawn_blocking ─▶ Journal::append (fsync)
//!  checkpoint task (hourly) ─▶ Journal::checkpoint(sign key)
//!  batcher ─▶ head() ─▶ Entry::JournalHead
//! ```
//! Details carry receipt ids, counts, hospital codes (organisations, not
//! persons) and fingerprints, never a personal identifier or a secret.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flumon_shared::crypto::Sm2PublicKey;
use flumon_shared::journal::{Journal, JournalHead};

use crate::error::{Error, Result};
use crate::state::AppState;

/// The journal, shared.
#[derive(Clone)]
pub struct Audit {
    journal: Arc<Mutex<Journal>>,
}

impl Audit {
    /// Opens (recovering a torn last line) or creates the journal.
    pub fn open(path: &Path, verify_key: &Sm2PublicKey) -> Result<Audit> {
        let j = Journal::open_or_create(path, verify_key)?;
        Ok(Audit { journal: Arc::new(Mutex::new(j)) })
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Journal>> {
        self.journal.lock().map_err(|_| Error::Internal("journal lock poisoned".into()))
    }

    /// Appends on the calling thread (blocking: fsync).
    pub fn append_blocking(&self, kind: &str, detail: &serde_json::Value) -> Result<JournalHead> {
        Ok(self.lock()?.append(kind, detail)?)
    }

    /// Appends on the blocking pool.
    pub async fn append(&self, kind: &str, detail: serde_json::Value) -> Result<()> {
        let me = self.clone();
        let kind = kind.to_owned();
        tokio::task::spawn_blocking(move || me.append_blocking(&kind, &detail))
            .await
            .map_err(|e| Error::Internal(format!("audit task: {e}")))??;
        Ok(())
    }

    /// The current head.
    pub fn head(&self) -> Result<JournalHead> {
        Ok(self.lock()?.head())
    }

    /// Appends a signed checkpoint (blocking).
    pub fn checkpoint_blocking(&self, key: &flumon_shared::crypto::Sm2PrivateKey) -> Result<JournalHead> {
        Ok(self.lock()?.checkpoint(key)?)
    }
}

/// Signs a checkpoint now and then every hour until `shutdown`.
pub async fn checkpoint_task(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let st = state.clone();
        match tokio::task::spawn_blocking(move || st.audit.checkpoint_blocking(&st.keys.sign)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "journal checkpoint failed"),
            Err(e) => tracing::error!(error = %e, "journal checkpoint task failed"),
        }
    }
}
