//! What the receiver watches besides batches: sessions, heartbeats (missed,
//! resumed, settings), manifests, gaps, dropped datagrams; and the status
//! it shows.
//!
//! ```text
//!  Event::SessionSeen ─▶ session.seen        Event::Heartbeat ─▶ settings.mismatch / match, gaps.through
//!  Event::Manifest ─▶ gaps.listed            Event::Incomplete ─▶ batch.incomplete
//!  tick (1 s) ─▶ gap.opened / gap.closed, heartbeat.missed / resumed, link.rejected (≤ 1 a minute)
//! ```

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::json;

use super::RecvSummary;
use super::commit::Verdict;
use super::gaps::{Gaps, count};
use super::net::{Event, NetStats};
use super::state::RecvState;
use crate::audit::Audit;
use crate::config::{Mode, RecvConfig};
use crate::error::Result;
use crate::wire::{Heartbeat, Reject};

/// Heartbeat intervals without one before `heartbeat.missed`.
const MISSED_AFTER: u32 = 3;

#[derive(Debug)]
struct LastHeartbeat {
    at: Instant,
    session: u64,
    hb: Heartbeat,
}

/// The receiver's watch state.
#[derive(Debug)]
pub struct Watch {
    pub gaps: Gaps,
    pub sum: RecvSummary,
    mode: Mode,
    start_ms: u64,
    last: Option<LastHeartbeat>,
    /// Unix ms of the last heartbeat before a silence.
    missed_since: Option<u64>,
    missed_events: u64,
    settings_ok: HashMap<u64, bool>,
    last_rejected: Instant,
    journaled_drops: Vec<u64>,
    /// Whether any drop was journaled yet (the first is journaled at once, later ones at most once a minute).
    drops_journaled: bool,
    heartbeats: u64,
    manifests: u64,
}

impl Watch {
    pub fn new(cfg: &RecvConfig) -> Self {
        Watch {
            gaps: Gaps::new(cfg.first_seq, Duration::from_secs(cfg.gap_grace_secs)),
            sum: RecvSummary::default(),
            mode: cfg.mode,
            start_ms: crate::now_ms(),
            last: None,
            missed_since: None,
            missed_events: 0,
            settings_ok: HashMap::new(),
            last_rejected: Instant::now(),
            journaled_drops: vec![0; Reject::ALL.len()],
            drops_journaled: false,
            heartbeats: 0,
            manifests: 0,
        }
    }

    /// Counts a commit verdict.
    pub fn count(&mut self, v: &Verdict) {
        match v {
            Verdict::Received { quarantined_records } => {
                self.sum.received += 1;
                self.sum.records_quarantined += *quarantined_records as u64;
            }
            Verdict::Duplicate => self.sum.duplicates += 1,
            Verdict::Rejected(_) => self.sum.rejected += 1,
        }
    }

    /// Handles a non-batch event from the link.
    pub fn event(&mut self, e: Event, audit: &mut Audit) -> Result<()> {
        let now = Instant::now();
        match e {
            Event::Assembled(_) => {}
            Event::SessionSeen { session } => {
                audit.record("session.seen", json!({"session": format!("{session:016x}")}))?;
            }
            Event::Heartbeat { session, hb, own_digest, key_id } => {
                self.heartbeats += 1;
                let ok = own_digest == Some(hb.digest);
                if self.settings_ok.get(&session) != Some(&ok) {
                    let first = !self.settings_ok.contains_key(&session);
                    self.settings_ok.insert(session, ok);
                    if !ok {
                        audit.record(
                            "settings.mismatch",
                            json!({"session": format!("{session:016x}"), "key_id": key_id,
                                   "sender_digest": hex::encode(hb.digest), "own_digest": own_digest.map(hex::encode),
                                   "sender": {"mtu": hb.mtu, "symbol_size": hb.symbol_size, "block_symbols": hb.block_symbols,
                                              "repair_ppm": hb.repair_ppm, "repair_extra": hb.repair_extra}}),
                        )?;
                        tracing::error!(session = format!("{session:016x}"), "sender settings differ from recv.toml");
                    } else if !first {
                        audit.record("settings.match", json!({"session": format!("{session:016x}")}))?;
                    }
                }
                if ok {
                    self.gaps.through(hb.sent_through, now);
                }
                self.last = Some(LastHeartbeat { at: now, session, hb });
            }
            Event::Manifest { session, entries } => {
                self.manifests += 1;
                if self.settings_ok.get(&session) != Some(&false) {
                    for en in entries {
                        self.gaps.listed(en.seq, now);
                    }
                }
            }
            Event::Incomplete(inc) => {
                self.sum.incomplete += 1;
                audit.record(
                    "batch.incomplete",
                    json!({"seq": inc.seq, "content_id": hex::encode(inc.content_id), "held_bytes": inc.held,
                           "reason": inc.reason}),
                )?;
            }
        }
        Ok(())
    }

