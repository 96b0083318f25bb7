//! Shared helpers of the transfer tests: keys, real batch files (sealed and
//! signed as the DMZ does), configs, running both sides in-process over
//! loopback, and reading journals.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use flumon_shared::batch::{BatchFields, seal_batch};
use flumon_shared::crypto::{MacKey, Sm2PrivateKey, Sm2PublicKey, SymKey};
use flumon_shared::desens::outbound::{OutCommon, OutRecord, OutSummary};
use flumon_shared::entries::{Entry, HospitalInfo, count_entries};
use flumon_shared::journal::{JournalEntry, visit};
use flumon_shared::model::Op;
use flumon_transfer::config::{Mode, RecvConfig, RecvDiode, SendConfig, SendDiode};
use flumon_transfer::link::{Impaired, Impairments, LinkTx, TestRng, UdpRx, UdpTx};
use flumon_transfer::recv::{RecvOptions, RecvSummary};
use flumon_transfer::send::{SendOptions, SendSummary};
use flumon_transfer::settings::LinkSettings;

pub const NODE: &str = "dmz-t";
const DMZ_SCALAR: [u8; 32] = [0x23; 32];
const SEND_JOURNAL: [u8; 32] = [0x21; 32];
const RECV_JOURNAL: [u8; 32] = [0x22; 32];

pub fn dmz_key() -> Sm2PrivateKey {
    Sm2PrivateKey::from_scalar_bytes(&DMZ_SCALAR).unwrap()
}
pub fn send_journal_key() -> Sm2PrivateKey {
    Sm2PrivateKey::from_scalar_bytes(&SEND_JOURNAL).unwrap()
}
pub fn recv_journal_key() -> Sm2PrivateKey {
    Sm2PrivateKey::from_scalar_bytes(&RECV_JOURNAL).unwrap()
}
pub fn send_pub() -> Sm2PublicKey {
    send_journal_key().public_key().clone()
}
pub fn recv_pub() -> Sm2PublicKey {
    recv_journal_key().public_key().clone()
}

