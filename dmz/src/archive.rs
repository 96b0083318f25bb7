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
//!  raw/ITEM.fsg                   ─▶ the whole ciphertext, for large uploads streamed in
//!                                    (`RawWriter`, fsynced before the meta says complete)
//! ```
//! Uploads arrive through [`RawWriter`] as the body is read; [`plain_reader`]
//! decrypts an item back (while its data key is still in memory) for parsing.
//! The data key lives only in memory, zeroized on drop. An item whose meta
//! still says incomplete after a crash is removed at start (it was never
//! acknowledged). Export and purge: `export.rs`.

use std::fs::File;
use std::io::{Read, Write};
use std::path::PathBuf;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use flumon_shared::crypto::{DecryptReader, EncryptWriter, SeekDecryptReader, SegmentLimits, Sm3Hasher, SymKey};

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
    /// The ciphertext is the file `raw/ITEM.fsg` (large streamed uploads), not `raw_data` values.
    #[serde(default)]
    pub in_file: bool,
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

/// Where ciphertext goes: sled values, or one file (large streamed uploads).
enum Target {
    Sled(sled::Tree),
    File(std::fs::File),
}

/// Writes ciphertext in chunks, hashing it on the way.
struct ChunkSink {
    target: Target,
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
        match &mut self.target {
            Target::Sled(tree) => {
                tree.insert(chunk_key(&self.item_id, self.next), self.buf.as_slice()).map_err(std::io::Error::other)?;
            }
            Target::File(f) => f.write_all(&self.buf)?,
        }
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

/// The folder of raw items kept as files: `data_dir/raw/` beside `data_dir/sled/`.
pub fn raw_dir(store: &Store) -> PathBuf {
    store.dir().parent().map_or_else(|| store.dir().join("raw"), |p| p.join("raw"))
}

fn item_path(store: &Store, item_id: &str) -> PathBuf {
    raw_dir(store).join(format!("{item_id}.fsg"))
}

/// A raw item being written as its bytes arrive (an upload streamed from
/// the network): meta first (incomplete), ciphertext as it comes, meta
/// complete at [`RawWriter::finish`]. [`RawWriter::abort`] removes it all.
pub struct RawWriter {
    meta: RawMeta,
    meta_tree: sled::Tree,
    w: EncryptWriter<ChunkSink>,
    plain: Sm3Hasher,
    key: SymKey,
    in_file: bool,
}

impl RawWriter {
    /// Starts a new item; `to_file` keeps its ciphertext in `raw/ITEM.fsg`
    /// (fsynced at `finish`) instead of sled values.
    pub fn begin(
        state: &AppState,
        hospital: &str,
        kind: &str,
        ty: Option<&str>,
        receipt_id: Option<&str>,
        to_file: bool,
    ) -> Result<RawWriter> {
        let store = &state.store;
        let id = store.next_id()?;
        let item_id = format!("{}-r{id:016x}", state.config.node_id);
        let key = SymKey::generate()?;
        let wrapped = state.keys.vault.encrypt(key.as_bytes())?;
        let meta_tree = store.tree(trees::RAW_META)?;
        let meta = RawMeta {
            item_id: item_id.clone(),
            hospital: hospital.to_owned(),
            kind: kind.to_owned(),
            ty: ty.map(str::to_owned),
            receipt_id: receipt_id.map(str::to_owned),
            time: now_cst(),
            plain_sm3: String::new(),
            plain_size: 0,
            cipher_sm3: String::new(),
            cipher_size: 0,
            wrapped_key: hex::encode(&wrapped),
            chunks: 0,
            complete: false,
            exported_at: None,
            in_file: to_file,
        };
        meta_tree.insert(item_id.as_bytes(), serde_json::to_vec(&meta).map_err(codec)?)?;
        let target = if to_file {
            std::fs::create_dir_all(raw_dir(store))?;
            Target::File(std::fs::File::create(item_path(store, &item_id))?)
        } else {
            Target::Sled(store.tree(trees::RAW_DATA)?)
        };
        let sink = ChunkSink {
            target,
            item_id: item_id.clone(),
            buf: Vec::with_capacity(CHUNK),
            next: 0,
            hasher: Sm3Hasher::new(),
            size: 0,
        };
        let w = EncryptWriter::new(&key, &aad(&item_id, hospital), sink)?;
        Ok(RawWriter { meta, meta_tree, w, plain: Sm3Hasher::new(), key, in_file: to_file })
    }

    /// The next bytes of the item.
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.plain.update(bytes);
        self.meta.plain_size = self.meta.plain_size.saturating_add(bytes.len() as u64);
        self.w.write_all(bytes)?;
        Ok(())
    }

