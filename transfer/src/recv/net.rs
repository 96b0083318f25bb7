//! The receiver's link loop: every datagram through the checks of
//! PROTOCOL.md §2 in their order, symbols into the assembler, and events
//! (assembled batches, heartbeats, manifests, failures) out to a sink. It
//! holds a [`LinkRx`], which cannot send.
//!
//! ```text
//!  LinkRx::recv_many (≤ 32 per system call)
//!        ─▶ each: precheck (length, magic) ─▶ data of a done batch? drop ─▶ key id
//!        ─▶ MACs of the batch per key ─▶ each, in order: MAC ok? ─▶ replay window
//!        ─▶ data: settings ok? ─▶ Assembler ─▶ Event::Assembled / Event::Incomplete
//!        ─▶ heartbeat: digest = own? ─▶ Event::Heartbeat      manifest ─▶ Event::Manifest
//!  NetStats: a counter per drop reason, datagrams, bytes (atomics, read by status)
//! ```

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::assemble::{Assembled, Assembler, Incomplete, Limits, Outcome};
use super::window::Sessions;
use crate::link::{LinkRx, RecvBatch};
use crate::settings::LinkSettings;
use crate::wire::{
    DataHead, HEADER_LEN, Header, Heartbeat, KeyRing, Kind, MAC_LEN, ManifestEntry, ManifestPart, Reject,
    manifest_capacity, peek_batch_id, precheck,
};

/// Batches done with, by (seq, content id): later symbols of them are dropped before their MAC.
#[derive(Debug, Default)]
pub struct DoneSet {
    set: HashSet<(u64, [u8; 8])>,
    order: VecDeque<(u64, [u8; 8])>,
}

/// Entries kept in the done set.
const DONE_CAP: usize = 200_000;

impl DoneSet {
    pub fn insert(&mut self, id: (u64, [u8; 8])) {
        if self.set.insert(id) {
            self.order.push_back(id);
            if self.order.len() > DONE_CAP
                && let Some(old) = self.order.pop_front()
            {
                self.set.remove(&old);
            }
        }
    }
    pub fn contains(&self, id: &(u64, [u8; 8])) -> bool {
        self.set.contains(id)
    }
}

/// Shared, lock-free counters of the link loop.
#[derive(Debug, Default)]
pub struct NetStats {
    pub drops: [AtomicU64; Reject::ALL.len()],
    pub datagrams: AtomicU64,
    pub accepted: AtomicU64,
    pub bytes: AtomicU64,
    pub symbols: AtomicU64,
    pub open_batches: AtomicU64,
    pub open_bytes: AtomicU64,
    /// Unix ms when the last authenticated heartbeat arrived (0: none yet).
    pub last_heartbeat_ms: AtomicU64,
    /// Its interval, ms.
    pub heartbeat_interval_ms: AtomicU64,
}

impl NetStats {
    fn count(&self, d: Reject) {
        if let Some(c) = self.drops.get(d.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counters by reason name.
    pub fn drops_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for d in Reject::ALL {
            let n = self.drops.get(d.index()).map_or(0, |c| c.load(Ordering::Relaxed));
            m.insert(d.as_str().into(), n.into());
        }
        serde_json::Value::Object(m)
    }
}

/// What the link loop reports.
#[derive(Debug)]
pub enum Event {
    Assembled(Assembled),
    Incomplete(Incomplete),
    SessionSeen { session: u64 },
    Heartbeat { session: u64, hb: Heartbeat, own_digest: Option<[u8; 32]>, key_id: u32 },
    Manifest { session: u64, entries: Vec<ManifestEntry> },
}

/// The link loop's fixed inputs.
#[derive(Debug)]
pub struct LinkParams {
    pub settings: LinkSettings,
    pub keys: KeyRing,
    pub limits: Limits,
}

/// Receives until `stop`; every event goes to `sink`.
pub fn run(
    mut link: Box<dyn LinkRx>,
    p: LinkParams,
    done: Arc<Mutex<DoneSet>>,
    stats: Arc<NetStats>,
    stop: Arc<AtomicBool>,
    mut sink: impl FnMut(Event),
) -> std::io::Result<()> {
    let mut st = LinkState::new(p, done, stats);
    let mut batch = RecvBatch::new(st.max_len + 1);
    let mut last_expire = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if link.recv_many(&mut batch)? > 0 {
            let ds: Vec<&[u8]> = batch.datagrams().collect();
            st.handle_many(&ds, Instant::now(), &mut sink);
        }
        if last_expire.elapsed() >= Duration::from_millis(500) {
            last_expire = Instant::now();
            for inc in st.asm.expire(last_expire) {
                sink(Event::Incomplete(inc));
            }
            st.publish();
        }
    }
    Ok(())
}

/// Everything the link loop keeps.
pub struct LinkState {
    p: LinkParams,
    max_len: usize,
    capacity: usize,
    sessions: Sessions,
    pub asm: Assembler,
    done: Arc<Mutex<DoneSet>>,
    stats: Arc<NetStats>,
    evicted: Vec<Incomplete>,
}

impl std::fmt::Debug for LinkState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LinkState({:?})", self.asm)
    }
}

impl LinkState {
    pub fn new(p: LinkParams, done: Arc<Mutex<DoneSet>>, stats: Arc<NetStats>) -> Self {
        LinkState {
            max_len: p.settings.datagram_len(),
            capacity: manifest_capacity(usize::from(p.settings.symbol_size)),
            asm: Assembler::new(p.settings.clone(), p.limits),
            p,
            sessions: Sessions::default(),
            done,
            stats,
            evicted: Vec::new(),
        }
    }

