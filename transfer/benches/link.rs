//! Goodput of the diode link on loopback at 0 / 1 / 5 % loss, against a raw
//! UDP blast between two sockets measured in the same run; CPU per side.
//!
//! ```text
//!  parent (sender):  outbox of sealed batches ─▶ send::run (scheduler + net thread, token bucket)
//!                    ─▶ Impaired (loss) ─▶ UdpTx ══ 127.0.0.1 ══▶
//!  child (receiver): UdpRx ─▶ recv::net::run (checks, MAC, RaptorQ) ─▶ count assembled bytes
//!  goodput = batch bytes delivered and SM3-checked / time until the sender finished all passes and
//!            the receiver checked its last batch           CPU = /proc/<pid>/stat (each side its own process)
//! ```
//! cargo bench -p flumon-transfer --bench link
//! FLUMON_BENCH_MB (96) batch megabytes per run, FLUMON_BENCH_RATE_MB (100; 0 = unlimited)
//! FLUMON_BENCH_SYMBOL (1400: MTU 1500; 8872 for a 9000 MTU).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::io::{BufRead, Write};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use flumon_shared::batch::{BatchFields, seal_batch};
use flumon_shared::crypto::{MacKey, Sm2PrivateKey, SymKey};
use flumon_shared::entries::{Entry, HospitalInfo, count_entries};
use flumon_transfer::config::{Mode, SendConfig, SendDiode};
use flumon_transfer::link::{Impaired, Impairments, TestRng, UdpRx, UdpTx};
use flumon_transfer::recv::{DoneSet, Event, Limits, LinkParams, NetStats};
use flumon_transfer::send::SendOptions;
use flumon_transfer::settings::LinkSettings;
use flumon_transfer::wire::KeyRing;

const MAC_KEY: [u8; 32] = [0x33; 32];

fn env_u64(k: &str, d: u64) -> u64 {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

fn settings() -> LinkSettings {
    let t = env_u64("FLUMON_BENCH_SYMBOL", 1400) as u16;
    LinkSettings {
        node_id: "bench".into(),
        mtu: if t > 1400 { 9000 } else { 1500 },
        symbol_size: t,
        block_symbols: if t > 1400 { 128 } else { 750 },
        repair_ppm: 100_000,
        repair_extra: 2,
    }
}

/// CPU seconds (user + system) of a process, from /proc/<pid>/stat.
fn cpu_secs(pid: &str) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ut: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let st: f64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    (ut + st) / 100.0
}

