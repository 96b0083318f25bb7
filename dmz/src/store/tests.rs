//! In-process tests of the store and the pipeline on a real sled database:
//! group commit shares rounds, scope and slot state persist across uploads
//! (links, deletes, one row a day), and resends are not queued twice.
//!
//! ```text
//!  init(tempdir) ─▶ open_state ─▶ pipeline::process_upload (JSON) ─▶ receipts, queue, metrics
//! ```

use std::sync::atomic::Ordering;

use bytes::Bytes;
use chrono::{Datelike, NaiveDate};
use flumon_shared::model::RecordType;
use serde_json::{Value, json};

use crate::state::AppState;

const ORG: &str = "91350100M000100Y43";

async fn state() -> (tempfile::TempDir, AppState) {
    let dir = tempfile::tempdir().unwrap();
    let report = crate::init::init(dir.path(), None).unwrap();
    let cfg = crate::Config::load(&report.config).unwrap();
    let st = tokio::task::spawn_blocking(move || crate::open_state(cfg)).await.unwrap().unwrap();
    crate::hospitals::create_approved(&st, ORG, "测试医院", "350102", 3).await.unwrap();
    (dir, st)
}

fn day() -> NaiveDate {
    crate::hospitals::now_cst().date() - chrono::Duration::days(1)
}

fn common(jlid: &str, czlx: &str) -> Value {
    let d = day();
    json!({"ZZJGDM": ORG, "JLID": jlid, "CZLX": czlx, "GXSJ": format!("{d} 10:00:00"), "YWRQ": d.to_string(), "BBH": "1.0"})
}

fn merge(mut a: Value, b: Value) -> Value {
    for (k, v) in b.as_object().unwrap() {
        a[k] = v.clone();
    }
    a
}

fn outpatient(jlid: &str, jzlsh: &str) -> Value {
    let d = day();
    let nl = d.year() - 1950 - i32::from((d.month(), d.day()) < (1, 1));
    merge(
        common(jlid, "1"),
        json!({"JZLSH": jzlsh, "XM": "张三", "XB": "1", "CSRQ": "1950-01-01", "NL": nl.to_string(), "ZJLX": "9",
            "XZZ": "某地", "XZZ_XZQH": "350102", "JZLX": "1", "MZZYH": "M1", "JZSJ": format!("{d} 09:00:00"),
            "KSMC": "发热门诊", "ZDBM1": "J10.1", "ZDMC1": "流行性感冒", "ZDYJ": "1", "LCFX": "1", "KBD": "2",
            "ZGZT": "1", "ZFY": "100"}),
    )
}

fn lab(jlid: &str, jzlsh: &str) -> Value {
    let d = day();
    merge(
        common(jlid, "1"),
        json!({"JZLSH": jzlsh, "BGDH": jlid, "BBLB": "1", "CYSJ": format!("{d} 09:10:00"),
            "BGSJ": format!("{d} 11:00:00"), "JYXMMC": "甲乙流抗原", "JYFF": "1", "DXJG": "2"}),
    )
}

fn visits(jlid: &str) -> Value {
    merge(common(jlid, "1"), json!({"TJRQ": day().to_string(), "MZRC": "100", "JZRC": "10", "ZYRS": "5"}))
}

async fn up(st: &AppState, ty: RecordType, recs: &[Value]) -> flumon_shared::receipt::Receipt {
    let body = Bytes::from(serde_json::to_vec(&json!({ "records": recs })).unwrap());
    let (status, r) = crate::pipeline::process_upload(st, ORG, ty, body, Some("application/json")).await.unwrap();
    assert_eq!(status, 200, "{r:?}");
    r
}

