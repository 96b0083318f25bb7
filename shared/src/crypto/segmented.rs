//! Segmented SM4-GCM for large blobs (raw originals, scans, archives): the
//! plaintext is cut into segments (1 MiB by default), each sealed on its own,
//! so files of any size stream through a fixed amount of memory and every
//! segment is authenticated before any of its plaintext is released.
//!
//! ```text
//!  header (36 B): "FLUMONSG" ver alg 00 00 │ seg_size │ file_id(16) │ nonce_prefix(4)
//!  file key  K_f = HMAC-SM3(K, "flumon segmented file v1" ‖ file_id)[0..16]
//!  segment i:  SM4-GCM(K_f, nonce = nonce_prefix ‖ u64be(i),
//!                      aad   = header ‖ caller_aad ‖ u64be(i) ‖ last?1:0)  ─▶ ct_i ‖ tag_i
//!  file = header ‖ ct_0‖tag_0 ‖ … ‖ ct_n‖tag_n      (only the last segment may be short)
//! ```
//!
//! What each piece catches: truncation at a segment boundary (the new last
//! segment was sealed with last = 0), reordering (index in nonce and AAD),
//! segments moved between files (per-file key and file id), a blob moved to
//! another item (caller AAD, e.g. item id and hospital code), trailing bytes
//! (they shift the last segment). The per-file key makes nonce reuse across
//! files impossible even when one key seals many files. Layout: docs/FORMATS.md §1.
//!
//! The reader hands out a segment's plaintext only after its tag verified,
//! but a streaming consumer sees early segments before a later one fails:
//! treat any read error as "the whole file is bad".

use std::io::{self, Read, Write};

use aes_gcm::aead::AeadInOut;
use aes_gcm::aead::array::Array;
use zeroize::Zeroizing;

use super::hash::hmac_sm3_parts;
use super::keys::SymKey;
use super::random_array;
use super::sm4gcm::{GCM_TAG_LEN, Sm4Gcm, cipher};
use crate::{Error, Result};

/// Magic at the start of a segmented file.
pub const SEG_MAGIC: [u8; 8] = *b"FLUMONSG";
/// Header length in bytes.
pub const SEG_HEADER_LEN: usize = 36;
/// Plaintext bytes per full segment unless chosen otherwise.
pub const DEFAULT_SEGMENT_SIZE: u32 = 1 << 20;
/// Smallest segment size accepted.
pub const MIN_SEGMENT_SIZE: u32 = 16;
/// Largest segment size accepted by default when reading (16 MiB).
pub const MAX_SEGMENT_SIZE: u32 = 16 << 20;

const VERSION: u8 = 1;
const ALG_SM4_GCM_HMAC_SM3_KDF: u8 = 1;
const KDF_LABEL: &[u8] = b"flumon segmented file v1";
/// Length of the per-segment suffix of the AAD: u64 index ‖ last flag.
const AAD_SUFFIX: usize = 9;

/// Limits a reader enforces before it allocates or releases anything.
#[derive(Clone, Copy, Debug)]
pub struct SegmentLimits {
    /// Largest segment size a header may declare.
    pub max_segment_size: u32,
    /// Largest total plaintext the reader releases.
    pub max_plaintext: u64,
}

impl Default for SegmentLimits {
    fn default() -> Self {
        SegmentLimits { max_segment_size: MAX_SEGMENT_SIZE, max_plaintext: u64::MAX }
    }
}

/// Per-file state shared by writer and reader.
struct FileCrypto {
    cipher: Sm4Gcm,
    nonce_prefix: [u8; 4],
    /// header ‖ caller aad ‖ 9 bytes patched per segment.
    aad: Vec<u8>,
}

impl FileCrypto {
    fn new(key: &SymKey, header: &[u8; SEG_HEADER_LEN], caller_aad: &[u8]) -> Result<Self> {
        let (fixed, nonce_prefix) = header.split_last_chunk::<4>().ok_or_else(|| internal("header"))?;
        let file_id = fixed.last_chunk::<16>().ok_or_else(|| internal("header"))?;
        let derived = Zeroizing::new(hmac_sm3_parts(key.as_bytes(), &[KDF_LABEL, file_id]));
        let file_key = SymKey::from_slice(derived.get(..16).ok_or_else(|| internal("kdf"))?)?;
        let mut aad = Vec::with_capacity(SEG_HEADER_LEN + caller_aad.len() + AAD_SUFFIX);
        aad.extend_from_slice(header);
        aad.extend_from_slice(caller_aad);
        aad.extend_from_slice(&[0u8; AAD_SUFFIX]);
        Ok(FileCrypto { cipher: cipher(&file_key), nonce_prefix: *nonce_prefix, aad })
    }

