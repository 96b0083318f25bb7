//! End to end across two network namespaces (deploy/netns-link.sh): the real
//! `send` in one, the real `recv` in the other, 5 % loss on the forward
//! direction, every reverse packet dropped and counted. Runs as root with
//! `ip` and `nft`; otherwise it says why and skips.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/netns-link.sh")
}

fn can_run() -> Result<(), String> {
    let uid = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| {
        s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1).unwrap_or("").to_owned())
    });
    if uid.as_deref() != Some("0") {
        return Err("not root".into());
    }
    for tool in ["ip", "nft"] {
        let ok = Command::new("sh").args(["-c", &format!("command -v {tool}")]).stdout(Stdio::null()).status();
        if !ok.is_ok_and(|s| s.success()) {
            return Err(format!("`{tool}` not installed (apt-get install -y iproute2 nftables)"));
        }
    }
    Ok(())
}

struct Link(String);

impl Drop for Link {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(script()).args(["down", &self.0]).status();
    }
}

#[test]
fn send_and_recv_across_a_one_way_netns_link() {
    if let Err(why) = can_run() {
        eprintln!("SKIPPED netns end-to-end test: {why}");
        return;
    }
    let name = format!("ft{}", std::process::id() % 100_000);
    let up = Command::new("bash").arg(script()).args(["up", &name, "5"]).output().unwrap();
    if !up.status.success() {
        let _ = Command::new("bash").arg(script()).args(["down", &name]).status();
        eprintln!(
            "SKIPPED netns end-to-end test: the link could not be built: {}",
            String::from_utf8_lossy(&up.stderr)
        );
        return;
    }
    let _link = Link(name.clone());

    let env = Env::new();
    let dmz = env.p("dmz");
    std::fs::create_dir_all(dmz.join("keys")).unwrap();
    std::fs::create_dir_all(dmz.join("outbox")).unwrap();
    env.link_key.save(&dmz.join("keys/link.key")).unwrap();
    env.mac.save(&dmz.join("keys/link-mac.key")).unwrap();
    dmz_key().public_key().save(&dmz.join("keys/dmz-sign.pub.pem")).unwrap();
    std::fs::write(dmz.join("dmz.toml"), "node_id = \"dmz-t\"\n").unwrap();
    for seq in 1..=8u64 {
        let bytes = env.write_batch(seq, &filler(seq, if seq == 4 { 1_300_000 } else { 40_000 }));
        std::fs::write(dmz.join(format!("outbox/{}", batch_name(seq))), bytes).unwrap();
    }
    let out = env.p("t");
    let bin = env!("CARGO_BIN_EXE_flumon-transfer");
    let st = Command::new(bin)
        .args(["init", "--dmz-dir", dmz.to_str().unwrap(), "--out", out.to_str().unwrap(), "--port", "47100"])
        .status()
        .unwrap();
    assert!(st.success());
    for (f, pairs) in [
        (
            "send.toml",
            vec![
                ("127.0.0.1:0", "192.0.2.1:0"),
                ("127.0.0.1:47100", "192.0.2.2:47100"),
                ("rate_mbit = 800", "rate_mbit = 80"),
            ],
        ),
        ("recv.toml", vec![("127.0.0.1:47100", "192.0.2.2:47100")]),
    ] {
        let mut t = std::fs::read_to_string(out.join(f)).unwrap();
        for (a, b) in pairs {
            assert!(t.contains(a), "{f} lacks {a}");
            t = t.replace(a, b);
        }
        std::fs::write(out.join(f), t).unwrap();
    }
    let mut recv = Command::new("bash")
        .arg(script())
        .args(["intra", &name, bin, "recv", "--config", out.join("recv.toml").to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    let send = Command::new("bash")
        .arg(script())
        .args(["dmz", &name, bin, "send", "--config", out.join("send.toml").to_str().unwrap(), "--once"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(send.status.success(), "{}", String::from_utf8_lossy(&send.stderr));
    let spool = out.join("spool");
    let n = || {
        std::fs::read_dir(&spool)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".fbatch"))
            .count()
    };
    let all = wait_for(30, || n() == 8);
    Command::new("kill").args(["-TERM", &recv.id().to_string()]).status().unwrap();
    let _ = recv.wait();
    let counters = Command::new("bash").arg(script()).args(["counters", &name]).output().unwrap();
    let counters = String::from_utf8_lossy(&counters.stdout).into_owned();
    eprintln!("netns link: {counters}");
    assert!(all, "spooled {} of 8", n());
    let mut it = counters.split_whitespace();
    let fwd: u64 = it.nth(1).unwrap().parse().unwrap();
    let rev: u64 = it.nth(1).unwrap().parse().unwrap();
    assert_eq!(rev, 0, "the receiving side sent {rev} packets back");
    assert!(fwd > 0, "no forward loss was applied");
    let r = flumon_transfer::reconcile::reconcile(
        &out.join("send-journal.log"),
        &flumon_shared::crypto::Sm2PublicKey::load(&out.join("keys/send-journal.pub.pem")).unwrap(),
        &out.join("recv-journal.log"),
        &flumon_shared::crypto::Sm2PublicKey::load(&out.join("keys/recv-journal.pub.pem")).unwrap(),
    )
    .unwrap();
    assert!(r.ok(), "{}", r.render());
}
