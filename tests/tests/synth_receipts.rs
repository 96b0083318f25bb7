//! The generator's files against the shared parser and validator: valid rows
//! pass, planted errors come back exactly (row, field, code) in every format
//! and encoding, the same seed gives the same bytes, consecutive days are one
//! consistent world, planted identifiers are where the manifest says.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use chrono::{NaiveDate, NaiveDateTime};

use flumon_shared::model::{Cell, ParsedFile, RecordType, type_def};
use flumon_shared::parse::{Limits, parse_upload};
use flumon_shared::receipt::{OfflineState, Receipt, check_file};
use flumon_shared::validate::Ctx;
use flumon_tests::synth::{self, FileEntry, FormatChoice, HeaderMode, Manifest, Options};

fn opts(dir: &Path) -> Options {
    Options {
        seed: 42,
        hospitals: 3,
        date: NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
        out: dir.to_owned(),
        scale: 2.0,
        jobs: 2,
        ..Options::default()
    }
}

fn generate(o: &Options) -> Manifest {
    let (m, _) = synth::run(o, &|_| {}).unwrap();
    m
}

fn now(f: &FileEntry) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(&f.upload_time, "%Y-%m-%d %H:%M:%S").unwrap()
}

fn parse(dir: &Path, f: &FileEntry) -> ParsedFile {
    let ty = RecordType::parse(&f.ty).unwrap();
    let bytes = std::fs::read(dir.join(&f.path)).unwrap();
    parse_upload(ty, &bytes, f.content_type.as_deref(), &Limits::default())
        .unwrap_or_else(|e| panic!("{}: {e}", f.path))
}

fn receipt(dir: &Path, f: &FileEntry) -> Receipt {
    let parsed = parse(dir, f);
    assert_eq!(parsed.rows.len(), f.rows, "{}: rows", f.path);
    let ctx = Ctx { now: now(f), org: Some(f.hospital.clone()) };
    check_file(&parsed, &ctx, &mut OfflineState::default()).0
}

/// The receipt equals the manifest's expectation exactly.
fn check_all(dir: &Path, m: &Manifest) {
    assert!(!m.files.is_empty());
    for f in &m.files {
        let r = receipt(dir, f);
        let got: BTreeSet<(usize, String, String)> =
            r.errors.iter().map(|e| (e.row, e.field.clone(), e.code.clone())).collect();
        let mut want: BTreeSet<(usize, String, String)> =
            f.errors.iter().map(|e| (e.row, e.field.clone(), e.code.clone())).collect();
        want.extend(f.lab_scope_rows.iter().map(|r| (*r, String::new(), "OUT_OF_SCOPE".to_owned())));
        let unexpected: Vec<_> = got.difference(&want).collect();
        let missing: Vec<_> = want.difference(&got).collect();
        assert!(
            unexpected.is_empty() && missing.is_empty(),
            "{} ({}, {:?}): unexpected {unexpected:?}, missing {missing:?}",
            f.path,
            f.format,
            f.encoding
        );
        assert_eq!(r.errors.len(), want.len(), "{}: one error per rejected row", f.path);
        assert_eq!(r.received, f.rows, "{}", f.path);
        assert_eq!(r.accepted, f.expected_accepted, "{}", f.path);
        assert_eq!(r.rejected, f.expected_rejected, "{}", f.path);
    }
}

fn formats() -> [FormatChoice; 5] {
    [FormatChoice::Csv, FormatChoice::CsvBom, FormatChoice::Gb18030, FormatChoice::Xlsx, FormatChoice::Json]
}

#[test]
fn valid_rows_pass_in_every_format() {
    for format in formats() {
        let dir = tempfile::tempdir().unwrap();
        let o = Options { format, header: HeaderMode::Mixed, lab_only_rate: 0.0, ..opts(dir.path()) };
        let m = generate(&o);
        assert!(m.totals.rows > 500, "{}", m.totals.rows);
        assert_eq!(m.totals.planted_errors + m.totals.lab_scope_rows, 0);
        for f in &m.files {
            assert_eq!(f.expected_accepted, f.rows);
        }
        for ty in RecordType::ALL {
            if ty != RecordType::Death {
                assert!(m.files.iter().any(|f| f.ty == ty.as_str() && f.rows > 0), "{format:?}: no {ty} rows");
            }
        }
        check_all(dir.path(), &m);
    }
}