    /// Nonce and AAD for segment `index`.
    fn segment_params(&mut self, index: u64, last: bool) -> Result<Array<u8, aes_gcm::aead::consts::U12>> {
        let (_, suffix) = self.aad.split_last_chunk_mut::<AAD_SUFFIX>().ok_or_else(|| internal("aad"))?;
        let (idx, flag) = suffix.split_at_mut(8);
        idx.copy_from_slice(&index.to_be_bytes());
        flag.fill(u8::from(last));
        let mut nonce = [0u8; 12];
        let (p, c) = nonce.split_at_mut(4);
        p.copy_from_slice(&self.nonce_prefix);
        c.copy_from_slice(&index.to_be_bytes());
        Ok(Array::from(nonce))
    }

    /// Encrypts segment `index` in place and appends its tag. Not generic, so the SM4-GCM code is
    /// compiled here (and optimised with this crate) rather than in every caller's `W`.
    fn seal_segment(&mut self, index: u64, last: bool, buf: &mut Vec<u8>) -> Result<()> {
        let nonce = self.segment_params(index, last)?;
        let tag = self
            .cipher
            .encrypt_inout_detached(&nonce, &self.aad, buf.as_mut_slice().into())
            .map_err(|_| Error::Crypto("SM4-GCM segment encryption failed".into()))?;
        buf.extend_from_slice(&tag);
        Ok(())
    }

    /// Authenticates and decrypts segment `index` in place; `false` when authentication fails.
    fn open_segment(&mut self, index: u64, last: bool, buf: &mut [u8], tag: &[u8; GCM_TAG_LEN]) -> Result<bool> {
        let nonce = self.segment_params(index, last)?;
        let tag = Array::from(*tag);
        Ok(self.cipher.decrypt_inout_detached(&nonce, &self.aad, buf.into(), &tag).is_ok())
    }
}

fn internal(what: &str) -> Error {
    Error::Crypto(format!("segmented: internal length error ({what})"))
}

fn io_err(e: Error) -> io::Error {
    match e {
        Error::Io(e) => e,
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    }
}

/// Streaming encryptor: writes the header on creation, segments as data
/// arrives, and the final segment on [`EncryptWriter::finish`]. Dropping it
/// without `finish` leaves a truncated file that every reader rejects.
pub struct EncryptWriter<W: Write> {
    inner: W,
    fc: FileCrypto,
    seg_size: usize,
    buf: Zeroizing<Vec<u8>>,
    index: u64,
    poisoned: bool,
}

impl<W: Write> EncryptWriter<W> {
    /// Starts a file with 1 MiB segments.
    pub fn new(key: &SymKey, aad: &[u8], inner: W) -> Result<Self> {
        Self::with_segment_size(key, aad, DEFAULT_SEGMENT_SIZE, inner)
    }

    /// Starts a file with the given segment size (16 B ..= 16 MiB).
    pub fn with_segment_size(key: &SymKey, aad: &[u8], segment_size: u32, mut inner: W) -> Result<Self> {
        if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&segment_size) {
            return Err(Error::Crypto(format!("segment size {segment_size} out of range")));
        }
        let file_id: [u8; 16] = random_array()?;
        let nonce_prefix: [u8; 4] = random_array()?;
        let header = build_header(segment_size, &file_id, &nonce_prefix);
        let fc = FileCrypto::new(key, &header, aad)?;
        inner.write_all(&header)?;
        let seg_size = usize::try_from(segment_size).map_err(|_| internal("segment size"))?;
        Ok(EncryptWriter {
            inner,
            fc,
            seg_size,
            buf: Zeroizing::new(Vec::with_capacity(seg_size + GCM_TAG_LEN)),
            index: 0,
            poisoned: false,
        })
    }

    fn emit(&mut self, last: bool) -> Result<()> {
        self.fc.seal_segment(self.index, last, &mut self.buf)?;
        self.inner.write_all(&self.buf)?;
        self.buf.clear();
        self.index = self.index.checked_add(1).ok_or_else(|| internal("segment counter"))?;
        Ok(())
    }

    /// Seals the last segment, flushes, and returns the inner writer.
    pub fn finish(mut self) -> Result<W> {
        if self.poisoned {
            return Err(Error::Crypto("segmented writer failed earlier; output is incomplete".into()));
        }
        self.emit(true)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for EncryptWriter<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        if self.poisoned {
            return Err(io::Error::other("segmented writer failed earlier"));
        }
        let total = data.len();
        while !data.is_empty() {
            // A full buffer is sealed only once more data shows it is not the last.
            if self.buf.len() == self.seg_size
                && let Err(e) = self.emit(false)
            {
                self.poisoned = true;
                return Err(io_err(e));
            }
            let take = (self.seg_size - self.buf.len()).min(data.len());
            let (now, rest) = data.split_at(take);
            self.buf.extend_from_slice(now);
            data = rest;
        }
        Ok(total)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> std::fmt::Debug for EncryptWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptWriter").field("segment", &self.index).finish_non_exhaustive()
    }
}

