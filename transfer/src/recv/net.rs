//! The receiver's link loop: every datagram through the checks of
//! PROTOCOL.md §2 in their order, symbols into the assembler, and events
//! (assembled batches, heartbeats, manifests, failures) out to a sink. It
//! holds a [`LinkRx`], which cannot send.
//!
//! ```text
//!  LinkRx ─▶ precheck (length, magic) ─▶ data of a done batch? drop ─▶ key id ─▶ MAC ─▶ replay window
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
use crate::link::LinkRx;
use crate::settings::LinkSettings;
use crate::wire::{
    DataHead, Heartbeat, KeyRing, Kind, ManifestEntry, ManifestPart, Reject, authenticate, manifest_capacity,
    peek_batch_id, precheck,
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
    let mut buf = vec![0u8; 65_536];
    let mut last_expire = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if let Some(n) = link.recv(&mut buf)? {
            st.handle(buf.get(..n).unwrap_or_default(), Instant::now(), &mut sink);
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
        self.stats.datagrams.fetch_add(1, Ordering::Relaxed);
        if let Err(drop) = self.check(d, now, sink) {
            self.stats.count(drop);
        }
    }

    fn check(&mut self, d: &[u8], now: Instant, sink: &mut impl FnMut(Event)) -> Result<(), Reject> {
        let h = precheck(d, self.max_len)?;
        if h.kind == Kind::Data
            && let Some(id) = peek_batch_id(d)
            && self.is_done(&id)
        {
            return Err(Reject::Redundant);
        }
        let key = self.p.keys.get(h.key_id).ok_or(Reject::UnknownKey)?;
        let body = authenticate(d, key)?;
        // authenticated from here on
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
