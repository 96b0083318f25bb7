//! Group commit (ARCHITECTURE invariant 1): sled's `flush()` only uses
//! `sync_file_range` on Linux and writes blob files without any sync, so a
//! receipt waits for a real `fdatasync` of sled's files. Concurrent uploads
//! share one: the first waiter becomes the leader, takes every request made
//! so far, syncs once and wakes them all.
//!
//! ```text
//!  upload A ─┐ ticket 7                     ┌─▶ A: durable
//!  upload B ─┼ ticket 8 ─▶ leader round: target = 8 ─▶ db.flush()      ├─▶ B: durable
//!            │              (spawned task)   fsync blobs/* new, blobs/ │
//!  upload C ─┘ ticket 9 (arrived after the round began) fdatasync db ──┘  C waits for the next round
//! ```
//! The round runs in its own task on the blocking pool, so a caller that
//! goes away (client disconnect) never leaves the leadership dangling.
//! Every outcome goes to the store's health (health.rs): once the store is
//! given up, no round runs and every caller gets `Error::StoreFailed`, so no
//! receipt follows a failure that may have lost data. A failed round hands
//! its waiters the OS error (a full disk answers 503 `STORAGE_FULL`).

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::health::{BACKOFF, Health, IDLE_PROBE, ROUND_DEADLINE, Step};
use crate::error::{Error, Result};

/// Outcome so far: every ticket ≤ `ok` is durable; a ticket ≤ `failed` (and > `ok`) failed,
/// the last failure with an I/O error of kind `io` when it had one.
#[derive(Clone, Copy, Debug, Default)]
struct Done {
    ok: u64,
    failed: u64,
    io: Option<std::io::ErrorKind>,
}

#[derive(Default)]
struct State {
    requested: u64,
    leader: bool,
}

/// The group committer of one sled database.
pub(crate) struct GroupCommit {
    db: sled::Db,
    dir: PathBuf,
    state: Mutex<State>,
    done: watch::Sender<Done>,
    synced_blobs: Mutex<HashSet<OsString>>,
    /// Whether sled's folder (its `db` entry) was fsynced once.
    dir_synced: std::sync::atomic::AtomicBool,
    /// Observer of each round's duration (metrics).
    on_round: Box<dyn Fn(Duration) + Send + Sync>,
    /// Failure rule and fatal signal.
    pub(crate) health: Health,
    /// How long a round may take ([`ROUND_DEADLINE`]; shorter in tests).
    deadline: Duration,
    /// Tests: how long every flush is held up (a stuck sled).
    #[cfg(test)]
    stall: Mutex<Duration>,
}

impl GroupCommit {
    pub(crate) fn new(db: sled::Db, dir: PathBuf, on_round: Box<dyn Fn(Duration) + Send + Sync>) -> Self {
        let (done, _) = watch::channel(Done::default());
        GroupCommit {
            db,
            dir,
            state: Mutex::new(State::default()),
            done,
            synced_blobs: Mutex::new(HashSet::new()),
            dir_synced: std::sync::atomic::AtomicBool::new(false),
            on_round,
            health: Health::default(),
            deadline: ROUND_DEADLINE,
            #[cfg(test)]
            stall: Mutex::new(Duration::ZERO),
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>> {
        self.state.lock().map_err(|_| Error::Internal("group commit lock poisoned".into()))
    }

    /// Returns once everything written before the call is on disk.
    pub(crate) async fn durable(self: &Arc<Self>) -> Result<()> {
        if let Some(e) = self.health.refusal() {
            return Err(e);
        }
        let mut rx = self.done.subscribe();
        let ticket = {
            let mut s = self.lock()?;
            s.requested = s.requested.saturating_add(1);
            s.requested
        };
        loop {
            let d = *rx.borrow_and_update();
            if d.ok >= ticket {
                return Ok(());
            }
            if d.failed >= ticket {
                return Err(self.health.refusal().unwrap_or_else(|| match d.io {
                    Some(kind) => Error::Io(kind.into()),
                    None => Error::Internal("flush or fdatasync of the store failed".into()),
                }));
            }
            let lead = {
                let mut s = self.lock()?;
                if s.leader {
                    false
                } else {
                    s.leader = true;
                    true
                }
            };
            if lead {
                let me = Arc::clone(self);
                // The round runs in its own task: it finishes even if this caller is dropped.
                let round = tokio::spawn(async move { me.round().await });
                if round.await.is_err() {
                    return Err(Error::Internal("group commit round panicked".into()));
                }
                continue;
            }
            if rx.changed().await.is_err() {
                return Err(Error::Unavailable("store closed".into()));
            }
        }
    }

    async fn round(self: Arc<Self>) {
        let target = match self.lock() {
            Ok(s) => s.requested,
            Err(_) => return,
        };
        let me = Arc::clone(&self);
        let started = Instant::now();
        let res =
            match tokio::time::timeout(self.deadline, tokio::task::spawn_blocking(move || me.flush_and_sync())).await {
                Ok(r) => r,
                Err(_) => {
                    // the flush is stuck inside sled; nothing more will be made durable: give up
                    // (exit 75, the supervisor restarts and sled recovers from its log)
                    self.health
                        .give_up(format!("store flush still running after {} s (stuck)", self.deadline.as_secs_f64()));
                    Ok(Err(Error::Unavailable("store flush stuck".into())))
                }
            };
        let ok = matches!(res, Ok(Ok(())));
        let io = match &res {
            Ok(Err(e)) => e.io_kind(),
            _ => None,
        };
        (self.on_round)(started.elapsed());
        if let Ok(mut s) = self.lock() {
            s.leader = false;
        }
        self.done.send_modify(|d| {
            if ok {
                d.ok = d.ok.max(target);
            } else {
                d.failed = d.failed.max(target);
                d.io = io;
            }
        });
    }

    /// The watchdog: checks the store every [`IDLE_PROBE`] or when poked (a
    /// failed flush, a sled error seen elsewhere); while the store is failing
    /// it retries every [`BACKOFF`] until a flush succeeds or the store is
    /// given up. Returns on `stop` or once the store is given up.
    pub(crate) async fn watchdog(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(IDLE_PROBE) => {}
                () = self.health.poked() => {}
                _ = stop.changed() => return,
            }
            loop {
                if self.health.failing() {
                    tokio::select! {
                        () = tokio::time::sleep(BACKOFF) => {}
                        _ = stop.changed() => return,
                    }
                }
                if self.health.is_failed() || *stop.borrow() {
                    return;
                }
                // the outcome goes to the health rule inside
                let _ = self.durable().await;
                if !self.health.failing() {
                    break;
                }
            }
        }
    }

