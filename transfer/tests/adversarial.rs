//! Hostile input (issue 4 "Tests"): forged datagrams, a batch with a bad
//! signature, a replayed old batch, a record carrying an ID number, and a
//! sender with other settings. Each is handled as TRANSFER.md says and
//! journaled, and `reconcile` agrees.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use std::net::UdpSocket;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use common::*;
use flumon_shared::crypto::{MacKey, Sm2PrivateKey};
use flumon_transfer::link::{Impairments, UdpTx};
use flumon_transfer::reconcile::{Fate, reconcile};
use flumon_transfer::send::SendOptions;
use flumon_transfer::wire::{DataHead, Header, Kind, MacSigner};

fn no_loss() -> Impairments {
    Impairments::default()
}

#[test]
fn forged_and_malformed_datagrams_are_dropped_before_decoding() {
    let env = Env::new();
    env.write_batches([1], 20_000);
    let recv = start_recv(env.recv_config(), "127.0.0.1:0");
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut rng = flumon_transfer::link::TestRng::new(99);
    // random bytes of every length, short ones included
    for n in 0..300usize {
        let d: Vec<u8> = (0..(n * 7 % 1600)).map(|_| rng.next_u64() as u8).collect();
        s.send_to(&d, recv.addr).unwrap();
    }
    // well-formed datagrams under a wrong key (same key id), and an unknown key id
    let wrong = MacSigner::new(&MacKey::generate(1).unwrap()).unwrap();
    let other_id = MacSigner::new(&MacKey::generate(77).unwrap()).unwrap();
    for (i, key) in [&wrong, &other_id].into_iter().enumerate() {
        for n in 1..50u64 {
            let mut d = Vec::new();
            let hdr = Header { kind: Kind::Data, key_id: key.id(), session: 5 + i as u64, number: n };
            DataHead { seq: 1, content_id: [0; 8], batch_len: 20_000, block: 0, attempt: 1, esi: n as u32 }.write(
                &hdr,
                &[0u8; 1400],
                key,
                &mut d,
            );
            s.send_to(&d, recv.addr).unwrap();
            s.send_to(&d[..d.len() - 1], recv.addr).unwrap();
        }
    }
    // then the real sender
    let (sum, _) = send_once(env.send_config(recv.addr, 2), no_loss(), 1);
    assert_eq!(sum.batches_sent, 1);
    assert!(wait_for(10, || env.spooled() == vec![1]));
    let rs = recv.finish();
    assert_eq!((rs.received, rs.rejected), (1, 0));
    let rj = journal(&env.p("recv-journal.log"), &recv_pub());
    let stop = &kinds(&rj, "receiver.stop")[0].detail["drops"];
    for k in ["short", "foreign", "bad_mac", "unknown_key"] {
        assert!(stop[k].as_u64().unwrap() > 0, "{k}: {stop}");
    }
    assert!(!kinds(&rj, "link.rejected").is_empty());
    assert!(env.quarantined().is_empty());
}

