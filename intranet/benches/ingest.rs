//! The intranet benchmark: ingest records/s into SQLite (and PostgreSQL when
//! `FLUMON_TEST_PG_URL` is set), then p50/p95 of the dashboard queries with
//! the whole load in the database, and the database size.
//!
//! ```text
//!  flumon-synth world (H hospitals, real GB/T 2260 counties)
//!    └▶ weekly uploads (7-day windows, consecutive weeks of the season) ─▶ parse ─▶ check ─▶ desensitise
//!         ─▶ batches of FLUMON_BENCH_BATCH entries ─▶ seal (not timed) ─▶ open_batch + apply_batch (timed)
//!  until FLUMON_BENCH_CASES case units are loaded (default 10,000,000)
//!  then: report / time series / region tree, national and provincial, R runs each ─▶ p50, p95
//!  references in the same run (same pool, same PRAGMAs): single-row INSERTs into a plain table, and
//!  records-shaped multi-row upserts (the record writes of ingest and nothing else)
//! ```
//! Run: `CARGO_TARGET_DIR=/work/target-perf cargo bench -p flumon-intranet --bench ingest`.
//! Env: FLUMON_BENCH_CASES (cases to load, default 10,000,000), FLUMON_BENCH_HOSPITALS (200),
//! FLUMON_BENCH_SCALE (synth case volume, 4), FLUMON_BENCH_BATCH (entries per batch, 20,000),
//! FLUMON_BENCH_RUNS (query repetitions, 30), FLUMON_BENCH_DIR (where the SQLite file goes),
//! FLUMON_BENCH_PG_CASES (cases for the PostgreSQL ingest figure, 200,000),
//! FLUMON_BENCH_KEEP (set: keep the SQLite file, print its path, skip PostgreSQL),
//! FLUMON_BENCH_QUERY_DB (a kept SQLite file: time the queries on it, load nothing),
//! FLUMON_BENCH_REF_BODY (body bytes of the records-shaped reference, 600; ingest's mean is ~550),
//! FLUMON_BENCH_REF_INDEX=0 (that reference without the (org, unit) index), FLUMON_BENCH_REF_UPSERT=0 (plain INSERTs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::NaiveDate;

/// The allocator of `flumon-intranet` (src/main.rs), so that the figures are the server's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use flumon_intranet::db::Db;
use flumon_intranet::indicators::{Account, By, Period, Scope, Scoped, compute, scoped, views};
use flumon_intranet::ingest::apply_batch;
use flumon_shared::batch::{BatchFields, BatchLimits, open_batch, seal_batch};
use flumon_shared::crypto::{Sm2PrivateKey, SymKey};
use flumon_shared::desens::keys::{PersonKey, PseudonymKey};
use flumon_shared::desens::outbound::{Desensitiser, OutRecord};
use flumon_shared::desens::scrub::ScrubOptions;
use flumon_shared::entries::{Entry, HospitalInfo, count_entries};
use flumon_shared::model::RecordType;
use flumon_shared::parse::{Limits, parse_upload};
use flumon_shared::receipt::{OfflineState, check_file};
use flumon_shared::validate::Ctx;
use flumon_shared::validate::cells::parse_datetime;
use flumon_tests::synth::hospitals::Hospital;
use flumon_tests::synth::{self, FormatChoice, HeaderMode, Options};
use sqlx::Row;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

struct Gen {
    opts: Options,
    hospitals: Vec<Hospital>,
    des: Desensitiser,
    dmz_seq: u64,
    week: i64,
    start: NaiveDate,
}

impl Gen {
    fn new(dir: &Path, hospitals: usize, scale: f64) -> Gen {
        let start = NaiveDate::from_ymd_opt(2026, 10, 5).unwrap();
        let opts = Options {
            date: start,
            hospitals,
            out: dir.to_path_buf(),
            format: FormatChoice::Csv,
            header: HeaderMode::Code,
            scale,
            days: 7,
            jobs: 1,
            ..Options::default()
        };
        Gen {
            hospitals: Hospital::world(opts.seed, hospitals),
            opts,
            des: Desensitiser {
                person: PersonKey::from_bytes([1; 32]),
                pseudonym: PseudonymKey::from_bytes([2; 32]),
                scrub: ScrubOptions::default(),
                drop_free_text: false,
            },
            dmz_seq: 1,
            week: 0,
            start,
        }
    }

