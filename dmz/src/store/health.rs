//! Crash-only handling of a store that keeps failing (SECURITY.md, fault
//! campaign, third finding). Once sled has hit an I/O error (a full disk) it
//! keeps the error for the life of the process — even after space returns —
//! and recovers only when reopened from its log. So a store that keeps
//! failing signals "fatal" here; `crate::run` stops accepting work (503 with
//! `Retry-After`), logs one error line and returns [`Error::StoreFailed`],
//! which `flumon-dmz serve` turns into exit status 75 (`EX_TEMPFAIL`), so
//! systemd (`Restart=on-failure`) restarts it. Nothing acknowledged is lost:
//! a receipt is given only after a group commit succeeded, and none is given
//! once the store is judged failed.
//!
//! ```text
//!  flush_and_sync (group commit, durable_blocking, watchdog probe)
//!     ok ─────────────────────────────▶ failures = 0
//!     fsync / fdatasync failed ───────▶ FATAL at once (the kernel may have dropped the
//!                                        dirty pages: a later fsync can succeed falsely)
//!     anything else failed (sled's flush, opening a file)
//!        ─▶ failures += 1 ─▶ watchdog retries after BACKOFF (1 s)
//!        ─▶ failed again ≥ BACKOFF after the first failure, no success between ─▶ FATAL
//!  sled error (Io / ReportableBug / Corruption) seen by a request or the batcher
//!        ─▶ suspect() ─▶ watchdog probes now (the flush decides; a read error alone does not exit)
//!  FATAL ─▶ watch channel ─▶ run(): select! with the shutdown future ─▶ exit 75
//! ```
//! The rule: one failed upload or one failed flush never exits (its caller
//! answers 503 and the next flush may succeed); a flush that still fails a
//! second after the first failure does. Errors outside the store (the audit
//! journal, the outbox) never count.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

use crate::error::Error;

/// How long a failing store gets before a second failure makes it fatal.
pub const BACKOFF: Duration = Duration::from_secs(1);
/// How long one group-commit round may take before the store is given up:
/// after a full disk the fault campaign saw sled's `flush` block for ever
/// (waiting in `make_stable`), with no error to count; a normal round takes
/// milliseconds.
pub const ROUND_DEADLINE: Duration = Duration::from_secs(30);
/// How often the watchdog checks a healthy, idle store.
pub const IDLE_PROBE: Duration = Duration::from_secs(10);
/// The exit status of `flumon-dmz serve` when the store failed (sysexits `EX_TEMPFAIL`).
pub const EXIT_STORE_FAILED: i32 = 75;

/// Which step of a flush failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// sled's `flush()`, opening or listing sled's files: retried.
    Write,
    /// `fsync` / `fdatasync` of sled's files: fatal at once.
    Sync,
}

/// The counting rule, apart from clocks and channels (unit-tested).
#[derive(Debug, Default)]
pub(crate) struct Rule {
    first_failure: Option<Instant>,
    failures: u32,
}

impl Rule {
    /// A flush succeeded.
    pub(crate) fn success(&mut self) {
        *self = Rule::default();
    }

    /// A flush failed at `now` in `step`; true when the store must be given up.
    pub(crate) fn failure(&mut self, step: Step, now: Instant) -> bool {
        let first = *self.first_failure.get_or_insert(now);
        self.failures = self.failures.saturating_add(1);
        step == Step::Sync || (self.failures >= 2 && now.saturating_duration_since(first) >= BACKOFF)
    }

    /// Whether the last flush failed.
    pub(crate) fn failing(&self) -> bool {
        self.failures > 0
    }
}

/// The health of one store: the rule, the fatal signal, the watchdog's bell.
#[derive(Debug)]
pub struct Health {
    rule: Mutex<Rule>,
    fatal: watch::Sender<Option<String>>,
    poke: Notify,
}

impl Default for Health {
    fn default() -> Self {
        Health { rule: Mutex::new(Rule::default()), fatal: watch::channel(None).0, poke: Notify::new() }
    }
}

