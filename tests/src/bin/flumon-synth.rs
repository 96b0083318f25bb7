//! `flumon-synth`: write synthetic hospital uploads (INTERFACE.md) and their
//! manifest. See `flumon_tests::synth`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use chrono::NaiveDate;
use clap::Parser;

use flumon_tests::synth::{self, FormatChoice, HeaderMode};

/// Generate synthetic influenza uploads: OUT/<ZZJGDM>/<date>/<type>.<ext>,
/// OUT/manifest.json (expected receipts, planted errors and identifiers),
/// OUT/hospitals.json.
#[derive(Parser, Debug)]
#[command(name = "flumon-synth", version)]
struct Cli {
    /// Seed of the synthetic world.
    #[arg(long, env = "FLUMON_SYNTH_SEED", default_value_t = 42)]
    seed: u64,
    /// Number of hospitals.
    #[arg(long, env = "FLUMON_SYNTH_HOSPITALS", default_value_t = 5)]
    hospitals: usize,
    /// Upload day (YYYY-MM-DD); the upload is made at --upload-hour that day.
    #[arg(long, env = "FLUMON_SYNTH_DATE", default_value = "2026-11-20")]
    date: String,
    /// Days of records each upload resends (the trailing window, 1–30).
    #[arg(long, env = "FLUMON_SYNTH_DAYS", default_value_t = 7)]
    days: u32,
    /// Consecutive upload days to generate, from --date.
    #[arg(long, env = "FLUMON_SYNTH_UPLOADS", default_value_t = 1)]
    uploads: u32,
    /// Output directory.
    #[arg(long, env = "FLUMON_SYNTH_OUT")]
    out: PathBuf,
    /// csv, csv-bom, gb18030, xlsx, json or mixed.
    #[arg(long, env = "FLUMON_SYNTH_FORMAT", default_value = "csv")]
    format: String,
    /// Header names: code, zh or mixed.
    #[arg(long, env = "FLUMON_SYNTH_HEADER", default_value = "code")]
    header: String,
    /// Probability that a valid row is followed by a planted invalid copy.
    #[arg(long, env = "FLUMON_SYNTH_INVALID_RATE", default_value_t = 0.0)]
    invalid_rate: f64,
    /// Plant identifiers in free text (recorded in the manifest).
    #[arg(long, env = "FLUMON_SYNTH_PLANT_IDS")]
    plant_ids: bool,
    /// Multiplies the number of cases.
    #[arg(long, env = "FLUMON_SYNTH_SCALE", default_value_t = 1.0)]
    scale: f64,
    /// Rows per file before a type's rows go on in `<type>_2.<ext>` (at most 200,000).
    #[arg(long, env = "FLUMON_SYNTH_RECORDS_PER_FILE", default_value_t = 100_000)]
    records_per_file: usize,
    /// Bytes per file before the next part (under INTERFACE's 64 MiB).
    #[arg(long, env = "FLUMON_SYNTH_MAX_FILE_BYTES", default_value_t = 60 << 20)]
    max_file_bytes: u64,
    /// Share of positive outpatient encounters in scope only by their test (INTERFACE §4 rule 3).
    #[arg(long, env = "FLUMON_SYNTH_LAB_ONLY_RATE", default_value_t = 0.05)]
    lab_only_rate: f64,
    /// ISO week of the epidemic peak.
    #[arg(long, env = "FLUMON_SYNTH_PEAK_WEEK", default_value_t = 3)]
    peak_week: u32,
    /// Hour (CST) at which the upload of the day is made.
    #[arg(long, env = "FLUMON_SYNTH_UPLOAD_HOUR", default_value_t = 2)]
    upload_hour: u32,
    /// Threads (default: available cores).
    #[arg(long, env = "FLUMON_SYNTH_JOBS")]
    jobs: Option<usize>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let date = NaiveDate::parse_from_str(&cli.date, "%Y-%m-%d")
        .with_context(|| format!("--date {}: expected YYYY-MM-DD", cli.date))?;
    let format = FormatChoice::parse(&cli.format)
        .with_context(|| format!("--format {}: expected csv, csv-bom, gb18030, xlsx, json or mixed", cli.format))?;
    let header = HeaderMode::parse(&cli.header)
        .with_context(|| format!("--header {}: expected code, zh or mixed", cli.header))?;
    anyhow::ensure!((0.0..=1.0).contains(&cli.invalid_rate), "--invalid-rate must be within 0…1");
    anyhow::ensure!(cli.scale >= 0.0 && cli.scale.is_finite(), "--scale must be a non-negative number");
    anyhow::ensure!((1..=30).contains(&cli.days), "--days must be within 1…30 (YWRQ must lie in the last 30 days)");
    let jobs = cli.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let opts = synth::Options {
        seed: cli.seed,
        hospitals: cli.hospitals,
        date,
        days: cli.days,
        uploads: cli.uploads,
        out: cli.out,
        format,
        header,
        invalid_rate: cli.invalid_rate,
        plant_ids: cli.plant_ids,
        scale: cli.scale,
        records_per_file: cli.records_per_file,
        max_file_bytes: cli.max_file_bytes,
        lab_only_rate: cli.lab_only_rate,
        peak_week: cli.peak_week,
        upload_hour: cli.upload_hour,
        jobs,
    };
    let progress = |line: &str| {
        let mut e = std::io::stderr().lock();
        let _ = writeln!(e, "{line}");
    };
    let (manifest, stats) = synth::run(&opts, &progress).context("generating")?;
    let t = &manifest.totals;
    eprintln!(
        "{} files, {} rows ({} deletes, {} planted errors, {} lab-scope rows, {} planted identifiers), {:.1} MiB in {:.2}s: {:.0} records/s",
        t.files,
        t.rows,
        t.deletes,
        t.planted_errors,
        t.lab_scope_rows,
        t.planted_ids,
        t.bytes as f64 / 1_048_576.0,
        stats.seconds,
        stats.rate()
    );
    eprintln!("manifest: {}", opts.out.join("manifest.json").display());
    Ok(())
}