#[test]
fn a_batch_with_a_bad_signature_is_quarantined_and_reconcile_says_altered() {
    let env = Env::new();
    let forger = Sm2PrivateKey::generate().unwrap();
    env.write_batches([1], 5_000);
    env.write_batch_with(2, &filler(2, 5_000), &forger);
    env.write_batches([3], 5_000);
    let recv = start_recv(env.recv_config(), "127.0.0.1:0");
    // a sender that checks signatures itself (check_signatures) and trusts the forger (the receiver does not)
    let mut cfg = env.send_config(recv.addr, 1);
    cfg.dmz_public_key = forger.public_key().clone();
    cfg.check_signatures = true;
    let (sum, _) = send_once(cfg, no_loss(), 1);
    assert_eq!(sum.batches_sent, 1, "the sender itself refuses batches 1 and 3: {sum:?}");
    assert_eq!(sum.refused, 2);
    // and a sender with the default settings sends 1 and 3 (2 is already sent, in its state)
    let (sum, _) = send_once(env.send_config(recv.addr, 1), no_loss(), 2);
    assert_eq!((sum.batches_sent, sum.refused), (2, 0));
    assert!(wait_for(10, || env.spooled() == vec![1, 3]));
    assert!(wait_for(10, || env.quarantined().iter().any(|n| n.ends_with(".reason.json"))));
    // by default the sender leaves signatures to the receiver: forged batch 4 goes out and is quarantined there
    env.write_batch_with(4, &filler(4, 5_000), &forger);
    let (sum, _) = send_once(env.send_config(recv.addr, 1), no_loss(), 3);
    assert_eq!((sum.batches_sent, sum.refused), (1, 0));
    assert!(wait_for(10, || env.quarantined().iter().filter(|n| n.ends_with(".reason.json")).count() == 2));
    let rs = recv.finish();
    assert_eq!((rs.received, rs.rejected), (2, 2));
    assert_eq!(env.spooled(), vec![1, 3]);
    for reason in env.quarantined().into_iter().filter(|n| n.ends_with(".reason.json")) {
        let reason = std::fs::read_to_string(env.p(&format!("quarantine/{reason}"))).unwrap();
        assert!(reason.contains("signature"), "{reason}");
    }
    let rj = journal(&env.p("recv-journal.log"), &recv_pub());
    assert_eq!(kinds(&rj, "batch.rejected").len(), 2);
    let sj = journal(&env.p("send-journal.log"), &send_pub());
    assert_eq!(kinds(&sj, "batch.refused").len(), 2);
    let r = reconcile(&env.p("send-journal.log"), &send_pub(), &env.p("recv-journal.log"), &recv_pub()).unwrap();
    assert!(!r.ok());
    for seq in [2, 4] {
        let row = r.rows.iter().find(|x| x.seq == seq).unwrap();
        assert_eq!(row.fate, Fate::Altered, "{}", r.render());
    }
    assert!(r.summary().contains("altered 2"), "{}", r.summary());
}