/// The receiver process: prints its port, then one line per run.
fn child() {
    let s = settings();
    let (rx, granted) = UdpRx::bind("127.0.0.1:0".parse().unwrap(), 64 << 20).unwrap();
    println!("{} {}", rx.local_addr().unwrap().port(), granted);
    std::io::stdout().flush().unwrap();
    let expect: u64 = env_u64("FLUMON_BENCH_EXPECT", 0);
    let stop = Arc::new(AtomicBool::new(false));
    let first: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    // (batches, bytes, unix ms of the last one verified)
    let got = Arc::new(Mutex::new((0u64, 0u64, 0u64)));
    let p = LinkParams {
        settings: s,
        keys: KeyRing::new(&[MacKey::from_slice(1, &MAC_KEY).unwrap()]),
        limits: Limits { max_batch: 64 << 20, max_open: 256, max_bytes: 4 << 30, timeout: Duration::from_secs(60) },
    };
    let stats = Arc::new(NetStats::default());
    let (g2, f2, st2) = (got.clone(), first.clone(), stop.clone());
    // the full SM3 and the content-id check happen on another thread, as on
    // the receiver's verify thread (counted in this process's CPU)
    let (vtx, vrx) = std::sync::mpsc::channel::<flumon_transfer::recv::Assembled>();
    let verifier = std::thread::spawn(move || {
        for a in vrx {
            let d = flumon_shared::crypto::sm3(&a.bytes);
            if d.first_chunk::<8>() == Some(&a.content_id) {
                let mut g = g2.lock().unwrap();
                g.0 += 1;
                g.1 += a.bytes.len() as u64;
                g.2 = flumon_transfer::now_ms();
            }
        }
    });
    let cpu0 = cpu_secs("self");
    let h = std::thread::spawn({
        let stats = stats.clone();
        move || {
            flumon_transfer::recv::net::run(
                Box::new(rx),
                p,
                Arc::new(Mutex::new(DoneSet::default())),
                stats,
                st2,
                |e| {
                    f2.lock().unwrap().get_or_insert_with(Instant::now);
                    if let Event::Assembled(a) = e {
                        let _ = vtx.send(a);
                    }
                },
            )
        }
    });
    // stop when told on stdin (the sender is done) or everything arrived
    let stdin = std::io::stdin();
    let mut line = String::new();
    let _ = stdin.lock().read_line(&mut line);
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && got.lock().unwrap().0 < expect {
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    let _ = h.join();
    let _ = verifier.join();
    let (n, bytes, last_ms) = *got.lock().unwrap();
    let drops = stats.drops_json();
    println!(
        "{} {} {:.3} {} {} {}",
        n,
        bytes,
        cpu_secs("self") - cpu0,
        stats.datagrams.load(Ordering::Relaxed),
        drops["redundant"],
        last_ms
    );
}

fn seal_batches(dir: &std::path::Path, link: &SymKey, sign: &Sm2PrivateKey, total_mb: u64) -> u64 {
    let mut rng = TestRng::new(42);
    let mut total = 0u64;
    let per = 2_000_000usize;
    let n = (total_mb * 1_000_000).div_ceil(per as u64);
    for seq in 1..=n {
        let entries: Vec<Entry> = (0..4)
            .map(|_| {
                let name: String = (0..per * 17 / 40).map(|_| (b'a' + (rng.next_u64() % 26) as u8) as char).collect();
                Entry::Hospital(HospitalInfo {
                    code: "x".into(),
                    name,
                    level: 3,
                    region: "110105".into(),
                    approved: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
                    active: true,
                })
            })
            .collect();
        let fields =
            BatchFields { node_id: "bench".into(), sequence: seq, created_ms: 0, counts: count_entries(&entries) };
        let b = seal_batch(&fields, &entries, link, sign).unwrap();
        total += b.len() as u64;
        std::fs::write(dir.join(format!("bench-{seq:020}.fbatch")), b).unwrap();
    }
    total
}

struct RunResult {
    goodput: f64,
    secs: f64,
    delivered: u64,
    batches: u64,
    send_cpu: f64,
    recv_cpu: f64,
}

fn run_link(
    outbox: &std::path::Path,
    batches: u64,
    total: u64,
    loss: f64,
    passes: u8,
    sign: &Sm2PrivateKey,
) -> RunResult {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .arg("--child")
        .env("FLUMON_BENCH_EXPECT", batches.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let port: u16 = line.split_whitespace().next().unwrap().parse().unwrap();
    let state = tempfile::tempdir().unwrap();
    let rate = env_u64("FLUMON_BENCH_RATE_MB", 100) * 1_000_000;
    let cfg = SendConfig {
        mode: Mode::Diode,
        link: settings(),
        outbox: outbox.to_path_buf(),
        state_dir: state.path().join("s"),
        journal: state.path().join("j.log"),
        journal_key: Sm2PrivateKey::generate().unwrap(),
        dmz_public_key: sign.public_key().clone(),
        check_signatures: false,
        mac_key: MacKey::from_slice(1, &MAC_KEY).unwrap(),
        retention_days: 7,
        max_batch_bytes: 64 << 20,
        diode: SendDiode {
            target: SocketAddr::from(([127, 0, 0, 1], port)),
            local_addr: "127.0.0.1:0".parse().unwrap(),
            rate_bytes: rate,
            burst_bytes: 1 << 20,
            send_buffer_bytes: 8 << 20,
            passes,
            pass_gap_ms: 0,
            heartbeat_ms: 1000,
            manifest_secs: 60,
            manifest_hours: 6,
        },
        ferry_out: None,
    };
    let (tx, _) = UdpTx::bind(cfg.diode.local_addr, cfg.diode.target, 8 << 20).unwrap();
    let link = Impaired::new(tx, Impairments { loss, duplicate: 0.0, reorder: 0.0 }, 7);
    let cpu0 = cpu_secs("self");
    let t0 = flumon_transfer::now_ms();
    flumon_transfer::send::run(cfg, Some(Box::new(link)), SendOptions { once: true, ..SendOptions::default() })
        .unwrap();
    let sent_ms = flumon_transfer::now_ms();
    let send_cpu = cpu_secs("self") - cpu0;
    writeln!(child.stdin.as_mut().unwrap(), "done").unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    let _ = child.wait();
    let f: Vec<&str> = line.split_whitespace().collect();
    let got: u64 = f[0].parse().unwrap();
    let bytes: u64 = f[1].parse().unwrap();
    let recv_cpu: f64 = f[2].parse().unwrap();
    let last_ms: u64 = f[5].parse().unwrap();
    // until the sender finished and the receiver verified its last batch
    let secs = (sent_ms.max(last_ms) - t0) as f64 / 1000.0;
    let _ = total;
    RunResult { goodput: bytes as f64 / secs / 1e6, secs, delivered: bytes, batches: got, send_cpu, recv_cpu }
}

/// A plain blast: one socket sends datagrams of the same size as fast as it
/// can for `secs`, another counts what arrives.
fn raw_blast(size: usize, secs: f64) -> (f64, f64, f64) {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sock = socket2::SockRef::from(&rx);
    let _ = sock.set_recv_buffer_size(64 << 20);
    rx.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let addr = rx.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let recv = std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        let mut bytes = 0u64;
        let mut first: Option<Instant> = None;
        let mut last = Instant::now();
        while let Ok((n, _)) = rx.recv_from(&mut buf) {
            first.get_or_insert_with(Instant::now);
            bytes += n as u64;
            last = Instant::now();
            if st.load(Ordering::Relaxed) && bytes > 0 && last.elapsed() > Duration::from_millis(100) {
                break;
            }
        }
        (bytes, first.map_or(0.0, |f| last.duration_since(f).as_secs_f64()))
    });
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let _ = socket2::SockRef::from(&tx).set_send_buffer_size(8 << 20);
    let d = vec![0x5au8; size];
    let t0 = Instant::now();
    let mut sent = 0u64;
    while t0.elapsed().as_secs_f64() < secs {
        for _ in 0..256 {
            if tx.send_to(&d, addr).is_ok() {
                sent += d.len() as u64;
            }
        }
    }
    let send_secs = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let (bytes, recv_secs) = recv.join().unwrap();
    (bytes as f64 / recv_secs.max(1e-9) / 1e6, sent as f64 / send_secs / 1e6, bytes as f64 / sent.max(1) as f64)
}

