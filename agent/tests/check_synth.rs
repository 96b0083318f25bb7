//! `flumon-agent check` on generated uploads in every format and encoding:
//! the receipts it prints match the generator's manifest exactly (counts and
//! every planted error's row, field and code).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::BTreeSet;
use std::process::Command;

use flumon_tests::synth::{self, FormatChoice, HeaderMode, Options};

fn check_world(format: FormatChoice, header: HeaderMode) {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        seed: 7,
        hospitals: 2,
        out: dir.path().to_path_buf(),
        format,
        header,
        invalid_rate: 0.05,
        plant_ids: true,
        jobs: 1,
        ..Options::default()
    };
    let (manifest, _) = synth::run(&opts, &|_| {}).unwrap();
    let mut checked = 0;
    for f in &manifest.files {
        let path = dir.path().join(&f.path);
        let out = Command::new(env!("CARGO_BIN_EXE_flumon-agent"))
            .args(["check", "--type", &f.ty, "--org", &f.hospital, "--now", &f.upload_time])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}: {}", f.path, String::from_utf8_lossy(&out.stderr));
        let receipt: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(receipt["received"].as_u64(), Some(f.rows as u64), "{}", f.path);
        assert_eq!(receipt["accepted"].as_u64(), Some(f.expected_accepted as u64), "{}: {receipt}", f.path);
        assert_eq!(receipt["rejected"].as_u64(), Some(f.expected_rejected as u64), "{}", f.path);
        let got: BTreeSet<(u64, String, String)> = receipt["errors"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                e["code"] != "OUT_OF_SCOPE" || !f.lab_scope_rows.contains(&(e["row"].as_u64().unwrap() as usize))
            })
            .map(|e| {
                (
                    e["row"].as_u64().unwrap(),
                    e["field"].as_str().unwrap().to_owned(),
                    e["code"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let want: BTreeSet<(u64, String, String)> =
            f.errors.iter().map(|e| (e.row as u64, e.field.clone(), e.code.clone())).collect();
        assert_eq!(got, want, "{}", f.path);
        // A receipt never repeats a planted identifier.
        let text = String::from_utf8_lossy(&out.stdout);
        for p in &f.planted_ids {
            assert!(!text.contains(&p.value), "{}: receipt repeats a planted identifier", f.path);
        }
        checked += 1;
    }
    assert!(checked >= 16, "only {checked} files");
}

#[test]
fn receipts_match_manifest_csv_utf8_codes() {
    check_world(FormatChoice::Csv, HeaderMode::Code);
}

#[test]
fn receipts_match_manifest_mixed_formats_and_headers() {
    check_world(FormatChoice::Mixed, HeaderMode::Mixed);
}

#[test]
fn receipts_match_manifest_gb18030_chinese_headers() {
    check_world(FormatChoice::Gb18030, HeaderMode::Zh);
}

#[test]
fn receipts_match_manifest_xlsx_and_json() {
    check_world(FormatChoice::Xlsx, HeaderMode::Code);
    check_world(FormatChoice::Json, HeaderMode::Code);
}
