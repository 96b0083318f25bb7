//! Ferry mode (issue 4 "Protocol"): the same batch files through a folder,
//! the same checks; a truncated file is quarantined, a file still being
//! written is taken only once it is complete.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use flumon_transfer::config::Mode;
use flumon_transfer::reconcile::reconcile;
use flumon_transfer::recv::RecvOptions;
use flumon_transfer::send::SendOptions;

fn start_ferry_recv(
    env: &Env,
) -> (Arc<AtomicBool>, std::thread::JoinHandle<flumon_transfer::Result<flumon_transfer::recv::RecvSummary>>) {
    let mut cfg = env.recv_config();
    cfg.mode = Mode::Ferry;
    let stop = Arc::new(AtomicBool::new(false));
    let opts = RecvOptions { stop: stop.clone() };
    (stop, std::thread::spawn(move || flumon_transfer::recv::run(cfg, None, opts)))
}

#[test]
fn ferry_round_trip_with_reconcile() {
    let env = Env::new();
    env.write_batches(1..=4, 30_000);
    let mut cfg = env.send_config("127.0.0.1:9".parse().unwrap(), 2);
    cfg.mode = Mode::Ferry;
    let sum = flumon_transfer::send::run(cfg, None, SendOptions { once: true, ..SendOptions::default() }).unwrap();
    assert_eq!(sum.batches_sent, 4);
    assert_eq!(std::fs::read_dir(env.p("ferry")).unwrap().count(), 4);
    let (stop, h) = start_ferry_recv(&env);
    assert!(wait_for(15, || env.spooled() == vec![1, 2, 3, 4]), "{:?}", env.spooled());
    assert!(wait_for(5, || std::fs::read_dir(env.p("ferry")).unwrap().count() == 0));
    stop.store(true, Ordering::Relaxed);
    let rs = h.join().unwrap().unwrap();
    assert_eq!(rs.received, 4);
    let r = reconcile(&env.p("send-journal.log"), &send_pub(), &env.p("recv-journal.log"), &recv_pub()).unwrap();
    assert!(r.ok(), "{}", r.render());
}

#[test]
fn a_truncated_ferry_file_is_quarantined_and_one_written_slowly_is_waited_for() {
    let env = Env::new();
    let bytes = env.write_batches([1, 2], 30_000);
    let (stop, h) = start_ferry_recv(&env);
    // batch 1 arrives cut short and stays so
    std::fs::write(env.p(&format!("ferry/{}", batch_name(1))), &bytes[0][..bytes[0].len() / 2]).unwrap();
    // batch 2 is written in place in two steps, faster than the settle time
    let p2 = env.p(&format!("ferry/{}", batch_name(2)));
    std::fs::write(&p2, &bytes[1][..1000]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(150));
    std::fs::write(&p2, &bytes[1]).unwrap();
    assert!(wait_for(15, || env.spooled() == vec![2]), "{:?}", env.spooled());
    assert!(wait_for(10, || env.quarantined().len() == 2), "{:?}", env.quarantined());
    stop.store(true, Ordering::Relaxed);
    let rs = h.join().unwrap().unwrap();
    assert_eq!((rs.received, rs.rejected), (1, 1));
    let reason = env.quarantined().into_iter().find(|n| n.ends_with(".reason.json")).unwrap();
    let reason = std::fs::read_to_string(env.p(&format!("quarantine/{reason}"))).unwrap();
    assert!(reason.contains("truncated"), "{reason}");
    assert_eq!(std::fs::read_dir(env.p("ferry")).unwrap().count(), 0);
    let rj = journal(&env.p("recv-journal.log"), &recv_pub());
    assert_eq!(kinds(&rj, "batch.rejected").len(), 1);
}
