//! Prometheus-style metrics for the admin listener's `/metrics`: plain
//! atomic counters, rendered as text exposition format 0.0.4.
//!
//! ```text
//!  pipeline / batcher / group commit ─▶ Metrics (atomics) ─▶ GET /metrics (admin) ─▶ text
//! ```

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Durability latency buckets, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0];

/// The counters.
#[derive(Default)]
pub struct Metrics {
    pub uploads: AtomicU64,
    pub uploads_whole_file_rejected: AtomicU64,
    pub uploads_too_large: AtomicU64,
    pub records_received: AtomicU64,
    pub records_accepted: AtomicU64,
    pub records_rejected: AtomicU64,
    pub records_queued: AtomicU64,
    pub records_unchanged: AtomicU64,
    /// Records whose logged figures facts the periodic fold folded (pages fold theirs too, uncounted).
    pub figures_folded: AtomicU64,
    pub scans: AtomicU64,
    pub auth_failures: AtomicU64,
    pub rate_limited: AtomicU64,
    pub batches_written: AtomicU64,
    pub batch_entries_written: AtomicU64,
    pub queue_depth: AtomicU64,
    /// Bytes of the entries waiting in the outbound queue (the batcher's size trigger).
    pub queue_bytes: AtomicU64,
    commit_count: AtomicU64,
    commit_micros_sum: AtomicU64,
    commit_buckets: [AtomicU64; BUCKETS.len()],
}

impl Metrics {
    /// Records one group-commit round (flush + fdatasync).
    pub fn observe_commit(&self, d: Duration) {
        self.commit_count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.commit_micros_sum.fetch_add(micros, Ordering::Relaxed);
        let secs = d.as_secs_f64();
        for (b, c) in BUCKETS.iter().zip(self.commit_buckets.iter()) {
            if secs <= *b {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(4096);
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let counters: [(&str, &str, &AtomicU64); 15] = [
            ("flumon_dmz_uploads_total", "Record uploads answered", &self.uploads),
            (
                "flumon_dmz_uploads_whole_file_rejected_total",
                "Uploads rejected whole (422)",
                &self.uploads_whole_file_rejected,
            ),
            ("flumon_dmz_uploads_too_large_total", "Uploads refused for size (413)", &self.uploads_too_large),
            ("flumon_dmz_records_received_total", "Rows received", &self.records_received),
            ("flumon_dmz_records_accepted_total", "Rows accepted", &self.records_accepted),
            ("flumon_dmz_records_rejected_total", "Rows rejected", &self.records_rejected),
            ("flumon_dmz_records_queued_total", "Desensitised records queued for the gate", &self.records_queued),
            (
                "flumon_dmz_records_unchanged_total",
                "Accepted records not queued again (unchanged)",
                &self.records_unchanged,
            ),
            (
                "flumon_dmz_figures_folded_total",
                "Records of the portal figures folded by the periodic task",
                &self.figures_folded,
            ),
            ("flumon_dmz_scans_total", "Death scans received", &self.scans),
            ("flumon_dmz_auth_failures_total", "Refused authentications (401/403)", &self.auth_failures),
            ("flumon_dmz_rate_limited_total", "Requests refused by rate limits (429)", &self.rate_limited),
            ("flumon_dmz_batches_written_total", "Batch files written to the outbox", &self.batches_written),
            ("flumon_dmz_batch_entries_written_total", "Entries written in batch files", &self.batch_entries_written),
            ("flumon_dmz_commits_total", "Group commits (flush + fdatasync)", &self.commit_count),
        ];
        for (name, help, c) in counters {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", get(c));
        }
        let _ = writeln!(
            s,
            "# HELP flumon_dmz_queue_depth Entries waiting in the outbound queue\n# TYPE flumon_dmz_queue_depth gauge\nflumon_dmz_queue_depth {}",
            get(&self.queue_depth)
        );
        let name = "flumon_dmz_durability_seconds";
        let _ = writeln!(s, "# HELP {name} Time of one group commit (flush + fdatasync)\n# TYPE {name} histogram");
        for (b, c) in BUCKETS.iter().zip(self.commit_buckets.iter()) {
            let _ = writeln!(s, "{name}_bucket{{le=\"{b}\"}} {}", get(c));
        }
        let count = get(&self.commit_count);
        let _ = writeln!(s, "{name}_bucket{{le=\"+Inf\"}} {count}");
        #[allow(clippy::cast_precision_loss)]
        let sum = get(&self.commit_micros_sum) as f64 / 1e6;
        let _ = writeln!(s, "{name}_sum {sum}\n{name}_count {count}");
        s
    }
}
