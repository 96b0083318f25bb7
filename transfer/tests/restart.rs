//! Restarts in the middle of a batch (issue 4 "Tests"): a restarted sender
//! starts a new session and resumes with fresh symbols; a restarted receiver
//! keeps what it had and picks the batch up from the next pass.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::*;
use flumon_transfer::link::{Impairments, LinkTx, UdpTx};
use flumon_transfer::reconcile::reconcile;
use flumon_transfer::send::SendOptions;

#[test]
fn sender_restart_mid_batch_resumes_in_a_new_session() {
    let env = Env::new();
    env.write_batches([1], 2_500_000);
    env.write_batches([2], 10_000);
    let recv = start_recv(env.recv_config(), "127.0.0.1:0");
    // the first sender dies a third of the way through pass 1
    let cfg = env.send_config(recv.addr, 2);
    let (tx, _) = UdpTx::bind(cfg.diode.local_addr, cfg.diode.target, 1 << 20).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let link = StopAfter { inner: tx, count: Arc::new(AtomicU64::new(0)), limit: 600, stop: stop.clone() };
    let opts = SendOptions { stop, ..SendOptions::default() };
    let first = flumon_transfer::send::run(cfg, Some(Box::new(link)), opts).unwrap();
    assert_eq!(first.batches_sent, 0);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(env.spooled().is_empty());
    // the restarted sender: new session, next attempt numbers, both batches
    let (second, _) = send_once(env.send_config(recv.addr, 2), Impairments::default(), 1);
    assert_eq!(second.batches_sent, 2);
    assert_ne!(first.session, second.session);
    assert!(wait_for(15, || env.spooled() == vec![1, 2]), "{:?}", env.spooled());
    recv.finish();
    let state = std::fs::read_to_string(env.p("send-state/send-state.log")).unwrap();
    assert!(state.contains("\"attempt\":3") || state.contains("\"attempts\":3"), "{state}");
    let sj = journal(&env.p("send-journal.log"), &send_pub());
    assert_eq!(kinds(&sj, "sender.start").len(), 2);
    assert_eq!(kinds(&sj, "batch.sent").len(), 2);
    let r = reconcile(&env.p("send-journal.log"), &send_pub(), &env.p("recv-journal.log"), &recv_pub()).unwrap();
    assert!(r.ok(), "{}", r.render());
}

/// Raises a flag after `at` datagrams (and keeps sending).
struct Signal<T: LinkTx> {
    inner: T,
    n: u64,
    at: u64,
    flag: Arc<AtomicBool>,
}

impl<T: LinkTx> LinkTx for Signal<T> {
    fn send(&mut self, d: &[u8]) -> std::io::Result<()> {
        self.n += 1;
        if self.n == self.at {
            self.flag.store(true, Ordering::Relaxed);
        }
        self.inner.send(d)
    }
}

#[test]
fn receiver_restart_mid_batch_picks_it_up_from_the_next_pass() {
    let env = Env::new();
    env.write_batches([1], 2_500_000);
    let recv = start_recv(env.recv_config(), "127.0.0.1:0");
    let addr = recv.addr;
    let mut cfg = env.send_config(addr, 2);
    cfg.diode.pass_gap_ms = 2500;
    cfg.diode.rate_bytes = 8_000_000;
    let (tx, _) = UdpTx::bind(cfg.diode.local_addr, cfg.diode.target, 1 << 20).unwrap();
    let flag = Arc::new(AtomicBool::new(false));
    let link = Signal { inner: tx, n: 0, at: 700, flag: flag.clone() };
    let sender = std::thread::spawn(move || {
        let opts = SendOptions { once: true, ..SendOptions::default() };
        flumon_transfer::send::run(cfg, Some(Box::new(link)), opts).unwrap()
    });
    assert!(wait_for(10, || flag.load(Ordering::Relaxed)));
    let first = recv.finish(); // killed mid pass 1
    assert_eq!(first.received, 0);
    // a crash left a temp file in the spool
    std::fs::write(env.p("spool/.dmz-t-00000000000000000001.fbatch.abc.tmp"), b"partial").unwrap();
    let recv = start_recv(env.recv_config(), &addr.to_string());
    let sum = sender.join().unwrap();
    assert_eq!(sum.batches_sent, 1);
    assert!(wait_for(15, || env.spooled() == vec![1]), "{:?}", env.spooled());
    let second = recv.finish();
    assert_eq!(second.received, 1);
    assert!(!env.p("spool/.dmz-t-00000000000000000001.fbatch.abc.tmp").exists());
    let rj = journal(&env.p("recv-journal.log"), &recv_pub());
    let starts = kinds(&rj, "receiver.start");
    assert_eq!(starts.len(), 2);
    assert_eq!(starts[1].detail["temp_files_removed"], 1);
    assert_eq!(kinds(&rj, "batch.received").len(), 1);
    let r = reconcile(&env.p("send-journal.log"), &send_pub(), &env.p("recv-journal.log"), &recv_pub()).unwrap();
    assert!(r.ok(), "{}", r.render());
}