    fn registry(&self) -> Vec<Entry> {
        self.hospitals
            .iter()
            .map(|h| {
                Entry::Hospital(HospitalInfo {
                    code: h.code.clone(),
                    name: h.name.clone(),
                    level: h.level,
                    region: h.county.code.to_string(),
                    approved: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
                    active: true,
                })
            })
            .collect()
    }

    /// The next week's uploads of every hospital, as batch entries.
    fn next_week(&mut self) -> Vec<Entry> {
        let date = self.start + chrono::Duration::days(7 * self.week);
        self.week += 1;
        let mut out = Vec::new();
        for h in &self.hospitals {
            let (files, _) = synth::upload(&self.opts, h, date).unwrap();
            for f in files {
                let path = self.opts.out.join(&f.path);
                let bytes = std::fs::read(&path).unwrap();
                std::fs::remove_file(&path).unwrap();
                let ty = RecordType::parse(&f.ty).unwrap();
                let now = parse_datetime(&f.upload_time).unwrap();
                let parsed = parse_upload(ty, &bytes, Some("text/csv"), &Limits::default()).unwrap();
                let ctx = Ctx { now, org: Some(f.hospital.clone()) };
                let (_, accepted) = check_file(&parsed, &ctx, &mut OfflineState::default());
                for a in &accepted {
                    out.push(Entry::Record(self.des.desensitise(a, now, self.dmz_seq)));
                    self.dmz_seq += 1;
                }
            }
        }
        out
    }
}

fn is_case_record(e: &Entry) -> Option<(&str, &str)> {
    match e {
        Entry::Record(OutRecord::Outpatient(x)) => Some((&x.common.org, &x.case_key)),
        Entry::Record(OutRecord::Discharge(x)) => Some((&x.common.org, &x.case_key)),
        Entry::Record(OutRecord::Summary(x)) => Some((&x.common.org, &x.case_key)),
        Entry::Record(OutRecord::Death(x)) => Some((&x.common.org, &x.case_key)),
        Entry::Record(OutRecord::Medication(x)) => Some((&x.common.org, &x.case_key)),
        Entry::Record(OutRecord::Lab(x)) => Some((&x.common.org, &x.case_key)),
        _ => None,
    }
}

#[derive(Default)]
struct Load {
    records: u64,
    cases: u64,
    batches: u64,
    open: Duration,
    apply: Duration,
    days: (i64, i64),
}

/// Generates and ingests until `cases` distinct case units are in `db`.
async fn load(db: &Db, gen_dir: &Path, cases: u64, label: &str) -> Load {
    let hospitals: usize = env("FLUMON_BENCH_HOSPITALS", 200);
    let scale: f64 = env("FLUMON_BENCH_SCALE", 4.0);
    let batch: usize = env("FLUMON_BENCH_BATCH", 20_000);
    let mut g = Gen::new(gen_dir, hospitals, scale);
    let link = SymKey::generate().unwrap();
    let sign = Sm2PrivateKey::generate().unwrap();
    let limits = BatchLimits::default();
    let mut seq = 1u64;
    let mut l = Load { days: (i64::MAX, i64::MIN), ..Load::default() };
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    let mut pending = g.registry();
    let started = Instant::now();
    while l.cases < cases {
        let week = g.next_week();
        for e in &week {
            if let Some((org, k)) = is_case_record(e)
                && l.cases < u64::MAX
                && !seen.contains(&(org.to_string(), k.to_string()))
            {
                seen.insert((org.to_string(), k.to_string()));
                l.cases += 1;
            }
            if let Entry::Record(r) = e
                && let Some(y) = r.common().ywrq
            {
                let d = flumon_intranet::timeconv::day_of(y);
                l.days = (l.days.0.min(d), l.days.1.max(d));
            }
        }
        l.records += week.iter().filter(|e| matches!(e, Entry::Record(_))).count() as u64;
        pending.extend(week);
        while !pending.is_empty() {
            let rest = pending.split_off(pending.len().min(batch));
            let chunk = std::mem::replace(&mut pending, rest);
            let fields = BatchFields {
                node_id: "dmz1".into(),
                sequence: seq,
                created_ms: 1_700_000_000_000,
                counts: count_entries(&chunk),
            };
            seq += 1;
            let sealed = seal_batch(&fields, &chunk, &link, &sign).unwrap();
            let t = Instant::now();
            let (header, entries) = open_batch::<Entry>(&sealed, &link, sign.public_key(), &limits).unwrap();
            l.open += t.elapsed();
            let t = Instant::now();
            apply_batch(db, &header, &entries, &BTreeSet::new(), "bench").await.unwrap();
            l.apply += t.elapsed();
            l.batches += 1;
        }
        eprintln!(
            "[{label}] week {}: {} records, {} cases, apply {:.0} records/s, {:.0} s elapsed",
            g.week,
            l.records,
            l.cases,
            l.records as f64 / l.apply.as_secs_f64(),
            started.elapsed().as_secs_f64()
        );
    }
    l
}

