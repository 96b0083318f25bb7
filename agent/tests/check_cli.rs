//! `flumon-agent check` as a hospital IT person runs it: the real binary on
//! real files, one receipt JSON per line on stdout.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::path::Path;
use std::process::Command;

const ORG: &str = "91350100M000100Y43";
const NOW: &str = "2026-11-20 02:00:00";

fn header() -> &'static str {
    "ZZJGDM,JLID,CZLX,GXSJ,YWRQ,BBH,TJRQ,MZRC,JZRC,ZYRS"
}

fn visits_csv() -> String {
    let mut s = String::from(header());
    s.push('\n');
    s.push_str(&format!("{ORG},V1,1,2026-11-19 23:00:00,2026-11-19,1.0,2026-11-19,1200,300,800\n"));
    // Second row for the same day under another JLID: DUPLICATE_DAY.
    s.push_str(&format!("{ORG},V2,1,2026-11-19 23:00:00,2026-11-19,1.0,2026-11-19,1,1,1\n"));
    // Bad date.
    s.push_str(&format!("{ORG},V3,1,2026-11-19 23:00:00,2026-11-19,1.0,2026-13-01,1,1,1\n"));
    // Valid, in Chinese-headed file below.
    s
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_flumon-agent")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn receipts(stdout: &str) -> Vec<serde_json::Value> {
    stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn receipts_for_good_bad_and_unreadable_files() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("visits.csv");
    std::fs::write(&csv, visits_csv()).unwrap();
    // The same rows in GB18030 with Chinese headers.
    let zh = "组织机构代码,记录唯一标识,操作类型,更新时间,业务日期,接口版本,统计日期,门诊总诊疗人次,急诊总诊疗人次,当日在院人数\n"
        .to_owned()
        + &format!("{ORG},V9,1,2026-11-18 23:00:00,2026-11-18,1.0,2026-11-18,900,200,700\n");
    let (gb, _, _) = encoding_rs::GB18030.encode(&zh);
    let gbfile = dir.path().join("visits-gb.csv");
    std::fs::write(&gbfile, &gb).unwrap();
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, b"").unwrap();
    let (code, out, err) = run(&[
        "check",
        "--type",
        "visits",
        "--org",
        ORG,
        "--now",
        NOW,
        csv.to_str().unwrap(),
        gbfile.to_str().unwrap(),
        empty.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let r = receipts(&out);
    assert_eq!(r.len(), 3);
    assert_eq!(
        (r[0]["received"].as_u64(), r[0]["accepted"].as_u64(), r[0]["rejected"].as_u64()),
        (Some(3), Some(1), Some(2))
    );
    let codes: Vec<(u64, &str, &str)> = r[0]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["row"].as_u64().unwrap(), e["field"].as_str().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    assert_eq!(codes, vec![(2, "TJRQ", "DUPLICATE_DAY"), (3, "TJRQ", "BAD_DATE")]);
    assert_eq!(r[0]["type"], "visits");
    assert_eq!((r[1]["received"].as_u64(), r[1]["accepted"].as_u64()), (Some(1), Some(1)));
    assert_eq!(r[2]["received"].as_u64(), Some(0));
    assert_eq!(r[2]["errors"][0]["row"].as_u64(), Some(0));
    assert_eq!(r[2]["errors"][0]["field"], "");
    assert!(err.contains("拒收"), "{err}");
}

#[test]
fn org_is_checked_when_given() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("v.csv");
    std::fs::write(&csv, visits_csv()).unwrap();
    let other = "12110105MB0000001";
    let c = flumon_shared::validate::ids::uscc_check_char(other).unwrap();
    let other = format!("{other}{c}");
    let (code, out, _) = run(&["check", "--type", "visits", "--org", &other, "--now", NOW, csv.to_str().unwrap()]);
    assert_eq!(code, 0);
    let r = receipts(&out);
    assert_eq!(r[0]["accepted"].as_u64(), Some(0));
    assert!(r[0]["errors"].as_array().unwrap().iter().any(|e| e["code"] == "ORG_MISMATCH"));
}

#[test]
fn clear_errors_for_bad_invocations() {
    let (code, _, err) = run(&["check", "--type", "nonsense", "x.csv"]);
    assert_ne!(code, 0);
    assert!(err.contains("未知的记录类型"), "{err}");
    let (code, _, err) = run(&["check", "--type", "visits", "/nonexistent/file.csv"]);
    assert_ne!(code, 0);
    assert!(err.contains("无法读取文件"), "{err}");
    assert!(!Path::new("/nonexistent").exists());
    let (code, _, err) = run(&["check", "--type", "visits", "--now", "yesterday", "x.csv"]);
    assert_ne!(code, 0);
    assert!(err.contains("--now"), "{err}");
}
