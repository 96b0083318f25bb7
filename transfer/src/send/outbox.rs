//! Reading the DMZ's outbox: which batch files are there, and loading one
//! after the checks the sender makes before anything leaves (PROTOCOL.md §5).
//!
//! ```text
//!  outbox/ ─list─▶ <node>-<seq:020>.fbatch only (dot temporaries ignored)
//!  load: size ≤ max ─▶ read ─▶ peek_header (limits) ─▶ node, seq = name ─▶ exact length
//!        ─▶ SM2 signature (DMZ public key) ─▶ Loaded { bytes, sm3, counts }
//! ```

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

/// Loads batch `seq` from `path` and checks it; `Ok(Err(reason))` refuses it.
pub fn load(
    path: &Path,
    seq: u64,
    node: &str,
    max_batch: u32,
    dmz: &Sm2PublicKey,
) -> Result<std::result::Result<Loaded, Refusal>> {
    let bytes = match read_bounded(path, u64::from(max_batch)) {
        Ok(b) => b,
        Err(crate::Error::Usage(m)) => return Ok(Err(m)),
        Err(e) => return Err(e),
    };
    Ok(check(bytes, seq, node, dmz))
}

/// The checks of [`load`] on bytes in memory.
pub fn check(bytes: Vec<u8>, seq: u64, node: &str, dmz: &Sm2PublicKey) -> std::result::Result<Loaded, Refusal> {
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
    let sig = Sm2Signature::from_bytes(sig).map_err(|_| "bad signature".to_string())?;
    dmz.verify(signed, &sig).map_err(|_| "SM2 signature does not verify with the DMZ public key".to_string())?;
    let digest = sm3(&bytes);
    Ok(Loaded { seq, bytes: Arc::new(bytes), sm3: digest, header })
}
