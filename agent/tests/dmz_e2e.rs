//! The agent against a real `flumon-dmz` (spawned from target/debug):
//! enrolment, a full daily run with every receipt checked, a death scan, the
//! DMZ killed mid-run and back, the agent killed mid-run and restarted, a
//! mapping file. Every delivery is checked against the DMZ's own audit
//! journal (one `upload` entry per request it answered).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::dmz::Dmz;
use common::*;

fn sum(receipts: &[serde_json::Value], k: &str) -> u64 {
    receipts.iter().map(|r| r["receipt"][k].as_u64().unwrap()).sum()
}

fn wait_uploads(d: &Dmz, n: usize) {
    let t0 = Instant::now();
    while d.uploads().len() < n {
        assert!(t0.elapsed() < Duration::from_secs(300), "DMZ never got {n} uploads");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn enroll_then_full_daily_run_with_scan() {
    let t = tempfile::tempdir().unwrap();
    let (h, exports, now) = world(&t.path().join("synth"), 11, 0.3);
    let mut d = Dmz::init(&t.path().join("dmz"), None);
    let created = d.create_hospital(&h.code, &h.name, h.county.code, h.level);
    let code = d.enrol_code(&h.code);
    d.start();
    let agent = t.path().join("agent");
    // enrolment: a wrong code is refused, the right one gives a certificate
    let enroll = |code: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_flumon-agent"))
            .args(["enroll", "--dmz", &d.url(), "--uscc", &h.code, "--code", code, "--ca"])
            .arg(d.ca())
            .arg("--config-dir")
            .arg(&agent)
            .env("FLUMON_AGENT_TOKEN", created["token"].as_str().unwrap())
            .output()
            .unwrap()
    };
    let bad = enroll("000000");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("注册"), "{}", String::from_utf8_lossy(&bad.stderr));
    let ok = enroll(&code);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(agent.join("agent.key")).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(agent.join("token")).unwrap().permissions().mode() & 0o777, 0o600);
    // the written agent.toml, pointed at the synthetic exports
    let cfg = agent.join("agent.toml");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("folder = \"exports\"", &format!("folder = \"{}\"", exports.display()));
    let text = text
        .replace("# folder = \"scans\"", "folder = \"scans\"")
        .replace("retry_initial_secs = 30", "retry_initial_secs = 1");
    std::fs::write(&cfg, text).unwrap();
    std::fs::create_dir_all(agent.join("scans")).unwrap();
    std::fs::write(agent.join("scans/ZY000123_1-2_1.pdf"), b"%PDF-1.4 /Type /Page page one").unwrap();
    std::fs::write(agent.join("scans/not-a-convention.pdf"), b"%PDF-1.4").unwrap();

    // --dry-run sends nothing
    let (chunks, rows) = expected(&cfg, &now);
    assert!(chunks >= 6 && rows > 100, "{chunks} {rows}");
    let dry = run_agent(&cfg, &now).arg("--dry-run").output().unwrap();
    assert!(dry.status.success(), "{}", String::from_utf8_lossy(&dry.stderr));
    assert_eq!(String::from_utf8_lossy(&dry.stdout).lines().count(), chunks);
    assert!(d.uploads().is_empty());

    let out = run_agent(&cfg, &now).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rec = stored_receipts(&cfg);
    assert_eq!(rec.len(), chunks);
    assert!(rec.iter().all(|r| r["status"] == 200), "{rec:?}");
    assert_eq!(sum(&rec, "received") as usize, rows);
    assert_eq!(
        sum(&rec, "rejected"),
        0,
        "{:?}",
        rec.iter().flat_map(|r| r["receipt"]["errors"].as_array().unwrap().iter().take(2)).collect::<Vec<_>>()
    );
    // upload order of INTERFACE §4
    let order: Vec<String> = rec.iter().map(|r| r["chunk"]["type"].as_str().unwrap().to_owned()).collect();
    let pos = |t: &str| flumon_shared::model::RecordType::ALL.iter().position(|x| x.as_str() == t).unwrap();
    assert!(order.windows(2).all(|w| pos(&w[0]) <= pos(&w[1])), "{order:?}");
    // the DMZ answered exactly one request per chunk
    let ups = d.uploads();
    assert_eq!(ups.len(), chunks);
    assert_eq!(ups.iter().map(|u| u["accepted"].as_u64().unwrap()).sum::<u64>() as usize, rows);
    // the scan went, the misnamed file stayed
    assert!(agent.join("scans/sent/ZY000123_1-2_1.pdf").exists());
    assert!(agent.join("scans/not-a-convention.pdf").exists());
    // a second run the same day sends nothing again
    let again = run_agent(&cfg, &now).output().unwrap();
    assert!(again.status.success());
    assert_eq!(d.uploads().len(), chunks);
}

