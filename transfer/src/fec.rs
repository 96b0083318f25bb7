//! RaptorQ (`raptorq =2.0.1`) per block: the sender's encoder with cached
//! plans, and the receiver's per-block symbol collector and decoder.
//!
//! ```text
//!  sender:   block bytes ─pad to K·T─▶ SourceBlockEncoder::with_encoding_plan(plan[K]) ─▶ symbol(esi)
//!            attempt 1: esi 0..K (source, sliced from the batch) + K..K+R (repair)
//!            attempt a: K + R fresh repair symbols from esi a·(K+R) − R … (PROTOCOL.md §3)
//!  receiver: (esi, T bytes) ─dedup─▶ collector ─(≥ K)─▶ SourceBlockDecoder ─▶ K·T bytes
//!            (raptorq runs inside catch_unwind: a panic fails the block, not the process)
//! ```

use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};

use raptorq::{
    EncodingPacket, ObjectTransmissionInformation, PayloadId, SourceBlockDecoder, SourceBlockEncoder,
    SourceBlockEncodingPlan,
};

use crate::error::{Error, Result};
use crate::settings::BlockGeometry;

/// RaptorQ symbol alignment.
const ALIGN: u8 = 8;
/// Plans kept (one per distinct K; full blocks share one).
const PLAN_CACHE: usize = 32;
/// Symbols a block may hold beyond K before more are ignored.
pub const MAX_EXTRA: u32 = 64;

fn oti(k: u32, t: u16) -> ObjectTransmissionInformation {
    ObjectTransmissionInformation::new(u64::from(k) * u64::from(t), t, 1, 1, ALIGN)
}

/// The ESI of the `j`-th symbol of pass attempt `attempt` (1-based) of a block.
pub fn esi_of(g: &BlockGeometry, attempt: u32, j: u32) -> u32 {
    if attempt <= 1 { j } else { (attempt - 1) * (g.k + g.r) + j }
}

/// Encoding plans by K.
#[derive(Default)]
pub struct PlanCache {
    plans: HashMap<u32, SourceBlockEncodingPlan>,
    order: VecDeque<u32>,
}

impl std::fmt::Debug for PlanCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PlanCache({} plans)", self.plans.len())
    }
}

impl PlanCache {
    fn get(&mut self, k: u32) -> Result<&SourceBlockEncodingPlan> {
        if !self.plans.contains_key(&k) {
            let k16 = u16::try_from(k).map_err(|_| Error::Fec(format!("K = {k} too large")))?;
            let plan = catch_unwind(|| SourceBlockEncodingPlan::generate(k16))
                .map_err(|_| Error::Fec(format!("raptorq panicked generating the plan for K = {k}")))?;
            if self.order.len() >= PLAN_CACHE
                && let Some(old) = self.order.pop_front()
            {
                self.plans.remove(&old);
            }
            self.order.push_back(k);
            self.plans.insert(k, plan);
        }
        self.plans.get(&k).ok_or_else(|| Error::Fec("plan cache".into()))
    }
}

/// One block ready to give out symbols.
pub struct BlockEncoder {
    g: BlockGeometry,
    t: usize,
    /// The block's bytes padded to K·T.
    padded: Vec<u8>,
    enc: Option<SourceBlockEncoder>,
}

impl std::fmt::Debug for BlockEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockEncoder").field("g", &self.g).finish()
    }
}

impl BlockEncoder {
    /// Prepares block `g` of `batch`. `need_repair` false skips the RaptorQ
    /// precomputation (an attempt-1 pass with R = 0 needs none).
    pub fn new(batch: &[u8], g: BlockGeometry, t: u16, plans: &mut PlanCache, need_repair: bool) -> Result<Self> {
        let src = batch.get(g.offset..g.offset + g.len).ok_or_else(|| Error::Fec("block outside the batch".into()))?;
        let mut padded = Vec::with_capacity(g.k as usize * usize::from(t));
        padded.extend_from_slice(src);
        padded.resize(g.k as usize * usize::from(t), 0);
        let enc = if need_repair {
            let plan = plans.get(g.k)?;
            let cfg = oti(g.k, t);
            Some(
                catch_unwind(AssertUnwindSafe(|| SourceBlockEncoder::with_encoding_plan(0, &cfg, &padded, plan)))
                    .map_err(|_| Error::Fec(format!("raptorq panicked encoding a block of K = {}", g.k)))?,
            )
        } else {
            None
        };
        Ok(BlockEncoder { g, t: usize::from(t), padded, enc })
    }