impl Health {
    /// Whether the store was given up (the process is shutting down to restart).
    pub fn is_failed(&self) -> bool {
        self.fatal.borrow().is_some()
    }

    /// Completes once the store is given up, with the reason.
    pub async fn failed(&self) -> String {
        let mut rx = self.fatal.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(r) => r.clone().unwrap_or_default(),
            // the sender lives in `self`: never closed while borrowed
            Err(_) => std::future::pending().await,
        }
    }

    /// The error every store caller gets once the store is given up.
    pub(crate) fn refusal(&self) -> Option<Error> {
        self.fatal.borrow().clone().map(Error::StoreFailed)
    }

    /// Records a flush outcome; signals fatal when the rule says so.
    pub(crate) fn record(&self, outcome: Result<(), (Step, &Error)>) {
        let Ok(mut rule) = self.rule.lock() else {
            self.give_up("health lock poisoned".into());
            return;
        };
        match outcome {
            Ok(()) => rule.success(),
            Err((step, e)) => {
                if rule.failure(step, Instant::now()) {
                    drop(rule);
                    self.give_up(format!("{e} ({step:?})"));
                } else {
                    drop(rule);
                    self.poke.notify_one();
                }
            }
        }
    }

    /// Whether the last flush failed (the watchdog then retries after [`BACKOFF`]).
    pub(crate) fn failing(&self) -> bool {
        self.rule.lock().map_or(true, |r| r.failing())
    }

    /// A request or task saw `e`; a sled I/O, bug or corruption error makes the watchdog check the store now.
    pub fn suspect(&self, e: &Error) {
        if e.is_store_fault() {
            self.poke.notify_one();
        }
    }

    /// Asks the watchdog to check the store now.
    pub fn poke(&self) {
        self.poke.notify_one();
    }

    pub(crate) async fn poked(&self) {
        self.poke.notified().await;
    }

    pub(crate) fn give_up(&self, reason: String) {
        let first = self.fatal.send_if_modified(|f| {
            if f.is_some() {
                return false;
            }
            *f = Some(reason.clone());
            true
        });
        if first {
            tracing::error!(
                exit_status = EXIT_STORE_FAILED,
                error = %reason,
                "存储持续故障 (sled 出现 I/O 错误后不会自行恢复): 停止接收, 退出以便由 systemd 重启并从日志恢复; \
                 已给出回执的数据不受影响 (the store keeps failing: the DMZ stops accepting work and exits so \
                 the supervisor restarts it and sled recovers from its log; nothing acknowledged is lost)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_failure_then_a_success_is_not_fatal() {
        let t0 = Instant::now();
        let mut r = Rule::default();
        assert!(!r.failure(Step::Write, t0));
        assert!(r.failing());
        r.success();
        assert!(!r.failing());
        // a new failure long after starts a new count
        assert!(!r.failure(Step::Write, t0 + BACKOFF * 10));
    }

    #[test]
    fn failures_in_a_burst_wait_for_the_back_off() {
        let t0 = Instant::now();
        let mut r = Rule::default();
        assert!(!r.failure(Step::Write, t0));
        assert!(!r.failure(Step::Write, t0 + Duration::from_millis(5)));
        assert!(!r.failure(Step::Write, t0 + BACKOFF / 2));
        assert!(r.failure(Step::Write, t0 + BACKOFF));
    }

    #[test]
    fn a_failed_fsync_is_fatal_at_once() {
        let mut r = Rule::default();
        assert!(r.failure(Step::Sync, Instant::now()));
    }

    #[tokio::test]
    async fn fatal_is_signalled_once_and_refuses() {
        let h = Health::default();
        let e = Error::Io(std::io::Error::from_raw_os_error(28));
        h.record(Err((Step::Write, &e)));
        assert!(!h.is_failed() && h.refusal().is_none());
        h.record(Ok(()));
        h.record(Err((Step::Sync, &e)));
        assert!(h.is_failed());
        assert!(h.failed().await.contains("Sync"));
        assert!(matches!(h.refusal(), Some(Error::StoreFailed(_))));
    }
}