fn codes(r: &flumon_shared::receipt::Receipt) -> Vec<String> {
    r.errors.iter().map(|e| e.code.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_shares_rounds() {
    let (_d, st) = state().await;
    let t = st.store.tree("test").unwrap();
    let before = st.metrics.render();
    let mut tasks = Vec::new();
    for i in 0..64u64 {
        let st = st.clone();
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            t.insert(i.to_be_bytes(), &[1u8; 100][..]).unwrap();
            st.store.durable().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let count = |s: &str| -> f64 {
        s.lines().find_map(|l| l.strip_prefix("flumon_dmz_durability_seconds_count ")).unwrap().parse().unwrap()
    };
    let rounds = count(&st.metrics.render()) - count(&before);
    assert!((1.0..64.0).contains(&rounds), "{rounds} rounds for 64 callers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_and_slots_persist_across_uploads() {
    let (_d, st) = state().await;
    // a negative lab before its case: out of scope; after the case: in by link
    let r = up(&st, RecordType::Lab, &[lab("L1", "J1")]).await;
    assert_eq!(codes(&r), ["OUT_OF_SCOPE"]);
    let r = up(&st, RecordType::Outpatient, &[outpatient("O1", "J1")]).await;
    assert_eq!(r.accepted, 1);
    let r = up(&st, RecordType::Lab, &[lab("L1", "J1")]).await;
    assert_eq!(r.accepted, 1, "{:?}", r.errors);
    // delete the case: later linked records are out of scope again
    let del = merge(common("O1", "3"), json!({"JZLSH": "J1"}));
    assert_eq!(up(&st, RecordType::Outpatient, &[del]).await.accepted, 1);
    let r = up(&st, RecordType::Lab, &[lab("L2", "J1")]).await;
    assert_eq!(codes(&r), ["OUT_OF_SCOPE"]);
    // one visits row a day: another JLID for the same day is refused, also in a later upload
    assert_eq!(up(&st, RecordType::Visits, &[visits("V1")]).await.accepted, 1);
    let r = up(&st, RecordType::Visits, &[visits("V2")]).await;
    assert_eq!(codes(&r), ["DUPLICATE_DAY"]);
    // the owner may update it; after deleting it the day is free
    assert_eq!(
        up(&st, RecordType::Visits, &[merge(visits("V1"), json!({"CZLX": "2", "MZRC": "120"}))]).await.accepted,
        1
    );
    assert_eq!(up(&st, RecordType::Visits, &[common("V1", "3")]).await.accepted, 1);
    assert_eq!(up(&st, RecordType::Visits, &[visits("V2")]).await.accepted, 1);
    // resends (nothing to write) keep every rule: the owner's row again, then another JLID
    for _ in 0..2 {
        assert_eq!(up(&st, RecordType::Visits, &[visits("V2")]).await.accepted, 1);
    }
    assert_eq!(codes(&up(&st, RecordType::Visits, &[visits("V3")]).await), ["DUPLICATE_DAY"]);
    // a case resent stays in scope; a case that came back after its delete brings its labs back in
    for _ in 0..2 {
        assert_eq!(up(&st, RecordType::Outpatient, &[outpatient("O1", "J1")]).await.accepted, 1);
    }
    assert_eq!(up(&st, RecordType::Lab, &[lab("L2", "J1")]).await.accepted, 1);
    assert_eq!(up(&st, RecordType::Lab, &[lab("L2", "J1")]).await.accepted, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_records_are_queued_again_unchanged_ones_not() {
    let (_d, st) = state().await;
    let queued = || st.metrics.records_queued.load(Ordering::Relaxed);
    up(&st, RecordType::Outpatient, &[outpatient("O1", "J1"), outpatient("O2", "J2")]).await;
    assert_eq!(queued(), 2);
    up(&st, RecordType::Outpatient, &[outpatient("O1", "J1"), outpatient("O2", "J2")]).await;
    assert_eq!(queued(), 2, "a resend queues nothing");
    let changed = merge(outpatient("O2", "J2"), json!({"CZLX": "2", "ZFY": "150"}));
    up(&st, RecordType::Outpatient, &[outpatient("O1", "J1"), changed]).await;
    assert_eq!(queued(), 3, "only the changed record is queued");
    // the raw archive holds every upload, encrypted (hospital created: no upload before)
    let items = crate::archive::all_meta(&st.store).unwrap();
    assert_eq!(items.len(), 3);
    assert!(items.iter().all(|m| m.complete && m.hospital == ORG && m.kind == "upload"));
}

/// With the key filter built, lookups of keys never written skip sled: the
/// resend rule and the scope rules hold as without it, and a record twice in
/// one upload with the same content is queued once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_filter_changes_no_outcome() {
    let (_d, st) = state().await;
    st.store.start_key_filter(1).unwrap();
    while !st.store.key_filter().unwrap().ready() {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let queued = || st.metrics.records_queued.load(Ordering::Relaxed);
    let r = up(&st, RecordType::Outpatient, &[outpatient("O1", "J1"), outpatient("O2", "J2"), outpatient("O1", "J1")])
        .await;
    assert_eq!(r.accepted, 3, "{:?}", r.errors);
    assert_eq!(queued(), 2, "the same content twice in one upload is queued once");
    up(&st, RecordType::Outpatient, &[outpatient("O1", "J1"), outpatient("O2", "J2")]).await;
    assert_eq!(queued(), 2, "a resend queues nothing");
    let changed = merge(outpatient("O2", "J2"), json!({"CZLX": "2", "ZFY": "150"}));
    up(&st, RecordType::Outpatient, &[changed]).await;
    assert_eq!(queued(), 3, "only the changed record is queued");
    // the filter answered "absent" for a case never seen, and scope still links to the cases seen
    assert_eq!(up(&st, RecordType::Lab, &[lab("L1", "J1")]).await.accepted, 1);
    assert_eq!(codes(&up(&st, RecordType::Lab, &[lab("L9", "J9")]).await), ["OUT_OF_SCOPE"]);
}

/// A store from before the digests moved into `outbound`: the `dedupe`
/// tree is moved at start, dropped, and resends still find their digests;
/// the queue's own entries are untouched by the move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_dedupe_tree_is_moved_into_outbound() {
    let (_d, st) = state().await;
    let queued = || st.metrics.records_queued.load(Ordering::Relaxed);
    up(&st, RecordType::Outpatient, &[outpatient("O1", "J1"), outpatient("O2", "J2")]).await;
    assert_eq!(queued(), 2);
    let q = st.store.tree(super::trees::OUTBOUND).unwrap();
    let before = crate::outbound::measure(&st).unwrap();
    // make it an old store: the digests back in their own tree, unprefixed
    let old = st.store.tree(super::trees::DEDUPE).unwrap();
    let digests: Vec<_> = q.scan_prefix([0xFF]).map(|kv| kv.unwrap()).collect();
    assert_eq!(digests.len(), 2);
    for (k, v) in &digests {
        old.insert(&k[1..], v.clone()).unwrap();
        q.remove(k).unwrap();
    }
    assert_eq!(crate::outbound::migrate_dedupe(&st.store).unwrap(), 2);
    assert!(!st.store.db.tree_names().iter().any(|n| n.as_ref() == b"dedupe"), "old tree dropped");
    assert_eq!(crate::outbound::migrate_dedupe(&st.store).unwrap(), 0, "nothing left to move");
    assert_eq!(q.scan_prefix([0xFF]).count(), 2);
    assert_eq!(crate::outbound::measure(&st).unwrap(), before, "the queue is as it was");
    up(&st, RecordType::Outpatient, &[outpatient("O1", "J1"), outpatient("O2", "J2")]).await;
    assert_eq!(queued(), 2, "a resend after the move queues nothing");
}