fn build_header(segment_size: u32, file_id: &[u8; 16], nonce_prefix: &[u8; 4]) -> [u8; SEG_HEADER_LEN] {
    let mut h = [0u8; SEG_HEADER_LEN];
    let parts: [&[u8]; 6] =
        [&SEG_MAGIC, &[VERSION, ALG_SM4_GCM_HMAC_SM3_KDF], &[0, 0], &segment_size.to_be_bytes(), file_id, nonce_prefix];
    let mut rest: &mut [u8] = &mut h;
    for p in parts {
        let (dst, tail) = rest.split_at_mut(p.len());
        dst.copy_from_slice(p);
        rest = tail;
    }
    h
}

/// Reads and checks a header; the segment size is checked against `limits`
/// before anything is allocated. Returns the file's crypto, id and segment size.
fn read_header<R: Read>(
    key: &SymKey,
    aad: &[u8],
    inner: &mut R,
    limits: SegmentLimits,
) -> Result<(FileCrypto, [u8; 16], u32)> {
    let mut header = [0u8; SEG_HEADER_LEN];
    inner.read_exact(&mut header).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => Error::Format("segmented file shorter than its header".into()),
        _ => Error::Io(e),
    })?;
    let (magic, rest) = header.split_first_chunk::<8>().ok_or_else(|| internal("header"))?;
    let (fixed, rest) = rest.split_first_chunk::<4>().ok_or_else(|| internal("header"))?;
    let (size, rest) = rest.split_first_chunk::<4>().ok_or_else(|| internal("header"))?;
    let (file_id, _) = rest.split_first_chunk::<16>().ok_or_else(|| internal("header"))?;
    if *magic != SEG_MAGIC {
        return Err(Error::Format("not a flumon segmented file (bad magic)".into()));
    }
    if *fixed != [VERSION, ALG_SM4_GCM_HMAC_SM3_KDF, 0, 0] {
        return Err(Error::Format(format!("unsupported segmented file version/algorithm {fixed:02x?}")));
    }
    let seg_size = u32::from_be_bytes(*size);
    if seg_size < MIN_SEGMENT_SIZE || seg_size > limits.max_segment_size.min(MAX_SEGMENT_SIZE) {
        return Err(Error::Format(format!("segment size {seg_size} out of range")));
    }
    let fc = FileCrypto::new(key, &header, aad)?;
    Ok((fc, *file_id, seg_size))
}

/// Streaming decryptor: a [`Read`] that yields plaintext segment by segment,
/// each only after its tag verified. Errors are `InvalidData`.
pub struct DecryptReader<R: Read> {
    inner: R,
    fc: FileCrypto,
    file_id: [u8; 16],
    seg_ct: usize,
    pending: Vec<u8>,
    out: Zeroizing<Vec<u8>>,
    out_pos: usize,
    index: u64,
    released: u64,
    max_plaintext: u64,
    done: bool,
}

impl<R: Read> DecryptReader<R> {
    /// Reads and checks the header with default limits.
    pub fn new(key: &SymKey, aad: &[u8], inner: R) -> Result<Self> {
        Self::with_limits(key, aad, inner, SegmentLimits::default())
    }

    /// Reads and checks the header; the segment size is checked against
    /// `limits` before any buffer is allocated.
    pub fn with_limits(key: &SymKey, aad: &[u8], mut inner: R, limits: SegmentLimits) -> Result<Self> {
        let (fc, file_id, seg_size) = read_header(key, aad, &mut inner, limits)?;
        let seg_ct = usize::try_from(seg_size).map_err(|_| internal("segment size"))? + GCM_TAG_LEN;
        Ok(DecryptReader {
            inner,
            fc,
            file_id,
            seg_ct,
            pending: Vec::with_capacity(seg_ct + 1),
            out: Zeroizing::new(Vec::with_capacity(seg_ct)),
            out_pos: 0,
            index: 0,
            released: 0,
            max_plaintext: limits.max_plaintext,
            done: false,
        })
    }