fn main() {
    if std::env::args().any(|a| a == "--child") {
        child();
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let s = settings();
    let mb = env_u64("FLUMON_BENCH_MB", 96);
    let dir = tempfile::tempdir().unwrap();
    let link = SymKey::generate().unwrap();
    let sign = Sm2PrivateKey::generate().unwrap();
    let total = seal_batches(dir.path(), &link, &sign, mb);
    let batches = std::fs::read_dir(dir.path()).unwrap().count() as u64;
    println!(
        "flumon-transfer link bench: {batches} batches, {:.1} MB; datagram {} B (T = {}, Kmax = {}), repair 10 % + 2; rate limit {}",
        total as f64 / 1e6,
        s.datagram_len(),
        s.symbol_size,
        s.block_symbols,
        match env_u64("FLUMON_BENCH_RATE_MB", 100) {
            0 => "none".to_string(),
            r => format!("{r} MB/s"),
        }
    );
    let (raw, raw_sent, raw_frac) = raw_blast(s.datagram_len(), 2.0);
    println!(
        "raw UDP blast, {} B datagrams: {raw:.1} MB/s received ({raw_sent:.1} MB/s offered, {:.0} % arrived)",
        s.datagram_len(),
        raw_frac * 100.0
    );
    println!("| loss | passes | goodput MB/s | ratio to raw | batches | time s | sender CPU s | receiver CPU s |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (loss, passes) in [(0.0, 1u8), (0.01, 1), (0.05, 1), (0.0, 2), (0.01, 2), (0.05, 2)] {
        // the state of the previous run must not carry over: each run has its own state dir
        let r = run_link(dir.path(), batches, total, loss, passes, &sign);
        let complete = r.batches == batches;
        println!(
            "| {:.0} % | {passes} | {:.1} | {:.2} | {}/{batches}{} | {:.2} | {:.2} | {:.2} |",
            loss * 100.0,
            r.goodput,
            r.goodput / raw,
            r.batches,
            if complete { "" } else { " INCOMPLETE" },
            r.secs,
            r.send_cpu,
            r.recv_cpu
        );
        let _ = r.delivered;
    }
}
