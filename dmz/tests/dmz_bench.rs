//! Throughput of a real `flumon-dmz` process over TLS (issue 3's benchmark):
//! 1,000-row CSV uploads at concurrency 8 (8 hospitals), records/s, MB/s,
//! p50/p99 receipt latency. Ignored by default; run in release:
//! `cargo test --release -p flumon-dmz --test dmz_bench -- --ignored --nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod dmz_common;

use std::time::{Duration, Instant};

use dmz_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run in release with --ignored"]
async fn upload_throughput() {
    const CONC: u32 = 8;
    const FILES_EACH: u32 = 8;
    const ROWS: u32 = 1000;
    let mut dmz = Dmz::new(|_| {});
    let agents: Vec<Agent> = (0..CONC).map(|i| dmz.hospital(40 + i)).collect();
    dmz.start();
    // files made before the clock starts
    let mut files = Vec::new();
    for (i, a) in agents.iter().enumerate() {
        let mut mine = Vec::new();
        for f in 0..FILES_EACH {
            let base = 100_000 + (i as u32 * FILES_EACH + f) * ROWS;
            let recs: Vec<_> = (base..base + ROWS).map(|n| outpatient(&a.uscc, n)).collect();
            mine.push(csv_of(&recs));
        }
        files.push(mine);
    }
    let bytes: usize = files.iter().flatten().map(Vec::len).sum();
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
    lat.sort();
    let records = f64::from(CONC * FILES_EACH * ROWS);
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
    eprintln!(
        "{} uploads of {ROWS} rows at concurrency {CONC}: {:.0} records/s, {:.1} MB/s, receipt latency p50 {:?} p99 {:?}",
        lat.len(),
        records / secs,
        bytes as f64 / secs / 1e6,
        pct(0.5),
        pct(0.99)
    );
    let m = dmz.metrics().await;
    let (n, sum) = (m["flumon_dmz_durability_seconds_count"], m["flumon_dmz_durability_seconds_sum"]);
    eprintln!("group commits: {n} rounds, mean {:.1} ms", sum / n * 1000.0);
    dmz.stop();
}
