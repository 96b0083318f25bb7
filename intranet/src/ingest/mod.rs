//! Ingest: the batch files the transfer receiver leaves in the inbound
//! spool, each verified with `open_batch` and applied in one transaction
//! (apply.rs); the file moves to `done/` only after the commit, so a crash
//! at any point leaves either the old state with the file still inbound, or
//! the new state with the batch recorded (then the next pass just moves it).
//!
//! ```text
//!  inbound/NAME.fbatch [+ NAME.quarantine.json {"skip":[i,…]}]
//!     ─▶ open_batch (SM2 signature, SM4-GCM, SM3 digest) ── fails ─▶ rejected/
//!     ─▶ apply_batch (one transaction) ─▶ COMMIT ─▶ rename to done/ (+ sidecar) ─▶ fsync dirs
//! ```

pub mod apply;
mod refresh;
pub mod regional;
pub mod units;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use flumon_shared::batch::{BatchLimits, open_batch};
use flumon_shared::crypto::{Sm2PublicKey, SymKey};
use flumon_shared::entries::Entry;
use serde::Deserialize;

pub use apply::{Outcome, Stats, apply_batch};
pub use refresh::pack_legacy_contribs;

use crate::db::Db;
use crate::{Error, Result};

/// The keys that verify and open batches.
pub struct IngestKeys {
    pub link_key: SymKey,
    pub dmz_pubkey: Sm2PublicKey,
    pub limits: BatchLimits,
}

/// The receiver's quarantine sidecar (`flumon-transfer recv` writes
/// `NAME.fbatch.skip.json` with `batch`, `sm3`, `skip` and `reasons`; see
/// transfer/PROTOCOL.md). Only `skip` matters here; the other keys are
/// accepted and ignored.
#[derive(Debug, Default, Deserialize)]
pub struct Sidecar {
    /// Indexes (0-based, in the batch's entry order) of quarantined entries.
    pub skip: Vec<usize>,
    /// The batch file's name, when the receiver wrote it.
    #[serde(default)]
    pub batch: Option<String>,
}

/// What happened to one spool file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileOutcome {
    Ingested(Stats),
    AlreadyIngested,
    /// Moved to `rejected/`: the reason (never any record content).
    Rejected(String),
}

/// The sidecar paths considered for `NAME.fbatch`: the transfer receiver's
/// `NAME.fbatch.skip.json` first, then `NAME.quarantine.json` and
/// `NAME.fbatch.quarantine.json`.
pub fn sidecar_paths(batch: &Path) -> [PathBuf; 3] {
    let mut skip = batch.as_os_str().to_owned();
    skip.push(".skip.json");
    let mut a = batch.to_path_buf();
    a.set_extension("quarantine.json");
    let mut b = batch.as_os_str().to_owned();
    b.push(".quarantine.json");
    [PathBuf::from(skip), a, PathBuf::from(b)]
}

fn read_sidecar(batch: &Path) -> Result<(BTreeSet<usize>, Option<PathBuf>)> {
    for p in sidecar_paths(batch) {
        if p.exists() {
            let s: Sidecar = serde_json::from_slice(&std::fs::read(&p)?)?;
            return Ok((s.skip.into_iter().collect(), Some(p)));
        }
    }
    Ok((BTreeSet::new(), None))
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

fn move_into(file: &Path, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let name = file.file_name().ok_or_else(|| Error::Internal("spool file without name".into()))?;
    std::fs::rename(file, dir.join(name))?;
    Ok(())
}

fn finish(path: &Path, sidecar: Option<&Path>, sub: &str) -> Result<()> {
    let spool = path.parent().unwrap_or(Path::new("."));
    let dest = spool.join(sub);
    if let Some(s) = sidecar {
        move_into(s, &dest)?;
    }
    move_into(path, &dest)?;
    sync_dir(&dest)?;
    sync_dir(spool)?;
    Ok(())
}

/// Ingests one spool file.
pub async fn ingest_file(db: &Db, keys: &IngestKeys, path: &Path) -> Result<FileOutcome> {
    let bytes = std::fs::read(path)?;
    let (skip, sidecar) = read_sidecar(path)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let opened = open_batch::<Entry>(&bytes, &keys.link_key, &keys.dmz_pubkey, &keys.limits);
    let (header, entries) = match opened {
        Ok(x) => x,
        Err(e) => {
            tracing::warn!(file = %name, error = %e, "批次校验失败，移入 rejected/ (batch rejected)");
            finish(path, sidecar.as_deref(), "rejected")?;
            return Ok(FileOutcome::Rejected(e.to_string()));
        }
    };
    let out = match apply_batch(db, &header, &entries, &skip, &name).await? {
        Outcome::Ingested(st) => FileOutcome::Ingested(st),
        Outcome::AlreadyIngested => FileOutcome::AlreadyIngested,
        Outcome::Conflict => {
            tracing::error!(file = %name, node = %header.node_id, seq = header.sequence,
                "同一序号的批次内容不同，移入 rejected/ (same sequence, different digest)");
            finish(path, sidecar.as_deref(), "rejected")?;
            return Ok(FileOutcome::Rejected("same node and sequence as an ingested batch, other digest".into()));
        }
    };
    finish(path, sidecar.as_deref(), "done")?;
    Ok(out)
}

/// The `*.fbatch` files waiting in `spool`, by name.
pub fn pending(spool: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(spool)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "fbatch"))
        .collect();
    v.sort();
    Ok(v)
}

/// Ingests every waiting file; returns the outcomes by file name.
pub async fn ingest_spool(db: &Db, keys: &IngestKeys, spool: &Path) -> Result<Vec<(String, FileOutcome)>> {
    let mut out = Vec::new();
    for p in pending(spool)? {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let o = ingest_file(db, keys, &p).await?;
        tracing::info!(file = %name, outcome = ?o, "批次已处理 (batch processed)");
        out.push((name, o));
    }
    Ok(out)
}
