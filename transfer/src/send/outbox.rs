//! Reading the DMZ's outbox: which batch files are there, and loading one
//! after the checks the sender makes before anything leaves (PROTOCOL.md §5).
//!
//! ```text
//!  outbox/ ─list─▶ <node>-<seq:020>.fbatch only (dot temporaries ignored)
//!  load: size ≤ max ─▶ read ─▶ peek_header (limits) ─▶ node, seq = name ─▶ exact length
//!        ─▶ [SM2 signature, only with check_signatures] ─▶ SM3 (or the digest known for this
//!        very file: same size, mtime, inode) ─▶ Loaded { bytes, sm3, counts }
//! ```
//! The receiver verifies every signature; the sender's own check is optional
//! (docs/DECISIONS.md, "The sender does not re-verify SM2 signatures").

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flumon_shared::batch::{BatchHeader, BatchLimits, peek_header};
use flumon_shared::crypto::{SM2_SIGNATURE_LEN, Sm2PublicKey, Sm2Signature, sm3};

use crate::error::Result;
use crate::fsutil::{parse_batch_name, read_bounded};

/// A batch file read and checked.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub seq: u64,
    pub bytes: Arc<Vec<u8>>,
    pub sm3: [u8; 32],
    pub header: BatchHeader,
}

impl Loaded {
    /// SM3 in hex.
    pub fn sm3_hex(&self) -> String {
        hex::encode(self.sm3)
    }

    /// The header's counts as JSON (for the journal).
    pub fn counts_json(&self) -> serde_json::Value {
        let c = &self.header.counts;
        serde_json::json!({
            "records": c.records, "registry": c.registry, "receipts": c.receipts,
            "scans": c.scans, "journal_heads": c.journal_heads,
        })
    }
}

/// The batch files in `outbox` by sequence number.
pub fn scan(outbox: &Path, node: &str) -> Result<BTreeMap<u64, PathBuf>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(outbox)? {
        let e = e?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(seq) = parse_batch_name(name, node)
            && e.file_type()?.is_file()
        {
            out.insert(seq, e.path());
        }
    }
    Ok(out)
}

/// Why a file is not sent.
pub type Refusal = String;

/// What identifies one version of a file on disk: size, mtime (ns), inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStamp(u64, i128, u64);

impl FileStamp {
    /// The stamp of the file at `path` now.
    pub fn of(path: &Path) -> std::io::Result<FileStamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path)?;
        Ok(FileStamp(m.len(), i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()), m.ino()))
    }
}

/// How [`load`] checks a file.
#[derive(Clone, Copy, Debug)]
pub struct LoadOpts<'a> {
    pub node: &'a str,
    pub max_batch: u32,
    /// Verify the SM2 signature with this key (`check_signatures`).
    pub dmz: Option<&'a Sm2PublicKey>,
    /// The digest computed earlier for this file, and the stamp it had then:
    /// reused (no second SM3) if the file still has that stamp.
    pub known: Option<(FileStamp, [u8; 32])>,
}

/// Loads batch `seq` from `path` and checks it; `Ok(Err(reason))` refuses
/// it. Also returns the file's stamp as read.
pub fn load(path: &Path, seq: u64, o: &LoadOpts<'_>) -> Result<(std::result::Result<Loaded, Refusal>, FileStamp)> {
    let before = FileStamp::of(path)?;
    let bytes = match read_bounded(path, u64::from(o.max_batch)) {
        Ok(b) => b,
        Err(crate::Error::Usage(m)) => return Ok((Err(m), before)),
        Err(e) => return Err(e),
    };
    let after = FileStamp::of(path)?;
    // a digest is reused only for the very file it was computed over, unchanged while read
    let known = o.known.filter(|(stamp, _)| *stamp == before && before == after).map(|(_, d)| d);
    Ok((check(bytes, seq, o.node, o.dmz, known), after))
}

/// The checks of [`load`] on bytes in memory; `known` is the file's SM3 if
/// already computed.
pub fn check(
    bytes: Vec<u8>,
    seq: u64,
    node: &str,
    dmz: Option<&Sm2PublicKey>,
    known: Option<[u8; 32]>,
) -> std::result::Result<Loaded, Refusal> {
    let header = peek_header(&bytes, &BatchLimits::default()).map_err(|e| format!("header: {e}"))?;
    if header.node_id != node || header.sequence != seq {
        return Err(format!(
            "header names {}-{} but the file is batch {seq} of {node}",
            header.node_id, header.sequence
        ));
    }
    if bytes.len() as u64 != header.total_len() {
        return Err(format!("file is {} bytes, its header announces {}", bytes.len(), header.total_len()));
    }
    let (signed, sig) = bytes.split_last_chunk::<SM2_SIGNATURE_LEN>().ok_or_else(|| "too short".to_string())?;
    if let Some(dmz) = dmz {
        let sig = Sm2Signature::from_bytes(sig).map_err(|_| "bad signature".to_string())?;
        dmz.verify(signed, &sig).map_err(|_| "SM2 signature does not verify with the DMZ public key".to_string())?;
    }
    let digest = known.unwrap_or_else(|| sm3(&bytes));
    Ok(Loaded { seq, bytes: Arc::new(bytes), sm3: digest, header })
}
