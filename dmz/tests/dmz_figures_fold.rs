//! The portal figures are folded by the server on its own (issue 3, docs/DECISIONS.md):
//! uploads only log their facts; a real `flumon-dmz serve` with a one-second
//! fold interval folds them, counts them in its metrics, and leaves no log
//! behind; the counters read from the store afterwards are the uploads'.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod dmz_common;

use std::time::{Duration, Instant};

use dmz_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_folds_uploaded_figures_on_its_own() {
    let mut dmz = Dmz::new(|t| {
        let mut f = toml::Table::new();
        f.insert("fold_every_secs".into(), 1.into());
        t.insert("figures".into(), f.into());
    });
    let a = dmz.hospital(41);
    let b = dmz.hospital(42);
    dmz.start();
    let c = dmz.client(&a);
    // two uploads of A (the second resends half of the first, changed by nothing), one of B
    let first: Vec<_> = (0..300).map(|n| outpatient(&a.uscc, n)).collect();
    let second: Vec<_> = (150..400).map(|n| outpatient(&a.uscc, n)).collect();
    for recs in [&first, &second] {
        let r = upload(&c, &a.token, "outpatient", Some("text/csv"), csv_of(recs)).await;
        assert_eq!(r.status, 200, "{:?}", r.json());
    }
    let cb = dmz.client(&b);
    let r = upload(&cb, &b.token, "outpatient", Some("text/csv"), csv_of(&[outpatient(&b.uscc, 7)])).await;
    assert_eq!(r.status, 200);
    let logged = 300 + 250 + 1;
    let t0 = Instant::now();
    loop {
        let folded = dmz.metrics().await["flumon_dmz_figures_folded_total"];
        if folded >= f64::from(logged) {
            assert_eq!(folded, f64::from(logged), "every logged record folded once");
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "not folded within 30 s: {folded} of {logged}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    dmz.stop();
    let store = flumon_dmz::store::Store::open(&dmz.dir.path().join("data"), Box::new(|_| {})).unwrap();
    let fig = store.tree("fig").unwrap();
    assert_eq!(fig.scan_prefix(b"l").count(), 0, "no logged chunk left");
    assert_eq!(flumon_dmz::figures::fold_all(&store).unwrap(), 0, "nothing left to fold");
    let ca = flumon_dmz::figures::counters(&store, &a.uscc).unwrap();
    assert_eq!(ca.get("live:outpatient"), Some(&400), "400 distinct records of A");
    let cb = flumon_dmz::figures::counters(&store, &b.uscc).unwrap();
    assert_eq!(cb.get("live:outpatient"), Some(&1));
}
