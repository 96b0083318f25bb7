//! `flumon-transfer recv`: the intranet side. A link thread (diode) or a
//! ferry thread turns what arrives into events; this thread owns the state,
//! the journal and the spool, and takes each batch in or quarantines it.
//!
//! ```text
//!  LinkRx ─▶ net thread (checks, RaptorQ) ─┐                ┌─▶ commit: spool/ | quarantine/
//!  ferry_in/ ─▶ ferry thread (settle, read)─┴▶ [events] ─▶ main ─┼─▶ gaps, heartbeats, settings ─▶ journal
//!                                                                └─▶ status.json (1 s), checkpoint (1 h)
//! ```

mod assemble;
mod commit;
mod ferry;
pub mod gaps;
pub mod net;
mod state;
mod watch;
mod window;

pub use assemble::{Assembled, Incomplete, Limits};
pub use commit::Verdict;
pub use net::{DoneSet, Event, LinkParams, LinkState, NetStats};

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flumon_shared::batch::BatchLimits;
use serde_json::json;

use crate::audit::Audit;
use crate::config::{Mode, RecvConfig};
use crate::error::{Error, Result};
use crate::link::LinkRx;
use crate::wire::KeyRing;
use commit::Committer;
use state::RecvState;
use watch::Watch;

/// How `run` behaves.
#[derive(Clone, Debug, Default)]
pub struct RecvOptions {
    pub stop: Arc<AtomicBool>,
}

/// What reaches the main thread.
#[derive(Debug)]
pub enum Input {
    Net(Event),
    Ferry { seq: u64, path: PathBuf, bytes: Vec<u8> },
    FerryRefused { seq: u64, path: PathBuf, reason: String },
}

/// What a run did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RecvSummary {
    pub received: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub incomplete: u64,
    pub records_quarantined: u64,
    pub open_gaps: Vec<(u64, u64)>,
}

