//! The three bodies (PROTOCOL.md §2.1–2.3): encoders that append a whole
//! sealed datagram, and parsers that check exact lengths and field ranges.
//!
//! ```text
//!  data       seq u64 │ content id 8 │ len u32 │ block u16 │ attempt u8 │ 0 │ esi u32 │ symbol T
//!  heartbeat  time │ start │ latest │ sent-through │ queue │ interval │ passes │ 0 │ mtu │ T │ Kmax │ ppm │ e │ 0 │ digest 32
//!  manifest   time │ part │ parts │ n │ 0 │ n × (seq │ len │ passes │ 0 0 0 │ sm3 32)
//! ```

use super::{DATA_HEAD_LEN, HEADER_LEN, HEARTBEAT_BODY, Header, MAC_LEN, MAX_ESI, MacSigner, Reader, Reject, seal};

/// Bytes of one manifest entry.
pub const MANIFEST_ENTRY_LEN: usize = 48;
/// Manifest body bytes before the entries.
const MANIFEST_HEAD: usize = 16;

/// The fields of a data datagram before its symbol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataHead {
    pub seq: u64,
    pub content_id: [u8; 8],
    pub batch_len: u32,
    pub block: u16,
    pub attempt: u8,
    pub esi: u32,
}

impl DataHead {
    /// Appends a sealed data datagram.
    pub fn write(&self, hdr: &Header, symbol: &[u8], key: &MacSigner, out: &mut Vec<u8>) {
        let start = out.len();
        hdr.write(out);
        self.write_fields(out);
        out.extend_from_slice(symbol);
        seal(out, start, key);
    }

    /// Appends the 28 bytes of fields (the sender then appends the symbol and seals).
    pub fn write_fields(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.content_id);
        out.extend_from_slice(&self.batch_len.to_be_bytes());
        out.extend_from_slice(&self.block.to_be_bytes());
        out.push(self.attempt);
        out.push(0);
        out.extend_from_slice(&self.esi.to_be_bytes());
    }

    /// Parses an authenticated data body; the symbol must be exactly `symbol_size` bytes.
    pub fn parse(body: &[u8], symbol_size: usize) -> Result<(DataHead, &[u8]), Reject> {
        if body.len() != DATA_HEAD_LEN + symbol_size {
            return Err(Reject::Malformed);
        }
        let mut r = Reader::new(body);
        let h = DataHead {
            seq: r.u64()?,
            content_id: r.array()?,
            batch_len: r.u32()?,
            block: r.u16()?,
            attempt: r.u8()?,
            esi: {
                if r.u8()? != 0 {
                    return Err(Reject::Malformed);
                }
                r.u32()?
            },
        };
        let symbol = r.take(symbol_size)?;
        r.finish()?;
        if h.batch_len == 0 || h.attempt == 0 || h.esi >= MAX_ESI {
            return Err(Reject::Malformed);
        }
        Ok((h, symbol))
    }
}

/// A heartbeat (PROTOCOL.md §2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    pub time_ms: u64,
    pub session_start_ms: u64,
    pub latest_seq: u64,
    pub sent_through: u64,
    pub queue_depth: u32,
    pub interval_ms: u32,
    pub passes: u8,
    pub mtu: u16,
    pub symbol_size: u16,
    pub block_symbols: u16,
    pub repair_ppm: u32,
    pub repair_extra: u16,
    pub digest: [u8; 32],
}

impl Heartbeat {
    /// Appends a sealed heartbeat datagram.
    pub fn write(&self, hdr: &Header, key: &MacSigner, out: &mut Vec<u8>) {
        let start = out.len();
        hdr.write(out);
        for v in [self.time_ms, self.session_start_ms, self.latest_seq, self.sent_through] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(&self.queue_depth.to_be_bytes());
        out.extend_from_slice(&self.interval_ms.to_be_bytes());
        out.push(self.passes);
        out.push(0);
        out.extend_from_slice(&self.mtu.to_be_bytes());
        out.extend_from_slice(&self.symbol_size.to_be_bytes());
        out.extend_from_slice(&self.block_symbols.to_be_bytes());
        out.extend_from_slice(&self.repair_ppm.to_be_bytes());
        out.extend_from_slice(&self.repair_extra.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.digest);
        seal(out, start, key);
    }

