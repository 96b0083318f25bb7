//! The real binary end to end on loopback: `init` from a DMZ folder, then
//! `recv`, `send --once`, `status`, `resend`, `verify` and `reconcile`
//! (including a tampered journal, which both must report).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_flumon-transfer"));
    c.env("RUST_LOG", "warn");
    c
}

fn run(args: &[&str]) -> (i32, String) {
    let out = bin().args(args).stderr(Stdio::inherit()).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A DMZ folder as `flumon-dmz init` lays it out (keys, outbox, dmz.toml).
fn fake_dmz(env: &Env, dir: &Path) {
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    std::fs::create_dir_all(dir.join("outbox")).unwrap();
    env.link_key.save(&dir.join("keys/link.key")).unwrap();
    env.mac.save(&dir.join("keys/link-mac.key")).unwrap();
    dmz_key().save(&dir.join("keys/dmz-sign.pem")).unwrap();
    dmz_key().public_key().save(&dir.join("keys/dmz-sign.pub.pem")).unwrap();
    std::fs::write(
        dir.join("dmz.toml"),
        "node_id = \"dmz-t\"\n[paths]\noutbox = \"outbox\"\nlink_key = \"keys/link.key\"\nmac_key = \"keys/link-mac.key\"\nsign_pub = \"keys/dmz-sign.pub.pem\"\n",
    )
    .unwrap();
}

#[test]
fn init_send_recv_status_verify_reconcile() {
    let env = Env::new();
    let dmz = env.p("dmz");
    fake_dmz(&env, &dmz);
    // batches in the DMZ's outbox
    for seq in 1..=3u64 {
        let bytes = env.write_batch(seq, &filler(seq, 20_000));
        std::fs::write(dmz.join(format!("outbox/{}", batch_name(seq))), bytes).unwrap();
    }
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = env.p("transfer");
    let (code, text) =
        run(&["init", "--dmz-dir", dmz.to_str().unwrap(), "--out", out.to_str().unwrap(), "--port", &port.to_string()]);
    assert_eq!(code, 0, "{text}");
    let (code, _) = run(&["init", "--dmz-dir", dmz.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_ne!(code, 0, "init refuses to overwrite");
    let send_toml = out.join("send.toml");
    let recv_toml = out.join("recv.toml");
    let (code, text) = run(&["status", "--config", recv_toml.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(text.contains("has not run"), "{text}");

    let mut recv =
        bin().args(["recv", "--config", recv_toml.to_str().unwrap()]).stdout(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (code, text) = run(&["send", "--config", send_toml.to_str().unwrap(), "--once"]);
    assert_eq!(code, 0, "{text}");
    let spool = out.join("spool");
    let n = || {
        std::fs::read_dir(&spool)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".fbatch"))
            .count()
    };
    assert!(wait_for(15, || n() == 3), "spooled {}", n());
    let (code, text) = run(&["status", "--config", recv_toml.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(text.contains("\"receiver\"") && text.contains("last_received_seq: 3"), "{text}");
    let (_, text) = run(&["status", "--config", send_toml.to_str().unwrap()]);
    assert!(text.contains("\"sender\""), "{text}");
    // an operator resend with no sender running sends by itself
    let (code, text) = run(&["resend", "--config", send_toml.to_str().unwrap(), "--seq", "2..3", "--passes", "1"]);
    assert_eq!(code, 0, "{text}");
    std::thread::sleep(std::time::Duration::from_millis(500));
    Command::new("kill").args(["-TERM", &recv.id().to_string()]).status().unwrap();
    let status = recv.wait().unwrap();
    assert!(status.success(), "{status:?}");

    let sj = out.join("send-journal.log");
    let rj = out.join("recv-journal.log");
    let spub = out.join("keys/send-journal.pub.pem");
    let rpub = out.join("keys/recv-journal.pub.pem");
    let (code, text) = run(&["verify", sj.to_str().unwrap(), "--key", spub.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("chain ok"));
    let args = [
        "reconcile",
        sj.to_str().unwrap(),
        rj.to_str().unwrap(),
        "--sender-key",
        spub.to_str().unwrap(),
        "--receiver-key",
        rpub.to_str().unwrap(),
    ];
    let (code, text) = run(&args);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("summary: sent 3, received 3, lost 0, altered 0"), "{text}");
    let sent = std::fs::read_to_string(&sj).unwrap();
    assert!(sent.contains("batch.resent"));

    // a tampered receiver journal: verify and reconcile both fail
    let t = std::fs::read_to_string(&rj).unwrap().replacen("\"batch.received\"", "\"batch.rejected\"", 1);
    std::fs::write(&rj, t).unwrap();
    let (code, text) = run(&["verify", rj.to_str().unwrap(), "--key", rpub.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("BROKEN"));
    let (code, text) = run(&args);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("receiver chain BROKEN"), "{text}");
}