fn hospital_with_agent(t: &std::path::Path, seed: u64, chunk_rows: usize) -> (Dmz, std::path::PathBuf, String) {
    let (h, exports, now) = world(&t.join("synth"), seed, 0.3);
    let mut d = Dmz::init(&t.join("dmz"), None);
    let c = d.create_hospital(&h.code, &h.name, h.county.code, h.level);
    d.start();
    let p = |k: &str| std::path::PathBuf::from(c[k].as_str().unwrap());
    let cfg = agent_toml(
        &t.join("agent"),
        &d.url(),
        &d.ca(),
        &h.code,
        &p("cert"),
        &p("key"),
        c["token"].as_str().unwrap(),
        &exports,
        chunk_rows,
    );
    (d, cfg, now)
}

#[test]
fn dmz_down_mid_run_everything_delivered_once() {
    let t = tempfile::tempdir().unwrap();
    let (mut d, cfg, now) = hospital_with_agent(t.path(), 12, 10);
    let (chunks, rows) = expected(&cfg, &now);
    assert!(chunks > 10, "{chunks}");
    let mut child = run_agent(&cfg, &now).stderr(std::process::Stdio::null()).spawn().unwrap();
    wait_uploads(&d, 3);
    d.kill();
    std::thread::sleep(Duration::from_secs(3));
    d.start();
    let st = child.wait().unwrap();
    assert!(st.success());
    let rec = stored_receipts(&cfg);
    assert_eq!(rec.len(), chunks, "every chunk has exactly one stored receipt");
    assert_eq!(sum(&rec, "received") as usize, rows);
    assert_eq!(sum(&rec, "rejected"), 0);
    // the DMZ may have finished the request in flight when it was killed without answering: at most one more
    let ups = d.uploads();
    assert!(ups.len() == chunks || ups.len() == chunks + 1, "{} uploads for {chunks} chunks", ups.len());
}

#[test]
fn agent_killed_mid_run_no_loss_no_duplicate_chunk() {
    let t = tempfile::tempdir().unwrap();
    let (d, cfg, now) = hospital_with_agent(t.path(), 13, 10);
    let (chunks, rows) = expected(&cfg, &now);
    let mut child = run_agent(&cfg, &now).stderr(std::process::Stdio::null()).spawn().unwrap();
    wait_uploads(&d, 4);
    child.kill().unwrap();
    child.wait().unwrap();
    let before = d.uploads().len();
    assert!(before < chunks, "killed too late to test anything");
    let out = run_agent(&cfg, &now).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rec = stored_receipts(&cfg);
    assert_eq!(rec.len(), chunks);
    assert_eq!(sum(&rec, "received") as usize, rows);
    let mut seqs: Vec<u64> = rec.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    seqs.dedup();
    assert_eq!(seqs.len(), chunks);
    // only the chunk in flight at the kill can have gone twice
    let ups = d.uploads().len();
    assert!(ups == chunks || ups == chunks + 1, "{ups} uploads for {chunks} chunks");
}

