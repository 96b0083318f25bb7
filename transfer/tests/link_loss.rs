//! Delivery over a lossy, duplicating, reordering loopback link (issue 4
//! "Tests"): 5 % loss with default settings loses nothing; 40 % loss with one
//! pass leaves gaps that the receiver reports and a resend recovers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::*;
use flumon_transfer::link::{Impaired, Impairments, UdpTx};
use flumon_transfer::reconcile::{Fate, reconcile};
use flumon_transfer::send::{Selector, SendOptions};

#[test]
fn five_percent_loss_every_batch_arrives_and_nothing_comes_back() {
    let env = Env::new();
    // 14 batches: small ones and two of several blocks (> 1 MB)
    let mut sizes: Vec<usize> = vec![2_000, 30_000, 150_000, 400_000, 1_500_000, 2_600_000];
    sizes.extend([5_000; 8]);
    for (i, size) in sizes.iter().enumerate() {
        env.write_batches([i as u64 + 1], *size);
    }
    let recv = start_recv(env.recv_config(), "127.0.0.1:0");
    let imp = Impairments { loss: 0.05, duplicate: 0.01, reorder: 0.02 };
    let (sum, back) = send_once(env.send_config(recv.addr, 2), imp, 1);
    assert_eq!(sum.batches_sent, 14);
    assert!(
        wait_for(20, || env.spooled().len() == 14),
        "spooled {:?} {:#?} {}",
        env.spooled(),
        flumon_transfer::status::read(&env.p("recv-state")),
        std::fs::read_to_string(env.p("recv-journal.log")).unwrap()
    );
    let rs = recv.finish();
    assert_eq!(rs.received, 14, "{rs:?}");
    assert_eq!(rs.rejected, 0);
    assert_eq!(back, 0, "something came back to the sender's socket");
    for (i, size) in sizes.iter().enumerate() {
        let seq = i as u64 + 1;
        let on_disk = std::fs::read(env.spool_file(seq)).unwrap();
        assert!(on_disk.len() * 10 > *size * 8, "batch {seq} is {} bytes", on_disk.len());
        let sp = flumon_transfer::spool::open_spooled(
            &env.spool_file(seq),
            &env.link_key,
            dmz_key().public_key(),
            &Default::default(),
        )
        .unwrap();
        assert!(sp.skipped.is_empty());
    }
    let r = reconcile(&env.p("send-journal.log"), &send_pub(), &env.p("recv-journal.log"), &recv_pub()).unwrap();
    assert!(r.ok(), "{}", r.render());
    assert_eq!(r.rows.iter().filter(|x| x.fate == Fate::Received).count(), 14);
    let rj = journal(&env.p("recv-journal.log"), &recv_pub());
    assert_eq!(kinds(&rj, "batch.received").len(), 14);
    // duplicated datagrams were dropped as replays, not used twice
    let stop = kinds(&rj, "receiver.stop");
    assert!(stop[0].detail["drops"]["replayed"].as_u64().unwrap() > 0, "{:?}", stop[0].detail);
}

#[test]
fn forty_percent_loss_leaves_gaps_and_a_resend_recovers_them() {
    let env = Env::new();
    env.write_batches(1..=6, 60_000);
    let recv = start_recv(env.recv_config(), "127.0.0.1:0");
    let imp = Impairments { loss: 0.40, duplicate: 0.0, reorder: 0.01 };
    // one pass on purpose: with the default two, 40 % random loss is survived (PROTOCOL.md §4)
    let mut cfg = env.send_config(recv.addr, 1);
    cfg.diode.heartbeat_ms = 100;
    let (sum, _) = send_once(cfg, imp, 2);
    assert_eq!(sum.batches_sent, 6);
    // the receiver sees the announced batches never complete: gaps, in status and journal
    assert!(
        wait_for(15, || {
            flumon_transfer::status::read(&env.p("recv-state"))
                .is_ok_and(|s| s["open_gap_batches"].as_u64().unwrap_or(0) >= 5)
        }),
        "no gaps reported: {:?}",
        flumon_transfer::status::read(&env.p("recv-state"))
    );
    let status = flumon_transfer::status::read(&env.p("recv-state")).unwrap();
    let hint = status["resend_hint"].as_array().unwrap().clone();
    assert!(!hint.is_empty());
    let lost_before = env.spooled();
    assert!(lost_before.len() <= 1, "40 % loss with one pass should fail these batches: {lost_before:?}");

    // the operator resends the gaps with 3 passes, over the same 40 % loss
    let open: Vec<(u64, u64)> = serde_json::from_value(status["open_gaps"].clone()).unwrap();
    let mut cfg = env.send_config(recv.addr, 1);
    cfg.diode.pass_gap_ms = 20;
    let (tx, _) = UdpTx::bind(cfg.diode.local_addr, cfg.diode.target, 1 << 20).unwrap();
    let link = Impaired::new(tx, imp, 3);
    let requests = open.iter().map(|&(from, to)| (Selector::Seq { from, to }, 3u8)).collect();
    let opts = SendOptions { once: true, only_requests: true, requests, ..SendOptions::default() };
    let rs = flumon_transfer::send::run(cfg, Some(Box::new(link)), opts).unwrap();
    assert!(rs.resent >= 5, "{rs:?}");
    assert!(wait_for(20, || env.spooled().len() == 6), "after resend: {:?}", env.spooled());
    assert!(
        wait_for(10, || flumon_transfer::status::read(&env.p("recv-state"))
            .is_ok_and(|s| s["open_gap_batches"].as_u64() == Some(0))),
        "gaps still open"
    );
    let sum = recv.finish();
    assert!(sum.open_gaps.is_empty(), "{sum:?}");
    let rj = journal(&env.p("recv-journal.log"), &recv_pub());
    assert!(!kinds(&rj, "gap.opened").is_empty());
    assert!(!kinds(&rj, "gap.closed").is_empty());
    let sj = journal(&env.p("send-journal.log"), &send_pub());
    assert!(kinds(&sj, "batch.resent").len() >= 5);
    let r = reconcile(&env.p("send-journal.log"), &send_pub(), &env.p("recv-journal.log"), &recv_pub()).unwrap();
    assert!(r.ok(), "{}", r.render());
}