    fn publish(&self) {
        let (n, b) = self.asm.open();
        self.stats.open_batches.store(n as u64, Ordering::Relaxed);
        self.stats.open_bytes.store(b, Ordering::Relaxed);
    }

    fn is_done(&self, id: &(u64, [u8; 8])) -> bool {
        match self.done.lock() {
            Ok(g) => g.contains(id),
            Err(p) => p.into_inner().contains(id),
        }
    }

    fn mark_done(&self, id: (u64, [u8; 8])) {
        match self.done.lock() {
            Ok(mut g) => g.insert(id),
            Err(p) => p.into_inner().insert(id),
        }
    }

    /// One datagram through every check.
    pub fn handle(&mut self, d: &[u8], now: Instant, sink: &mut impl FnMut(Event)) {
        self.handle_many(&[d], now, sink);
    }

    /// Datagrams through every check, in order; the MACs of those that reach
    /// that step are checked together, per key id.
    pub fn handle_many(&mut self, ds: &[&[u8]], now: Instant, sink: &mut impl FnMut(Event)) {
        self.stats.datagrams.fetch_add(ds.len() as u64, Ordering::Relaxed);
        let mut heads: Vec<Result<Header, Reject>> = ds.iter().map(|d| self.before_mac(d)).collect();
        let mut ids: Vec<u32> = heads.iter().filter_map(|h| h.as_ref().ok().map(|h| h.key_id)).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut verdicts = Vec::with_capacity(ds.len());
        for id in ids {
            let Some(key) = self.p.keys.get(id) else { continue };
            let idx: Vec<usize> = heads
                .iter()
                .enumerate()
                .filter(|(_, h)| h.as_ref().is_ok_and(|h| h.key_id == id))
                .map(|(i, _)| i)
                .collect();
            let pairs: Vec<(&[u8], &[u8])> =
                idx.iter().filter_map(|&i| ds.get(i)).map(|d| d.split_at(d.len().saturating_sub(MAC_LEN))).collect();
            verdicts.clear();
            key.verify_many(&pairs, &mut verdicts);
            for (&i, ok) in idx.iter().zip(&verdicts) {
                if let (false, Some(h)) = (*ok, heads.get_mut(i)) {
                    *h = Err(Reject::BadMac);
                }
            }
        }
        for (d, h) in ds.iter().zip(heads) {
            if let Err(drop) = h.and_then(|h| self.after_mac(d, h, now, sink)) {
                self.stats.count(drop);
            }
        }
    }

    /// Steps before the MAC: length, magic, a symbol of a batch already done, a known key id.
    fn before_mac(&self, d: &[u8]) -> Result<Header, Reject> {
        let h = precheck(d, self.max_len)?;
        if h.kind == Kind::Data
            && let Some(id) = peek_batch_id(d)
            && self.is_done(&id)
        {
            return Err(Reject::Redundant);
        }
        self.p.keys.get(h.key_id).ok_or(Reject::UnknownKey)?;
        Ok(h)
    }

    /// Everything after a good MAC.
    fn after_mac(&mut self, d: &[u8], h: Header, now: Instant, sink: &mut impl FnMut(Event)) -> Result<(), Reject> {
        let body = d.get(HEADER_LEN..d.len().saturating_sub(MAC_LEN)).ok_or(Reject::Short)?;
        // authenticated from here on; a batch may have completed earlier in this receive batch
        if h.kind == Kind::Data
            && let Some(id) = peek_batch_id(d)
            && self.is_done(&id)
        {
            return Err(Reject::Redundant);
        }
        let new = self.sessions.accept(h.session, h.number, now).ok_or(Reject::Replayed)?;
        if new {
            sink(Event::SessionSeen { session: h.session });
        }
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        self.stats.bytes.fetch_add(d.len() as u64, Ordering::Relaxed);
        match h.kind {
            Kind::Data => {
                if self.sessions.mismatched(h.session) {
                    return Err(Reject::SettingsMismatch);
                }
                let (dh, symbol) = DataHead::parse(body, usize::from(self.p.settings.symbol_size))?;
                let out = self.asm.add(&dh, h.session, symbol, now, &mut self.evicted);
                for inc in self.evicted.drain(..) {
                    sink(Event::Incomplete(inc));
                }
                match out {
                    Outcome::Kept => {
                        self.stats.symbols.fetch_add(1, Ordering::Relaxed);
                    }
                    Outcome::Dropped(d) => return Err(d),
                    Outcome::Complete(a) => {
                        self.stats.symbols.fetch_add(1, Ordering::Relaxed);
                        self.mark_done((dh.seq, dh.content_id));
                        self.publish();
                        sink(Event::Assembled(a));
                    }
                    Outcome::Failed(inc) => sink(Event::Incomplete(inc)),
                }
            }
            Kind::Heartbeat => {
                let hb = Heartbeat::parse(body)?;
                self.stats.last_heartbeat_ms.store(crate::now_ms(), Ordering::Relaxed);
                self.stats.heartbeat_interval_ms.store(u64::from(hb.interval_ms), Ordering::Relaxed);
                let own = self.p.keys.get(h.key_id).map(|k| self.p.settings.digest(k.id()));
                let ok = own == Some(hb.digest);
                if let Some(s) = self.sessions.get_mut(h.session) {
                    s.settings_ok = Some(ok);
                }
                sink(Event::Heartbeat { session: h.session, hb, own_digest: own, key_id: h.key_id });
            }
            Kind::Manifest => {
                let part = ManifestPart::parse(body, self.capacity)?;
                sink(Event::Manifest { session: h.session, entries: part.entries });
            }
        }
        Ok(())
    }
}
