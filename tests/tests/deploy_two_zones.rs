//! deploy/two-zones.sh --check: the whole system across two network
//! namespaces on the one-way link (root, iproute2, nftables; CI has them).
//! Skips with a visible message otherwise (the script exits 77).
//!
//! ```text
//!  cargo build (debug bins) ─▶ two-zones.sh --check (≤ 180 s, then killed and cleaned up) ─▶ "检查通过"
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flumon_tests::harness::{binaries, is_root, workspace};

#[test]
fn whole_system_across_two_zones() {
    let script = workspace().join("deploy/two-zones.sh");
    if !is_root() {
        eprintln!("跳过 (SKIPPED): two-zones.sh 需要 root 与 iproute2/nftables (needs root; CI runs it as root)");
        return;
    }
    let bin = binaries().unwrap();
    let w = tempfile::tempdir().unwrap();
    let log = w.path().join("two-zones.out");
    let mut child = Command::new("bash")
        .arg(&script)
        .arg("--check")
        .env("FLUMON_BIN", &bin)
        .env("FLUMON_ZONES_DIR", w.path().join("w"))
        // a name of its own, so a developer's `two-zones.sh` run is left alone
        .env("FLUMON_ZONES_NAME", "fzt")
        .env("FLUMON_ZONES_TIMEOUT", "120")
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > Duration::from_secs(180) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let out = std::fs::read_to_string(&log).unwrap_or_default();
    eprintln!("{out}");
    let Some(status) = status else {
        let _ = Command::new("bash")
            .arg(&script)
            .arg("stop")
            .env("FLUMON_ZONES_DIR", w.path().join("w"))
            .env("FLUMON_ZONES_NAME", "fzt")
            .status();
        panic!("two-zones.sh --check took more than 180 s");
    };
    if status.code() == Some(77) {
        eprintln!("跳过 (SKIPPED): two-zones.sh 缺少所需工具 (a needed tool is missing; see above)");
        return;
    }
    assert!(status.success(), "two-zones.sh --check failed");
    assert!(out.contains("检查通过 (check passed)"));
    assert!(out.contains("反向 UDP: nothing, 反向 TCP: refused"));
}
