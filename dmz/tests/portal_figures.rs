//! The hospital's own figures (issue 9): synthetic uploads of several days
//! (flumon-synth, with the daily 7-day resend, updates and deletes), a stale
//! resend of an old day, and explicit deletes go through the real pipeline
//! on a real sled store; the incremental counters must equal the figures
//! recomputed from a fresh replay of the same uploads.
//!
//! ```text
//!  flumon-synth uploads D-4 … D-1 ─▶ pipeline::process_upload (real store) ─▶ fig_cnt
//!  the same files ─▶ parse + validate ─▶ minus the receipt's rejected rows ─▶ replay::recompute
//!  compare (every counter) · deletes lower the counts · a second hospital's figures are its own
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod dmz_common;

use std::collections::BTreeSet;

use bytes::Bytes;
use chrono::{Duration, NaiveDate};

use flumon_dmz::figures::{self, replay::Replayed};
use flumon_dmz::hospitals::now_cst;
use flumon_shared::model::{Record, RecordType};
use flumon_shared::parse::{Limits, parse_upload};
use flumon_shared::receipt::{CheckState, Receipt, check_file};
use flumon_shared::scope::ScopeState;
use flumon_shared::validate::Ctx;
use flumon_tests::synth::generate::{Options, upload};
use flumon_tests::synth::hospitals::Hospital;

/// Accepts every row the stateless rules accept (the server's receipt tells which it rejected).
struct Lenient;
impl ScopeState for Lenient {
    fn case_in_scope(&self, _: &str, _: &str) -> bool {
        true
    }
    fn positive_lab(&self, _: &str, _: &str) -> bool {
        true
    }
}
impl CheckState for Lenient {
    fn slot_owner(&self, _: &str, _: RecordType, _: &str) -> Option<String> {
        None
    }
    fn accept(&mut self, _: &flumon_shared::receipt::Accepted) {}
}

struct Sent {
    time: chrono::NaiveDateTime,
    records: Vec<Record>,
    receipt: Receipt,
}

fn body_ct(ty: RecordType, body: &[u8], ct: Option<&str>, receipt: &Receipt) -> Vec<Record> {
    let file = parse_upload(ty, body, ct, &Limits::default()).expect("the server read it, so do we");
    let ctx = Ctx { now: now_cst(), org: None };
    let (_, acc) = check_file(&file, &ctx, &mut Lenient);
    assert!(!receipt.errors_truncated, "receipt errors cut: cannot replay exactly");
    let rejected: BTreeSet<usize> = receipt.errors.iter().map(|e| e.row).collect();
    let records: Vec<Record> = acc.into_iter().filter(|a| !rejected.contains(&a.row)).map(|a| a.record).collect();
    assert_eq!(records.len(), receipt.accepted, "replay accepts exactly the rows the server accepted");
    records
}

async fn send(state: &flumon_dmz::AppState, org: &str, ty: RecordType, body: Vec<u8>, ct: Option<&str>) -> Sent {
    let (status, receipt) =
        flumon_dmz::pipeline::process_upload(state, org, ty, Bytes::from(body.clone()), ct).await.unwrap();
    assert_eq!(status.as_u16(), 200, "{receipt:?}");
    let records = body_ct(ty, &body, ct, &receipt);
    Sent { time: now_cst(), records, receipt }
}

fn replay(sent: &[Sent]) -> figures::Counters {
    let r: Vec<Replayed<'_>> = sent
        .iter()
        .map(|s| Replayed { time: s.time, records: s.records.iter().collect(), receipt: &s.receipt })
        .collect();
    figures::replay::recompute(&r)
}

fn sum(c: &figures::Counters, prefix: &str) -> i64 {
    c.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, v)| v).sum()
}

/// Deletes (CZLX 3, GXSJ now) of the given records, as JSON.
fn deletes(org: &str, recs: &[&Record]) -> Vec<u8> {
    let now = now_cst().format("%Y-%m-%d %H:%M:%S").to_string();
    let rows: Vec<serde_json::Value> = recs
        .iter()
        .map(|r| {
            let c = r.common();
            serde_json::json!({"ZZJGDM": org, "JLID": c.jlid, "CZLX": "3", "GXSJ": now,
                "YWRQ": c.ywrq.map(|d| d.to_string()), "BBH": "1.0", "JZLSH": r.jzlsh()})
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "records": rows })).unwrap()
}

