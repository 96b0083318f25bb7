//! MEM against the R package `mem` 2.19 on its `flucylraw` example
//! (shared/spec/mem-golden, copied into tests/data/mem-golden so a checkout anywhere runs it;
//! the spec's own copy beside the repository is preferred when present): every key of the
//! reference JSON, to 1e-9 relative.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::path::PathBuf;

use flumon_intranet::mem::{MemOptions, memmodel, read_csv};

fn golden_dir() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for cand in [
        here.join("../../shared/spec/mem-golden"),
        here.join("../shared/spec/mem-golden"),
        here.join("tests/data/mem-golden"),
    ] {
        if cand.join("flucylraw_reference.json").exists() {
            return cand;
        }
    }
    panic!("mem-golden not found (tests/data/mem-golden or the spec beside the repository)");
}

fn close(a: f64, b: f64, what: &str) {
    let rel = if b == 0.0 { a.abs() } else { ((a - b) / b).abs() };
    assert!(rel <= 1e-9, "{what}: got {a}, R gives {b} (relative {rel:e})");
}

#[test]
fn flucylraw_matches_r_mem() {
    let dir = golden_dir();
    let csv = std::fs::read_to_string(dir.join("flucylraw_seasons.csv")).unwrap();
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("flucylraw_reference.json")).unwrap()).unwrap();
    let data = read_csv(&csv).unwrap();
    let got = memmodel(&data, &MemOptions::default());

    assert_eq!(got.n_seasons as u64, want["n_seasons"].as_u64().unwrap());
    assert_eq!(got.n_max as u64, want["n_max"].as_u64().unwrap());
    close(got.epidemic_threshold.unwrap(), want["epidemic_threshold"].as_f64().unwrap(), "epidemic_threshold");
    close(
        got.post_epidemic_threshold.unwrap(),
        want["post_epidemic_threshold"].as_f64().unwrap(),
        "post_epidemic_threshold",
    );
    let i = got.intensity.as_ref().unwrap();
    close(i.medium, want["intensity"]["medium"].as_f64().unwrap(), "medium");
    close(i.high, want["intensity"]["high"].as_f64().unwrap(), "high");
    close(i.very_high, want["intensity"]["very_high"].as_f64().unwrap(), "very_high");

    let seasons = want["seasons"].as_array().unwrap();
    assert_eq!(got.seasons.len(), seasons.len());
    for (g, w) in got.seasons.iter().zip(seasons) {
        assert_eq!(g.season, w["season"].as_str().unwrap());
        assert_eq!(g.start_week, w["start_week"].as_str().unwrap(), "{}", g.season);
        assert_eq!(g.end_week, w["end_week"].as_str().unwrap(), "{}", g.season);
        assert_eq!(g.duration_weeks as u64, w["duration_weeks"].as_u64().unwrap(), "{}", g.season);
        close(g.percentage, w["percentage"].as_f64().unwrap(), &format!("{} percentage", g.season));
    }

    let tc = &want["typical_curve"];
    assert_eq!(tc["columns"], serde_json::json!(["lower", "geometric_mean", "upper"]));
    let idx = tc["week_index"].as_array().unwrap();
    let rows = tc["rows"].as_array().unwrap();
    assert_eq!(got.typical_curve.len(), rows.len());
    assert_eq!(idx.len(), rows.len());
    for ((k, p), row) in idx.iter().zip(&got.typical_curve).zip(rows) {
        let k = k.as_u64().unwrap() as usize;
        assert_eq!(p.week, data.weeks[k - 1]);
        let r = row.as_array().unwrap();
        close(p.lower.unwrap(), r[0].as_f64().unwrap(), &format!("curve {k} lower"));
        close(p.mean.unwrap(), r[1].as_f64().unwrap(), &format!("curve {k} mean"));
        close(p.upper.unwrap(), r[2].as_f64().unwrap(), &format!("curve {k} upper"));
    }

    assert_eq!(got.mean_length.unwrap() as u64, want["mean_length"].as_u64().unwrap());
    assert_eq!(got.mean_start_index.unwrap() as u64, want["mean_start_index"].as_u64().unwrap());
    // Every key of the reference is compared above.
    let compared = [
        "about",
        "input",
        "call",
        "n_seasons",
        "n_max",
        "epidemic_threshold",
        "post_epidemic_threshold",
        "intensity",
        "seasons",
        "typical_curve",
        "mean_length",
        "mean_start_index",
    ];
    for k in want.as_object().unwrap().keys() {
        assert!(compared.contains(&k.as_str()), "reference key {k} is not compared");
    }
}

#[test]
fn flucylraw_with_a_missing_week_is_interpolated() {
    let dir = golden_dir();
    let csv = std::fs::read_to_string(dir.join("flucylraw_seasons.csv")).unwrap();
    let mut data = read_csv(&csv).unwrap();
    let orig = data.seasons[0].values[5];
    data.seasons[0].values[5] = None;
    let got = memmodel(&data, &MemOptions::default());
    assert_eq!(got.interpolated.len(), 1);
    assert_eq!(got.interpolated[0].season, "2001/2002");
    let (a, b) = (data.seasons[0].values[4].unwrap(), data.seasons[0].values[6].unwrap());
    assert!((got.interpolated[0].value - (a + b) / 2.0).abs() < 1e-12);
    assert_ne!(Some(got.interpolated[0].value), orig);
    assert!(got.epidemic_threshold.is_some());
}
