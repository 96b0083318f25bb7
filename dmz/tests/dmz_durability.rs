//! ARCHITECTURE invariant 1 against a real process: many concurrent uploads,
//! `kill -9` of the server at set moments (5 cycles), restarts, resends.
//! Every upload that got a receipt must have its raw item in sled and its
//! records in the outbox batches; no record content may cross twice, and
//! batch sequence numbers stay contiguous and unique.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod dmz_common;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dmz_common::*;
use flumon_shared::desens::keys::{PseudonymKey, pseudonym};
use flumon_shared::desens::outbound::OutRecord;
use flumon_shared::entries::Entry;

const FILE_ROWS: u32 = 20;
const UPLOADERS: usize = 8;

/// One upload: its hospital and record numbers.
#[derive(Clone)]
struct File {
    org: usize,
    records: Vec<u32>,
}

#[derive(Default)]
struct Log {
    /// receipt id ─▶ file
    acked: Vec<(String, File)>,
    /// sent but not answered (server killed): resent after the restart
    unacked: Vec<File>,
}

async fn uploader(
    dmz_clients: Arc<Vec<(Agent, flumon_dmz::client::Client)>>,
    next: Arc<AtomicU32>,
    log: Arc<Mutex<Log>>,
    mut retry: Vec<File>,
    worker: usize,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        let file = retry.pop().unwrap_or_else(|| {
            let first = next.fetch_add(FILE_ROWS, Ordering::SeqCst);
            File { org: worker % 2, records: (first..first + FILE_ROWS).collect() }
        });
        let (agent, client) = &dmz_clients[file.org];
        let body = json_file(&file.records.iter().map(|n| outpatient(&agent.uscc, *n)).collect::<Vec<_>>());
        let auth = format!("Bearer {}", agent.token);
        let r = client
            .send(
                "POST",
                "/api/v1/upload/outpatient",
                &[("authorization", &auth), ("content-type", "application/json")],
                body,
            )
            .await;
        match r {
            Ok(a) if a.status == 200 => {
                let v = a.json().unwrap();
                assert_eq!(v["accepted"].as_u64(), Some(u64::from(FILE_ROWS)), "{v}");
                log.lock().unwrap().acked.push((v["receipt_id"].as_str().unwrap().to_owned(), file));
            }
            Ok(a) => panic!("unexpected status {}: {}", a.status, String::from_utf8_lossy(&a.body)),
            Err(_) => {
                // the server went away: not acknowledged, send again later
                log.lock().unwrap().unacked.push(file);
                tokio::time::sleep(Duration::from_millis(100)).await;
                if *stop.borrow() {
                    return;
                }
            }
        }
    }
}

