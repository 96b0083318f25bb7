//! The batch header: its fields, its byte encoding, and a parser that checks
//! every length before it trusts it.
//!
//! ```text
//!  "FLUMONB1" │ ver u16 │ n u8 │ node id (n) │ seq u64 │ created ms u64 │ 5 × u32 counts
//!  │ SM3(payload) 32 │ payload len u64 │ sealed len u64 │ nonce 12        (all big-endian)
//! ```

use crate::crypto::{GCM_NONCE_LEN, GCM_TAG_LEN, SM3_LEN};
use crate::{Error, Result};

/// First 8 bytes of every batch file.
pub const BATCH_MAGIC: [u8; 8] = *b"FLUMONB1";
/// The one format version this code reads and writes.
pub const BATCH_VERSION: u16 = 1;
/// Longest DMZ node id.
pub const MAX_NODE_ID_LEN: usize = 32;
/// Header bytes besides the node id.
pub(crate) const FIXED_HEADER_LEN: usize = 8 + 2 + 1 + 8 + 8 + 5 * 4 + SM3_LEN + 8 + 8 + GCM_NONCE_LEN;

/// Entries per kind, as the sealer declares them. Their sum must equal the
/// number of entries in the payload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EntryCounts {
    /// Desensitised records.
    pub records: u32,
    /// Hospital registry changes.
    pub registry: u32,
    /// Receipt summaries.
    pub receipts: u32,
    /// Death-scan metadata.
    pub scans: u32,
    /// Heads of the DMZ's audit journal.
    pub journal_heads: u32,
}

impl EntryCounts {
    /// Sum of all counts.
    pub fn total(&self) -> u64 {
        [self.records, self.registry, self.receipts, self.scans, self.journal_heads].iter().map(|&c| u64::from(c)).sum()
    }
}

/// What the caller of [`super::seal_batch`] supplies for the header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchFields {
    /// DMZ node id: 1..=32 bytes of `A-Z a-z 0-9 . _ -`.
    pub node_id: String,
    /// The node's batch sequence number.
    pub sequence: u64,
    /// Creation time, unix milliseconds.
    pub created_ms: u64,
    /// Entries per kind.
    pub counts: EntryCounts,
}

/// A parsed batch header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    /// Format version (1).
    pub version: u16,
    /// DMZ node id.
    pub node_id: String,
    /// Batch sequence number.
    pub sequence: u64,
    /// Creation time, unix milliseconds.
    pub created_ms: u64,
    /// Entries per kind.
    pub counts: EntryCounts,
    /// SM3 of the plaintext payload (bincode bytes before compression).
    pub payload_sm3: [u8; SM3_LEN],
    /// Length of the plaintext payload.
    pub payload_len: u64,
    /// Length of the SM4-GCM ciphertext including its 16-byte tag.
    pub sealed_len: u64,
    /// SM4-GCM nonce.
    pub nonce: [u8; GCM_NONCE_LEN],
}

/// Checks a node id: 1..=32 bytes of `A-Z a-z 0-9 . _ -`.
pub fn check_node_id(id: &[u8]) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= MAX_NODE_ID_LEN
        && id.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok { Ok(()) } else { Err(Error::Format("batch: node id must be 1..=32 of A-Z a-z 0-9 . _ -".into())) }
}

impl BatchHeader {
    /// Length of this header's encoding.
    pub fn encoded_len(&self) -> usize {
        FIXED_HEADER_LEN + self.node_id.len()
    }

    /// Length of the whole batch file this header announces.
    pub fn total_len(&self) -> u64 {
        (self.encoded_len() as u64)
            .saturating_add(self.sealed_len)
            .saturating_add(crate::crypto::SM2_SIGNATURE_LEN as u64)
    }