fn print_load(label: &str, l: &Load) {
    let r = l.records as f64;
    println!(
        "{label}: {} records ({} cases) in {} batches; apply {:.1} s = {:.0} records/s; open_batch {:.1} s; \
         open + apply = {:.0} records/s",
        l.records,
        l.cases,
        l.batches,
        l.apply.as_secs_f64(),
        r / l.apply.as_secs_f64(),
        l.open.as_secs_f64(),
        r / (l.apply + l.open).as_secs_f64()
    );
}

/// Plain-table inserts into a SQLite file through the same kind of pool: the reference figure.
async fn raw_sqlite(dir: &Path, n: usize, batch: usize) -> f64 {
    let db = Db::open(&format!("sqlite://{}", dir.join("raw.db").display())).await.unwrap();
    sqlx::query("CREATE TABLE plain (a TEXT NOT NULL, b TEXT NOT NULL, c BIGINT NOT NULL, d TEXT, PRIMARY KEY (a, b))")
        .execute(&db.pool)
        .await
        .unwrap();
    let body = "x".repeat(600);
    let t = Instant::now();
    let mut i = 0usize;
    while i < n {
        let mut tx = db.pool.begin().await.unwrap();
        for _ in 0..batch.min(n - i) {
            sqlx::query("INSERT INTO plain (a, b, c, d) VALUES ($1, $2, $3, $4)")
                .bind(format!("org{}", i % 200))
                .bind(format!("key{i}"))
                .bind(i as i64)
                .bind(&body)
                .execute(&mut *tx)
                .await
                .unwrap();
            i += 1;
        }
        tx.commit().await.unwrap();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

/// The cheapest way ingest writes records, and nothing else: `write_records`'
/// own multi-row upserts (`upsert_records_sql`, `RECORDS_PER_STATEMENT` rows a
/// statement) into the migrated `records` table of a database of its own
/// (random 32-letter keys; 600-byte bodies). An upper
/// bound for ingest through sqlx, which also reads back, recomputes units and
/// writes rollups.
async fn raw_sqlite_records(dir: &Path, n: usize, batch: usize) -> (f64, String) {
    use flumon_intranet::ingest::apply::{RECORDS_PER_STATEMENT, upsert_records_sql};
    let db = Db::open(&format!("sqlite://{}", dir.join("raw_records.db").display())).await.unwrap();
    // FLUMON_BENCH_REF_INDEX=0 / FLUMON_BENCH_REF_UPSERT=0: without the unit index / plain INSERTs
    let (index, upsert) = (env("FLUMON_BENCH_REF_INDEX", 1) != 0, env("FLUMON_BENCH_REF_UPSERT", 1) != 0);
    // the `records` table of the migrations, in a file of its own: same columns, key and index
    if !index {
        sqlx::query("DROP INDEX records_unit").execute(&db.pool).await.unwrap();
    }
    let body_len: usize = env("FLUMON_BENCH_REF_BODY", 600);
    let body = "x".repeat(body_len);
    let what = format!(
        "multi-row {} ({body_len} B bodies, {} the (org, unit) index)",
        if upsert { "upserts" } else { "INSERTs" },
        if index { "with" } else { "without" }
    );
    let key = |i: usize| {
        // splitmix64: keys in random order, as pseudonyms are
        let mut z = (i as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        format!("{:032x}", u128::from(z ^ (z >> 31)) * 0x1_0000_0001)
    };
    let t = Instant::now();
    let mut i = 0usize;
    while i < n {
        let mut tx = db.pool.begin().await.unwrap();
        let end = (i + batch).min(n);
        while i < end {
            let m = RECORDS_PER_STATEMENT.min(end - i);
            let mut sql = upsert_records_sql(m);
            if !upsert {
                sql.truncate(sql.find(" ON CONFLICT").unwrap());
            }
            let mut q = sqlx::query(sqlx::AssertSqlSafe(flumon_intranet::db::positional(true, sql)));
            for j in i..i + m {
                q = q
                    .bind(format!("org{}", j % 200))
                    .bind("outpatient")
                    .bind(key(j))
                    .bind(j as i64)
                    .bind(j as i64)
                    .bind(0i64)
                    .bind(j as i64)
                    .bind(format!("c:{}", key(j / 3)))
                    .bind(body.clone());
            }
            q.execute(&mut *tx).await.unwrap();
            i += m;
        }
        tx.commit().await.unwrap();
    }
    (n as f64 / t.elapsed().as_secs_f64(), what)
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)].as_secs_f64() * 1000.0
}

async fn time<F, Fut>(runs: usize, mut f: F) -> (f64, f64)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    f().await; // warm
    let mut v = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f().await;
        v.push(t.elapsed());
    }
    (pct(&mut v, 0.5), pct(&mut v, 0.95))
}

