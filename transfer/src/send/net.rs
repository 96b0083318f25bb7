//! The send thread: paces the datagrams the scheduler prepared through the
//! token bucket, and slips in a heartbeat every second and a manifest every
//! minute. It owns the only [`LinkTx`]; it never reads anything from the link.
//!
//! ```text
//!  scheduler ─Out::Datagrams(chunk) / Out::PassDone─▶ [bounded channel] ─▶ send thread
//!        ▲                                                                 │ MAC chunk ─▶ bucket.take ─▶ LinkTx::send
//!        └────────────── Done(seq, attempt, resend) ◀──────────────────────┤ heartbeat (Shared counters)
//!                                                                          └ manifest (Shared entries)
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::bucket::Bucket;
use crate::link::LinkTx;
use crate::settings::LinkSettings;
use crate::wire::{Header, Heartbeat, Kind, MAC_LEN, MacSigner, ManifestEntry, ManifestPart, manifest_capacity};

/// Datagrams packed into one buffer.
#[derive(Debug, Default)]
pub struct Chunk {
    pub buf: Vec<u8>,
    /// End offset of each datagram in `buf`.
    pub ends: Vec<usize>,
}

/// What the scheduler hands the send thread.
#[derive(Debug)]
pub enum Out {
    Datagrams(Chunk),
    /// Everything of this pass before this marker has been sent.
    PassDone {
        seq: u64,
        attempt: u32,
        resend: bool,
    },
}

/// A pass that went out.
#[derive(Clone, Copy, Debug)]
pub struct Done {
    pub seq: u64,
    pub attempt: u32,
    pub resend: bool,
}

/// Counters and announcements shared by the scheduler and the send thread.
#[derive(Debug, Default)]
pub struct Shared {
    pub next_number: AtomicU64,
    pub latest_seq: AtomicU64,
    pub sent_through: AtomicU64,
    pub queue_depth: AtomicU64,
    pub datagrams: AtomicU64,
    pub bytes: AtomicU64,
    pub send_errors: AtomicU64,
    pub heartbeats: AtomicU64,
    pub manifests: AtomicU64,
    pub manifest: Mutex<Vec<ManifestEntry>>,
}

