//! The batch file: what crosses the one-way gate (TRANSFER.md "What
//! crosses"). A versioned header in the clear, the entries serialized with
//! bincode 2.0.1, compressed with zstd, encrypted with SM4-GCM under the link
//! key (header as associated data), and an SM2 signature by the DMZ's
//! signing key over everything before it.
//!
//! ```text
//!  seal_batch:  entries ─bincode─▶ payload ─SM3─▶ digest (header)
//!                                     └─zstd─▶ compressed ─SM4-GCM(link key, nonce, aad=header)─▶ sealed
//!               file = header ‖ sealed ‖ SM2-sign(header ‖ sealed)   (64 B r‖s)
//!
//!  open_batch:  peek_header (lengths, limits) ─▶ exact total length ─▶ signature
//!               ─▶ GCM tag ─▶ bounded zstd ─▶ length + SM3 digest ─▶ bincode (limit,
//!               no trailing bytes) ─▶ entry count = sum of counts
//! ```
//!
//! Byte layout: docs/FORMATS.md §4. Generic over the entry type: the
//! transfer and intranet crates pass their entry enum.

mod fuzz;
mod header;

pub use fuzz::{fuzz_open_batch, fuzz_seed_batch};
pub use header::{BATCH_MAGIC, BATCH_VERSION, BatchFields, BatchHeader, EntryCounts, MAX_NODE_ID_LEN, check_node_id};

use std::io::Read;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::crypto::{
    SM2_SIGNATURE_LEN, Sm2PrivateKey, Sm2PublicKey, Sm2Signature, SymKey, random_array, sm3, sm4_gcm_open, sm4_gcm_seal,
};
use crate::{Error, Result};

/// Default largest plaintext payload (bincode bytes before compression).
pub const DEFAULT_MAX_PAYLOAD: u64 = 256 << 20;
/// zstd level used when sealing.
const ZSTD_LEVEL: i32 = 3;
/// Largest zstd window the reader accepts (2^24 = 16 MiB; level 3 uses ≤ 2 MiB).
const ZSTD_WINDOW_LOG_MAX: u32 = 24;
/// bincode's largest decode budget. bincode allocates a string or byte
/// container of the length its prefix claims before reading it, checking only
/// the budget; so the budget used for a payload is the power of two above
/// twice its length (at least 64 KiB, see `decode_budgeted`), not this, which
/// only caps it: a 90-byte payload claiming a 4 GB string is refused instead
/// of allocated (found by fuzzing `batch_open`).
const BINCODE_LIMIT: usize = u32::MAX as usize;

/// Limits the reader enforces before allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimits {
    /// Largest plaintext payload accepted (default 256 MiB).
    pub max_payload: u64,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits { max_payload: DEFAULT_MAX_PAYLOAD }
    }
}

/// The fixed bincode configuration: little-endian, variable-length integers.
fn bincode_config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Serializes, compresses, encrypts and signs `entries` into one batch file.
/// The sum of `fields.counts` must equal `entries.len()`.
pub fn seal_batch<T: Serialize>(
    fields: &BatchFields,
    entries: &[T],
    link_key: &SymKey,
    signing_key: &Sm2PrivateKey,
) -> Result<Vec<u8>> {
    let payload = bincode::serde::encode_to_vec(entries, bincode_config())
        .map_err(|e| Error::Format(format!("batch: cannot serialize entries: {e}")))?;
    seal_payload(fields, entries.len(), &payload, None, link_key, signing_key)
}

/// [`seal_batch`] for entries already serialized one by one: `encoded` is
/// the concatenation of `entry_count` entries, each as bincode (this format's
/// configuration) encodes it alone. The payload is then exactly what
/// `seal_batch` would make of the decoded list (a sequence is its length
/// followed by its elements), without decoding and encoding them again: the
/// DMZ's queue already holds entries so encoded.
pub fn seal_encoded(
    fields: &BatchFields,
    entry_count: usize,
    encoded: &[u8],
    link_key: &SymKey,
    signing_key: &Sm2PrivateKey,
) -> Result<Vec<u8>> {
    let len = bincode::encode_to_vec(entry_count as u64, bincode_config())
        .map_err(|e| Error::Format(format!("batch: cannot serialize the entry count: {e}")))?;
    let mut payload = Vec::with_capacity(len.len() + encoded.len());
    payload.extend_from_slice(&len);
    payload.extend_from_slice(encoded);
    seal_payload(fields, entry_count, &payload, None, link_key, signing_key)
}

/// The sealing steps after serialization. `digest_override` exists only so
/// tests can build a correctly signed batch whose digest is wrong.
fn seal_payload(
    fields: &BatchFields,
    entry_count: usize,
    payload: &[u8],
    digest_override: Option<[u8; 32]>,
    link_key: &SymKey,
    signing_key: &Sm2PrivateKey,
) -> Result<Vec<u8>> {
    header::check_node_id(fields.node_id.as_bytes())?;
    if fields.counts.total() != entry_count as u64 {
        return Err(Error::Format(format!(
            "batch: counts add up to {} but there are {entry_count} entries",
            fields.counts.total()
        )));
    }
    if payload.len() as u64 > DEFAULT_MAX_PAYLOAD {
        return Err(Error::Format(format!("batch: payload of {} bytes exceeds {DEFAULT_MAX_PAYLOAD}", payload.len())));
    }
    let compressed = zstd::bulk::compress(payload, ZSTD_LEVEL)?;
    let header = BatchHeader {
        version: BATCH_VERSION,
        node_id: fields.node_id.clone(),
        sequence: fields.sequence,
        created_ms: fields.created_ms,
        counts: fields.counts,
        payload_sm3: digest_override.unwrap_or_else(|| sm3(payload)),
        payload_len: payload.len() as u64,
        sealed_len: (compressed.len() + crate::crypto::GCM_TAG_LEN) as u64,
        nonce: random_array()?,
    };
    let mut out = header.encode();
    let sealed = sm4_gcm_seal(link_key, &header.nonce, &out, &compressed)?;
    if sealed.len() as u64 != header.sealed_len {
        return Err(Error::Crypto("batch: unexpected SM4-GCM output length".into()));
    }
    out.reserve(sealed.len() + SM2_SIGNATURE_LEN);
    out.extend_from_slice(&sealed);
    let sig = signing_key.sign(&out)?;
    out.extend_from_slice(&sig.to_bytes());
    Ok(out)
}

