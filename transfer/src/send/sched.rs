//! The sender's scheduler: which pass of which batch goes next, what the
//! heartbeat and manifest announce, what is journaled, resend requests,
//! retention and status.
//!
//! ```text
//!  tick (1 s): scan outbox ─▶ latest, queue depth, sent-through, manifest ─▶ Shared
//!              requests/*.json ─▶ resend jobs        retention ─▶ batch.expired
//!  loop: Done ─▶ state log ─▶ batch.sent (N passes) / batch.resent
//!        due job (next pass, pass_gap_ms later) or the lowest seq still owed passes ─▶ queue_pass
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::net::{self, Done, NetParams, Out, Shared};
use super::outbox::{self, FileStamp, LoadOpts, Loaded};
use super::pass::{PassCtx, PassEnd, ferry_copy, queue_pass};
use super::state::SendState;

mod ticks;
use crate::audit::Audit;
use crate::config::{Mode, SendConfig};
use crate::error::{Error, Result};
use crate::fec::PlanCache;
use crate::fsutil::batch_name;
use crate::link::LinkTx;
use crate::wire::MacSigner;

/// Which batches a resend covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Selector {
    /// Sequence numbers from..=to.
    Seq { from: u64, to: u64 },
    /// Batches created at or after this time (unix ms).
    Since { ms: u64 },
}

/// A resend request (also the JSON of `state_dir/requests/*.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub select: Selector,
    pub passes: u8,
}

/// How `run` behaves.
#[derive(Clone, Debug, Default)]
pub struct SendOptions {
    pub stop: Arc<AtomicBool>,
    /// Exit when nothing is owed a pass.
    pub once: bool,
    /// Send only the requests (a `resend` with no sender running).
    pub only_requests: bool,
    pub requests: Vec<(Selector, u8)>,
}

/// What a run did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SendSummary {
    pub session: String,
    pub batches_sent: u64,
    pub passes_sent: u64,
    pub resent: u64,
    pub refused: u64,
    pub datagrams: u64,
    pub bytes: u64,
}

/// Drops a request file for the running sender (atomic write).
pub fn queue_request(state_dir: &std::path::Path, select: Selector, passes: u8) -> Result<PathBuf> {
    let dir = state_dir.join("requests");
    crate::fsutil::ensure_dir(&dir)?;
    let name = format!("resend-{}-{}.json", crate::now_ms(), crate::fsutil::random_hex::<4>()?);
    let body = serde_json::to_vec(&Request { select, passes }).map_err(|e| Error::State(e.to_string()))?;
    crate::fsutil::write_atomic(&dir, &name, &body)?;
    Ok(dir.join(name))
}

struct Job {
    due: Instant,
    seq: u64,
    resend: bool,
}

struct Sched {
    cfg: SendConfig,
    opts: SendOptions,
    state: SendState,
    audit: Audit,
    shared: Arc<Shared>,
    key: MacSigner,
    session: u64,
    plans: PlanCache,
    outbox: BTreeMap<u64, PathBuf>,
    refused: BTreeMap<u64, String>,
    cache: VecDeque<Loaded>,
    /// The SM3 of each outbox file as last read, with its stamp.
    digests: HashMap<u64, (FileStamp, [u8; 32])>,
    meta: HashMap<u64, (serde_json::Value, u64)>,
    jobs: VecDeque<Job>,
    /// Passes queued and not yet reported sent, by seq.
    in_flight: HashMap<u64, u32>,
    /// Resend passes still to queue, and queued-but-unreported, by seq.
    resend_left: HashMap<u64, (u8, u8, u8)>,
    sum: SendSummary,
    last_tick: Instant,
}

