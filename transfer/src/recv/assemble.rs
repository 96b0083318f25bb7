//! Batches being reassembled from authenticated data datagrams, with every
//! field checked against the settings and against earlier datagrams, and
//! the receiver's memory bounded (PROTOCOL.md §3 "Receiver").
//!
//! ```text
//!  DataHead + symbol ─▶ len ≤ max, block < blocks(len), esi < attempt·(K+R)
//!    ─▶ partial[(seq, content id)] (same len, else Inconsistent)
//!    ─▶ block collector ─(≥ K)─▶ RaptorQ ─▶ block bytes
//!    ─▶ all blocks ─▶ trim to len ─▶ Complete(Assembled) (content id checked by the commit thread)
//!  bounds: max_open batches, max_open bytes (oldest abandoned), partial timeout
//! ```

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::fec::{BlockCollector, Decoded};
use crate::settings::LinkSettings;
use crate::wire::{DataHead, Reject};

/// A batch reassembled from the link (or read from the ferry).
#[derive(Clone, Debug)]
pub struct Assembled {
    pub seq: u64,
    pub bytes: Vec<u8>,
    /// SM3(bytes)[0..8] as the datagrams announced it; checked where the
    /// full SM3 is computed (the commit thread), off the link loop.
    pub content_id: [u8; 8],
    /// Sessions whose symbols built it (diode); empty for ferry files.
    pub sessions: Vec<u64>,
}

/// A batch given up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incomplete {
    pub seq: u64,
    pub content_id: [u8; 8],
    pub held: u64,
    pub reason: String,
}

/// What one symbol did.
#[derive(Debug)]
pub enum Outcome {
    Kept,
    Dropped(Reject),
    Complete(Assembled),
    Failed(Incomplete),
}

enum Block {
    Collecting(BlockCollector),
    Done(Vec<u8>),
}

struct Partial {
    len: usize,
    blocks: Vec<Option<Block>>,
    remaining: usize,
    first: Instant,
    last: Instant,
    held: u64,
    sessions: Vec<u64>,
}

/// Limits of the assembler.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_batch: u32,
    pub max_open: usize,
    pub max_bytes: u64,
    pub timeout: Duration,
}

/// All batches being reassembled.
pub struct Assembler {
    s: LinkSettings,
    lim: Limits,
    partials: HashMap<(u64, [u8; 8]), Partial>,
    held: u64,
}

impl std::fmt::Debug for Assembler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Assembler({} open, {} bytes)", self.partials.len(), self.held)
    }
}

impl Assembler {
    pub fn new(s: LinkSettings, lim: Limits) -> Self {
        Assembler { s, lim, partials: HashMap::new(), held: 0 }
    }

    /// Open batches and the bytes they hold.
    pub fn open(&self) -> (usize, u64) {
        (self.partials.len(), self.held)
    }

    /// Sequence numbers being assembled, with the time of their last symbol.
    pub fn in_progress(&self) -> Vec<(u64, Instant)> {
        self.partials.iter().map(|((s, _), p)| (*s, p.last)).collect()
    }

