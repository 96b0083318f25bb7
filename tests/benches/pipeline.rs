//! The per-record pipeline of the DMZ on one core, stage by stage:
//! parse CSV → validate + extraction rules → desensitise → bincode → SM4-GCM.
//!
//! ```text
//!  flumon-synth CSV files (all types, trailing 7 days, N hospitals)
//!    └▶ parse_upload ─▶ check_file ─▶ Desensitiser ─▶ bincode(Vec<Entry>) ─▶ SM4-GCM (segmented)
//!                                                      and the raw original ─▶ SM4-GCM
//! ```
//! Run: `cargo bench -p flumon-tests --bench pipeline` (env FLUMON_BENCH_SCALE to
//! change the data size; FLUMON_BENCH_DATE for the upload day, default 2027-01-20 near the
//! season's peak; the default scale 20 gives about 200,000 records).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::time::{Duration, Instant};

use flumon_shared::crypto::{SymKey, seal};
use flumon_shared::desens::keys::{PersonKey, PseudonymKey};
use flumon_shared::desens::outbound::Desensitiser;
use flumon_shared::desens::scrub::ScrubOptions;
use flumon_shared::entries::Entry;
use flumon_shared::model::RecordType;
use flumon_shared::parse::{Limits, parse_upload};
use flumon_shared::receipt::{OfflineState, check_file};
use flumon_shared::validate::Ctx;
use flumon_shared::validate::cells::parse_datetime;
use flumon_tests::synth::{self, FormatChoice, HeaderMode, Options};

#[derive(Default)]
struct Stage {
    time: Duration,
    bytes: u64,
}

fn main() {
    let scale: f64 = std::env::var("FLUMON_BENCH_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(20.0);
    let date = std::env::var("FLUMON_BENCH_DATE").unwrap_or_else(|_| "2027-01-20".to_owned());
    let date = chrono::NaiveDate::parse_from_str(&date, "%Y-%m-%d").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        date,
        hospitals: 4,
        out: dir.path().to_path_buf(),
        format: FormatChoice::Csv,
        header: HeaderMode::Code,
        scale,
        jobs: 2,
        ..Options::default()
    };
    eprintln!("generating synthetic uploads (scale {scale}) …");
    let (manifest, _) = synth::run(&opts, &|_| {}).unwrap();
    let files: Vec<_> = manifest
        .files
        .iter()
        .map(|f| {
            let bytes = std::fs::read(dir.path().join(&f.path)).unwrap();
            (RecordType::parse(&f.ty).unwrap(), f.hospital.clone(), parse_datetime(&f.upload_time).unwrap(), bytes)
        })
        .collect();
    let des = Desensitiser {
        person: PersonKey::from_bytes([1; 32]),
        pseudonym: PseudonymKey::from_bytes([2; 32]),
        scrub: ScrubOptions::default(),
        drop_free_text: false,
    };
    let key = SymKey::generate().unwrap();
    let (mut parse, mut validate, mut desens, mut encode, mut gcm, mut raw_gcm) =
        (Stage::default(), Stage::default(), Stage::default(), Stage::default(), Stage::default(), Stage::default());
    let (mut records, mut accepted_n) = (0u64, 0u64);
    for (ty, org, now, bytes) in &files {
        let t = Instant::now();
        let parsed = parse_upload(*ty, bytes, Some("text/csv"), &Limits::default()).unwrap();
        parse.time += t.elapsed();
        parse.bytes += bytes.len() as u64;
        records += parsed.rows.len() as u64;

        let t = Instant::now();
        let ctx = Ctx { now: *now, org: Some(org.clone()) };
        let (_receipt, accepted) = check_file(&parsed, &ctx, &mut OfflineState::default());
        validate.time += t.elapsed();
        validate.bytes += bytes.len() as u64;
        accepted_n += accepted.len() as u64;

        let t = Instant::now();
        let out: Vec<Entry> =
            accepted.iter().enumerate().map(|(i, a)| Entry::Record(des.desensitise(a, *now, i as u64))).collect();
        desens.time += t.elapsed();
        desens.bytes += bytes.len() as u64;

        let t = Instant::now();
        let payload = bincode::serde::encode_to_vec(&out, bincode::config::standard()).unwrap();
        encode.time += t.elapsed();
        encode.bytes += payload.len() as u64;

        let t = Instant::now();
        let sealed = seal(&key, b"bench", &payload).unwrap();
        gcm.time += t.elapsed();
        gcm.bytes += payload.len() as u64;
        std::hint::black_box(sealed);

        let t = Instant::now();
        let sealed = seal(&key, b"raw", bytes).unwrap();
        raw_gcm.time += t.elapsed();
        raw_gcm.bytes += bytes.len() as u64;
        std::hint::black_box(sealed);
    }
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "pipeline benchmark, one core: {} files, {records} records ({accepted_n} accepted), {:.1} MiB of CSV",
        files.len(),
        mib(parse.bytes)
    );
    println!("{:<28} {:>12} {:>12} {:>10}", "stage", "records/s", "MiB/s", "seconds");
    let row = |name: &str, s: &Stage| {
        let secs = s.time.as_secs_f64();
        println!("{name:<28} {:>12.0} {:>12.1} {:>10.3}", records as f64 / secs, mib(s.bytes) / secs, secs);
    };
    row("parse CSV", &parse);
    row("validate + scope", &validate);
    row("desensitise", &desens);
    row("bincode encode", &encode);
    row("SM4-GCM (outbound payload)", &gcm);
    row("SM4-GCM (raw original)", &raw_gcm);
    let pvd = parse.time + validate.time + desens.time;
    let pvd_rate = records as f64 / pvd.as_secs_f64();
    println!(
        "{:<28} {:>12.0} {:>12.1} {:>10.3}",
        "parse+validate+desensitise",
        pvd_rate,
        mib(parse.bytes) / pvd.as_secs_f64(),
        pvd.as_secs_f64()
    );
    let total = pvd + encode.time + gcm.time + raw_gcm.time;
    println!(
        "{:<28} {:>12.0} {:>12.1} {:>10.3}",
        "whole pipeline",
        records as f64 / total.as_secs_f64(),
        mib(parse.bytes) / total.as_secs_f64(),
        total.as_secs_f64()
    );
    let gcm_rate = mib(raw_gcm.bytes) / raw_gcm.time.as_secs_f64();
    println!(
        "ratio SM4-GCM MiB/s ÷ (parse+validate+desensitise) MiB/s = {:.2}",
        gcm_rate / (mib(parse.bytes) / pvd.as_secs_f64())
    );
}
