//! Crash-only exit when the store keeps failing (dmz/src/store/health.rs;
//! SECURITY.md, fault campaign, third finding), against the real
//! `flumon-dmz serve` process on a real full disk: small tmpfs mounts as its
//! data folder and its outbox. Needs root to mount; skipped with a note
//! otherwise (CI runs as root).
//!
//! ```text
//!  data/ = tmpfs 16 MiB ─▶ serve ─▶ uploads: receipts A ─▶ fill the tmpfs ─▶ keep uploading:
//!     each answer a receipt (added to A), 503 + Retry-After, or no connection (exiting)
//!  ─▶ serve exits 75 with the one store-failure line ─▶ free the space ─▶ serve again ─▶ 200
//!  ─▶ every receipt of A: raw item complete in sled, its records and receipt in the batches
//!  outbox/ = tmpfs 1 MiB, filled: batches fail (ENOSPC) but the store is fine ─▶ no exit,
//!     uploads still 200 ─▶ space back ─▶ the queue drains
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod dmz_common;

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use dmz_common::*;
use flumon_shared::desens::keys::{PseudonymKey, pseudonym};
use flumon_shared::entries::Entry;

const ROWS: u32 = 20;
const EXIT_STORE_FAILED: i32 = 75;

/// A tmpfs mounted on a folder; lazily unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(dir).output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs(dir.to_path_buf())),
            Ok(o) => {
                eprintln!("SKIP: mount -t tmpfs failed: {}", String::from_utf8_lossy(&o.stderr).trim());
                None
            }
            Err(e) => {
                eprintln!("SKIP: cannot run mount: {e}");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn is_root() -> bool {
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root {
        eprintln!("SKIP: not root: a full disk needs a tmpfs mount (CI runs as root)");
    }
    root
}

/// Puts the folder `<dmz>/<name>` on a tmpfs of `size` (contents copied over).
fn move_to_tmpfs(dmz: &Dmz, name: &str, size: &str) -> Option<Tmpfs> {
    let dir = dmz.path(name);
    let orig = dmz.path(&format!("{name}.orig"));
    std::fs::rename(&dir, &orig).unwrap();
    let fs = Tmpfs::mount(&dir, size)?;
    let st = Command::new("cp").arg("-a").arg(orig.join(".")).arg(&dir).status().unwrap();
    assert!(st.success());
    Some(fs)
}

/// Writes zeros to `path` until the file system is full; returns the bytes written.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).unwrap();
    let mut n = 0u64;
    for chunk in [64 << 10, 4096] {
        let buf = vec![0u8; chunk];
        while f.write_all(&buf).is_ok() {
            n += chunk as u64;
        }
    }
    n
}

/// Uploads file `k` (records k·ROWS+1 ..) of `agent`; None when the connection failed.
async fn upload_file(dmz: &Dmz, agent: &Agent, k: u32) -> Option<flumon_dmz::client::Answer> {
    let records: Vec<_> = (k * ROWS + 1..=(k + 1) * ROWS).map(|n| outpatient(&agent.uscc, n)).collect();
    let auth = format!("Bearer {}", agent.token);
    let c = dmz.client(agent);
    let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
    let send = c.send("POST", "/api/v1/upload/outpatient", &headers, json_file(&records));
    tokio::time::timeout(Duration::from_secs(60), send).await.expect("upload hung").ok()
}

fn receipt(a: &flumon_dmz::client::Answer) -> String {
    let v = a.json().unwrap();
    assert_eq!(v["accepted"].as_u64(), Some(u64::from(ROWS)), "{v}");
    v["receipt_id"].as_str().unwrap().to_owned()
}

fn serve_log(dmz: &Dmz) -> String {
    std::fs::read_to_string(dmz.path("serve.log")).unwrap_or_default()
}