    /// [`Self::try_flush_and_sync`], refused once the store is given up, its
    /// outcome recorded in the health rule.
    pub(crate) fn flush_and_sync(&self) -> Result<()> {
        if let Some(e) = self.health.refusal() {
            return Err(e);
        }
        match self.try_flush_and_sync() {
            Ok(()) => {
                self.health.record(Ok(()));
                Ok(())
            }
            Err((step, e)) => {
                tracing::error!(error = %e, step = ?step, "store flush/fdatasync failed");
                self.health.record(Err((step, &e)));
                Err(e)
            }
        }
    }

    /// `flush()`, then fsync every blob file not synced before and the blob
    /// folder, then `fdatasync` the log file `db` (and, the first time, the
    /// folders that hold it).
    fn try_flush_and_sync(&self) -> Result<(), (Step, Error)> {
        #[cfg(test)]
        if let Ok(d) = self.stall.lock() {
            std::thread::sleep(*d);
        }
        self.db.flush().map_err(write)?;
        sync_blobs(&self.dir, &self.synced_blobs)?;
        sync(&File::open(self.dir.join("db")).map_err(write)?, false)?;
        if !self.dir_synced.load(std::sync::atomic::Ordering::Acquire) {
            // the entries of sled's files in a fresh store
            sync(&File::open(&self.dir).map_err(write)?, true)?;
            if let Some(parent) = self.dir.parent() {
                sync(&File::open(parent).map_err(write)?, true)?;
            }
            self.dir_synced.store(true, std::sync::atomic::Ordering::Release);
        }
        Ok(())
    }
}

/// A failure before any fsync: retried by the health rule.
fn write(e: impl Into<Error>) -> (Step, Error) {
    (Step::Write, e.into())
}

/// `fsync` (`all`) or `fdatasync`; a failure is [`Step::Sync`].
fn sync(f: &File, all: bool) -> Result<(), (Step, Error)> {
    let r = if all { f.sync_all() } else { f.sync_data() };
    r.map_err(|e| (Step::Sync, Error::Io(e)))
}

fn sync_blobs(dir: &Path, synced: &Mutex<HashSet<OsString>>) -> Result<(), (Step, Error)> {
    let blobs = dir.join("blobs");
    let entries = match std::fs::read_dir(&blobs) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(write(e)),
    };
    let mut seen = HashSet::new();
    let mut fresh = Vec::new();
    {
        let known = synced.lock().map_err(|_| write(Error::Internal("blob set lock poisoned".into())))?;
        for e in entries {
            let e = e.map_err(write)?;
            let name = e.file_name();
            if !known.contains(&name) {
                fresh.push(name.clone());
            }
            seen.insert(name);
        }
    }
    for name in &fresh {
        match File::open(blobs.join(name)) {
            Ok(f) => sync(&f, false)?,
            // removed by sled's GC meanwhile: nothing to make durable
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(write(e)),
        }
    }
    if !fresh.is_empty() {
        sync(&File::open(&blobs).map_err(write)?, true)?;
    }
    let mut known = synced.lock().map_err(|_| write(Error::Internal("blob set lock poisoned".into())))?;
    known.retain(|n| seen.contains(n));
    known.extend(fresh);
    Ok(())
}

#[cfg(test)]
mod deadline_tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::GroupCommit;

    /// After a full disk sled's flush was seen to hang instead of failing (fault campaign): a
    /// round that outlives its deadline gives the store up (exit 75 in `serve`), and its waiters
    /// get an error instead of waiting for ever.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stuck_round_gives_the_store_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sled");
        let db = sled::Config::new().path(&path).open().unwrap();
        let mut gc = GroupCommit::new(db, path, Box::new(|_| {}));
        // long enough for a real first flush + fsync while the rest of the suite runs (300 ms
        // was once exceeded in CI), far shorter than the stall
        gc.deadline = Duration::from_secs(2);
        let gc = Arc::new(gc);
        gc.durable().await.unwrap();
        assert!(!gc.health.is_failed());
        *gc.stall.lock().unwrap() = Duration::from_secs(5);
        let t = Instant::now();
        assert!(gc.durable().await.is_err(), "a stuck round is not a success");
        assert!(t.elapsed() < Duration::from_millis(4500), "waited {:?}: the deadline did not cut in", t.elapsed());
        assert!(gc.health.is_failed(), "the store is given up");
        assert!(gc.durable().await.is_err(), "and refused from then on");
    }
}
