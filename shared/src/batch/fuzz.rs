//! The body of the `batch_open` fuzz target, callable from ordinary unit
//! tests so CI exercises it on stable without cargo-fuzz.
//!
//! ```text
//!  data[0] % 3 == 0 ─▶ peek_header + open_batch on data[1..]   (hostile file)
//!               == 1 ─▶ bounded zstd + bincode decode on data[3..]  (past the crypto)
//!               == 2 ─▶ seal entries made from data, open (must round-trip),
//!                       flip one byte (must be rejected)
//! ```
//!
//! Fixed, public test keys: nothing here is secret.

use std::sync::OnceLock;

use super::{
    BatchFields, BatchLimits, EntryCounts, decode_entries, decompress_bounded, open_batch, peek_header, seal_batch,
};
use crate::Result;
use crate::crypto::{Sm2PrivateKey, SymKey};

/// The entry type the fuzzer decodes into.
type FuzzEntry = (u64, String);

fn keys() -> Option<&'static (SymKey, Sm2PrivateKey)> {
    static KEYS: OnceLock<Option<(SymKey, Sm2PrivateKey)>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let link = SymKey::from_slice(&[0x42; 16]).ok()?;
        let sign = Sm2PrivateKey::from_scalar_bytes(&[0x17; 32]).ok()?;
        Some((link, sign))
    })
    .as_ref()
}

fn fuzz_limits() -> BatchLimits {
    BatchLimits { max_payload: 1 << 20 }
}

/// A valid batch under the fuzz keys, for seeding a corpus (prefix it with
/// a 0 byte to select the "hostile file" mode).
pub fn fuzz_seed_batch() -> Result<Vec<u8>> {
    let (link, sign) = keys().ok_or_else(|| crate::Error::Crypto("fuzz keys".into()))?;
    let entries: Vec<FuzzEntry> = vec![(1, "病例".into()), (2, String::new()), (u64::MAX, "x".repeat(300))];
    let fields = fields_for(entries.len());
    seal_batch(&fields, &entries, link, sign)
}

fn fields_for(n: usize) -> BatchFields {
    BatchFields {
        node_id: "fuzz-node".into(),
        sequence: 9,
        created_ms: 1_700_000_000_000,
        counts: EntryCounts { records: n as u32, ..EntryCounts::default() },
    }
}

/// Runs one fuzz input. Never panics; returns `Err` only when an invariant
/// is broken (a tampered batch accepted, or a round trip that changed data).
pub fn fuzz_open_batch(data: &[u8]) -> std::result::Result<(), String> {
    let Some((link, sign)) = keys() else { return Ok(()) };
    let Some((&mode, rest)) = data.split_first() else { return Ok(()) };
    let limits = fuzz_limits();
    match mode % 3 {
        0 => {
            let peeked = peek_header(rest, &limits);
            let opened = open_batch::<FuzzEntry>(rest, link, sign.public_key(), &limits);
            if let Ok((h, _)) = &opened
                && peeked.as_ref().ok() != Some(h)
            {
                return Err("open_batch accepted what peek_header did not parse the same way".into());
            }
        }
        1 => {
            let (len, body) = match rest.split_first_chunk::<2>() {
                Some((l, b)) => (u64::from(u16::from_be_bytes(*l)), b),
                None => return Ok(()),
            };
            let _ = decompress_bounded(body, len);
            let _ = decode_entries::<FuzzEntry>(body, len);
        }
        _ => {
            let entries: Vec<FuzzEntry> = rest
                .chunks(7)
                .map(|c| {
                    (
                        c.len() as u64 * u64::from(c.first().copied().unwrap_or(0)),
                        String::from_utf8_lossy(c).into_owned(),
                    )
                })
                .collect();
            let fields = fields_for(entries.len());
            let sealed = seal_batch(&fields, &entries, link, sign).map_err(|e| format!("seal failed: {e}"))?;
            let (h, back) = open_batch::<FuzzEntry>(&sealed, link, sign.public_key(), &limits)
                .map_err(|e| format!("round trip failed: {e}"))?;
            if back != entries || h.sequence != fields.sequence || h.node_id != fields.node_id {
                return Err("round trip changed the batch".into());
            }
            let pos = rest.iter().fold(0usize, |a, &b| a.wrapping_mul(31).wrapping_add(usize::from(b))) % sealed.len();
            let mut tampered = sealed;
            if let Some(b) = tampered.get_mut(pos) {
                *b ^= 1u8 << (mode % 8);
            }
            if open_batch::<FuzzEntry>(&tampered, link, sign.public_key(), &limits).is_ok() {
                return Err(format!("a batch with byte {pos} flipped was accepted"));
            }
        }
    }
    Ok(())
}
