//! Throughput of a real `flumon-dmz` process over TLS (issue 3's benchmark):
//! 1,000-row CSV uploads at concurrency 8 (8 hospitals), records/s, MB/s,
//! p50/p99 receipt latency, server CPU per record and peak memory (VmHWM);
//! then, in the same run, the in-process pipeline of the foundation benchmark
//! (parse → validate → desensitise → bincode → SM4-GCM of payload and raw
//! original, one core) over the same files, and the ratio of the two.
//! Ignored by default; run in release:
//! `cargo test --release -p flumon-dmz --test dmz_bench -- --ignored --nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod dmz_common;

use std::time::{Duration, Instant};

use dmz_common::*;
use flumon_shared::crypto::{SymKey, seal};
use flumon_shared::desens::keys::{PersonKey, PseudonymKey};
use flumon_shared::desens::outbound::Desensitiser;
use flumon_shared::desens::scrub::ScrubOptions;
use flumon_shared::entries::Entry;
use flumon_shared::model::RecordType;
use flumon_shared::parse::{Limits, parse_upload};
use flumon_shared::receipt::{OfflineState, check_file};
use flumon_shared::validate::Ctx;

/// user + system CPU seconds from a `/proc/…/stat` file (10 ms ticks).
fn stat_cpu_secs(path: &str) -> f64 {
    let s = std::fs::read_to_string(path).unwrap();
    let rest = &s[s.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}

/// user + system CPU seconds of a process.
fn cpu_secs(pid: u32) -> f64 {
    stat_cpu_secs(&format!("/proc/{pid}/stat"))
}

fn vm_hwm_mib(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let l = s.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    l.split_whitespace().nth(1).unwrap().parse::<f64>().unwrap() / 1024.0
}

/// user + system CPU seconds of the calling thread.
fn thread_cpu_secs() -> f64 {
    stat_cpu_secs("/proc/thread-self/stat")
}

/// The foundation benchmark's in-process pipeline over `files` on one core:
/// records/s by the wall clock, records, and records per CPU second of this
/// thread (what one core does whatever else runs on the machine).
fn in_process(files: &[(String, Vec<u8>)]) -> (f64, u64, f64) {
    let des = Desensitiser {
        person: PersonKey::from_bytes([1; 32]),
        pseudonym: PseudonymKey::from_bytes([2; 32]),
        scrub: ScrubOptions::default(),
        drop_free_text: false,
    };
    let key = SymKey::generate().unwrap();
    let now = now_cst();
    let mut records = 0u64;
    let t = Instant::now();
    let cpu0 = thread_cpu_secs();
    for (org, bytes) in files {
        let parsed = parse_upload(RecordType::Outpatient, bytes, Some("text/csv"), &Limits::default()).unwrap();
        records += parsed.rows.len() as u64;
        let ctx = Ctx { now, org: Some(org.clone()) };
        let (receipt, accepted) = check_file(&parsed, &ctx, &mut OfflineState::default());
        assert_eq!(receipt.rejected, 0);
        let out: Vec<Entry> =
            accepted.iter().enumerate().map(|(i, a)| Entry::Record(des.desensitise(a, now, i as u64))).collect();
        let payload = bincode::serde::encode_to_vec(&out, bincode::config::standard()).unwrap();
        std::hint::black_box(seal(&key, b"bench", &payload).unwrap());
        std::hint::black_box(seal(&key, b"raw", bytes).unwrap());
    }
    let cpu = thread_cpu_secs() - cpu0;
    (records as f64 / t.elapsed().as_secs_f64(), records, records as f64 / cpu.max(0.01))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run in release with --ignored"]
async fn upload_throughput() {
    const CONC: u32 = 8;
    // FLUMON_BENCH_FILES: files per agent (default 8; more for a longer profile)
    let files_each: u32 = std::env::var("FLUMON_BENCH_FILES").ok().and_then(|s| s.parse().ok()).unwrap_or(8);
    const ROWS: u32 = 1000;
    // FLUMON_BENCH_KEY_FILTER_MIB: the server's [store] key_filter_mib (default: the configuration's, 32; 0 = off)
    let filter_mib: Option<i64> = std::env::var("FLUMON_BENCH_KEY_FILTER_MIB").ok().and_then(|s| s.parse().ok());
    let mut dmz = Dmz::new(|t| {
        if let Some(mib) = filter_mib {
            let mut store = toml::Table::new();
            store.insert("key_filter_mib".into(), mib.into());
            t.insert("store".into(), store.into());
        }
    });
    let agents: Vec<Agent> = (0..CONC).map(|i| dmz.hospital(40 + i)).collect();
    dmz.start();
    // files made before the clock starts
    let mut files = Vec::new();
    for (i, a) in agents.iter().enumerate() {
        let mut mine = Vec::new();
        for f in 0..files_each {
            let base = 100_000 + (i as u32 * files_each + f) * ROWS;
            let recs: Vec<_> = (base..base + ROWS).map(|n| outpatient(&a.uscc, n)).collect();
            mine.push(csv_of(&recs));
        }
        files.push(mine);
    }
    let bytes: usize = files.iter().flatten().map(Vec::len).sum();
    let same_files: Vec<(String, Vec<u8>)> =
        agents.iter().zip(&files).flat_map(|(a, fs)| fs.iter().map(|f| (a.uscc.clone(), f.clone()))).collect();
    let pid = dmz.pid().unwrap();
    let cpu0 = cpu_secs(pid);
    let me0 = stat_cpu_secs("/proc/self/stat");
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for (a, mine) in agents.iter().zip(files) {
        let c = dmz.client(a);
        let token = a.token.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            for body in mine {
                let t = Instant::now();
                let r = upload(&c, &token, "outpatient", Some("text/csv"), body).await;
                assert_eq!(r.status, 200);
                assert_eq!(r.json().unwrap()["accepted"].as_u64(), Some(u64::from(ROWS)));
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut lat: Vec<Duration> = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_secs(pid) - cpu0;
    let me = stat_cpu_secs("/proc/self/stat") - me0;
    lat.sort();
    let records = f64::from(CONC * files_each * ROWS);
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
    eprintln!(
        "{} uploads of {ROWS} rows at concurrency {CONC}: {:.0} records/s, {:.1} MB/s, receipt latency p50 {:?} p99 {:?}",
        lat.len(),
        records / secs,
        bytes as f64 / secs / 1e6,
        pct(0.5),
        pct(0.99)
    );
    // the agents (this process: TLS, HTTP) share the 2 cores with the server
    eprintln!(
        "CPU per record: server {:.1} µs, agents (this process) {:.1} µs; both cores busy {:.0}% of the time",
        cpu / records * 1e6,
        me / records * 1e6,
        (cpu + me) / (2.0 * secs) * 100.0
    );
    let records_n = CONC * files_each * ROWS;
    let dmz_rate = records / secs;
    // the daily 7-day resend: the same files again, every record unchanged
    let cpu1 = cpu_secs(pid);
    let t1 = Instant::now();
    let mut tasks = Vec::new();
    for (a, mine) in agents.iter().zip(same_files.chunks(files_each as usize)) {
        let c = dmz.client(a);
        let token = a.token.clone();
        let mine: Vec<Vec<u8>> = mine.iter().map(|(_, b)| b.clone()).collect();
        tasks.push(tokio::spawn(async move {
            for body in mine {
                let r = upload(&c, &token, "outpatient", Some("text/csv"), body).await;
                assert_eq!(r.status, 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let resend_secs = t1.elapsed().as_secs_f64();
    eprintln!(
        "the same uploads again (a resend, nothing changed): {:.0} records/s, server CPU {:.1} µs/record",
        records / resend_secs,
        (cpu_secs(pid) - cpu1) / records * 1e6
    );
    // the batcher still cutting the uploads' batches would take CPU from the in-process run
    dmz.wait_drained().await;
    let (inproc_rate, inproc_n, inproc_cpu_rate) = in_process(&same_files);
    assert_eq!(inproc_n, u64::from(records_n));
    eprintln!(
        "server CPU {:.1} µs/record (user+sys over the run), peak RSS {:.0} MiB",
        cpu / records * 1e6,
        vm_hwm_mib(pid)
    );
    eprintln!(
        "in-process pipeline, same {} files, one core: {:.0} records/s ({:.1} µs/record); ratio DMZ/in-process {:.2} (throughput), {:.2} (CPU per record)",
        same_files.len(),
        inproc_rate,
        1e6 / inproc_rate,
        dmz_rate / inproc_rate,
        (1e6 / inproc_rate) / (cpu / records * 1e6)
    );
    // the wall-clock reference moves with whatever else the 2 cores do; its thread's CPU time does not
    eprintln!(
        "in-process pipeline per CPU second of its thread: {:.0} records/s ({:.1} µs/record); ratio DMZ/that {:.2}",
        inproc_cpu_rate,
        1e6 / inproc_cpu_rate,
        dmz_rate / inproc_cpu_rate
    );
    let m = dmz.metrics().await;
    let (n, sum) = (m["flumon_dmz_durability_seconds_count"], m["flumon_dmz_durability_seconds_sum"]);
    eprintln!("group commits: {n} rounds, mean {:.1} ms", sum / n * 1000.0);
    dmz.stop();
    // the figures' fold, which uploads leave to page views and the server's 5-minute task
    // (the server folds nothing within this run): timed here on the same store, one core
    let store = flumon_dmz::store::Store::open(&dmz.dir.path().join("data"), Box::new(|_| {})).unwrap();
    let t = Instant::now();
    let folded = flumon_dmz::figures::fold_all(&store).unwrap();
    let fold_secs = t.elapsed().as_secs_f64();
    assert_eq!(folded, 2 * u64::from(records_n), "both phases' records are folded once");
    eprintln!(
        "figures fold of both phases ({folded} records logged, half new): {:.1} µs/record logged, {:.1} µs per new record",
        fold_secs / folded as f64 * 1e6,
        fold_secs / records * 1e6
    );
}

/// The hospital portal's figures alone: `figures::apply` (what an upload
/// does: logs the facts) and the fold when they are read, for 64 chunks of 1,000 distinct outpatient
/// cases, then the same chunks again (a 7-day resend: nothing changes).
/// `cargo test --release -p flumon-dmz --test dmz_bench figures_apply -- --ignored --nocapture`
#[test]
#[ignore = "benchmark: run in release with --ignored"]
fn figures_apply() {
    const CHUNKS: u32 = 64;
    const ROWS: u32 = 1000;
    let dir = tempfile::tempdir().unwrap();
    let store = flumon_dmz::store::Store::open(dir.path(), Box::new(|_| {})).unwrap();
    let key = PseudonymKey::from_bytes([2; 32]);
    let org = uscc(77);
    let now = now_cst();
    let ctx = Ctx { now, org: Some(org.clone()) };
    let chunks: Vec<Vec<flumon_shared::model::Record>> = (0..CHUNKS)
        .map(|c| {
            let recs: Vec<_> = (c * ROWS..(c + 1) * ROWS).map(|n| outpatient(&org, n)).collect();
            let parsed =
                parse_upload(RecordType::Outpatient, &csv_of(&recs), Some("text/csv"), &Limits::default()).unwrap();
            let (receipt, accepted) = check_file(&parsed, &ctx, &mut OfflineState::default());
            assert_eq!(receipt.rejected, 0, "{:?}", receipt.errors.first());
            accepted.into_iter().map(|a| a.record).collect()
        })
        .collect();
    for pass in ["new cases", "resend, unchanged"] {
        let t = Instant::now();
        for c in &chunks {
            let refs: Vec<_> = c.iter().collect();
            flumon_dmz::figures::apply(&store, &key, &org, &refs, now).unwrap();
        }
        let n = f64::from(CHUNKS * ROWS);
        let secs = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let c = flumon_dmz::figures::counters(&store, &org).unwrap();
        let fold_secs = t.elapsed().as_secs_f64();
        assert_eq!(c.get("live:outpatient"), Some(&i64::from(CHUNKS * ROWS)));
        eprintln!(
            "figures, {pass}: apply (on the upload path) {:.1} µs/record, fold (when read) {:.1} µs/record",
            secs / n * 1e6,
            fold_secs / n * 1e6
        );
    }
}
