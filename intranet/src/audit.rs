//! The intranet's audit journal (LEVEL3 安全审计): logins, failed logins,
//! account changes, security-officer reads, exports, appended to a shared
//! SM3-chained journal file; the auditor reads the administrators' part.
//!
//! ```text
//!  handler ─▶ Audit::record(kind, actor, role, detail) ─▶ Journal::append (fsync)
//!  auditor ─▶ entries(filter: actor role ∈ {sysadmin, secadmin})   secadmin ─▶ entries(kind login.* / access.*)
//!  checkpoint_task (at start, then hourly) ─▶ Journal::checkpoint(SM2 journal key) ─▶ signed head
//! ```
//!
//! The signed checkpoints (LEVEL3: "the head signed every hour") let `verify`
//! catch a journal truncated or rewritten by someone without the key.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flumon_shared::crypto::{Sm2PrivateKey, Sm2PublicKey};
use flumon_shared::journal::{self, Journal, JournalEntry};
use serde_json::json;

use crate::{Error, Result};

/// The journal, shared by the handlers.
#[derive(Clone, Debug)]
pub struct Audit {
    journal: Arc<Mutex<Journal>>,
    path: PathBuf,
    key: Sm2PublicKey,
}

impl Audit {
    /// Opens (or creates) the journal at `path`, verified with `key`.
    pub fn open(path: &Path, key: &Sm2PublicKey) -> Result<Audit> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let j = Journal::open_or_create(path, key)?;
        Ok(Audit { journal: Arc::new(Mutex::new(j)), path: path.to_path_buf(), key: key.clone() })
    }

    /// Appends one event.
    pub fn record(&self, kind: &str, actor: &str, role: &str, outcome: &str, detail: serde_json::Value) -> Result<()> {
        let mut j = self.journal.lock().map_err(|_| Error::Internal("journal lock poisoned".into()))?;
        j.append(kind, &json!({ "actor": actor, "role": role, "outcome": outcome, "detail": detail }))?;
        Ok(())
    }

    /// The entries (oldest first) that `keep` accepts, at most the last `limit`.
    pub fn entries(&self, keep: impl Fn(&JournalEntry) -> bool, limit: usize) -> Result<Vec<JournalEntry>> {
        let _guard = self.journal.lock().map_err(|_| Error::Internal("journal lock poisoned".into()))?;
        let mut out = std::collections::VecDeque::new();
        journal::visit(&self.path, &self.key, |e| {
            if keep(e) {
                out.push_back(e.clone());
                if out.len() > limit {
                    out.pop_front();
                }
            }
        })?;
        Ok(out.into())
    }

    /// Appends an SM2-signed checkpoint of the head (blocking: SM2 and fsync).
    pub fn checkpoint(&self, key: &Sm2PrivateKey) -> Result<journal::JournalHead> {
        let mut j = self.journal.lock().map_err(|_| Error::Internal("journal lock poisoned".into()))?;
        Ok(j.checkpoint(key)?)
    }

    /// The journal's file and key (for verification).
    pub fn verify(&self) -> Result<journal::VerifyReport> {
        let _guard = self.journal.lock().map_err(|_| Error::Internal("journal lock poisoned".into()))?;
        Ok(journal::verify(&self.path, &self.key)?)
    }
}

/// The role recorded in an entry's detail.
pub fn role_of(e: &JournalEntry) -> &str {
    e.detail.get("role").and_then(|r| r.as_str()).unwrap_or("")
}

/// Signs a checkpoint now, then every `every`, and a last one when `shutdown` turns true (so the
/// entries written since the previous checkpoint are covered by a signature too).
pub async fn checkpoint_task(
    audit: Audit,
    key: Arc<Sm2PrivateKey>,
    every: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        let last = tokio::select! {
            _ = tick.tick() => false,
            _ = shutdown.changed() => true,
        };
        let (a, k) = (audit.clone(), key.clone());
        match tokio::task::spawn_blocking(move || a.checkpoint(&k)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "审计日志签名检查点失败 (journal checkpoint failed)"),
            Err(e) => tracing::error!(error = %e, "journal checkpoint task failed"),
        }
        if last {
            return;
        }
    }
}