    /// The header's bytes (they are also the SM4-GCM associated data).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&BATCH_MAGIC);
        out.extend_from_slice(&self.version.to_be_bytes());
        out.push(self.node_id.len() as u8);
        out.extend_from_slice(self.node_id.as_bytes());
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.created_ms.to_be_bytes());
        let c = &self.counts;
        for n in [c.records, c.registry, c.receipts, c.scans, c.journal_heads] {
            out.extend_from_slice(&n.to_be_bytes());
        }
        out.extend_from_slice(&self.payload_sm3);
        out.extend_from_slice(&self.payload_len.to_be_bytes());
        out.extend_from_slice(&self.sealed_len.to_be_bytes());
        out.extend_from_slice(&self.nonce);
        out
    }

    /// Parses a header from the start of `bytes` (which may hold more);
    /// returns it with its encoded length. Checks magic, version, node id
    /// and that the lengths are within `max_payload` and consistent. Does
    /// not check signature, tag or digest.
    pub fn parse(bytes: &[u8], max_payload: u64) -> Result<(Self, usize)> {
        let mut r = Cursor(bytes);
        if r.array::<8>()? != BATCH_MAGIC {
            return Err(Error::Format("batch: bad magic (not a flumon batch)".into()));
        }
        let version = u16::from_be_bytes(r.array()?);
        if version != BATCH_VERSION {
            return Err(Error::Format(format!("batch: unsupported version {version}")));
        }
        let [n] = r.array::<1>()?;
        let id = r.take(usize::from(n))?;
        check_node_id(id)?;
        let node_id = String::from_utf8(id.to_vec()).map_err(|_| Error::Format("batch: node id".into()))?;
        let sequence = u64::from_be_bytes(r.array()?);
        let created_ms = u64::from_be_bytes(r.array()?);
        let mut c = [0u32; 5];
        for slot in &mut c {
            *slot = u32::from_be_bytes(r.array()?);
        }
        let [records, registry, receipts, scans, journal_heads] = c;
        let counts = EntryCounts { records, registry, receipts, scans, journal_heads };
        let payload_sm3 = r.array()?;
        let payload_len = u64::from_be_bytes(r.array()?);
        let sealed_len = u64::from_be_bytes(r.array()?);
        let nonce = r.array()?;
        if payload_len > max_payload {
            return Err(Error::Format(format!(
                "batch: payload of {payload_len} bytes exceeds the limit {max_payload}"
            )));
        }
        let bound = usize::try_from(payload_len)
            .map(zstd::zstd_safe::compress_bound)
            .map_err(|_| Error::Format("batch: payload length".into()))? as u64;
        if sealed_len < GCM_TAG_LEN as u64 || sealed_len > bound.saturating_add(GCM_TAG_LEN as u64) {
            return Err(Error::Format(format!(
                "batch: sealed length {sealed_len} impossible for payload {payload_len}"
            )));
        }
        let h =
            BatchHeader { version, node_id, sequence, created_ms, counts, payload_sm3, payload_len, sealed_len, nonce };
        let len = h.encoded_len();
        Ok((h, len))
    }
}

/// A forward-only reader over a byte slice that never reads past its end.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n).ok_or_else(|| Error::Format("batch: truncated header".into()))?;
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let (head, rest) =
            self.0.split_first_chunk::<N>().ok_or_else(|| Error::Format("batch: truncated header".into()))?;
        self.0 = rest;
        Ok(*head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BatchHeader {
        BatchHeader {
            version: 1,
            node_id: "dmz-bj.01".into(),
            sequence: 77,
            created_ms: 1_764_000_000_000,
            counts: EntryCounts { records: 3, registry: 1, receipts: 2, scans: 0, journal_heads: 1 },
            payload_sm3: [0xab; 32],
            payload_len: 1000,
            sealed_len: 300,
            nonce: [7; 12],
        }
    }

    #[test]
    fn encode_parse_round_trip() {
        let h = sample();
        let mut b = h.encode();
        assert_eq!(b.len(), FIXED_HEADER_LEN + 9);
        b.extend_from_slice(b"rest of file");
        let (back, len) = BatchHeader::parse(&b, 1 << 20).unwrap();
        assert_eq!(back, h);
        assert_eq!(len, h.encoded_len());
        assert_eq!(h.counts.total(), 7);
    }

    #[test]
    fn every_truncation_fails() {
        let b = sample().encode();
        for cut in 0..b.len() {
            assert!(BatchHeader::parse(&b[..cut], 1 << 20).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn bad_fields_fail() {
        let h = sample();
        let mut b = h.encode();
        b[0] = b'G';
        assert!(BatchHeader::parse(&b, 1 << 20).is_err());
        let mut b = h.encode();
        b[9] = 2;
        assert!(BatchHeader::parse(&b, 1 << 20).is_err());
        let mut b = h.encode();
        b[11] = b'/';
        assert!(BatchHeader::parse(&b, 1 << 20).is_err());
        let mut b = h.encode();
        b[10] = 0;
        assert!(BatchHeader::parse(&b, 1 << 20).is_err());
        assert!(BatchHeader::parse(&h.encode(), 999).is_err(), "payload over the limit");
        for sealed in [0, 15, 1_000_000] {
            let b = BatchHeader { sealed_len: sealed, ..sample() }.encode();
            assert!(BatchHeader::parse(&b, 1 << 20).is_err(), "sealed {sealed}");
        }
        assert!(check_node_id(&[b'a'; 33]).is_err());
        assert!(check_node_id("节点".as_bytes()).is_err());
        assert!(check_node_id(b"A-z_0.9").is_ok());
    }
}