    /// The block's geometry.
    pub fn geometry(&self) -> &BlockGeometry {
        &self.g
    }

    /// Writes the symbol with this ESI into `out` (T bytes appended).
    pub fn symbol(&self, esi: u32, out: &mut Vec<u8>) -> Result<()> {
        if esi < self.g.k {
            let at = esi as usize * self.t;
            let s = self.padded.get(at..at + self.t).ok_or_else(|| Error::Fec("source symbol".into()))?;
            out.extend_from_slice(s);
            return Ok(());
        }
        let enc = self.enc.as_ref().ok_or_else(|| Error::Fec("repair symbol without an encoder".into()))?;
        let mut pk = enc.repair_packets(esi - self.g.k, 1);
        let p = pk.pop().ok_or_else(|| Error::Fec("raptorq gave no repair symbol".into()))?;
        if p.data().len() != self.t {
            return Err(Error::Fec("repair symbol of the wrong size".into()));
        }
        out.extend_from_slice(p.data());
        Ok(())
    }
}

/// What adding a symbol did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Added {
    /// Kept.
    New,
    /// ESI already held, or enough held.
    Duplicate,
}

/// The receiver's state of one block.
pub struct BlockCollector {
    k: u32,
    t: u16,
    esis: HashSet<u32>,
    /// Symbols not yet handed to the decoder.
    pending: Vec<EncodingPacket>,
    /// Created at the first attempt; RaptorQ keeps what it was given.
    decoder: Option<Box<SourceBlockDecoder>>,
    failed: bool,
    next_try: u32,
}

impl std::fmt::Debug for BlockCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlockCollector(k {}, held {})", self.k, self.esis.len())
    }
}

/// Outcome of [`BlockCollector::try_decode`].
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// Not enough symbols yet (or RaptorQ wants more).
    NotYet,
    /// The block's K·T bytes.
    Done(Vec<u8>),
    /// RaptorQ panicked or could not decode with K + MAX_EXTRA symbols.
    Failed,
}

impl BlockCollector {
    /// An empty collector for a block of K symbols of T bytes.
    pub fn new(k: u32, t: u16) -> Self {
        BlockCollector { k, t, esis: HashSet::new(), pending: Vec::new(), decoder: None, failed: false, next_try: k }
    }

    /// Distinct symbols held.
    pub fn held(&self) -> u32 {
        self.esis.len() as u32
    }

    /// K.
    pub fn k(&self) -> u32 {
        self.k
    }

    /// Adds a symbol (exactly T bytes, ESI < 2²⁴: the caller checked both).
    pub fn add(&mut self, esi: u32, symbol: &[u8]) -> Added {
        if self.failed
            || self.held() >= self.k + MAX_EXTRA
            || symbol.len() != usize::from(self.t)
            || esi >= crate::wire::MAX_ESI
            || !self.esis.insert(esi)
        {
            return Added::Duplicate;
        }
        self.pending.push(EncodingPacket::new(PayloadId::new(0, esi), symbol.to_vec()));
        Added::New
    }