#[test]
fn lab_scope_rows_are_out_of_scope_offline() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options { lab_only_rate: 0.5, scale: 3.0, ..opts(dir.path()) };
    let m = generate(&o);
    assert!(m.totals.lab_scope_rows > 0);
    check_all(dir.path(), &m);
}

#[test]
fn planted_errors_match_receipts_in_every_format() {
    let mut codes = BTreeSet::new();
    for (i, format) in formats().into_iter().enumerate() {
        let header = [HeaderMode::Code, HeaderMode::Zh, HeaderMode::Mixed][i % 3];
        let dir = tempfile::tempdir().unwrap();
        let o = Options { format, header, invalid_rate: 0.15, plant_ids: true, seed: 7 + i as u64, ..opts(dir.path()) };
        let m = generate(&o);
        assert!(m.totals.planted_errors > 30, "{format:?}: {}", m.totals.planted_errors);
        codes.extend(m.files.iter().flat_map(|f| f.errors.iter().map(|e| e.code.clone())));
        check_all(dir.path(), &m);
    }
    for c in synth::plant::CODES {
        assert!(codes.contains(*c), "{c} never planted");
    }
}

#[test]
fn mixed_formats_and_parts() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options {
        format: FormatChoice::Mixed,
        header: HeaderMode::Mixed,
        invalid_rate: 0.05,
        records_per_file: 40,
        hospitals: 6,
        ..opts(dir.path())
    };
    let m = generate(&o);
    assert!(m.files.iter().any(|f| f.part > 1));
    assert!(m.files.iter().all(|f| f.rows <= 40));
    let kinds: BTreeSet<(String, Option<String>)> =
        m.files.iter().map(|f| (f.format.clone(), f.encoding.clone())).collect();
    assert!(kinds.len() >= 4, "{kinds:?}");
    check_all(dir.path(), &m);
}

fn read_dir_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn same_seed_same_bytes() {
    let (a, b, c) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let base = |dir: &Path| Options {
        format: FormatChoice::Mixed,
        header: HeaderMode::Mixed,
        invalid_rate: 0.05,
        plant_ids: true,
        uploads: 2,
        ..opts(dir)
    };
    generate(&base(a.path()));
    generate(&Options { jobs: 1, ..base(b.path()) });
    generate(&Options { seed: 43, ..base(c.path()) });
    let (fa, fb, fc) = (read_dir_files(a.path()), read_dir_files(b.path()), read_dir_files(c.path()));
    assert!(fa.iter().any(|(p, _)| p.ends_with(".xlsx")));
    assert_eq!(fa.len(), fb.len());
    for ((pa, ba), (pb, bb)) in fa.iter().zip(&fb) {
        assert_eq!(pa, pb);
        assert!(ba == bb, "{pa} differs");
    }
    assert_ne!(fa, fc);
}