    /// Parses an authenticated heartbeat body.
    pub fn parse(body: &[u8]) -> Result<Heartbeat, Reject> {
        if body.len() != HEARTBEAT_BODY {
            return Err(Reject::Malformed);
        }
        let mut r = Reader::new(body);
        let hb = Heartbeat {
            time_ms: r.u64()?,
            session_start_ms: r.u64()?,
            latest_seq: r.u64()?,
            sent_through: r.u64()?,
            queue_depth: r.u32()?,
            interval_ms: r.u32()?,
            passes: r.u8()?,
            mtu: {
                if r.u8()? != 0 {
                    return Err(Reject::Malformed);
                }
                r.u16()?
            },
            symbol_size: r.u16()?,
            block_symbols: r.u16()?,
            repair_ppm: r.u32()?,
            repair_extra: r.u16()?,
            digest: {
                if r.u16()? != 0 {
                    return Err(Reject::Malformed);
                }
                r.array()?
            },
        };
        r.finish()?;
        if !(100..=60_000).contains(&hb.interval_ms) || hb.passes == 0 || hb.sent_through > hb.latest_seq {
            return Err(Reject::Malformed);
        }
        Ok(hb)
    }
}

/// One batch in a manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ManifestEntry {
    pub seq: u64,
    pub len: u32,
    pub passes: u8,
    pub sm3: [u8; 32],
}

/// One datagram of a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestPart {
    pub time_ms: u64,
    pub part: u16,
    pub parts: u16,
    pub entries: Vec<ManifestEntry>,
}

/// Entries that fit one manifest datagram for symbol size `t`.
pub fn manifest_capacity(t: usize) -> usize {
    (t + super::DATA_HEAD_LEN - MANIFEST_HEAD) / MANIFEST_ENTRY_LEN
}

impl ManifestPart {
    /// Appends a sealed manifest datagram (the caller keeps `entries` within capacity).
    pub fn write(&self, hdr: &Header, key: &MacSigner, out: &mut Vec<u8>) {
        let start = out.len();
        hdr.write(out);
        out.extend_from_slice(&self.time_ms.to_be_bytes());
        out.extend_from_slice(&self.part.to_be_bytes());
        out.extend_from_slice(&self.parts.to_be_bytes());
        out.extend_from_slice(&(self.entries.len() as u16).to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        for e in &self.entries {
            out.extend_from_slice(&e.seq.to_be_bytes());
            out.extend_from_slice(&e.len.to_be_bytes());
            out.push(e.passes);
            out.extend_from_slice(&[0, 0, 0]);
            out.extend_from_slice(&e.sm3);
        }
        seal(out, start, key);
    }

    /// Parses an authenticated manifest body; at most `capacity` entries.
    pub fn parse(body: &[u8], capacity: usize) -> Result<ManifestPart, Reject> {
        let mut r = Reader::new(body);
        let time_ms = r.u64()?;
        let part = r.u16()?;
        let parts = r.u16()?;
        let n = usize::from(r.u16()?);
        if r.u16()? != 0 || parts == 0 || part >= parts || n == 0 || n > capacity {
            return Err(Reject::Malformed);
        }
        // exact length before allocating
        if r.remaining() != n * MANIFEST_ENTRY_LEN {
            return Err(Reject::Malformed);
        }
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let seq = r.u64()?;
            let len = r.u32()?;
            let passes = r.u8()?;
            if r.array::<3>()? != [0, 0, 0] {
                return Err(Reject::Malformed);
            }
            entries.push(ManifestEntry { seq, len, passes, sm3: r.array()? });
        }
        r.finish()?;
        Ok(ManifestPart { time_ms, part, parts, entries })
    }
}

/// Size of a heartbeat datagram.
pub const fn heartbeat_len() -> usize {
    HEADER_LEN + HEARTBEAT_BODY + MAC_LEN
}