    /// Decodes when enough symbols are held (K, then K + 2, K + 4 …).
    pub fn try_decode(&mut self) -> Decoded {
        if self.failed {
            return Decoded::Failed;
        }
        if self.held() < self.next_try {
            return Decoded::NotYet;
        }
        let (k, t) = (self.k, self.t);
        let dec = self.decoder.take();
        let packets = std::mem::take(&mut self.pending);
        let attempt = catch_unwind(AssertUnwindSafe(move || {
            let mut dec = match dec {
                Some(d) => d,
                None => Box::new(SourceBlockDecoder::new(0, &oti(k, t), u64::from(k) * u64::from(t))),
            };
            let out = dec.decode(packets);
            (out, dec)
        }));
        match attempt {
            Ok((Some(bytes), _)) if bytes.len() == k as usize * usize::from(t) => Decoded::Done(bytes),
            Ok((None, dec)) if self.held() < k + MAX_EXTRA => {
                self.decoder = Some(dec);
                self.next_try = self.held() + 2;
                Decoded::NotYet
            }
            _ => {
                self.failed = true;
                self.pending = Vec::new();
                Decoded::Failed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::LinkSettings;

    fn settings(t: u16, kmax: u16) -> LinkSettings {
        LinkSettings {
            node_id: "n".into(),
            mtu: 9000,
            symbol_size: t,
            block_symbols: kmax,
            repair_ppm: 100_000,
            repair_extra: 2,
        }
    }

    fn symbols(enc: &BlockEncoder, attempt: u32) -> Vec<(u32, Vec<u8>)> {
        let g = *enc.geometry();
        (0..g.k + g.r)
            .map(|j| {
                let esi = esi_of(&g, attempt, j);
                let mut v = Vec::new();
                enc.symbol(esi, &mut v).unwrap();
                (esi, v)
            })
            .collect()
    }

    #[test]
    fn round_trip_with_loss_and_passes() {
        let s = settings(64, 100);
        let batch: Vec<u8> = (0..15_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut plans = PlanCache::default();
        for b in 0..s.block_count(batch.len()) {
            let g = s.block(batch.len(), b).unwrap();
            let enc = BlockEncoder::new(&batch, g, 64, &mut plans, true).unwrap();
            let p1 = symbols(&enc, 1);
            let p2 = symbols(&enc, 2);
            let esis: HashSet<u32> = p1.iter().chain(p2.iter()).map(|x| x.0).collect();
            assert_eq!(esis.len(), p1.len() + p2.len(), "fresh symbols every pass");
            // lose 60 % of each pass: neither alone suffices, both merged do
            let mut c = BlockCollector::new(g.k, 64);
            let mut out = Decoded::NotYet;
            for (i, (esi, sym)) in p1.iter().chain(p2.iter()).enumerate() {
                if i % 5 < 3 && i < p1.len() || i % 5 >= 3 && i >= p1.len() {
                    continue;
                }
                c.add(*esi, sym);
                out = c.try_decode();
                if matches!(out, Decoded::Done(_)) {
                    break;
                }
            }
            let Decoded::Done(bytes) = out else { panic!("block {b} not decoded: {out:?}") };
            assert_eq!(&bytes[..g.len], &batch[g.offset..g.offset + g.len]);
            assert!(bytes[g.len..].iter().all(|&x| x == 0));
        }
    }

    #[test]
    fn duplicates_and_wrong_sizes_are_ignored() {
        let mut c = BlockCollector::new(3, 64);
        assert_eq!(c.add(0, &[1; 64]), Added::New);
        assert_eq!(c.add(0, &[1; 64]), Added::Duplicate);
        assert_eq!(c.add(1, &[1; 63]), Added::Duplicate);
        assert_eq!(c.add(crate::wire::MAX_ESI, &[1; 64]), Added::Duplicate);
        assert_eq!(c.try_decode(), Decoded::NotYet);
    }

    #[test]
    fn garbage_symbols_do_not_panic() {
        // symbols that belong to no encoding: RaptorQ returns something or nothing, never a panic here
        let mut c = BlockCollector::new(10, 64);
        for esi in [0u32, 5, 17, 300, 9999, 16_777_215, 11, 12, 13, 14, 15, 16, 40, 41] {
            c.add(esi, &[esi as u8; 64]);
            let _ = c.try_decode();
        }
    }
}
