//! The raw archive (ARCHITECTURE invariant 5): every upload and scan as
//! received, encrypted with a fresh SM4 key that is wrapped with the offline
//! vault's SM2 public key, so the DMZ cannot read what it archived.
//!
//! ```text
//!  bytes ─▶ EncryptWriter(fresh SM4 key, aad = item id ‖ hospital) ─▶ 32 KiB chunks ─▶ raw_data
//!  fresh key ─▶ vault SM2 public key (C1C3C2) ─▶ wrapped key ─┐
//!  RawMeta {hospital, kind, type, receipt, time, SM3/size of plain and cipher} ─▶ raw_meta
//!  raw_meta  item id ─▶ RawMeta (JSON; `complete` false while chunks are written)
//!  raw_data  item id ␀ chunk u32 ─▶ ciphertext chunk (kept small: no sled blob files)
//! ```
//! The data key lives only in memory, zeroized on drop. An item whose meta
//! still says incomplete after a crash is removed at start (it was never
//! acknowledged). Export and purge: `export.rs`.

use std::io::Write;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use flumon_shared::crypto::{EncryptWriter, Sm3Hasher, SymKey, sm3};

use crate::error::{Error, Result, codec};
use crate::hospitals::now_cst;
use crate::state::AppState;
use crate::store::{Store, trees};

/// Plaintext bytes per sled value of ciphertext.
const CHUNK: usize = 32 * 1024;

/// What the archive knows about an item (no plaintext, no key in the clear).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawMeta {
    pub item_id: String,
    /// Hospital code (or applicant reference for registration scans).
    pub hospital: String,
    /// `upload`, `scan`, or what `archive_blob` was given.
    pub kind: String,
    /// Record type of an upload.
    pub ty: Option<String>,
    pub receipt_id: Option<String>,
    pub time: NaiveDateTime,
    /// Hex SM3 and size of the plaintext.
    pub plain_sm3: String,
    pub plain_size: u64,
    /// Hex SM3 and size of the ciphertext (segmented SM4-GCM file).
    pub cipher_sm3: String,
    pub cipher_size: u64,
    /// The data key wrapped with the vault's SM2 public key (C1C3C2), hex.
    pub wrapped_key: String,
    pub chunks: u32,
    /// False while the chunks are being written.
    pub complete: bool,
    pub exported_at: Option<NaiveDateTime>,
}

/// The associated data of an item's encryption: item id ‖ hospital code.
pub fn aad(item_id: &str, hospital: &str) -> Vec<u8> {
    let mut a = item_id.as_bytes().to_vec();
    a.extend_from_slice(hospital.as_bytes());
    a
}

fn chunk_key(item_id: &str, n: u32) -> Vec<u8> {
    let mut k = item_id.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&n.to_be_bytes());
    k
}

fn chunk_prefix(item_id: &str) -> Vec<u8> {
    let mut k = item_id.as_bytes().to_vec();
    k.push(0);
    k
}

/// Writes ciphertext into sled in chunks, hashing it on the way.
struct ChunkSink {
    tree: sled::Tree,
    item_id: String,
    buf: Vec<u8>,
    next: u32,
    hasher: Sm3Hasher,
    size: u64,
}

impl ChunkSink {
    fn put(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.tree.insert(chunk_key(&self.item_id, self.next), self.buf.as_slice()).map_err(std::io::Error::other)?;
        self.next = self.next.checked_add(1).ok_or_else(|| std::io::Error::other("too many chunks"))?;
        self.buf.clear();
        Ok(())
    }
}

impl Write for ChunkSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = CHUNK.saturating_sub(self.buf.len());
        let n = room.min(data.len());
        let part = data.get(..n).unwrap_or_default();
        self.buf.extend_from_slice(part);
        self.hasher.update(part);
        self.size = self.size.saturating_add(n as u64);
        if self.buf.len() >= CHUNK {
            self.put()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.put()
    }
}