async fn queries(db: &Db, last_day: i64) {
    let runs: usize = env("FLUMON_BENCH_RUNS", 30);
    let acct = Account::console();
    let national = scoped(&acct, &Scope::National).unwrap();
    // The province with the most hospitals.
    let row = sqlx::query(
        "SELECT SUBSTR(region, 1, 2) AS p, COUNT(*) AS n FROM hospitals GROUP BY SUBSTR(region, 1, 2) ORDER BY n DESC",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    let pcode = format!("{}0000", row.try_get::<String, _>(0).unwrap());
    let province = scoped(&acct, &Scope::region(&pcode).unwrap()).unwrap();
    let to = flumon_intranet::timeconv::date_of(last_day);
    let d28 = Period::new(to - chrono::Duration::days(27), to, By::Week).unwrap();
    let d7 = Period::new(to - chrono::Duration::days(6), to, By::Day).unwrap();
    let y1 = Period::new(to - chrono::Duration::days(363), to, By::Week).unwrap();
    println!("queries ({runs} runs each, after one warm-up; last day {to}; province {pcode}):");
    println!("{:<52} {:>9} {:>9}", "query", "p50 ms", "p95 ms");
    let mut worst: f64 = 0.0;
    let cases: [(&str, &Scoped, &str, &Period); 10] = [
        ("indicators national, 28 days by week", &national, "", &d28),
        ("indicators province, 28 days by week", &province, "", &d28),
        ("time series national, 364 days by week", &national, "cases", &y1),
        ("time series province, 364 days by week", &province, "cases", &y1),
        ("time series positivity national, 364 days", &national, "positivity", &y1),
        ("time series positivity province, 364 days", &province, "positivity", &y1),
        ("time series timeliness national, 364 days", &national, "timeliness", &y1),
        ("time series timeliness province, 364 days", &province, "timeliness", &y1),
        ("region tree national, 7 days", &national, "tree", &d7),
        ("region tree province, 7 days", &province, "tree", &d7),
    ];
    for (name, s, what, p) in cases {
        let (p50, p95) = time(runs, || async {
            match what {
                "" => {
                    std::hint::black_box(compute::report(db, s, p).await.unwrap());
                }
                "tree" => {
                    std::hint::black_box(views::tree(db, s, p).await.unwrap());
                }
                series => {
                    std::hint::black_box(views::series(db, s, p, series).await.unwrap());
                }
            }
        })
        .await;
        worst = worst.max(p95);
        println!("{name:<52} {p50:>9.1} {p95:>9.1}");
    }
    println!("worst p95: {worst:.1} ms (goal ≤ 100 ms)");
}

fn file_size(p: &Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", p.display())).ok())
        .map(|m| m.len())
        .sum()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let cases: u64 = env("FLUMON_BENCH_CASES", 10_000_000);
    let batch: usize = env("FLUMON_BENCH_BATCH", 20_000);
    let base = std::env::var("FLUMON_BENCH_DIR").map(std::path::PathBuf::from).unwrap_or_else(|_| std::env::temp_dir());
    if let Ok(path) = std::env::var("FLUMON_BENCH_QUERY_DB") {
        // Only the queries, on a database an earlier run kept (FLUMON_BENCH_KEEP).
        let db = Db::open(&format!("sqlite://{path}")).await.unwrap();
        let last: i64 = sqlx::query_scalar("SELECT MAX(day) FROM rollup_region").fetch_one(&db.pool).await.unwrap();
        println!("SQLite database: {path} ({:.1} MiB)", file_size(Path::new(&path)) as f64 / 1048576.0);
        queries(&db, last).await;
        return;
    }
    let dir = tempfile::tempdir_in(&base).unwrap();
    let gen_dir = dir.path().join("synth");

    let raw = raw_sqlite(dir.path(), 200_000, batch).await;
    println!(
        "reference: plain-table INSERTs into SQLite (one statement each, {batch} per transaction): {raw:.0} rows/s"
    );
    let (raw_recs, what) = raw_sqlite_records(dir.path(), 200_000, batch).await;
    println!(
        "reference: records-shaped {what} into SQLite ({} rows a statement, {batch} per transaction, nothing else): {raw_recs:.0} rows/s",
        flumon_intranet::ingest::apply::RECORDS_PER_STATEMENT
    );

    let file = dir.path().join("intranet.db");
    let db = Db::open(&format!("sqlite://{}", file.display())).await.unwrap();
    let l = load(&db, &gen_dir, cases, "sqlite").await;
    print_load("SQLite ingest", &l);
    let rollups: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rollup").fetch_one(&db.pool).await.unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&db.pool).await.unwrap();
    println!(
        "SQLite database: {:.1} MiB ({} rollup rows; days {} … {})",
        file_size(&file) as f64 / 1048576.0,
        rollups,
        flumon_intranet::timeconv::date_of(l.days.0),
        flumon_intranet::timeconv::date_of(l.days.1)
    );
    queries(&db, l.days.1).await;
    db.pool.close().await;
    if std::env::var_os("FLUMON_BENCH_KEEP").is_some() {
        // keep the loaded database for the page timings (intranet/benches/pages.py)
        let kept = dir.keep();
        println!("kept: {}", kept.join("intranet.db").display());
        return;
    }

    if let Ok(url) = std::env::var("FLUMON_TEST_PG_URL") {
        let pg_cases: u64 = env("FLUMON_BENCH_PG_CASES", 200_000);
        let schema = format!("bench{}", std::process::id());
        let admin = Db::open_raw(&url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&admin).await.unwrap();
        let sep = if url.contains('?') { '&' } else { '?' };
        let pg = Db::open(&format!("{url}{sep}options=-c%20search_path%3D{schema}")).await.unwrap();
        let l = load(&pg, &gen_dir, pg_cases, "postgres").await;
        print_load("PostgreSQL ingest", &l);
        let size: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT CAST(SUM(pg_total_relation_size(quote_ident(schemaname) || '.' || quote_ident(tablename))) AS BIGINT) \
             FROM pg_tables WHERE schemaname = '{schema}'"
        )))
        .fetch_one(&admin)
        .await
        .unwrap();
        println!("PostgreSQL schema size: {:.1} MiB", size as f64 / 1048576.0);
        queries(&pg, l.days.1).await;
        pg.pool.close().await;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).execute(&admin).await.unwrap();
    }
}