#[test]
fn mapping_file_renames_his_columns() {
    let t = tempfile::tempdir().unwrap();
    let (d, cfg, now) = hospital_with_agent(t.path(), 14, 20_000);
    let (_, rows_plain) = expected(&cfg, &now);
    // rewrite every CSV header into "HIS" names, and write the mapping back to field codes
    let text = std::fs::read_to_string(&cfg).unwrap();
    let exports = std::path::PathBuf::from(
        text.lines().find(|l| l.starts_with("folder = \"/")).unwrap().split('"').nth(1).unwrap(),
    );
    let his = t.path().join("his");
    std::fs::create_dir_all(&his).unwrap();
    let mut mapping = String::from("# HIS 列名 → 字段代码\n");
    let mut seen = std::collections::BTreeSet::new();
    for e in std::fs::read_dir(&exports).unwrap() {
        let p = e.unwrap().path();
        let body = std::fs::read_to_string(&p).unwrap();
        let (head, rest) = body.split_once('\n').unwrap();
        let cols: Vec<&str> = head.trim_start_matches('\u{feff}').split(',').map(|c| c.trim_matches('"')).collect();
        let renamed: Vec<String> = cols.iter().map(|c| format!("his_{}", c.to_lowercase())).collect();
        for c in cols {
            if seen.insert(c.to_owned()) {
                mapping.push_str(&format!("\"{c}\" = \"his_{}\"\n", c.to_lowercase()));
            }
        }
        std::fs::write(his.join(p.file_name().unwrap()), format!("{}\n{rest}", renamed.join(","))).unwrap();
    }
    std::fs::write(t.path().join("agent/mapping.toml"), mapping).unwrap();
    let text = text.replace(
        &format!("folder = \"{}\"", exports.display()),
        &format!("folder = \"{}\"\nmapping = \"mapping.toml\"", his.display()),
    );
    std::fs::write(&cfg, text).unwrap();
    let (_, rows_mapped) = expected(&cfg, &now);
    assert_eq!(rows_mapped, rows_plain);
    let out = run_agent(&cfg, &now).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rec = stored_receipts(&cfg);
    assert_eq!(sum(&rec, "accepted") as usize, rows_plain);
    assert_eq!(d.uploads().len(), rec.len());
}

#[test]
fn sql_source_postgres() {
    let Ok(url) = std::env::var("FLUMON_TEST_PG_URL") else {
        eprintln!("note: FLUMON_TEST_PG_URL not set; SKIPPING the PostgreSQL source test");
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let (d, cfg, now) = hospital_with_agent(t.path(), 15, 20_000);
    // one visits row through SQL, nothing from the folder
    let h = flumon_tests::synth::hospitals::Hospital::generate(15, 0);
    let day = today().format("%Y-%m-%d").to_string();
    let q = format!(
        "SELECT '{}' AS \"ZZJGDM\", 'V-SQL-1' AS \"JLID\", '1' AS \"CZLX\", '{day} 00:00:00' AS \"GXSJ\", '{day}' AS \"YWRQ\", \
         '1.0' AS \"BBH\", '{day}' AS \"TJRQ\", 120 AS \"MZRC\", 30 AS \"JZRC\", 45 AS \"ZYRS\"",
        h.code
    );
    std::fs::write(t.path().join("agent/his-db.url"), &url).unwrap();
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text.lines().filter(|l| !l.starts_with("folder = \"/")).collect::<Vec<_>>().join("\n").replace(
        "[source]",
        &format!("[source]\ndatabase_url_file = \"his-db.url\"\n[[source.sql]]\ntype = \"visits\"\nquery = '''{q}'''"),
    );
    std::fs::write(&cfg, text).unwrap();
    let out = run_agent(&cfg, &now).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rec = stored_receipts(&cfg);
    assert_eq!(sum(&rec, "accepted"), 1, "{rec:?}");
    assert_eq!(d.uploads().len(), 1);
}