    /// Adds one authenticated symbol.
    pub fn add(
        &mut self,
        h: &DataHead,
        session: u64,
        symbol: &[u8],
        now: Instant,
        evicted: &mut Vec<Incomplete>,
    ) -> Outcome {
        let len = h.batch_len as usize;
        if h.batch_len > self.lim.max_batch {
            return Outcome::Dropped(Reject::Malformed);
        }
        let Some(g) = self.s.block(len, usize::from(h.block)) else { return Outcome::Dropped(Reject::Malformed) };
        if u64::from(h.esi) >= u64::from(h.attempt) * (u64::from(g.k) + u64::from(g.r)) {
            return Outcome::Dropped(Reject::Malformed);
        }
        let key = (h.seq, h.content_id);
        if !self.partials.contains_key(&key) {
            self.make_room(len as u64, evicted);
            let blocks = self.s.block_count(len);
            let mut v = Vec::with_capacity(blocks);
            v.resize_with(blocks, || None);
            self.partials.insert(
                key,
                Partial { len, blocks: v, remaining: blocks, first: now, last: now, held: 0, sessions: Vec::new() },
            );
        }
        let Some(p) = self.partials.get_mut(&key) else { return Outcome::Dropped(Reject::Overload) };
        if p.len != len {
            return Outcome::Dropped(Reject::Inconsistent);
        }
        let Some(slot) = p.blocks.get_mut(usize::from(h.block)) else { return Outcome::Dropped(Reject::Malformed) };
        let t = self.s.symbol_size;
        let block = slot.get_or_insert_with(|| Block::Collecting(BlockCollector::new(g.k, t)));
        let Block::Collecting(c) = block else { return Outcome::Dropped(Reject::Redundant) };
        if c.add(h.esi, symbol) != crate::fec::Added::New {
            return Outcome::Dropped(Reject::Redundant);
        }
        p.last = now;
        if !p.sessions.contains(&session) && p.sessions.len() < 8 {
            p.sessions.push(session);
        }
        let sym = u64::from(t);
        p.held += sym;
        self.held += sym;
        match c.try_decode() {
            Decoded::NotYet => Outcome::Kept,
            Decoded::Done(bytes) => {
                let freed = u64::from(c.held()) * sym;
                let kept = bytes.len() as u64;
                p.held = p.held.saturating_sub(freed) + kept;
                self.held = self.held.saturating_sub(freed) + kept;
                *block = Block::Done(bytes);
                p.remaining -= 1;
                if p.remaining == 0 { self.finish(key) } else { Outcome::Kept }
            }
            Decoded::Failed => {
                let reason = format!("RaptorQ could not decode block {} (K = {})", h.block, g.k);
                Outcome::Failed(self.abandon(key, reason))
            }
        }
    }

    fn finish(&mut self, key: (u64, [u8; 8])) -> Outcome {
        let Some(p) = self.partials.remove(&key) else { return Outcome::Dropped(Reject::Overload) };
        self.held = self.held.saturating_sub(p.held);
        let mut bytes = Vec::with_capacity(p.len);
        for b in p.blocks {
            if let Some(Block::Done(d)) = b {
                let take = (p.len - bytes.len()).min(d.len());
                bytes.extend_from_slice(d.get(..take).unwrap_or_default());
            }
        }
        if bytes.len() != p.len {
            return Outcome::Failed(Incomplete {
                seq: key.0,
                content_id: key.1,
                held: 0,
                reason: "reassembled batch has the wrong length".into(),
            });
        }
        Outcome::Complete(Assembled { seq: key.0, bytes, content_id: key.1, sessions: p.sessions })
    }

    fn abandon(&mut self, key: (u64, [u8; 8]), reason: String) -> Incomplete {
        let held = self.partials.remove(&key).map_or(0, |p| p.held);
        self.held = self.held.saturating_sub(held);
        Incomplete { seq: key.0, content_id: key.1, held, reason }
    }

    fn make_room(&mut self, incoming: u64, evicted: &mut Vec<Incomplete>) {
        while !self.partials.is_empty()
            && (self.partials.len() >= self.lim.max_open
                || self.held + incoming.min(self.lim.max_bytes / 4) > self.lim.max_bytes)
        {
            let Some(oldest) = self.partials.iter().min_by_key(|(_, p)| p.last).map(|(k, _)| *k) else { break };
            evicted.push(self.abandon(oldest, "receiver memory limit: oldest open batch abandoned".into()));
        }
    }

    /// Abandons batches without a symbol for the timeout.
    pub fn expire(&mut self, now: Instant) -> Vec<Incomplete> {
        let old: Vec<_> = self
            .partials
            .iter()
            .filter(|(_, p)| now.duration_since(p.last) >= self.lim.timeout)
            .map(|(k, _)| *k)
            .collect();
        old.into_iter().map(|k| self.abandon(k, format!("no symbol for {} s", self.lim.timeout.as_secs()))).collect()
    }

    /// Seconds since the first symbol of the oldest open batch (status).
    pub fn oldest_age(&self, now: Instant) -> Option<u64> {
        self.partials.values().map(|p| now.duration_since(p.first).as_secs()).max()
    }
}