/// Parses only the header, with every length checked against `limits`.
/// `bytes` may be just the start of a file; compare
/// [`BatchHeader::total_len`] with the file size before reading the rest.
pub fn peek_header(bytes: &[u8], limits: &BatchLimits) -> Result<BatchHeader> {
    BatchHeader::parse(bytes, limits.max_payload).map(|(h, _)| h)
}

/// Checks and opens a whole batch file: exact length, SM2 signature (by
/// `verify_key`), SM4-GCM tag (under `link_key`, header as AAD), bounded
/// decompression, payload length and SM3 digest, bincode decoding without
/// trailing bytes, and the entry count.
pub fn open_batch<T: DeserializeOwned>(
    bytes: &[u8],
    link_key: &SymKey,
    verify_key: &Sm2PublicKey,
    limits: &BatchLimits,
) -> Result<(BatchHeader, Vec<T>)> {
    let (header, header_len) = BatchHeader::parse(bytes, limits.max_payload)?;
    if bytes.len() as u64 != header.total_len() {
        return Err(Error::Format(format!(
            "batch: file is {} bytes but its header announces {} (truncated or trailing data)",
            bytes.len(),
            header.total_len()
        )));
    }
    let (signed, sig) = bytes
        .split_last_chunk::<SM2_SIGNATURE_LEN>()
        .ok_or_else(|| Error::Format("batch: too short for a signature".into()))?;
    let sig = Sm2Signature::from_bytes(sig).map_err(|_| Error::Crypto("batch: bad signature".into()))?;
    verify_key.verify(signed, &sig).map_err(|_| Error::Crypto("batch: bad signature".into()))?;
    let (aad, sealed) = signed.split_at_checked(header_len).ok_or_else(|| Error::Format("batch: truncated".into()))?;
    let compressed = sm4_gcm_open(link_key, &header.nonce, aad, sealed)
        .map_err(|_| Error::Crypto("batch: SM4-GCM authentication failed (wrong link key or altered)".into()))?;
    let payload = decompress_bounded(&compressed, header.payload_len)?;
    if sm3(&payload) != header.payload_sm3 {
        return Err(Error::Format("batch: payload SM3 digest mismatch".into()));
    }
    let entries = decode_entries(&payload, header.counts.total())?;
    Ok((header, entries))
}

/// Decompresses one zstd frame that must yield exactly `expected` bytes,
/// never producing more than `expected + 1` bytes and rejecting input left
/// over after the frame.
pub(crate) fn decompress_bounded(compressed: &[u8], expected: u64) -> Result<Vec<u8>> {
    let cap = usize::try_from(expected).map_err(|_| Error::Format("batch: payload too large".into()))?;
    let mut dec = zstd::stream::read::Decoder::with_buffer(compressed)?.single_frame();
    dec.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
    let mut out = Vec::with_capacity(cap);
    (&mut dec)
        .take(expected.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| Error::Format(format!("batch: payload does not decompress: {e}")))?;
    if out.len() as u64 != expected {
        return Err(Error::Format(format!(
            "batch: payload decompresses to {}{} bytes, header says {expected}",
            out.len(),
            if out.len() as u64 > expected { "+" } else { "" }
        )));
    }
    if !dec.finish().is_empty() {
        return Err(Error::Format("batch: data after the compressed payload".into()));
    }
    Ok(out)
}

/// Decodes the payload as a bincode sequence of `T`, rejecting trailing
/// bytes and a count other than `expected`.
pub(crate) fn decode_entries<T: DeserializeOwned>(payload: &[u8], expected: u64) -> Result<Vec<T>> {
    let (entries, used): (Vec<T>, usize) =
        decode_budgeted(payload).map_err(|e| Error::Format(format!("batch: payload does not decode: {e}")))?;
    if used != payload.len() {
        return Err(Error::Format(format!("batch: {} trailing bytes after the entries", payload.len() - used)));
    }
    if entries.len() as u64 != expected {
        return Err(Error::Format(format!("batch: {} entries but the header counts {expected}", entries.len())));
    }
    Ok(entries)
}

/// Decodes with a bincode budget proportional to the payload: what bincode
/// may claim (strings, byte containers) is on the wire byte for byte, so
/// twice the payload's length is ample for every valid payload.
fn decode_budgeted<T: DeserializeOwned>(
    payload: &[u8],
) -> std::result::Result<(Vec<T>, usize), bincode::error::DecodeError> {
    let want = payload.len().saturating_mul(2).max(1 << 16);
    macro_rules! budgets {
        ($($n:expr),*) => {
            $(if want <= $n {
                return bincode::serde::decode_from_slice(payload, bincode_config().with_limit::<{ $n }>());
            })*
        };
    }
    budgets!(1 << 16, 1 << 18, 1 << 20, 1 << 22, 1 << 24, 1 << 26, 1 << 28, 1 << 30);
    bincode::serde::decode_from_slice(payload, bincode_config().with_limit::<BINCODE_LIMIT>())
}

#[cfg(test)]
mod tests;