impl Shared {
    /// The next datagram number of the session.
    pub fn number(&self) -> u64 {
        self.next_number.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// What the send thread needs besides the channel.
#[derive(Debug)]
pub struct NetParams {
    pub settings: LinkSettings,
    pub key: MacSigner,
    pub session: u64,
    pub session_start_ms: u64,
    pub passes: u8,
    pub rate_bytes: u64,
    pub burst_bytes: u64,
    pub heartbeat_ms: u32,
    pub manifest_secs: u64,
    /// Set: what is still queued is dropped (its pass stays unfinished, and
    /// is redone with fresh symbols after a restart).
    pub stop: Arc<std::sync::atomic::AtomicBool>,
}

/// Runs until the channel closes (the scheduler stopped), then sends a last heartbeat.
pub fn run(mut tx: Box<dyn LinkTx>, p: NetParams, shared: Arc<Shared>, rx: Receiver<Out>, done: Sender<Done>) {
    let mut bucket = Bucket::new(p.rate_bytes, p.burst_bytes);
    let hb_every = Duration::from_millis(u64::from(p.heartbeat_ms));
    let mf_every = Duration::from_secs(p.manifest_secs);
    let mut next_hb = Instant::now();
    // first manifest a few seconds after start, once a heartbeat has told the settings
    let mut next_mf = Instant::now() + Duration::from_secs(3).min(mf_every);
    let mut scratch = Vec::with_capacity(2048);
    let mut tags = Vec::new();
    let digest = p.settings.digest(p.key.id());
    let send = |tx: &mut Box<dyn LinkTx>, bucket: &mut Bucket, d: &[u8]| {
        bucket.take(d.len());
        match tx.send(d) {
            Ok(()) => {
                shared.datagrams.fetch_add(1, Ordering::Relaxed);
                shared.bytes.fetch_add(d.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                if shared.send_errors.fetch_add(1, Ordering::Relaxed).is_multiple_of(1000) {
                    tracing::warn!(error = %e, "send failed");
                }
            }
        }
    };
    loop {
        let now = Instant::now();
        if now >= next_hb {
            scratch.clear();
            heartbeat(&p, &shared, &digest, &mut scratch);
            send(&mut tx, &mut bucket, &scratch);
            shared.heartbeats.fetch_add(1, Ordering::Relaxed);
            next_hb = now + hb_every;
        }
        if now >= next_mf {
            for d in manifest(&p, &shared) {
                send(&mut tx, &mut bucket, &d);
            }
            shared.manifests.fetch_add(1, Ordering::Relaxed);
            next_mf = now + mf_every;
        }
        let wait = next_hb.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(Out::Datagrams(_)) | Ok(Out::PassDone { .. }) if p.stop.load(Ordering::Relaxed) => {}
            Ok(Out::Datagrams(mut chunk)) => {
                seal_chunk(&p.key, &mut chunk, &mut tags);
                let mut start = 0;
                for &end in &chunk.ends {
                    if let Some(d) = chunk.buf.get(start..end) {
                        send(&mut tx, &mut bucket, d);
                    }
                    start = end;
                    if Instant::now() >= next_hb {
                        scratch.clear();
                        heartbeat(&p, &shared, &digest, &mut scratch);
                        send(&mut tx, &mut bucket, &scratch);
                        shared.heartbeats.fetch_add(1, Ordering::Relaxed);
                        next_hb = Instant::now() + hb_every;
                    }
                }
            }
            Ok(Out::PassDone { seq, attempt, resend }) => {
                let _ = done.send(Done { seq, attempt, resend });
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    // the last word, three times: what is sent through, and the manifest
    for _ in 0..3 {
        scratch.clear();
        heartbeat(&p, &shared, &digest, &mut scratch);
        send(&mut tx, &mut bucket, &scratch);
        for d in manifest(&p, &shared) {
            send(&mut tx, &mut bucket, &d);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Writes the MAC of every datagram of `chunk` into the last 16 bytes the
/// scheduler left for it.
fn seal_chunk(key: &MacSigner, chunk: &mut Chunk, tags: &mut Vec<[u8; MAC_LEN]>) {
    tags.clear();
    {
        let mut signed = Vec::with_capacity(chunk.ends.len());
        let mut start = 0;
        for &end in &chunk.ends {
            signed.push(chunk.buf.get(start..end.saturating_sub(MAC_LEN)).unwrap_or_default());
            start = end;
        }
        key.tag_many(&signed, tags);
    }
    for (&end, tag) in chunk.ends.iter().zip(tags.iter()) {
        if let Some(mac) = chunk.buf.get_mut(end.saturating_sub(MAC_LEN)..end) {
            mac.copy_from_slice(tag);
        }
    }
}

fn heartbeat(p: &NetParams, shared: &Shared, digest: &[u8; 32], out: &mut Vec<u8>) {
    let latest = shared.latest_seq.load(Ordering::Relaxed);
    let hb = Heartbeat {
        time_ms: crate::now_ms(),
        session_start_ms: p.session_start_ms,
        latest_seq: latest,
        sent_through: shared.sent_through.load(Ordering::Relaxed).min(latest),
        queue_depth: u32::try_from(shared.queue_depth.load(Ordering::Relaxed)).unwrap_or(u32::MAX),
        interval_ms: p.heartbeat_ms,
        passes: p.passes,
        mtu: p.settings.mtu,
        symbol_size: p.settings.symbol_size,
        block_symbols: p.settings.block_symbols,
        repair_ppm: p.settings.repair_ppm,
        repair_extra: p.settings.repair_extra,
        digest: *digest,
    };
    let hdr = Header { kind: Kind::Heartbeat, key_id: p.key.id(), session: p.session, number: shared.number() };
    hb.write(&hdr, &p.key, out);
}

fn manifest(p: &NetParams, shared: &Shared) -> Vec<Vec<u8>> {
    let entries = match shared.manifest.lock() {
        Ok(g) => g.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    if entries.is_empty() {
        return Vec::new();
    }
    let cap = manifest_capacity(usize::from(p.settings.symbol_size)).max(1);
    let max_entries = cap * usize::from(u16::MAX);
    let entries = entries.get(entries.len().saturating_sub(max_entries)..).unwrap_or_default();
    let parts = entries.len().div_ceil(cap);
    let time_ms = crate::now_ms();
    entries
        .chunks(cap)
        .enumerate()
        .map(|(i, c)| {
            let part = ManifestPart { time_ms, part: i as u16, parts: parts as u16, entries: c.to_vec() };
            let hdr = Header { kind: Kind::Manifest, key_id: p.key.id(), session: p.session, number: shared.number() };
            let mut out = Vec::with_capacity(p.settings.datagram_len());
            part.write(&hdr, &p.key, &mut out);
            out
        })
        .collect()
}