/// Lab records as JSON, each changed by `edit` (GXSJ, result, link).
fn labs_json(org: &str, recs: &[Record], edit: impl Fn(usize, &mut flumon_shared::model::Lab)) -> Vec<u8> {
    let dt = |t: chrono::NaiveDateTime| t.format("%Y-%m-%d %H:%M:%S").to_string();
    let rows: Vec<serde_json::Value> = recs
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match r {
            Record::Lab(l) => {
                let mut l = (**l).clone();
                edit(i, &mut l);
                Some(serde_json::json!({"ZZJGDM": org, "JLID": l.common.jlid, "CZLX": "2", "GXSJ": dt(l.common.gxsj),
                    "YWRQ": l.common.ywrq.map(|d| d.to_string()), "BBH": "1.0", "JZLSH": l.jzlsh, "BGDH": l.bgdh,
                    "BBLB": l.bblb.to_string(), "CYSJ": dt(l.cysj), "BGSJ": dt(l.bgsj), "JYXMMC": l.jyxmmc,
                    "JYFF": l.jyff.to_string(), "DXJG": l.dxjg.to_string(), "BDLX": l.bdlx.map(|v| v.to_string()),
                    "YX": l.yx.map(|v| v.to_string()), "CT": l.ct.map(|v| format!("{}.{}", v / 10, v % 10))}))
            }
            _ => None,
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "records": rows })).unwrap()
}

/// A positive result made negative and the other way round.
fn flip(l: &mut flumon_shared::model::Lab) {
    if matches!(l.dxjg, 1 | 3) {
        (l.dxjg, l.bdlx, l.yx) = (2, None, None);
    } else {
        (l.dxjg, l.bdlx, l.yx) = (1, Some(2), Some(21));
    }
}