/// Text of a cell as the validator would see it (trimmed).
fn text(c: &Option<Cell>) -> String {
    match c {
        Some(Cell::Text(s)) => s.trim().to_owned(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn rows_by_jlid(dir: &Path, m: &Manifest, date: &str) -> HashMap<(String, String, String), Vec<String>> {
    let mut out = HashMap::new();
    for f in m.files.iter().filter(|f| f.date == date) {
        let td = type_def(RecordType::parse(&f.ty).unwrap());
        let jlid = td.index("JLID").unwrap();
        for row in parse(dir, f).rows {
            let cells: Vec<String> = row.cells.iter().map(text).collect();
            out.insert((f.ty.clone(), f.hospital.clone(), cells[jlid].clone()), cells);
        }
    }
    out
}

#[test]
fn consecutive_days_are_one_world() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let o = Options { uploads: 3, ..opts(a.path()) };
    let m = generate(&o);
    // Day D+1 alone is the same as day D+1 of the three.
    let o2 =
        Options { date: NaiveDate::from_ymd_opt(2026, 11, 21).unwrap(), out: b.path().to_owned(), ..opts(b.path()) };
    let m2 = generate(&o2);
    for f in &m2.files {
        assert_eq!(
            std::fs::read(b.path().join(&f.path)).unwrap(),
            std::fs::read(a.path().join(&f.path)).unwrap(),
            "{}",
            f.path
        );
    }
    let days = ["2026-11-20", "2026-11-21", "2026-11-22"];
    let per_day: Vec<_> = days.iter().map(|d| rows_by_jlid(a.path(), &m, d)).collect();
    let (mut same, mut changed, mut deleted) = (0, 0, 0);
    for w in per_day.windows(2) {
        let (x, y) = (&w[0], &w[1]);
        for (key, old) in x {
            let Some(new) = y.get(key) else { continue };
            let td = type_def(RecordType::parse(&key.0).unwrap());
            let (gx, cz) = (td.index("GXSJ").unwrap(), td.index("CZLX").unwrap());
            assert!(new[gx] >= old[gx], "{key:?}: GXSJ went back");
            if new[gx] == old[gx] {
                assert_eq!(new, old, "{key:?}: same GXSJ, different content");
                same += 1;
            } else if new[cz] == "3" {
                deleted += 1;
            } else {
                assert_eq!(new[cz], "2", "{key:?}");
                changed += 1;
            }
        }
    }
    assert!(same > 100 && changed > 0 && deleted > 0, "{same} {changed} {deleted}");
    // Every GXSJ is before the upload, every YWRQ in the window.
    for f in &m.files {
        let td = type_def(RecordType::parse(&f.ty).unwrap());
        let (gx, yw) = (td.index("GXSJ").unwrap(), td.index("YWRQ").unwrap());
        let date = NaiveDate::parse_from_str(&f.date, "%Y-%m-%d").unwrap();
        for row in parse(a.path(), f).rows {
            let g = flumon_shared::validate::cells::parse_datetime(&text(&row.cells[gx])).unwrap();
            assert!(g <= now(f), "{}: GXSJ {g} after the upload", f.path);
            let ywrq = text(&row.cells[yw]);
            if ywrq.is_empty() {
                assert_eq!(
                    text(&row.cells[td.index("CZLX").unwrap()]),
                    "3",
                    "{}: YWRQ left out of a non-delete",
                    f.path
                );
                continue;
            }
            let y = flumon_shared::validate::cells::parse_date(&ywrq).unwrap();
            assert!(y < date && y >= date - chrono::Duration::days(7), "{}: YWRQ {y}", f.path);
        }
    }
}

#[test]
fn planted_identifiers_are_in_the_text() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options { plant_ids: true, scale: 4.0, ..opts(dir.path()) };
    let m = generate(&o);
    assert!(m.totals.planted_ids > 10);
    let mut kinds = BTreeSet::new();
    for f in m.files.iter().filter(|f| !f.planted_ids.is_empty()) {
        let parsed = parse(dir.path(), f);
        let td = type_def(parsed.ty);
        for p in &f.planted_ids {
            let row = parsed.rows.iter().find(|r| r.row == p.row).unwrap();
            let cell = text(&row.cells[td.index(&p.field).unwrap()]);
            assert!(cell.contains(&p.value), "{}: row {} {} lacks {:?}", f.path, p.row, p.field, p.value);
            kinds.insert(p.kind.clone());
        }
    }
    assert!(kinds.len() >= 5, "{kinds:?}");
}

/// Many seeds, days and formats (slow: `cargo test --release -- --ignored`).
#[test]
#[ignore]
fn many_worlds() {
    let dates = ["2026-11-20", "2027-01-20", "2027-03-01", "2027-07-15", "2028-01-10"];
    for seed in 0..20u64 {
        let dir = tempfile::tempdir().unwrap();
        let o = Options {
            seed,
            hospitals: 4,
            date: NaiveDate::parse_from_str(dates[seed as usize % dates.len()], "%Y-%m-%d").unwrap(),
            format: FormatChoice::Mixed,
            header: HeaderMode::Mixed,
            invalid_rate: 0.1,
            plant_ids: seed % 2 == 0,
            scale: 3.0,
            uploads: 2,
            ..opts(dir.path())
        };
        let m = generate(&o);
        check_all(dir.path(), &m);
    }
}
