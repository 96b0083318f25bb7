//! The scheduler's periodic work: what heartbeats and manifests announce,
//! resend request files, retention, and the status file.
//!
//! ```text
//!  outbox + state ─▶ announce: latest, sent-through, queue depth, manifest entries ─▶ Shared
//!  state_dir/requests/*.json ─▶ resend jobs       passes done and older than retention ─▶ delete, batch.expired
//! ```

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use serde_json::json;

use super::{Request, Sched};
use crate::error::Result;
use crate::wire::ManifestEntry;

impl Sched {
    /// Recomputes what the heartbeat and the manifest announce.
    pub(super) fn announce(&mut self) {
        let passes = self.passes();
        let latest = self.outbox.keys().next_back().copied().unwrap_or(0);
        let mut through = 0;
        let mut queue = 0u64;
        let mut broken = false;
        for seq in self.outbox.keys() {
            let done =
                self.refused.contains_key(seq) || self.state.batches.get(seq).is_some_and(|b| b.passes >= passes);
            if !done {
                queue += 1;
                broken = true;
            } else if !broken {
                through = *seq;
            }
        }
        let sh = &self.shared;
        sh.latest_seq.store(latest.max(sh.latest_seq.load(Ordering::Relaxed)), Ordering::Relaxed);
        sh.sent_through.store(through, Ordering::Relaxed);
        sh.queue_depth.store(queue, Ordering::Relaxed);
        let horizon = crate::now_ms().saturating_sub(self.cfg.diode.manifest_hours * 3_600_000);
        let entries: Vec<ManifestEntry> = self
            .state
            .batches
            .values()
            .filter(|b| b.passes + b.resent > 0 && b.last_ms >= horizon)
            .filter_map(|b| {
                let mut sm3 = [0u8; 32];
                hex::decode_to_slice(&b.sm3, &mut sm3).ok()?;
                Some(ManifestEntry {
                    seq: b.seq,
                    len: u32::try_from(b.size).ok()?,
                    passes: u8::try_from(b.passes + b.resent).unwrap_or(u8::MAX),
                    sm3,
                })
            })
            .collect();
        match sh.manifest.lock() {
            Ok(mut g) => *g = entries,
            Err(p) => *p.into_inner() = entries,
        }
    }

    pub(super) fn requests(&mut self) -> Result<()> {
        let dir = self.cfg.state_dir.join("requests");
        let Ok(rd) = std::fs::read_dir(&dir) else { return Ok(()) };
        let mut files: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|x| x == "json")
                    && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        files.sort();
        for p in files {
            let req =
                crate::fsutil::read_bounded(&p, 4096).ok().and_then(|b| serde_json::from_slice::<Request>(&b).ok());
            std::fs::remove_file(&p)?;
            match req {
                Some(r) => self.add_resend(&r.select, r.passes, "operator (request file)")?,
                None => tracing::warn!(file = %p.display(), "unreadable resend request removed"),
            }
        }
        Ok(())
    }

    pub(super) fn retention(&mut self) -> Result<()> {
        let cutoff = crate::now_ms().saturating_sub(u64::from(self.cfg.retention_days) * 86_400_000);
        let passes = self.passes();
        let expired: Vec<u64> = self
            .state
            .batches
            .values()
            .filter(|b| {
                b.passes >= passes && b.last_ms > 0 && b.last_ms < cutoff && !self.in_flight.contains_key(&b.seq)
            })
            .map(|b| b.seq)
            .collect();
        for seq in expired {
            if let Some(path) = self.outbox.remove(&seq) {
                std::fs::remove_file(&path)?;
                self.audit.record("batch.expired", json!({"seq": seq, "file": path.display().to_string()}))?;
            }
            self.state.expire(seq)?;
        }
        Ok(())
    }

    pub(super) fn write_status(&mut self) -> Result<()> {
        let sh = &self.shared;
        let st = json!({
            "role": "sender", "pid": std::process::id(), "time_ms": crate::now_ms(), "session": self.sum.session,
            "mode": self.cfg.mode.as_str(), "passes": self.passes(),
            "latest_seq": sh.latest_seq.load(Ordering::Relaxed), "sent_through": sh.sent_through.load(Ordering::Relaxed),
            "queue_depth": sh.queue_depth.load(Ordering::Relaxed), "datagrams": sh.datagrams.load(Ordering::Relaxed),
            "bytes": sh.bytes.load(Ordering::Relaxed), "send_errors": sh.send_errors.load(Ordering::Relaxed),
            "heartbeats": sh.heartbeats.load(Ordering::Relaxed), "manifests": sh.manifests.load(Ordering::Relaxed),
            "rate_limit_bytes_per_s": self.cfg.diode.rate_bytes, "summary": &self.sum,
            "refused": &self.refused, "resends_pending": self.resend_left.len(),
        });
        crate::status::write(&self.cfg.state_dir, &st)
    }
}