    /// Once a second: gaps, missed heartbeats, dropped datagrams.
    pub fn tick(&mut self, state: &RecvState, stats: &NetStats, audit: &mut Audit) -> Result<()> {
        let now = Instant::now();
        let (opened, closed) = self.gaps.update(&state.received, now);
        if !opened.is_empty() {
            audit.record("gap.opened", json!({"ranges": opened, "batches": count(&opened)}))?;
        }
        if !closed.is_empty() {
            audit.record("gap.closed", json!({"ranges": closed, "batches": count(&closed)}))?;
        }
        if self.mode == Mode::Diode {
            // arrival times come from the link thread, so a busy commit does not look like silence
            let last_ms = stats.last_heartbeat_ms.load(Ordering::Relaxed);
            let interval = stats.heartbeat_interval_ms.load(Ordering::Relaxed).max(100);
            let now_ms = crate::now_ms();
            let since_ms = if last_ms == 0 { self.start_ms } else { last_ms };
            let silent = now_ms.saturating_sub(since_ms);
            match self.missed_since {
                None if silent > interval * u64::from(MISSED_AFTER) => {
                    self.missed_since = Some(since_ms);
                    self.missed_events += 1;
                    audit.record(
                        "heartbeat.missed",
                        json!({"silent_secs": silent / 1000, "ever_heard": last_ms != 0}),
                    )?;
                }
                Some(from) if last_ms > from && silent <= interval * u64::from(MISSED_AFTER) => {
                    self.missed_since = None;
                    let gap = last_ms.saturating_sub(from);
                    audit.record("heartbeat.resumed", json!({"silent_secs": gap / 1000, "missed": gap / interval}))?;
                }
                _ => {}
            }
        }
        if self.last_rejected.elapsed() >= Duration::from_secs(60) || !self.drops_journaled {
            self.journal_drops(stats, audit)?;
        }
        Ok(())
    }

    /// Journals the dropped-datagram counters that grew (all but `redundant`).
    pub fn journal_drops(&mut self, stats: &NetStats, audit: &mut Audit) -> Result<()> {
        self.last_rejected = Instant::now();
        let mut grew = serde_json::Map::new();
        for d in Reject::ALL {
            let now = stats.drops.get(d.index()).map_or(0, |c| c.load(Ordering::Relaxed));
            let before = self.journaled_drops.get(d.index()).copied().unwrap_or(0);
            if d != Reject::Redundant && now > before {
                grew.insert(d.as_str().into(), (now - before).into());
            }
            if let Some(slot) = self.journaled_drops.get_mut(d.index()) {
                *slot = now;
            }
        }
        if !grew.is_empty() {
            audit.record("link.rejected", json!({"dropped": grew}))?;
            self.drops_journaled = true;
        }
        Ok(())
    }

    /// The status value.
    pub fn status(&self, cfg: &RecvConfig, state: &RecvState, stats: &NetStats) -> serde_json::Value {
        let hb = self.last.as_ref().map(|l| {
            json!({"age_ms": l.at.elapsed().as_millis() as u64, "session": format!("{:016x}", l.session),
                   "latest_seq": l.hb.latest_seq, "sent_through": l.hb.sent_through, "queue_depth": l.hb.queue_depth,
                   "passes": l.hb.passes, "settings_match": self.settings_ok.get(&l.session)})
        });
        json!({
            "role": "receiver", "pid": std::process::id(), "time_ms": crate::now_ms(), "mode": cfg.mode.as_str(),
            "node": cfg.link.node_id, "last_received_seq": state.received.keys().next_back(),
            "batches_received_total": state.received.len(), "this_run": &self.sum,
            "open_gaps": &self.gaps.open, "open_gap_batches": count(&self.gaps.open),
            "resend_hint": self.gaps.open.iter().map(|(a, b)| format!("--seq {a}..{b}")).collect::<Vec<_>>(),
            "heartbeat": hb, "heartbeats": self.heartbeats, "heartbeats_missed_events": self.missed_events,
            "heartbeat_silent": self.missed_since.is_some(), "manifests": self.manifests,
            "datagrams": stats.datagrams.load(Ordering::Relaxed), "accepted": stats.accepted.load(Ordering::Relaxed),
            "bytes": stats.bytes.load(Ordering::Relaxed), "symbols": stats.symbols.load(Ordering::Relaxed),
            "open_batches": stats.open_batches.load(Ordering::Relaxed), "open_bytes": stats.open_bytes.load(Ordering::Relaxed),
            "dropped": stats.drops_json(),
        })
    }
}