/// Every receipt in `acked` (receipt, file number) has its complete raw item in sled, its
/// receipt summary and all its records in the outbox batches.
fn assert_all_kept(dmz: &Dmz, agent: &Agent, acked: &[(String, u32)]) {
    let cfg = flumon_dmz::Config::load(&dmz.config).unwrap();
    let state = flumon_dmz::open_state(cfg).unwrap();
    let items: std::collections::HashMap<String, flumon_dmz::archive::RawMeta> =
        flumon_dmz::archive::all_meta(&state.store)
            .unwrap()
            .into_iter()
            .filter_map(|m| m.receipt_id.clone().map(|r| (r, m)))
            .collect();
    for (rid, _) in acked {
        let m = items.get(rid).unwrap_or_else(|| panic!("raw item of acknowledged receipt {rid} missing"));
        assert!(m.complete && m.chunks > 0, "raw item of {rid} incomplete");
    }
    assert!(flumon_dmz::outbound::queue_is_empty(&state.store.tree("outbound").unwrap()).unwrap(), "queue drained");
    drop(state);
    let key = PseudonymKey::from_slice(
        &hex::decode(std::fs::read_to_string(dmz.path("keys/pseudonym.key")).unwrap().trim()).unwrap(),
    )
    .unwrap();
    let (mut receipts, mut rec_keys) = (HashSet::new(), HashSet::new());
    for (_, entries) in dmz.batches() {
        for e in entries {
            match e {
                Entry::Receipt(s) => {
                    receipts.insert(s.receipt_id.clone());
                }
                Entry::Record(r) => {
                    rec_keys.insert(r.common().rec_key.clone());
                }
                _ => {}
            }
        }
    }
    for (rid, k) in acked {
        assert!(receipts.contains(rid), "receipt summary of {rid} missing from the batches");
        for n in k * ROWS + 1..=(k + 1) * ROWS {
            let rk = pseudonym(&key, &agent.uscc, "JLID:outpatient", &format!("R{n:08}"));
            assert!(rec_keys.contains(&rk), "acknowledged record {n} of {rid} not in any batch");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_keeps_failing_exits_75_and_keeps_every_receipt() {
    if !is_root() {
        return;
    }
    let mut dmz = Dmz::new(|_| {});
    let Some(_disk) = move_to_tmpfs(&dmz, "data", "16m") else { return };
    let agent = dmz.hospital(31);
    dmz.start();
    let mut acked = Vec::new();
    let mut k = 0u32;
    for _ in 0..5 {
        let a = upload_file(&dmz, &agent, k).await.expect("connection");
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        acked.push((receipt(&a), k));
        k += 1;
    }

    let filler = dmz.path("data/filler");
    let filled = fill(&filler);
    eprintln!("filled the data tmpfs with {filled} bytes");
    let (mut refused, mut codes) = (0, HashSet::new());
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = dmz.exited() {
            break st;
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "serve did not exit on a full disk:\n{}", serve_log(&dmz));
        match upload_file(&dmz, &agent, k).await {
            Some(a) if a.status == 200 => {
                acked.push((receipt(&a), k));
                k += 1;
            }
            Some(a) if a.status == 503 => {
                let v = a.json().unwrap();
                assert!(a.headers.get("retry-after").is_some(), "503 without Retry-After: {v}");
                codes.insert(v["error"].as_str().unwrap().to_owned());
                refused += 1;
                k += 1;
            }
            Some(a) => {
                panic!("status {} on a full disk: {}\n{}", a.status, String::from_utf8_lossy(&a.body), serve_log(&dmz))
            }
            None => tokio::time::sleep(Duration::from_millis(50)).await,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let log = serve_log(&dmz);
    eprintln!("serve exited {status} {:?} after the disk filled; {refused} uploads refused {codes:?}", t0.elapsed());
    assert_eq!(status.code(), Some(EXIT_STORE_FAILED), "{log}");
    assert!(refused > 0, "no upload was refused while the disk was full");
    let line: Vec<&str> = log.lines().filter(|l| l.contains("存储持续故障")).collect();
    assert_eq!(line.len(), 1, "one store-failure line:\n{log}");
    assert!(line[0].contains("the store keeps failing") && line[0].contains("ERROR"), "{}", line[0]);
    assert!(!log.contains("panicked"), "{log}");

    // space returns; the supervisor's restart: sled recovers from its log and serves again
    std::fs::remove_file(&filler).unwrap();
    dmz.start();
    let a = upload_file(&dmz, &agent, k).await.expect("connection");
    assert_eq!(a.status, 200, "after the restart: {}", String::from_utf8_lossy(&a.body));
    acked.push((receipt(&a), k));
    dmz.wait_drained().await;
    dmz.stop();
    assert_all_kept(&dmz, &agent, &acked);
    eprintln!("{} receipts, all kept across the full disk and the restart", acked.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_outbox_is_transient_and_does_not_exit() {
    if !is_root() {
        return;
    }
    let mut dmz = Dmz::new(|_| {});
    let Some(_outbox) = move_to_tmpfs(&dmz, "outbox", "1m") else { return };
    let agent = dmz.hospital(32);
    dmz.start();
    let filler = dmz.path("outbox/filler");
    fill(&filler);
    let mut acked = Vec::new();
    let failures = |dmz: &Dmz| serve_log(dmz).matches("writing a batch failed").count();
    let t0 = Instant::now();
    let mut k = 0u32;
    // the batcher retries every 2 s; the store's watchdog would give up within 1 s of a second failure
    while failures(&dmz) < 3 || k < 3 {
        assert!(t0.elapsed() < Duration::from_secs(60), "the batcher never failed:\n{}", serve_log(&dmz));
        let a = upload_file(&dmz, &agent, k).await.expect("the DMZ went away on a full outbox");
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        acked.push((receipt(&a), k));
        k += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(dmz.exited().is_none(), "serve exited on a full outbox:\n{}", serve_log(&dmz));
    assert!(serve_log(&dmz).contains("No space left"), "{}", serve_log(&dmz));
    std::fs::remove_file(&filler).unwrap();
    dmz.wait_drained().await;
    dmz.stop();
    assert!(!serve_log(&dmz).contains("存储持续故障"), "{}", serve_log(&dmz));
    assert_all_kept(&dmz, &agent, &acked);
    eprintln!("{} receipts through a full outbox ({} failed batch writes)", acked.len(), failures(&dmz));
}
