//! The link settings both sides share, their limits and their digest
//! (PROTOCOL.md §1), and the block geometry that follows from them (§3).
//!
//! ```text
//!  batch of L bytes ─▶ blocks of ≤ Kmax·T bytes ─▶ block b: K_b = ⌈len_b / T⌉ symbols (last padded)
//!                                                  R_b = ⌈r·K_b⌉ + e repair symbols a pass
//!  "flumon-transfer settings v1\nnode=…\n…key_id=…\n" ─SM3─▶ settings digest (heartbeat)
//! ```

use std::net::SocketAddr;

use flumon_shared::crypto::sm3;

use crate::error::{Error, Result};
use crate::wire::{DATA_OVERHEAD, MAX_ESI};

/// Bytes of IPv4 + UDP headers.
const IPV4_UDP: usize = 28;
/// Bytes of IPv6 + UDP headers.
const IPV6_UDP: usize = 48;
/// Most blocks a batch may have (the block index is a u16).
pub const MAX_BLOCKS: u64 = 65_535;

/// The shared settings (PROTOCOL.md §1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkSettings {
    pub node_id: String,
    pub mtu: u16,
    /// T: bytes of every symbol, a multiple of 8.
    pub symbol_size: u16,
    /// Kmax: most source symbols of a block.
    pub block_symbols: u16,
    /// r in parts per million.
    pub repair_ppm: u32,
    /// e: extra repair symbols a block and pass.
    pub repair_extra: u16,
}

/// Where one block lies in its batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockGeometry {
    /// Byte offset in the batch.
    pub offset: usize,
    /// Bytes of the batch in this block (the rest of K·T is zero padding).
    pub len: usize,
    /// K: source symbols.
    pub k: u32,
    /// R: repair symbols a pass.
    pub r: u32,
}

impl LinkSettings {
    /// Checks every limit of PROTOCOL.md §1 that does not depend on an address.
    pub fn check(&self) -> Result<()> {
        flumon_shared::batch::check_node_id(self.node_id.as_bytes())
            .map_err(|e| Error::Config(format!("link.node_id: {e}")))?;
        let t = self.symbol_size;
        if !(64..=65_000).contains(&t) || !t.is_multiple_of(8) {
            return Err(Error::Config("link.symbol_size must be 64..=65000 and a multiple of 8".into()));
        }
        if self.mtu < 576 {
            return Err(Error::Config("link.mtu must be at least 576".into()));
        }
        if self.datagram_len() + IPV4_UDP > usize::from(self.mtu) {
            return Err(Error::Config(format!(
                "link.symbol_size {t}: a datagram of {} bytes does not fit an MTU of {} (at most {})",
                self.datagram_len(),
                self.mtu,
                usize::from(self.mtu).saturating_sub(IPV4_UDP + DATA_OVERHEAD)
            )));
        }
        if !(1..=8192).contains(&self.block_symbols) {
            return Err(Error::Config("link.block_symbols must be 1..=8192".into()));
        }
        if self.repair_ppm > 4_000_000 || self.repair_extra > 1000 {
            return Err(Error::Config("link.repair_ratio must be ≤ 4 and repair_extra ≤ 1000".into()));
        }
        Ok(())
    }

    /// Checks that a datagram fits the MTU for this address family.
    pub fn check_addr(&self, addr: &SocketAddr) -> Result<()> {
        let over = if addr.is_ipv6() { IPV6_UDP } else { IPV4_UDP };
        if self.datagram_len() + over > usize::from(self.mtu) {
            return Err(Error::Config(format!(
                "a {}-byte datagram does not fit an MTU of {} over {}",
                self.datagram_len(),
                self.mtu,
                if addr.is_ipv6() { "IPv6" } else { "IPv4" }
            )));
        }
        Ok(())
    }

    /// Checks a largest batch against the block limit.
    pub fn check_max_batch(&self, max_batch: u32) -> Result<()> {
        if max_batch == 0 || u64::from(max_batch).div_ceil(self.block_bytes() as u64) > MAX_BLOCKS {
            return Err(Error::Config(format!("max_batch_bytes {max_batch} needs more than {MAX_BLOCKS} blocks")));
        }
        Ok(())
    }

    /// Bytes of a data datagram (the largest kind).
    pub fn datagram_len(&self) -> usize {
        DATA_OVERHEAD + usize::from(self.symbol_size)
    }

