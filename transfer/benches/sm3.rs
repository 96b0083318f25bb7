//! SM3 and HMAC-SM3 throughput on one core: flumon's own SM3 (shared::crypto)
//! against the `sm3` / `hmac` crates it replaced, on one large buffer and on
//! 1452-byte datagrams.
//!
//! cargo bench -p flumon-transfer --bench sm3      (FLUMON_BENCH_MB, default 64)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::hint::black_box;
use std::time::Instant;

use flumon_shared::crypto::{HmacSm3Key, sm3};
use hmac::{Hmac, KeyInit, Mac};
use sm3::{Digest, Sm3};

fn mbps(bytes: usize, f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    bytes as f64 / t.elapsed().as_secs_f64() / 1e6
}

fn best(bytes: usize, mut f: impl FnMut()) -> f64 {
    (0..3).map(|_| mbps(bytes, &mut f)).fold(0.0, f64::max)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let mb: usize = std::env::var("FLUMON_BENCH_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    let data: Vec<u8> = (0..mb * 1_000_000).map(|i| (i as u32).wrapping_mul(2_654_435_761) as u8).collect();
    assert_eq!(sm3(&data), <[u8; 32]>::from(Sm3::digest(&data)));
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "SM3 / HMAC-SM3, one thread, {mb} MB, load average {}",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    let own = best(data.len(), || {
        black_box(sm3(black_box(&data)));
    });
    let crate_ = best(data.len(), || {
        black_box(Sm3::digest(black_box(&data)));
    });
    println!("| what | flumon SM3 MB/s | sm3 crate MB/s |");
    println!("| --- | ---: | ---: |");
    println!("| SM3, one {mb} MB buffer | {own:.0} | {crate_:.0} |");

    let key = [0x33u8; 32];
    let dgrams: Vec<&[u8]> = data.chunks_exact(1452).collect();
    let bytes = dgrams.len() * 1452;
    let k = HmacSm3Key::new(&key);
    let keyed = <Hmac<Sm3> as KeyInit>::new_from_slice(&key).unwrap();
    let own1 = best(bytes, || {
        for d in &dgrams {
            black_box(k.mac(d));
        }
    });
    let crate1 = best(bytes, || {
        for d in &dgrams {
            black_box(keyed.clone().chain_update(d).finalize().into_bytes());
        }
    });
    println!("| HMAC-SM3, 1452 B datagrams one at a time | {own1:.0} | {crate1:.0} |");
}
