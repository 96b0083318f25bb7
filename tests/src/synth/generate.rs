//! One upload (a hospital's files of one day) and a whole run (every upload
//! day × hospital, on `jobs` threads), with `manifest.json` and
//! `hospitals.json`.
//!
//! The upload of day D is made at D `upload_hour`:00 CST and carries every
//! record whose latest version by then has its YWRQ in D − days … D − 1: the
//! trailing resend. It is a function of (seed, hospital, D, options) only.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::Context;
use chrono::{Duration, NaiveDate};

use flumon_shared::model::RecordType;

use super::daily;
use super::encounter::{World, details, skeleton};
use super::epidemic::Season;
use super::hospitals::Hospital;
use super::manifest::{FileEntry, Manifest, Totals};
use super::records::{Upload, emit};
use super::rng::{self, chance, tag};
use super::writers::files_layout;
use super::writers::{FileFormat, FormatChoice, HeaderMode, SinkSpec, TypeSink, headers, is_date_column};

/// Encounters older than this many days before the window cannot have records in it.
pub const LOOKBACK_DAYS: i64 = 40;

/// What to generate.
#[derive(Clone, Debug)]
pub struct Options {
    pub seed: u64,
    pub hospitals: usize,
    /// The (first) upload day.
    pub date: NaiveDate,
    /// Days of YWRQ an upload covers (1–30).
    pub days: u32,
    /// Consecutive upload days from `date`.
    pub uploads: u32,
    pub out: PathBuf,
    pub format: FormatChoice,
    pub header: HeaderMode,
    pub invalid_rate: f64,
    pub plant_ids: bool,
    pub scale: f64,
    pub records_per_file: usize,
    pub max_file_bytes: u64,
    /// Share of positive outpatient encounters in scope only by their test.
    pub lab_only_rate: f64,
    pub peak_week: u32,
    /// Hour (CST) the upload of day D is made.
    pub upload_hour: u32,
    pub jobs: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seed: 42,
            hospitals: 5,
            date: NaiveDate::from_ymd_opt(2026, 11, 20).unwrap_or_default(),
            days: 7,
            uploads: 1,
            out: PathBuf::from("synth-out"),
            format: FormatChoice::Csv,
            header: HeaderMode::Code,
            invalid_rate: 0.0,
            plant_ids: false,
            scale: 1.0,
            records_per_file: 100_000,
            max_file_bytes: 60 << 20,
            lab_only_rate: 0.05,
            peak_week: 3,
            upload_hour: 2,
            jobs: 1,
        }
    }
}

impl Options {
    fn season(&self) -> Season {
        Season { peak_week: self.peak_week, scale: self.scale, seed: self.seed }
    }
}

/// One hospital's upload of day `date`: its files (in upload order) and the rows written.
pub fn upload(opts: &Options, h: &Hospital, date: NaiveDate) -> anyhow::Result<(Vec<FileEntry>, u64)> {
    let season = opts.season();
    let days = i64::from(opts.days.clamp(1, 30));
    let now = date.and_hms_opt(opts.upload_hour.min(23), 0, 0).unwrap_or_default();
    let u = Upload {
        seed: opts.seed,
        hospital: h,
        now,
        window: (date - Duration::days(days), date - Duration::days(1)),
        scrub_fields: h.style.scrub_fields || opts.plant_ids,
    };
    let world = World {
        seed: opts.seed,
        hospital: h,
        season: &season,
        plant_ids: opts.plant_ids,
        lab_only_rate: opts.lab_only_rate,
    };
    let dir = format!("{}/{}", h.code, date.format("%Y-%m-%d"));
    let mut sinks: Vec<TypeSink> = Vec::new();
    for (ti, ty) in RecordType::ALL.into_iter().enumerate() {
        let mut lr = rng::stream(opts.seed, &[tag::LAYOUT, h.index as u64, ti as u64]);
        let format = FileFormat::choose(opts.format, &mut lr);
        let names = headers(ty, opts.header, h.style.hqms_extra, &mut lr);
        let n_fields = flumon_shared::model::type_def(ty).fields.len();
        let date_cells =
            (0..n_fields).map(|i| h.style.xlsx_date_cells && is_date_column(ty, i) && !chance(&mut lr, 0.25)).collect();
        let declare = opts.format != FormatChoice::Mixed || chance(&mut lr, 0.5);
        let layout = files_layout(h.style, chance(&mut lr, 0.15), chance(&mut lr, 0.3), date_cells);
        sinks.push(TypeSink::new(SinkSpec {
            root: opts.out.clone(),
            dir: dir.clone(),
            ty,
            format,
            headers: names,
            header_mode: opts.header.as_str(),
            content_type: format.content_type(declare),
            layout,
            hospital: h.code.clone(),
            date,
            upload_time: now.format("%Y-%m-%d %H:%M:%S").to_string(),
            max_rows: opts.records_per_file.clamp(1, 200_000),
            max_bytes: opts.max_file_bytes.max(1 << 16),
            invalid_rate: opts.invalid_rate,
            rng: rng::stream(opts.seed, &[tag::PLANT, h.index as u64, rng::day_key(date), ti as u64]),
        }));
    }
    let mut written = 0u64;
    let mut out = |row: super::row::Row| -> anyhow::Result<()> {
        let i = RecordType::ALL.iter().position(|t| *t == row.ty).unwrap_or(0);
        if let Some(s) = sinks.get_mut(i) {
            written += s.push(row)? as u64;
        }
        Ok(())
    };
    let first = u.window.0 - Duration::days(LOOKBACK_DAYS);
    let mut day = first;
    while day <= u.window.1 {
        let n = season.encounters(h, day);
        for k in 0..n {
            let (r, sk) = skeleton(opts.seed, h, day, k);
            if sk.last_ywrq < u.window.0 {
                continue;
            }
            let enc = details(&world, r, &sk, day, k);
            emit(&u, &enc, &mut out)?;
        }
        day += Duration::days(1);
    }
    let mut d = u.window.0;
    while d <= u.window.1 {
        daily::stock(&u, &season, d, &mut out)?;
        if let Some(row) = daily::visits(&u, &season, d) {
            out(row)?;
        }
        d += Duration::days(1);
    }
    let mut files = Vec::new();
    for s in sinks {
        files.extend(s.finish()?);
    }
    Ok((files, written))
}