/// Encrypts and stores `bytes` as a new item (blocking: crypto, SM2). Not
/// yet durable: the caller's `durable()` covers it.
pub fn store_blocking(
    state: &AppState,
    hospital: &str,
    kind: &str,
    ty: Option<&str>,
    receipt_id: Option<&str>,
    bytes: &[u8],
) -> Result<RawMeta> {
    let store = &state.store;
    let id = store.next_id()?;
    let item_id = format!("{}-r{id:016x}", state.config.node_id);
    let key = SymKey::generate()?;
    let wrapped = state.keys.vault.encrypt(key.as_bytes())?;
    let meta_tree = store.tree(trees::RAW_META)?;
    let mut meta = RawMeta {
        item_id: item_id.clone(),
        hospital: hospital.to_owned(),
        kind: kind.to_owned(),
        ty: ty.map(str::to_owned),
        receipt_id: receipt_id.map(str::to_owned),
        time: now_cst(),
        plain_sm3: hex::encode(sm3(bytes)),
        plain_size: bytes.len() as u64,
        cipher_sm3: String::new(),
        cipher_size: 0,
        wrapped_key: hex::encode(&wrapped),
        chunks: 0,
        complete: false,
        exported_at: None,
    };
    meta_tree.insert(item_id.as_bytes(), serde_json::to_vec(&meta).map_err(codec)?)?;
    let sink = ChunkSink {
        tree: store.tree(trees::RAW_DATA)?,
        item_id: item_id.clone(),
        buf: Vec::with_capacity(CHUNK),
        next: 0,
        hasher: Sm3Hasher::new(),
        size: 0,
    };
    let mut w = EncryptWriter::new(&key, &aad(&item_id, hospital), sink)?;
    w.write_all(bytes)?;
    let sink = w.finish()?;
    drop(key);
    meta.chunks = sink.next;
    meta.cipher_size = sink.size;
    meta.cipher_sm3 = hex::encode(sink.hasher.finalize());
    meta.complete = true;
    meta_tree.insert(item_id.as_bytes(), serde_json::to_vec(&meta).map_err(codec)?)?;
    Ok(meta)
}

/// Archives `bytes` (e.g. a registration scan) encrypted like raw data; returns the item id once durable.
pub async fn archive_blob(state: &AppState, owner: &str, kind: &str, bytes: &[u8]) -> Result<String> {
    let st = state.clone();
    let (owner_s, kind_s, data) = (owner.to_owned(), kind.to_owned(), bytes.to_vec());
    let meta = tokio::task::spawn_blocking(move || store_blocking(&st, &owner_s, &kind_s, None, None, &data))
        .await
        .map_err(|e| Error::Internal(format!("archive task: {e}")))??;
    state.store.durable().await?;
    Ok(meta.item_id)
}

/// Reads an item's metadata.
pub fn meta(store: &Store, item_id: &str) -> Result<Option<RawMeta>> {
    match store.tree(trees::RAW_META)?.get(item_id.as_bytes())? {
        Some(v) => Ok(Some(serde_json::from_slice(&v).map_err(codec)?)),
        None => Ok(None),
    }
}

/// Every item's metadata.
pub fn all_meta(store: &Store) -> Result<Vec<RawMeta>> {
    store.tree(trees::RAW_META)?.iter().values().map(|v| serde_json::from_slice(&v?).map_err(codec)).collect()
}

/// The ciphertext of an item, chunk by chunk.
pub fn read_cipher(store: &Store, item_id: &str, mut out: impl Write) -> Result<u64> {
    let mut n = 0u64;
    for kv in store.tree(trees::RAW_DATA)?.scan_prefix(chunk_prefix(item_id)) {
        let (_, v) = kv?;
        out.write_all(&v)?;
        n = n.saturating_add(v.len() as u64);
    }
    Ok(n)
}

/// Deletes an item (chunks first, meta last).
pub fn delete_item(store: &Store, item_id: &str) -> Result<()> {
    let data = store.tree(trees::RAW_DATA)?;
    for k in data.scan_prefix(chunk_prefix(item_id)).keys() {
        data.remove(k?)?;
    }
    store.tree(trees::RAW_META)?.remove(item_id.as_bytes())?;
    Ok(())
}

/// Removes items left incomplete by a crash (never acknowledged). Returns how many.
pub fn remove_incomplete(store: &Store) -> Result<usize> {
    let mut n = 0;
    for m in all_meta(store)? {
        if !m.complete {
            delete_item(store, &m.item_id)?;
            n += 1;
        }
    }
    Ok(n)
}