    /// Bytes of a full block.
    pub fn block_bytes(&self) -> usize {
        usize::from(self.block_symbols) * usize::from(self.symbol_size)
    }

    /// Number of blocks of a batch of `len` bytes (≥ 1 for len ≥ 1).
    pub fn block_count(&self, len: usize) -> usize {
        len.div_ceil(self.block_bytes())
    }

    /// R for a block of K source symbols.
    pub fn repair_for(&self, k: u32) -> u32 {
        let r = (u64::from(k) * u64::from(self.repair_ppm)).div_ceil(1_000_000);
        u32::try_from(r).unwrap_or(u32::MAX).saturating_add(u32::from(self.repair_extra))
    }

    /// Geometry of block `index` of a batch of `len` bytes, if it exists.
    pub fn block(&self, len: usize, index: usize) -> Option<BlockGeometry> {
        let bb = self.block_bytes();
        let offset = index.checked_mul(bb)?;
        if offset >= len {
            return None;
        }
        let blen = (len - offset).min(bb);
        let k = u32::try_from(blen.div_ceil(usize::from(self.symbol_size))).ok()?;
        Some(BlockGeometry { offset, len: blen, k, r: self.repair_for(k) })
    }

    /// Highest pass attempt whose ESIs stay below 2²⁴ for a block of K.
    pub fn max_attempt(&self, g: &BlockGeometry) -> u32 {
        let per = u64::from(g.k) + u64::from(g.r);
        u32::try_from(u64::from(MAX_ESI) / per.max(1)).unwrap_or(u32::MAX).min(255)
    }

    /// The canonical text the digest is taken over.
    pub fn digest_text(&self, key_id: u32) -> String {
        format!(
            "flumon-transfer settings v1\nnode={}\nmtu={}\nsymbol={}\nblock_symbols={}\nrepair_ppm={}\nrepair_extra={}\nkey_id={}\n",
            self.node_id, self.mtu, self.symbol_size, self.block_symbols, self.repair_ppm, self.repair_extra, key_id
        )
    }

    /// The settings digest (PROTOCOL.md §1).
    pub fn digest(&self, key_id: u32) -> [u8; 32] {
        sm3(self.digest_text(key_id).as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s() -> LinkSettings {
        LinkSettings {
            node_id: "dmz-1".into(),
            mtu: 1500,
            symbol_size: 1400,
            block_symbols: 750,
            repair_ppm: 100_000,
            repair_extra: 2,
        }
    }

    #[test]
    fn geometry() {
        let s = s();
        s.check().unwrap();
        assert_eq!(s.datagram_len(), 1468);
        assert_eq!(s.block_count(1), 1);
        assert_eq!(s.block_count(1_050_000), 1);
        assert_eq!(s.block_count(1_050_001), 2);
        let b = s.block(1_050_001, 1).unwrap();
        assert_eq!((b.offset, b.len, b.k, b.r), (1_050_000, 1, 1, 3));
        let b = s.block(1_050_001, 0).unwrap();
        assert_eq!((b.k, b.r), (750, 77));
        assert!(s.block(1_050_001, 2).is_none());
        assert!(s.block(0, 0).is_none());
        assert_eq!(s.max_attempt(&b), 255);
        assert!(s.check_addr(&"127.0.0.1:9".parse().unwrap()).is_ok());
        assert!(s.check_addr(&"[::1]:9".parse().unwrap()).is_err(), "1468 + 48 > 1500");
        let v6 = LinkSettings { symbol_size: 1384, ..s.clone() };
        assert!(v6.check_addr(&"[::1]:9".parse().unwrap()).is_ok());
    }

    #[test]
    fn digest_changes_with_every_setting() {
        let base = s().digest(1);
        assert_ne!(base, s().digest(2));
        for f in [
            |s: &mut LinkSettings| s.mtu = 9000,
            |s: &mut LinkSettings| s.symbol_size = 1392,
            |s: &mut LinkSettings| s.block_symbols = 751,
            |s: &mut LinkSettings| s.repair_ppm = 100_001,
            |s: &mut LinkSettings| s.repair_extra = 3,
            |s: &mut LinkSettings| s.node_id = "dmz-2".into(),
        ] {
            let mut x = s();
            f(&mut x);
            assert_ne!(x.digest(1), base);
        }
    }
}