    /// Seals the last segment and marks the item complete (not yet durable:
    /// the caller's `durable()` covers the meta; a file item is fsynced here).
    /// Returns the meta and the data key (to read the item back while it is in memory).
    pub fn finish(self, store: &Store) -> Result<(RawMeta, SymKey)> {
        let RawWriter { mut meta, meta_tree, w, plain, key, in_file } = self;
        let mut sink = w.finish()?;
        sink.put()?;
        if let Target::File(f) = &sink.target {
            f.sync_all()?;
            std::fs::File::open(raw_dir(store))?.sync_all()?;
        }
        meta.chunks = sink.next;
        meta.cipher_size = sink.size;
        meta.cipher_sm3 = hex::encode(sink.hasher.finalize());
        meta.plain_sm3 = hex::encode(plain.finalize());
        meta.complete = true;
        meta.in_file = in_file;
        meta_tree.insert(meta.item_id.as_bytes(), serde_json::to_vec(&meta).map_err(codec)?)?;
        Ok((meta, key))
    }

    /// Removes the unfinished item (upload refused or cut off).
    pub fn abort(self, store: &Store) -> Result<()> {
        let id = self.meta.item_id.clone();
        drop(self);
        delete_item(store, &id)
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
    let mut w = RawWriter::begin(state, hospital, kind, ty, receipt_id, false)?;
    w.write(bytes)?;
    Ok(w.finish(&state.store)?.0)
}

/// Reads an item's ciphertext back as a stream (sled chunks in key order, or its file).
fn cipher_source(store: &Store, meta: &RawMeta) -> Result<Box<dyn Read + Send>> {
    if meta.in_file {
        return Ok(Box::new(std::io::BufReader::with_capacity(
            64 * 1024,
            std::fs::File::open(item_path(store, &meta.item_id))?,
        )));
    }
    let iter = store.tree(trees::RAW_DATA)?.scan_prefix(chunk_prefix(&meta.item_id));
    Ok(Box::new(ChunkReader { iter, cur: sled::IVec::default(), pos: 0 }))
}

struct ChunkReader {
    iter: sled::Iter,
    cur: sled::IVec,
    pos: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.cur.len() {
            match self.iter.next() {
                Some(kv) => {
                    self.cur = kv.map_err(std::io::Error::other)?.1;
                    self.pos = 0;
                }
                None => return Ok(0),
            }
        }
        let avail = self.cur.get(self.pos..).unwrap_or_default();
        let n = avail.len().min(buf.len());
        if let (Some(d), Some(s)) = (buf.get_mut(..n), avail.get(..n)) {
            d.copy_from_slice(s);
        }
        self.pos += n;
        Ok(n)
    }
}

/// The plaintext of an item, decrypted as it is read (each segment checked
/// before it is released), with the data key still in memory.
pub fn plain_reader(store: &Store, meta: &RawMeta, key: &SymKey) -> Result<impl Read + Send + use<>> {
    Ok(DecryptReader::new(key, &aad(&meta.item_id, &meta.hospital), cipher_source(store, meta)?)?)
}

/// A decrypting reader that can seek (an XLSX upload's zip is read from its
/// end), over an item kept as a file, as every streamed upload is: one 1 MiB
/// segment in memory at a time, each authenticated before it is read.
pub fn seek_reader(store: &Store, meta: &RawMeta, key: &SymKey) -> Result<SeekDecryptReader<std::io::BufReader<File>>> {
    if !meta.in_file {
        return Err(Error::Internal("seek_reader: the item is not kept as a file".into()));
    }
    let f = std::io::BufReader::with_capacity(64 * 1024, File::open(item_path(store, &meta.item_id))?);
    Ok(SeekDecryptReader::new(key, &aad(&meta.item_id, &meta.hospital), f, SegmentLimits::default())?)
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

/// The ciphertext of an item (sled chunks or its file).
pub fn read_cipher(store: &Store, item_id: &str, mut out: impl Write) -> Result<u64> {
    let Some(m) = meta(store, item_id)? else {
        return Err(Error::NotFound);
    };
    Ok(std::io::copy(&mut cipher_source(store, &m)?, &mut out)?)
}

/// Deletes an item (chunks first, meta last).
pub fn delete_item(store: &Store, item_id: &str) -> Result<()> {
    let data = store.tree(trees::RAW_DATA)?;
    for k in data.scan_prefix(chunk_prefix(item_id)).keys() {
        data.remove(k?)?;
    }
    match std::fs::remove_file(item_path(store, item_id)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
        _ => {}
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