/// Creates `hs` through the operator CLI and opens the DMZ's state in this process.
async fn open_with(dmz: &dmz_common::Dmz, hs: &[Hospital]) -> flumon_dmz::AppState {
    for h in hs {
        let out = dmz.cli(&[
            "admin",
            "create-hospital",
            "--uscc",
            &h.code,
            "--name",
            &h.name,
            "--region",
            h.county.code,
            "--level",
            &h.level.to_string(),
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let config = flumon_dmz::Config::load(&dmz.config).unwrap();
    tokio::task::spawn_blocking(move || flumon_dmz::open_state(config)).await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_figures_equal_a_fresh_replay() {
    let dmz = dmz_common::Dmz::new(|_| {});
    let synth_dir = tempfile::tempdir().unwrap();
    let today: NaiveDate = now_cst().date();
    let hs: Vec<Hospital> = (0..2).map(|i| Hospital::generate(7, i)).collect();
    let state = open_with(&dmz, &hs).await;
    let opts = Options {
        seed: 7,
        hospitals: 2,
        days: 7,
        scale: 3.0,
        invalid_rate: 0.02,
        out: synth_dir.path().to_path_buf(),
        ..Options::default()
    };
    let mut sent: Vec<Vec<Sent>> = vec![Vec::new(), Vec::new()];
    let first_day = today - Duration::days(4);
    let mut files_of_first = Vec::new();
    for k in 0..4 {
        let day = first_day + Duration::days(k);
        for (i, h) in hs.iter().enumerate() {
            let (files, _) = upload(&opts, h, day).unwrap();
            for f in files {
                let body = std::fs::read(synth_dir.path().join(&f.path)).unwrap();
                let ty = RecordType::parse(&f.ty).unwrap();
                if k == 0 && i == 0 {
                    files_of_first.push((ty, body.clone(), f.content_type.clone()));
                }
                sent[i].push(send(&state, &h.code, ty, body, f.content_type.as_deref()).await);
            }
        }
    }
    // a stale resend: the first day's files again, older GXSJ than what is stored
    let org = hs[0].code.clone();
    let resent_files = files_of_first.len();
    for (ty, body, ct) in files_of_first {
        sent[0].push(send(&state, &org, ty, body, ct.as_deref()).await);
    }
    let stale = {
        let n = sent[0].len();
        let (old, resent) = sent[0].split_at(n - resent_files);
        let mut newest: std::collections::HashMap<(RecordType, &str), chrono::NaiveDateTime> = Default::default();
        for r in old.iter().flat_map(|s| &s.records) {
            let e = newest.entry((r.ty(), r.common().jlid.as_str())).or_insert(r.common().gxsj);
            *e = (*e).max(r.common().gxsj);
        }
        resent
            .iter()
            .flat_map(|s| &s.records)
            .filter(|r| newest[&(r.ty(), r.common().jlid.as_str())] > r.common().gxsj)
            .count()
    };
    eprintln!("stale records resent: {stale}");
    let before = figures::counters(&state.store, &org).unwrap();
    assert_eq!(before, replay(&sent[0]), "incremental = replay after synthetic days and a stale resend");
    assert!(sum(&before, "case:") > 60, "enough cases to mean something: {}", sum(&before, "case:"));
    assert!(sum(&before, "lab_n:") > 0 && sum(&before, "vis_day:") > 0 && sum(&before, "stock_kcl:") > 0);
    assert!(sum(&before, "rule:") > 0, "planted errors are counted by rule");

    // explicit deletes of some live outpatient and lab records (latest versions)
    let mut latest: std::collections::HashMap<(RecordType, String), Record> = Default::default();
    for s in &sent[0] {
        for r in &s.records {
            let key = (r.ty(), r.common().jlid.clone());
            let newer = latest.get(&key).is_none_or(|o| o.common().gxsj <= r.common().gxsj);
            if newer {
                latest.insert(key, r.clone());
            }
        }
    }
    let pick = |ty: RecordType| -> Vec<Record> {
        let mut v: Vec<&Record> = latest.values().filter(|r| r.ty() == ty && !matches!(r, Record::Delete(_))).collect();
        v.sort_by(|a, b| a.common().jlid.cmp(&b.common().jlid));
        v.into_iter().take(5).cloned().collect()
    };
    // lab results changed: with an older GXSJ (ignored), then a newer one (applied), some moved to another case
    let labs10: Vec<Record> = {
        let mut v: Vec<&Record> = latest.values().filter(|r| matches!(r, Record::Lab(_))).collect();
        v.sort_by(|a, b| b.common().jlid.cmp(&a.common().jlid));
        v.into_iter().take(10).cloned().collect()
    };
    assert_eq!(labs10.len(), 10);
    let other_case = labs10.last().and_then(|r| r.jzlsh()).unwrap().to_owned();
    let c0 = figures::counters(&state.store, &org).unwrap();
    let older = labs_json(&org, &labs10, |_, l| {
        l.common.gxsj -= Duration::hours(1);
        flip(l);
    });
    sent[0].push(send(&state, &org, RecordType::Lab, older, Some("application/json")).await);
    let c1 = figures::counters(&state.store, &org).unwrap();
    assert_eq!(sum(&c1, "lab_pos:"), sum(&c0, "lab_pos:"), "older versions change nothing");
    assert_eq!(c1, replay(&sent[0]));
    let newer = labs_json(&org, &labs10, |i, l| {
        l.common.gxsj = now_cst() - Duration::minutes(1);
        flip(l);
        if i % 3 == 0 {
            l.jzlsh.clone_from(&other_case);
        }
    });
    let s = send(&state, &org, RecordType::Lab, newer, Some("application/json")).await;
    assert!(s.receipt.accepted >= 5, "{:?}", s.receipt);
    sent[0].push(s);
    let c2 = figures::counters(&state.store, &org).unwrap();
    assert_ne!(sum(&c2, "lab_pos:"), sum(&c0, "lab_pos:"), "newer versions change the positives");
    assert_eq!(c2, replay(&sent[0]), "incremental = replay after lab updates and moves");
    let before = c2;

    let outs = pick(RecordType::Outpatient);
    let labs = pick(RecordType::Lab);
    assert_eq!(outs.len(), 5);
    let live_out = before.get("live:outpatient").copied().unwrap_or(0);
    let del_out = send(
        &state,
        &org,
        RecordType::Outpatient,
        deletes(&org, &outs.iter().collect::<Vec<_>>()),
        Some("application/json"),
    )
    .await;
    sent[0].push(del_out);
    if !labs.is_empty() {
        let del_lab = send(
            &state,
            &org,
            RecordType::Lab,
            deletes(&org, &labs.iter().collect::<Vec<_>>()),
            Some("application/json"),
        )
        .await;
        sent[0].push(del_lab);
    }
    let after = figures::counters(&state.store, &org).unwrap();
    assert_eq!(after.get("live:outpatient").copied().unwrap_or(0), live_out - 5, "5 deletes remove 5 live records");
    assert!(sum(&after, "case:") < sum(&before, "case:"), "deleted cases leave the counts");
    assert_eq!(after, replay(&sent[0]), "incremental = replay after deletes");
    // deleting again changes nothing but the upload counters
    let again = send(
        &state,
        &org,
        RecordType::Outpatient,
        deletes(&org, &outs.iter().collect::<Vec<_>>()),
        Some("application/json"),
    )
    .await;
    sent[0].push(again);
    let after2 = figures::counters(&state.store, &org).unwrap();
    assert_eq!(sum(&after2, "case:"), sum(&after, "case:"));
    assert_eq!(after2, replay(&sent[0]));

    // the other hospital's figures are its own
    let other = figures::counters(&state.store, &hs[1].code).unwrap();
    assert_eq!(other, replay(&sent[1]));
    assert_ne!(other, after2);

    // no identifier in the figure trees: no JLID, JZLSH or name of what was sent
    for name in [figures::trees::FIG] {
        let t = state.store.tree(name).unwrap();
        let mut blob = Vec::new();
        for kv in t.iter() {
            let (k, v) = kv.unwrap();
            blob.extend_from_slice(&k);
            blob.extend_from_slice(&v);
        }
        let blob = String::from_utf8_lossy(&blob);
        for r in outs.iter().chain(&labs) {
            assert!(!blob.contains(&r.common().jlid), "JLID in {name}");
            if let Some(j) = r.jzlsh() {
                assert!(!blob.contains(j), "JZLSH in {name}");
            }
        }
    }
}

/// One hospital's files of a day, all types, uploaded at the same time. They
/// share case units (a lab and its outpatient record): the pipeline takes
/// the hospital's upload lock and the figures their own (death scans come
/// outside uploads). The figures must equal a replay (each natural key is
/// in one file only, so the order does not matter).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_uploads_of_one_hospital_equal_a_replay() {
    let dmz = dmz_common::Dmz::new(|_| {});
    let synth_dir = tempfile::tempdir().unwrap();
    let h = Hospital::generate(11, 0);
    let state = open_with(&dmz, std::slice::from_ref(&h)).await;
    let opts = Options {
        seed: 11,
        hospitals: 1,
        days: 7,
        scale: 4.0,
        out: synth_dir.path().to_path_buf(),
        ..Options::default()
    };
    let (files, _) = upload(&opts, &h, now_cst().date() - Duration::days(1)).unwrap();
    assert!(files.len() >= 6, "several types: {}", files.len());
    let mut tasks = Vec::new();
    for f in files {
        let body = std::fs::read(synth_dir.path().join(&f.path)).unwrap();
        let ty = RecordType::parse(&f.ty).unwrap();
        let (state, org) = (state.clone(), h.code.clone());
        tasks.push(tokio::spawn(async move { send(&state, &org, ty, body, f.content_type.as_deref()).await }));
    }
    let mut sent = Vec::new();
    for t in tasks {
        sent.push(t.await.unwrap());
    }
    let got = figures::counters(&state.store, &h.code).unwrap();
    assert!(got.get("live:lab").copied().unwrap_or(0) > 0, "labs counted: {got:?}");
    assert_eq!(got, replay(&sent));
}