    /// The random file id from the header.
    pub fn file_id(&self) -> [u8; 16] {
        self.file_id
    }

    /// Reads, authenticates and decrypts the next segment into `out`.
    fn next_segment(&mut self) -> Result<()> {
        let want = self.seg_ct + 1; // one byte of look-ahead tells "last" apart
        while self.pending.len() < want {
            let have = self.pending.len();
            self.pending.resize(want, 0);
            let dst = self.pending.get_mut(have..).ok_or_else(|| internal("pending"))?;
            let n = loop {
                match self.inner.read(dst) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.pending.truncate(have);
                        return Err(Error::Io(e));
                    }
                }
            };
            self.pending.truncate(have + n);
            if n == 0 {
                break;
            }
        }
        let last = self.pending.len() < want;
        let seg_len = if last { self.pending.len() } else { self.seg_ct };
        let body_len = seg_len
            .checked_sub(GCM_TAG_LEN)
            .ok_or_else(|| Error::Crypto("segmented file truncated (segment shorter than its tag)".into()))?;
        let (body, rest) = self.pending.split_at_checked(body_len).ok_or_else(|| internal("segment"))?;
        let tag = rest.first_chunk::<GCM_TAG_LEN>().ok_or_else(|| internal("tag"))?;
        self.out.clear();
        self.out.extend_from_slice(body);
        if !self.fc.open_segment(self.index, last, self.out.as_mut_slice(), tag)? {
            self.out.clear();
            return Err(Error::Crypto(format!(
                "segment {} failed authentication (tampered, truncated, reordered, wrong key or wrong associated data)",
                self.index
            )));
        }
        self.pending.drain(..seg_len);
        self.out_pos = 0;
        self.index = self.index.checked_add(1).ok_or_else(|| internal("segment counter"))?;
        self.released = self.released.saturating_add(self.out.len() as u64);
        if self.released > self.max_plaintext {
            self.out.clear();
            return Err(Error::Format(format!("plaintext exceeds the limit of {} bytes", self.max_plaintext)));
        }
        self.done = last;
        Ok(())
    }
}

impl<R: Read> Read for DecryptReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let avail = self.out.get(self.out_pos..).unwrap_or_default();
            if !avail.is_empty() {
                let n = avail.len().min(buf.len());
                let (dst, _) = buf.split_at_mut(n);
                dst.copy_from_slice(avail.get(..n).unwrap_or_default());
                self.out_pos += n;
                return Ok(n);
            }
            if self.done || buf.is_empty() {
                return Ok(0);
            }
            self.next_segment().map_err(io_err)?;
        }
    }
}

impl<R: Read> std::fmt::Debug for DecryptReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecryptReader").field("segment", &self.index).finish_non_exhaustive()
    }
}

/// Seals `plaintext` as one segmented file with 1 MiB segments.
pub fn seal(key: &SymKey, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    seal_with_segment_size(key, aad, DEFAULT_SEGMENT_SIZE, plaintext)
}

/// Seals `plaintext` with the given segment size.
pub fn seal_with_segment_size(key: &SymKey, aad: &[u8], segment_size: u32, plaintext: &[u8]) -> Result<Vec<u8>> {
    let seg = u64::from(segment_size.max(1));
    let segments = (plaintext.len() as u64).div_ceil(seg).max(1);
    let cap = (plaintext.len() as u64)
        .saturating_add(segments.saturating_mul(GCM_TAG_LEN as u64))
        .saturating_add(SEG_HEADER_LEN as u64);
    let mut w = EncryptWriter::with_segment_size(
        key,
        aad,
        segment_size,
        Vec::with_capacity(usize::try_from(cap).unwrap_or(0)),
    )?;
    w.write_all(plaintext)?;
    w.finish()
}

/// Opens a whole segmented file held in memory; the output is never larger
/// than the input.
pub fn open(key: &SymKey, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
    open_with_limits(key, aad, sealed, SegmentLimits::default())
}

/// [`open`] with explicit limits.
pub fn open_with_limits(key: &SymKey, aad: &[u8], sealed: &[u8], limits: SegmentLimits) -> Result<Vec<u8>> {
    let mut r = DecryptReader::with_limits(key, aad, sealed, limits)?;
    let mut out = Vec::with_capacity(sealed.len().saturating_sub(SEG_HEADER_LEN));
    r.read_to_end(&mut out).map_err(|e| {
        if e.kind() == io::ErrorKind::InvalidData { Error::Crypto(e.to_string()) } else { Error::Io(e) }
    })?;
    Ok(out)
}

mod seek;
pub use seek::SeekDecryptReader;

#[cfg(test)]
mod tests;