pub(super) fn run(cfg: SendConfig, link: Option<Box<dyn LinkTx>>, opts: SendOptions) -> Result<SendSummary> {
    let key = MacSigner::new(&cfg.mac_key).ok_or_else(|| Error::Config("MAC key".into()))?;
    let session = loop {
        let s = u64::from_be_bytes(flumon_shared::crypto::random_array()?);
        if s != 0 {
            break s;
        }
    };
    let state = SendState::open(&cfg.state_dir)?;
    let journal_key = flumon_shared::crypto::Sm2PrivateKey::from_pkcs8_der(&cfg.journal_key.to_pkcs8_der()?)?;
    let mut audit = Audit::open(&cfg.journal, journal_key)?;
    audit.record(
        "sender.start",
        json!({"session": format!("{session:016x}"), "mode": cfg.mode.as_str(), "passes": cfg.diode.passes,
               "settings_digest": hex::encode(cfg.link.digest(key.id())), "key_id": key.id(),
               "only_requests": opts.only_requests}),
    )?;
    let shared = Arc::new(Shared::default());
    let (out_tx, out_rx) = mpsc::sync_channel::<Out>(32);
    let (done_tx, done_rx) = mpsc::channel::<Done>();
    let net = match (cfg.mode, link) {
        (Mode::Diode, Some(link)) => {
            let p = NetParams {
                settings: cfg.link.clone(),
                key: key.clone(),
                session,
                session_start_ms: crate::now_ms(),
                passes: cfg.diode.passes,
                rate_bytes: cfg.diode.rate_bytes,
                burst_bytes: cfg.diode.burst_bytes,
                heartbeat_ms: cfg.diode.heartbeat_ms,
                manifest_secs: cfg.diode.manifest_secs,
                stop: opts.stop.clone(),
            };
            let sh = shared.clone();
            Some(
                std::thread::Builder::new()
                    .name("send-net".into())
                    .spawn(move || net::run(link, p, sh, out_rx, done_tx))?,
            )
        }
        (Mode::Diode, None) => return Err(Error::Usage("diode mode needs a link".into())),
        (Mode::Ferry, _) => None,
    };
    let mut s = Sched {
        opts,
        state,
        audit,
        shared,
        key,
        session,
        plans: PlanCache::default(),
        outbox: BTreeMap::new(),
        refused: BTreeMap::new(),
        cache: VecDeque::new(),
        digests: HashMap::new(),
        meta: HashMap::new(),
        jobs: VecDeque::new(),
        in_flight: HashMap::new(),
        resend_left: HashMap::new(),
        sum: SendSummary { session: format!("{session:016x}"), ..SendSummary::default() },
        last_tick: Instant::now() - Duration::from_secs(10),
        cfg,
    };
    let result = s.main_loop(&out_tx, &done_rx);
    drop(out_tx);
    if let Some(h) = net {
        let _ = h.join();
    }
    while let Ok(d) = done_rx.try_recv() {
        s.on_done(d)?;
    }
    s.state.sync()?;
    s.sum.datagrams = s.shared.datagrams.load(Ordering::Relaxed);
    s.sum.bytes = s.shared.bytes.load(Ordering::Relaxed);
    s.write_status()?;
    let stop = json!({"session": s.sum.session, "batches_sent": s.sum.batches_sent, "passes": s.sum.passes_sent,
                      "resent": s.sum.resent, "datagrams": s.sum.datagrams, "bytes": s.sum.bytes,
                      "error": result.as_ref().err().map(|e| e.to_string())});
    s.audit.record("sender.stop", stop)?;
    s.audit.checkpoint()?;
    result.map(|()| s.sum.clone())
}