#[test]
fn a_replayed_old_batch_is_dropped_counted_and_journaled() {
    let env = Env::new();
    env.write_batches([1, 2], 8_000);
    let recv = start_recv(env.recv_config(), "127.0.0.1:0");
    let addr = recv.addr;
    let log = Arc::new(Mutex::new(Vec::new()));
    let cfg = env.send_config(addr, 1);
    let (tx, _) = UdpTx::bind(cfg.diode.local_addr, cfg.diode.target, 1 << 20).unwrap();
    let link = Recorder { inner: tx, log: log.clone() };
    let opts = SendOptions { once: true, ..SendOptions::default() };
    flumon_transfer::send::run(cfg, Some(Box::new(link)), opts).unwrap();
    assert!(wait_for(10, || env.spooled() == vec![1, 2]));
    let captured = log.lock().unwrap().clone();
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    // replay in the same run: cut at the datagram level (replay window, done batches)
    for d in &captured {
        s.send_to(d, addr).unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let first = recv.finish();
    assert_eq!(first.received, 2);
    let before = std::fs::read(env.spool_file(1)).unwrap();
    // replay to a restarted receiver (its windows are new): assembled again, then a duplicate
    let recv = start_recv(env.recv_config(), &addr.to_string());
    for d in &captured {
        s.send_to(d, recv.addr).unwrap();
        std::thread::sleep(std::time::Duration::from_micros(50));
    }
    assert!(wait_for(10, || {
        flumon_transfer::status::read(&env.p("recv-state"))
            .is_ok_and(|st| st["this_run"]["duplicates"].as_u64() == Some(2))
    }));
    let second = recv.finish();
    assert_eq!((second.received, second.duplicates), (0, 2));
    assert_eq!(std::fs::read(env.spool_file(1)).unwrap(), before, "spool untouched");
    let rj = journal(&env.p("recv-journal.log"), &recv_pub());
    assert_eq!(kinds(&rj, "batch.duplicate").len(), 2);
    let stop = &kinds(&rj, "receiver.stop")[0].detail["drops"];
    assert!(stop["replayed"].as_u64().unwrap() > 0, "{stop}");
    let r = reconcile(&env.p("send-journal.log"), &send_pub(), &env.p("recv-journal.log"), &recv_pub()).unwrap();
    assert!(r.ok(), "{}", r.render());
}

#[test]
fn a_record_with_an_id_number_is_quarantined_and_the_rest_goes_on() {
    let env = Env::new();
    let id = "11010519491231002X";
    let mut entries = filler(1, 3_000);
    entries.insert(1, summary(77, &format!("既往史：无。身份证 {id}，电话：138 1234 5678。")));
    env.write_batch(1, &entries);
    let recv = start_recv(env.recv_config(), "127.0.0.1:0");
    send_once(env.send_config(recv.addr, 1), no_loss(), 1);
    assert!(wait_for(10, || env.spooled() == vec![1]));
    let rs = recv.finish();
    assert_eq!((rs.received, rs.records_quarantined), (1, 1));
    let skip: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.p(&format!("spool/{}.skip.json", batch_name(1)))).unwrap()).unwrap();
    assert_eq!(skip["skip"], serde_json::json!([1]));
    let sp = flumon_transfer::spool::open_spooled(
        &env.spool_file(1),
        &env.link_key,
        dmz_key().public_key(),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(sp.skipped, vec![1]);
    assert_eq!(sp.entries.len(), entries.len() - 1);
    assert!(sp.entries.iter().all(|(i, _)| *i != 1));
    let rj = journal(&env.p("recv-journal.log"), &recv_pub());
    let q = kinds(&rj, "record.quarantined");
    assert_eq!(q.len(), 1);
    let text = q[0].detail.to_string();
    assert!(text.contains("id_number") && text.contains("phone") && text.contains("ZLGC"), "{text}");
    // the matched text is nowhere: not in the journal, not in the skip list, not in reasons
    for f in [env.p("recv-journal.log"), env.p(&format!("spool/{}.skip.json", batch_name(1)))] {
        let t = std::fs::read_to_string(&f).unwrap();
        assert!(!t.contains("11010519") && !t.contains("1234 5678"), "{}", f.display());
    }
    assert!(env.quarantined().iter().any(|n| n.ends_with(".fbatch")));
}

#[test]
fn a_settings_mismatch_is_seen_from_the_heartbeat_within_five_seconds() {
    let env = Env::new();
    env.write_batches([1], 20_000);
    let recv = start_recv(env.recv_config(), "127.0.0.1:0");
    let mut cfg = env.send_config(recv.addr, 2);
    cfg.link.block_symbols = 700;
    cfg.diode.heartbeat_ms = 1000;
    let (tx, _) = UdpTx::bind(cfg.diode.local_addr, cfg.diode.target, 1 << 20).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let opts = SendOptions { stop: stop.clone(), ..SendOptions::default() };
    let t0 = Instant::now();
    let sender = std::thread::spawn(move || flumon_transfer::send::run(cfg, Some(Box::new(tx)), opts));
    let seen = wait_for(5, || {
        std::fs::read_to_string(env.p("recv-journal.log")).is_ok_and(|t| t.contains("settings.mismatch"))
    });
    let took = t0.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    sender.join().unwrap().unwrap();
    let rs = recv.finish();
    assert!(seen, "no settings.mismatch within 5 s");
    assert!(took.as_secs_f64() < 5.0, "{took:?}");
    assert_eq!(rs.received, 0);
    let rj = journal(&env.p("recv-journal.log"), &recv_pub());
    let m = &kinds(&rj, "settings.mismatch")[0].detail;
    assert_eq!(m["sender"]["block_symbols"], 700);
    let st = flumon_transfer::status::read(&env.p("recv-state")).unwrap();
    assert_eq!(st["heartbeat"]["settings_match"], false);
}