type UploadResult = anyhow::Result<(Vec<FileEntry>, u64)>;

/// What a run did.
#[derive(Clone, Debug)]
pub struct RunStats {
    pub rows: u64,
    pub files: usize,
    pub seconds: f64,
}

impl RunStats {
    /// Rows written per second.
    pub fn rate(&self) -> f64 {
        if self.seconds > 0.0 { self.rows as f64 / self.seconds } else { 0.0 }
    }
}

/// Generate every upload of `opts` into `opts.out`; `progress` gets one line per upload.
pub fn run(opts: &Options, progress: &(dyn Fn(&str) + Sync)) -> anyhow::Result<(Manifest, RunStats)> {
    let start = Instant::now();
    std::fs::create_dir_all(&opts.out).with_context(|| format!("creating {}", opts.out.display()))?;
    let hospitals = Hospital::world(opts.seed, opts.hospitals);
    let dates: Vec<NaiveDate> = (0..opts.uploads.max(1)).map(|i| opts.date + Duration::days(i64::from(i))).collect();
    let tasks: Vec<(NaiveDate, usize)> =
        dates.iter().flat_map(|d| (0..hospitals.len()).map(move |h| (*d, h))).collect();
    let results: Mutex<Vec<Option<UploadResult>>> = Mutex::new((0..tasks.len()).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    let jobs = opts.jobs.clamp(1, 64);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((date, hi)) = tasks.get(i).copied() else { break };
                    let Some(h) = hospitals.get(hi) else { break };
                    let t = Instant::now();
                    let res = upload(opts, h, date);
                    if let Ok((_, rows)) = &res {
                        progress(&format!(
                            "{} {} {}: {} rows in {:.1}s",
                            date,
                            h.code,
                            h.name,
                            rows,
                            t.elapsed().as_secs_f64()
                        ));
                    }
                    let failed = res.is_err();
                    if let Ok(mut all) = results.lock()
                        && let Some(slot) = all.get_mut(i)
                    {
                        *slot = Some(res);
                    }
                    if failed {
                        next.store(tasks.len(), Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let mut files = Vec::new();
    let mut rows = 0;
    let all = results.into_inner().map_err(|_| anyhow::anyhow!("a generator thread panicked"))?;
    for r in all {
        let (f, n) = r.context("an upload was not generated")??;
        files.extend(f);
        rows += n;
    }
    let mut totals = Totals::default();
    for f in &files {
        totals.add(f);
    }
    let manifest = Manifest {
        generator: format!("flumon-synth {}", env!("CARGO_PKG_VERSION")),
        seed: opts.seed,
        hospitals: hospitals.len(),
        dates: dates.iter().map(|d| d.format("%Y-%m-%d").to_string()).collect(),
        days: opts.days.clamp(1, 30),
        format: serde_json::to_value(opts.format)?.as_str().unwrap_or_default().to_owned(),
        header: opts.header.as_str().to_owned(),
        invalid_rate: opts.invalid_rate,
        plant_ids: opts.plant_ids,
        scale: opts.scale,
        files,
        totals,
    };
    let infos: Vec<_> = hospitals.iter().map(Hospital::info).collect();
    write_json(&opts.out.join("hospitals.json"), &infos)?;
    write_json(&opts.out.join("manifest.json"), &manifest)?;
    let files = manifest.files.len();
    Ok((manifest, RunStats { rows, files, seconds: start.elapsed().as_secs_f64() }))
}

fn write_json(path: &std::path::Path, v: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut s = serde_json::to_string_pretty(v)?;
    s.push('\n');
    std::fs::write(path, s).with_context(|| format!("writing {}", path.display()))
}