impl Sched {
    fn main_loop(&mut self, out: &SyncSender<Out>, done: &Receiver<Done>) -> Result<()> {
        for (sel, passes) in std::mem::take(&mut self.opts.requests) {
            self.tick()?;
            self.add_resend(&sel, passes, "operator (direct)")?;
        }
        loop {
            while let Ok(d) = done.try_recv() {
                self.on_done(d)?;
            }
            if self.last_tick.elapsed() >= Duration::from_secs(1) {
                self.tick()?;
            }
            if self.opts.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            match self.next_job() {
                Some(job) => self.run_job(job, out)?,
                None => {
                    if self.opts.once && self.jobs.is_empty() && self.in_flight.is_empty() && self.owed().is_none() {
                        return Ok(());
                    }
                    let wait = self
                        .jobs
                        .iter()
                        .map(|j| j.due.saturating_duration_since(Instant::now()))
                        .min()
                        .unwrap_or(Duration::from_millis(100))
                        .min(Duration::from_millis(100));
                    match done.recv_timeout(wait) {
                        Ok(d) => self.on_done(d)?,
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) if self.cfg.mode == Mode::Diode => {
                            return Err(Error::Usage("the send thread stopped".into()));
                        }
                        Err(RecvTimeoutError::Disconnected) => std::thread::sleep(wait),
                    }
                }
            }
        }
    }

    /// The lowest batch in the outbox still owed a normal pass and not scheduled.
    fn owed(&self) -> Option<u64> {
        if self.opts.only_requests {
            return None;
        }
        let passes = self.passes();
        self.outbox.keys().copied().find(|seq| {
            !self.refused.contains_key(seq)
                && !self.in_flight.contains_key(seq)
                && !self.jobs.iter().any(|j| j.seq == *seq)
                && self.state.batches.get(seq).is_none_or(|b| b.passes < passes)
        })
    }

    fn passes(&self) -> u32 {
        if self.cfg.mode == Mode::Ferry { 1 } else { u32::from(self.cfg.diode.passes) }
    }

    fn next_job(&mut self) -> Option<Job> {
        let now = Instant::now();
        if let Some(i) = self.jobs.iter().position(|j| j.due <= now) {
            return self.jobs.remove(i);
        }
        self.owed().map(|seq| Job { due: now, seq, resend: false })
    }

    fn loaded(&mut self, seq: u64) -> Result<Option<Loaded>> {
        if let Some(b) = self.cache.iter().find(|b| b.seq == seq) {
            return Ok(Some(b.clone()));
        }
        let Some(path) = self.outbox.get(&seq).cloned() else { return Ok(None) };
        let opts = LoadOpts {
            node: &self.cfg.link.node_id,
            max_batch: self.cfg.max_batch_bytes,
            dmz: self.cfg.check_signatures.then_some(&self.cfg.dmz_public_key),
            known: self.digests.get(&seq).copied(),
        };
        match outbox::load(&path, seq, &opts).map(|(r, stamp)| r.map(|b| (b, stamp))) {
            Ok(Ok((b, stamp))) => {
                // later passes and resends of this very file skip its SM3
                self.digests.insert(seq, (stamp, b.sm3));
                self.meta.insert(seq, (b.counts_json(), b.header.created_ms));
                if self.cache.len() >= 4 {
                    self.cache.pop_front();
                }
                self.cache.push_back(b.clone());
                Ok(Some(b))
            }
            Ok(Err(reason)) => {
                self.refuse(seq, &path, reason)?;
                Ok(None)
            }
            Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn refuse(&mut self, seq: u64, path: &std::path::Path, reason: String) -> Result<()> {
        tracing::warn!(seq, %reason, "batch refused");
        self.audit
            .record("batch.refused", json!({"seq": seq, "file": path.display().to_string(), "reason": reason}))?;
        self.refused.insert(seq, reason);
        self.sum.refused += 1;
        Ok(())
    }

    fn run_job(&mut self, job: Job, out: &SyncSender<Out>) -> Result<()> {
        let Some(b) = self.loaded(job.seq)? else {
            self.resend_left.remove(&job.seq);
            return Ok(());
        };
        let attempt = self.state.batches.get(&job.seq).map_or(0, |x| x.attempts) + 1;
        self.state.start(job.seq, attempt, &b.sm3_hex(), b.bytes.len() as u64)?;
        if self.cfg.mode == Mode::Ferry {
            let dir = self.cfg.ferry_out.clone().ok_or_else(|| Error::Config("ferry_out".into()))?;
            let name = batch_name(&self.cfg.link.node_id, job.seq);
            if let Err(reason) = ferry_copy(&dir, &name, &b)? {
                let path = self.outbox.get(&job.seq).cloned().unwrap_or_default();
                return self.refuse(job.seq, &path, reason);
            }
            *self.in_flight.entry(job.seq).or_insert(0) += 1;
            return self.on_done(Done { seq: job.seq, attempt, resend: job.resend });
        }
        let ctx = PassCtx {
            settings: &self.cfg.link,
            key: &self.key,
            session: self.session,
            shared: &self.shared,
            stop: &self.opts.stop,
        };
        match queue_pass(&ctx, &mut self.plans, &b, attempt, job.resend, out) {
            Ok(PassEnd::Queued) => {}
            Ok(PassEnd::Stopped) => return Ok(()),
            Err(Error::Fec(m)) if m.contains("exhausted") => {
                let path = self.outbox.get(&job.seq).cloned().unwrap_or_default();
                return self.refuse(job.seq, &path, m);
            }
            Err(e) => return Err(e),
        }
        *self.in_flight.entry(job.seq).or_insert(0) += 1;
        let gap = Duration::from_millis(self.cfg.diode.pass_gap_ms);
        let more = if job.resend {
            match self.resend_left.get_mut(&job.seq) {
                Some((left, _, _)) if *left > 0 => {
                    *left -= 1;
                    *left > 0
                }
                _ => false,
            }
        } else {
            let queued = self.in_flight.get(&job.seq).copied().unwrap_or(0);
            self.state.batches.get(&job.seq).map_or(0, |x| x.passes) + queued < self.passes()
        };
        if more {
            self.jobs.push_back(Job { due: Instant::now() + gap, seq: job.seq, resend: job.resend });
        }
        Ok(())
    }

    fn on_done(&mut self, d: Done) -> Result<()> {
        self.state.done(d.seq, d.attempt, d.resend)?;
        self.sum.passes_sent += 1;
        if let Some(n) = self.in_flight.get_mut(&d.seq) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.in_flight.remove(&d.seq);
            }
        }
        self.announce();
        let Some(b) = self.state.batches.get(&d.seq).cloned() else { return Ok(()) };
        let (counts, created) = self.meta.get(&d.seq).cloned().unwrap_or((serde_json::Value::Null, 0));
        let mut detail = json!({"seq": d.seq, "sm3": b.sm3, "size": b.size, "counts": counts, "created_ms": created,
                                "mode": self.cfg.mode.as_str(), "session": self.sum.session});
        if d.resend {
            if let Some((left, total, done)) = self.resend_left.get_mut(&d.seq) {
                *done += 1;
                if *left == 0 && *done >= *total {
                    let passes = *total;
                    self.resend_left.remove(&d.seq);
                    if let Some(m) = detail.as_object_mut() {
                        m.insert("passes".into(), json!(passes));
                        m.insert("reason".into(), json!("operator resend"));
                    }
                    self.audit.record("batch.resent", detail)?;
                    self.sum.resent += 1;
                }
            }
        } else if b.passes == self.passes() {
            if let Some(m) = detail.as_object_mut() {
                m.insert("passes".into(), json!(b.passes));
            }
            self.audit.record("batch.sent", detail)?;
            self.sum.batches_sent += 1;
        }
        Ok(())
    }

    fn add_resend(&mut self, sel: &Selector, passes: u8, why: &str) -> Result<()> {
        let passes = passes.clamp(1, 64);
        let seqs: Vec<u64> = match sel {
            Selector::Seq { from, to } => self.outbox.range(*from..=*to).map(|(s, _)| *s).collect(),
            Selector::Since { ms } => {
                let mut v = Vec::new();
                for seq in self.outbox.keys().copied().collect::<Vec<_>>() {
                    if self.loaded(seq)?.is_some_and(|b| b.header.created_ms >= *ms) {
                        v.push(seq);
                    }
                }
                v
            }
        };
        let missing: Vec<u64> = match sel {
            Selector::Seq { from, to } if to.saturating_sub(*from) < 100_000 => {
                (*from..=*to).filter(|s| !self.outbox.contains_key(s)).collect()
            }
            _ => Vec::new(),
        };
        self.audit.record(
            "resend.requested",
            json!({"select": sel, "passes": passes, "by": why, "batches": seqs.len(), "unavailable": missing}),
        )?;
        for seq in seqs {
            if self.resend_left.contains_key(&seq) || self.refused.contains_key(&seq) {
                continue;
            }
            self.resend_left.insert(seq, (passes, passes, 0));
            self.jobs.push_back(Job { due: Instant::now(), seq, resend: true });
        }
        Ok(())
    }

    fn tick(&mut self) -> Result<()> {
        self.last_tick = Instant::now();
        self.outbox = outbox::scan(&self.cfg.outbox, &self.cfg.link.node_id)?;
        let outbox = &self.outbox;
        self.digests.retain(|seq, _| outbox.contains_key(seq));
        self.announce();
        self.requests()?;
        self.retention()?;
        self.state.sync()?;
        self.audit.tick()?;
        self.write_status()
    }
}