/// Runs the receiver until `opts.stop`.
pub fn run(cfg: RecvConfig, link: Option<Box<dyn LinkRx>>, opts: RecvOptions) -> Result<RecvSummary> {
    for d in [&cfg.spool, &cfg.quarantine, &cfg.state_dir] {
        crate::fsutil::ensure_dir(d)?;
    }
    let _lock = crate::send::lock_state(&cfg.state_dir)?
        .ok_or_else(|| Error::Usage(format!("another receiver holds {}", cfg.state_dir.join("lock").display())))?;
    let leftovers = remove_temps(&cfg.spool)?;
    let key = flumon_shared::crypto::Sm2PrivateKey::from_pkcs8_der(&cfg.journal_key.to_pkcs8_der()?)?;
    let mut audit = Audit::open(&cfg.journal, key)?;
    let keys = KeyRing::new(&cfg.mac_keys);
    audit.record(
        "receiver.start",
        json!({"mode": cfg.mode.as_str(), "key_ids": keys.ids(), "node": cfg.link.node_id,
               "settings_digests": keys.ids().iter().map(|id| hex::encode(cfg.link.digest(*id))).collect::<Vec<_>>(),
               "temp_files_removed": leftovers}),
    )?;
    let mut state = RecvState::open(&cfg.state_dir)?;
    // Only batches assembled in this run are dropped before their MAC; one
    // received before a restart that arrives again is assembled and counted
    // as a duplicate (so replays are journaled).
    let done = Arc::new(Mutex::new(DoneSet::default()));
    let stats = Arc::new(NetStats::default());
    let (tx, rx) = mpsc::channel::<Input>();
    let inner_stop = Arc::new(AtomicBool::new(false));
    let worker = match (cfg.mode, link) {
        (Mode::Diode, Some(link)) => {
            let p = LinkParams {
                settings: cfg.link.clone(),
                keys,
                limits: Limits {
                    max_batch: cfg.max_batch_bytes,
                    max_open: cfg.diode.max_open_batches,
                    max_bytes: cfg.diode.max_open_bytes,
                    timeout: Duration::from_secs(cfg.diode.partial_timeout_secs),
                },
            };
            let (d, s, st) = (done.clone(), stats.clone(), inner_stop.clone());
            std::thread::Builder::new().name("recv-net".into()).spawn(move || {
                net::run(link, p, d, s, st, |e| {
                    let _ = tx.send(Input::Net(e));
                })
            })?
        }
        (Mode::Diode, None) => return Err(Error::Usage("diode mode needs a link".into())),
        (Mode::Ferry, _) => {
            let dir = cfg.ferry_in.clone().ok_or_else(|| Error::Config("ferry_in".into()))?;
            let (node, max, settle, st) =
                (cfg.link.node_id.clone(), cfg.max_batch_bytes, cfg.settle_ms, inner_stop.clone());
            std::thread::Builder::new()
                .name("recv-ferry".into())
                .spawn(move || ferry::run(&dir, &node, max, Duration::from_millis(settle), st, tx))?
        }
    };
    let mut w = Watch::new(&cfg);
    let committer = Committer {
        node: &cfg.link.node_id,
        spool: &cfg.spool,
        quarantine: &cfg.quarantine,
        link_key: &cfg.link_key,
        dmz: &cfg.dmz_public_key,
        limits: BatchLimits { max_payload: cfg.max_payload_bytes },
        mode: cfg.mode.as_str(),
    };
    let mut last_tick = Instant::now();
    let result = (|| -> Result<()> {
        loop {
            let stopping = opts.stop.load(Ordering::Relaxed);
            if stopping {
                inner_stop.store(true, Ordering::Relaxed);
            }
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(input) => handle(input, &committer, &mut w, &mut state, &mut audit)?,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
            if last_tick.elapsed() >= Duration::from_secs(1) {
                last_tick = Instant::now();
                w.tick(&state, &stats, &mut audit)?;
                audit.tick()?;
                crate::status::write(&cfg.state_dir, &w.status(&cfg, &state, &stats))?;
            }
        }
    })();
    inner_stop.store(true, Ordering::Relaxed);
    let worker_result = worker.join();
    while let Ok(input) = rx.try_recv() {
        handle(input, &committer, &mut w, &mut state, &mut audit)?;
    }
    w.tick(&state, &stats, &mut audit)?;
    w.journal_drops(&stats, &mut audit)?;
    crate::status::write(&cfg.state_dir, &w.status(&cfg, &state, &stats))?;
    let err = match (&result, &worker_result) {
        (Err(e), _) => Some(e.to_string()),
        (Ok(()), Ok(Err(e))) => Some(format!("link: {e}")),
        (Ok(()), Err(_)) => Some("the link thread panicked".into()),
        _ => None,
    };
    audit.record(
        "receiver.stop",
        json!({"summary": &w.sum, "drops": stats.drops_json(), "datagrams": stats.datagrams.load(Ordering::Relaxed),
               "error": err}),
    )?;
    audit.checkpoint()?;
    result?;
    if let Ok(Err(e)) = worker_result {
        return Err(Error::Io(e));
    }
    let mut sum = w.sum.clone();
    sum.open_gaps = w.gaps.open.clone();
    Ok(sum)
}

fn handle(input: Input, c: &Committer<'_>, w: &mut Watch, state: &mut RecvState, audit: &mut Audit) -> Result<()> {
    match input {
        Input::Net(Event::Assembled(a)) => {
            let sessions: Vec<String> = a.sessions.iter().map(|s| format!("{s:016x}")).collect();
            let digest = flumon_shared::crypto::sm3(&a.bytes);
            let extra = json!({"sessions": sessions});
            let v = if digest.first_chunk::<8>() == Some(&a.content_id) {
                c.commit(a.seq, &a.bytes, &digest, extra, state, audit)?
            } else {
                let reason = "reassembled batch does not match its content id (RaptorQ or sender fault)";
                c.reject(a.seq, &a.bytes, &hex::encode(digest), reason, extra, state, audit)?
            };
            w.count(&v);
        }
        Input::Net(e) => w.event(e, audit)?,
        Input::Ferry { seq, path, bytes } => {
            let digest = flumon_shared::crypto::sm3(&bytes);
            let v = c.commit(seq, &bytes, &digest, json!({"file": path.display().to_string()}), state, audit)?;
            w.count(&v);
            std::fs::remove_file(&path)?;
        }
        Input::FerryRefused { seq, path, reason } => {
            c.reject_file(seq, &path, &reason, state, audit)?;
            w.sum.rejected += 1;
        }
    }
    Ok(())
}

/// Removes `.*.tmp` files a crash left in the spool; returns how many.
fn remove_temps(spool: &std::path::Path) -> Result<u64> {
    let mut n = 0;
    for e in std::fs::read_dir(spool)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(".tmp") {
            std::fs::remove_file(e.path())?;
            n += 1;
        }
    }
    Ok(n)
}