/// One test's folders and keys.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub link_key: SymKey,
    pub mac: MacKey,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        for d in ["outbox", "send-state", "recv-state", "spool", "quarantine", "ferry"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        Env { dir, link_key: SymKey::generate().unwrap(), mac: MacKey::generate(1).unwrap() }
    }

    pub fn p(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    pub fn settings(&self) -> LinkSettings {
        LinkSettings {
            node_id: NODE.into(),
            mtu: 1500,
            symbol_size: 1400,
            block_symbols: 750,
            repair_ppm: 100_000,
            repair_extra: 2,
        }
    }

    pub fn send_config(&self, target: SocketAddr, passes: u8) -> SendConfig {
        SendConfig {
            mode: Mode::Diode,
            link: self.settings(),
            outbox: self.p("outbox"),
            state_dir: self.p("send-state"),
            journal: self.p("send-journal.log"),
            journal_key: send_journal_key(),
            dmz_public_key: dmz_key().public_key().clone(),
            check_signatures: false,
            mac_key: self.mac.clone(),
            retention_days: 7,
            max_batch_bytes: 64 << 20,
            diode: SendDiode {
                target,
                local_addr: "127.0.0.1:0".parse().unwrap(),
                rate_bytes: 10_000_000,
                burst_bytes: 256 << 10,
                send_buffer_bytes: 4 << 20,
                passes,
                pass_gap_ms: 50,
                heartbeat_ms: 100,
                manifest_secs: 1,
                manifest_hours: 6,
            },
            ferry_out: Some(self.p("ferry")),
        }
    }

    pub fn recv_config(&self) -> RecvConfig {
        RecvConfig {
            mode: Mode::Diode,
            link: self.settings(),
            spool: self.p("spool"),
            quarantine: self.p("quarantine"),
            state_dir: self.p("recv-state"),
            journal: self.p("recv-journal.log"),
            journal_key: recv_journal_key(),
            link_key: self.link_key.clone(),
            dmz_public_key: dmz_key().public_key().clone(),
            mac_keys: vec![self.mac.clone()],
            first_seq: 1,
            gap_grace_secs: 1,
            max_batch_bytes: 64 << 20,
            max_payload_bytes: 256 << 20,
            diode: RecvDiode {
                listen: "127.0.0.1:0".parse().unwrap(),
                recv_buffer_bytes: 8 << 20,
                max_open_batches: 64,
                max_open_bytes: 1 << 30,
                partial_timeout_secs: 300,
            },
            ferry_in: Some(self.p("ferry")),
            settle_ms: 300,
        }
    }

    /// Seals `entries` as batch `seq` (signed by `signer`) and writes it into the outbox.
    pub fn write_batch_with(&self, seq: u64, entries: &[Entry], signer: &Sm2PrivateKey) -> Vec<u8> {
        let fields = BatchFields {
            node_id: NODE.into(),
            sequence: seq,
            created_ms: 1_764_000_000_000 + seq,
            counts: count_entries(entries),
        };
        let bytes = seal_batch(&fields, entries, &self.link_key, signer).unwrap();
        let name = batch_name(seq);
        let tmp = self.p(&format!("outbox/.{name}.tmp"));
        std::fs::write(&tmp, &bytes).unwrap();
        std::fs::rename(&tmp, self.p(&format!("outbox/{name}"))).unwrap();
        bytes
    }

    pub fn write_batch(&self, seq: u64, entries: &[Entry]) -> Vec<u8> {
        self.write_batch_with(seq, entries, &dmz_key())
    }

    /// Writes batches `seqs` of about `size` bytes each (incompressible letters).
    pub fn write_batches(&self, seqs: impl IntoIterator<Item = u64>, size: usize) -> Vec<Vec<u8>> {
        seqs.into_iter().map(|s| self.write_batch(s, &filler(s, size))).collect()
    }

    pub fn spool_file(&self, seq: u64) -> PathBuf {
        self.p(&format!("spool/{}", batch_name(seq)))
    }

    pub fn spooled(&self) -> Vec<u64> {
        let mut v: Vec<u64> = std::fs::read_dir(self.p("spool"))
            .unwrap()
            .filter_map(|e| {
                let n = e.unwrap().file_name().to_string_lossy().into_owned();
                n.strip_prefix(&format!("{NODE}-"))?.strip_suffix(".fbatch")?.parse().ok()
            })
            .collect();
        v.sort_unstable();
        v
    }

    pub fn quarantined(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.p("quarantine"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

pub fn batch_name(seq: u64) -> String {
    format!("{NODE}-{seq:020}.fbatch")
}

/// A desensitised discharge summary with the given free text in ZLGC.
pub fn summary(i: u64, zlgc: &str) -> Entry {
    let t = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap().and_hms_opt(8, 0, 0).unwrap();
    Entry::Record(OutRecord::Summary(Box::new(OutSummary {
        common: OutCommon {
            org: "12110000400000000X".into(),
            rec_key: format!("rec{i}"),
            op: Op::Insert,
            gxsj: t,
            ywrq: Some(t.date()),
            dmz_time: t,
            dmz_seq: i,
        },
        case_key: format!("case{i}"),
        rysj: t,
        cysj: t,
        ryqk: "患者［姓名］，男，发热3天。".into(),
        ryzd: "流行性感冒".into(),
        zlgc: zlgc.into(),
        cyzd: "J10.1".into(),
        cyqk: "好转".into(),
        cyyz: "注意休息".into(),
    })))
}

/// Entries whose sealed batch is about `size` bytes: a few records, and
/// registry entries with long random names for bulk (random letters do not
/// compress much, and registry names are not re-scanned, which keeps debug
/// builds fast).
pub fn filler(seed: u64, size: usize) -> Vec<Entry> {
    let mut rng = TestRng::new(seed.wrapping_mul(0x9e37) ^ 0xabc);
    let per = 8000usize;
    // random letters compress to about 60 %
    let n = (size * 17 / 10).div_ceil(per).max(1);
    let mut v: Vec<Entry> = (0..3).map(|i| summary(seed * 10_000 + i, "体温38.5℃，咳嗽，诊断流行性感冒。")).collect();
    for _ in 0..n {
        let name: String = (0..per).map(|_| (b'a' + (rng.next_u64() % 26) as u8) as char).collect();
        v.push(Entry::Hospital(HospitalInfo {
            code: "12110000400000000X".into(),
            name,
            level: 3,
            region: "110105".into(),
            approved: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            active: true,
        }));
    }
    v
}

/// A receiver running in a thread.
pub struct RecvRun {
    pub addr: SocketAddr,
    pub stop: Arc<AtomicBool>,
    pub handle: JoinHandle<flumon_transfer::Result<RecvSummary>>,
}

impl RecvRun {
    pub fn finish(self) -> RecvSummary {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap().unwrap()
    }
}

/// Starts a receiver on `addr` (127.0.0.1:0 for any port).
pub fn start_recv(cfg: RecvConfig, addr: &str) -> RecvRun {
    let (rx, _) = UdpRx::bind(addr.parse().unwrap(), cfg.diode.recv_buffer_bytes).unwrap();
    let addr = rx.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let opts = RecvOptions { stop: stop.clone() };
    let handle = std::thread::spawn(move || flumon_transfer::recv::run(cfg, Some(Box::new(rx)), opts));
    RecvRun { addr, stop, handle }
}

/// A sending end that stops its sender after `limit` datagrams.
pub struct StopAfter<T: LinkTx> {
    pub inner: T,
    pub count: Arc<AtomicU64>,
    pub limit: u64,
    pub stop: Arc<AtomicBool>,
}

impl<T: LinkTx> LinkTx for StopAfter<T> {
    fn send(&mut self, d: &[u8]) -> std::io::Result<()> {
        let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= self.limit {
            self.stop.store(true, Ordering::Relaxed);
        }
        self.inner.send(d)
    }
}

/// Records every datagram it sends (for replay tests).
pub struct Recorder<T: LinkTx> {
    pub inner: T,
    pub log: Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
}

impl<T: LinkTx> LinkTx for Recorder<T> {
    fn send(&mut self, d: &[u8]) -> std::io::Result<()> {
        if let Ok(mut g) = self.log.lock() {
            g.push(d.to_vec());
        }
        self.inner.send(d)
    }
}

/// Watches the receive queue of the sender's own socket while it sends
/// (every 256 datagrams and when dropped): the largest value seen.
pub struct Probe<T: LinkTx> {
    pub inner: T,
    pub local: SocketAddr,
    pub sent: u64,
    pub max_rx_queue: Arc<AtomicU64>,
}

impl<T: LinkTx> Probe<T> {
    fn look(&self) {
        if let Some(q) = udp_rx_queue(self.local) {
            self.max_rx_queue.fetch_max(q, Ordering::Relaxed);
        }
    }
}

impl<T: LinkTx> LinkTx for Probe<T> {
    fn send(&mut self, d: &[u8]) -> std::io::Result<()> {
        self.sent += 1;
        if self.sent.is_multiple_of(256) {
            self.look();
        }
        self.inner.send(d)
    }
}

impl<T: LinkTx> Drop for Probe<T> {
    fn drop(&mut self) {
        self.look();
    }
}

/// Runs a sender to completion (`once`) through an impaired link; returns
/// its summary and the most bytes ever waiting in its own socket's receive
/// queue (must stay 0: nothing comes back).
pub fn send_once(cfg: SendConfig, imp: Impairments, seed: u64) -> (SendSummary, u64) {
    let (tx, _) = UdpTx::bind(cfg.diode.local_addr, cfg.diode.target, cfg.diode.send_buffer_bytes).unwrap();
    let local = tx.local_addr().unwrap();
    let max = Arc::new(AtomicU64::new(0));
    let link = Probe { inner: Impaired::new(tx, imp, seed), local, sent: 0, max_rx_queue: max.clone() };
    let opts = SendOptions { once: true, ..SendOptions::default() };
    let sum = flumon_transfer::send::run(cfg, Some(Box::new(link)), opts).unwrap();
    (sum, max.load(Ordering::Relaxed))
}

/// Waits until `cond` holds or `secs` pass.
pub fn wait_for(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

/// Every verified entry of a journal.
pub fn journal(path: &Path, key: &Sm2PublicKey) -> Vec<JournalEntry> {
    let mut v = Vec::new();
    let r = visit(path, key, |e| v.push(e.clone())).unwrap();
    assert!(r.is_intact(), "{}: {:?}", path.display(), r.first_bad);
    v
}

pub fn kinds(entries: &[JournalEntry], kind: &str) -> Vec<JournalEntry> {
    entries.iter().filter(|e| e.kind == kind).cloned().collect()
}

/// Bytes waiting in the receive queue of the UDP socket bound to `addr`
/// (from /proc/net/udp): anything there came back over the link.
pub fn udp_rx_queue(addr: SocketAddr) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/udp").ok()?;
    let port = format!(":{:04X}", addr.port());
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.get(1).is_some_and(|l| l.ends_with(&port)) {
            let q = cols.get(4)?;
            let (_, rx) = q.split_once(':')?;
            return u64::from_str_radix(rx, 16).ok();
        }
    }
    None
}