async fn run_cycle(
    dmz: &Dmz,
    agents: &[Agent],
    next: &Arc<AtomicU32>,
    log: &Arc<Mutex<Log>>,
    run_for: Duration,
) -> tokio::sync::watch::Sender<bool> {
    let clients: Arc<Vec<_>> = Arc::new(agents.iter().map(|a| (a.clone(), dmz.client(a))).collect());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let retry = std::mem::take(&mut log.lock().unwrap().unacked);
    let mut per_worker: Vec<Vec<File>> = vec![Vec::new(); UPLOADERS];
    for (i, f) in retry.into_iter().enumerate() {
        per_worker[i % UPLOADERS].push(f);
    }
    for (w, retry) in per_worker.into_iter().enumerate() {
        tokio::spawn(uploader(Arc::clone(&clients), Arc::clone(next), Arc::clone(log), retry, w, stop_rx.clone()));
    }
    tokio::time::sleep(run_for).await;
    stop_tx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_loses_nothing_acknowledged() {
    let mut dmz = Dmz::new(|t| {
        let b = t.get_mut("batch").unwrap().as_table_mut().unwrap();
        b.insert("max_payload_bytes".into(), (32 * 1024).into());
    });
    let agents = vec![dmz.hospital(11), dmz.hospital(12)];
    let next = Arc::new(AtomicU32::new(1));
    let log = Arc::new(Mutex::new(Log::default()));
    for ms in [700u64, 1500, 400, 1100, 900] {
        dmz.start();
        let stop = run_cycle(&dmz, &agents, &next, &log, Duration::from_millis(ms)).await;
        dmz.kill9();
        stop.send(true).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // last run: resend what was never answered, and resend some acknowledged files too
    dmz.start();
    let resend: Vec<File> = {
        let mut l = log.lock().unwrap();
        let again: Vec<File> = l.acked.iter().step_by(5).map(|(_, f)| f.clone()).collect();
        l.unacked.extend(again);
        l.unacked.clone()
    };
    let clients: Vec<_> = agents.iter().map(|a| dmz.client(a)).collect();
    let pending = std::mem::take(&mut log.lock().unwrap().unacked);
    for f in pending {
        let a = &agents[f.org];
        let body = json_file(&f.records.iter().map(|n| outpatient(&a.uscc, *n)).collect::<Vec<_>>());
        let r = upload(&clients[f.org], &a.token, "outpatient", Some("application/json"), body).await;
        assert_eq!(r.status, 200);
        log.lock().unwrap().acked.push((r.json().unwrap()["receipt_id"].as_str().unwrap().to_owned(), f));
    }
    assert!(!resend.is_empty());
    dmz.wait_drained().await;
    dmz.stop();

    let log = log.lock().unwrap();
    assert!(log.acked.len() > 40, "only {} uploads acknowledged", log.acked.len());
    let serve_log = std::fs::read_to_string(dmz.path("serve.log")).unwrap();
    assert!(!serve_log.contains("panicked"), "{serve_log}");

    // every acknowledged upload has its complete raw item in sled
    let cfg = flumon_dmz::Config::load(&dmz.config).unwrap();
    let state = flumon_dmz::open_state(cfg).unwrap();
    let items: HashMap<String, flumon_dmz::archive::RawMeta> = flumon_dmz::archive::all_meta(&state.store)
        .unwrap()
        .into_iter()
        .filter_map(|m| m.receipt_id.clone().map(|r| (r, m)))
        .collect();
    for (rid, _) in &log.acked {
        let m = items.get(rid).unwrap_or_else(|| panic!("raw item of acknowledged receipt {rid} missing"));
        assert!(m.complete && m.chunks > 0);
        let mut ct = Vec::new();
        flumon_dmz::archive::read_cipher(&state.store, &m.item_id, &mut ct).unwrap();
        assert_eq!(hex::encode(flumon_shared::crypto::sm3(&ct)), m.cipher_sm3);
    }
    assert!(flumon_dmz::outbound::queue_is_empty(&state.store.tree("outbound").unwrap()).unwrap(), "queue drained");
    drop(state);

    // every acknowledged record is in the batches; no record content twice; sequences contiguous
    let key = PseudonymKey::from_slice(
        &hex::decode(std::fs::read_to_string(dmz.path("keys/pseudonym.key")).unwrap().trim()).unwrap(),
    )
    .unwrap();
    let batches = dmz.batches();
    let seqs: Vec<u64> = batches.iter().map(|(h, _)| h.sequence).collect();
    assert_eq!(seqs, (1..=batches.len() as u64).collect::<Vec<_>>(), "batch sequence numbers");
    let mut seen_content = HashSet::new();
    let mut seen_seq = HashSet::new();
    let mut rec_keys = HashSet::new();
    let mut receipts = BTreeSet::new();
    for (_, entries) in &batches {
        for e in entries {
            match e {
                Entry::Record(r) => {
                    let c = r.common();
                    assert!(seen_seq.insert(c.dmz_seq), "dmz_seq {} in two batches", c.dmz_seq);
                    let digest = flumon_dmz::outbound::digest_unstamped(r).unwrap();
                    assert!(
                        seen_content.insert((c.org.clone(), c.rec_key.clone(), digest)),
                        "the same record content crossed twice"
                    );
                    assert!(matches!(r, OutRecord::Outpatient(_)));
                    rec_keys.insert((c.org.clone(), c.rec_key.clone()));
                }
                Entry::Receipt(s) => {
                    receipts.insert(s.receipt_id.clone());
                }
                _ => {}
            }
        }
    }
    let mut n_records = 0;
    for (rid, f) in &log.acked {
        assert!(receipts.contains(rid), "receipt summary of {rid} missing");
        let org = &agents[f.org].uscc;
        for n in &f.records {
            let rk = pseudonym(&key, org, "JLID:outpatient", &format!("R{n:08}"));
            assert!(rec_keys.contains(&(org.clone(), rk)), "acknowledged record {n} of {rid} not in any batch");
            n_records += 1;
        }
    }
    eprintln!("{} uploads acknowledged ({n_records} records), {} batches", log.acked.len(), batches.len());
}
