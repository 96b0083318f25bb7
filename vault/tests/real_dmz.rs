//! The whole raw-data path with the real programs: `flumon-vault keygen`
//! (2 of 3) ─▶ `flumon-dmz init --vault-pubkey` ─▶ create-hospital ─▶
//! `flumon-agent run` uploads over HTTPS (records and a death scan) ─▶
//! `flumon-dmz export-raw` ─▶ `flumon-vault verify` with the DMZ's key ─▶
//! `flumon-vault open` with two shares: every original is byte for byte what
//! the agent sent; one share is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

#[path = "../../agent/tests/common/dmz.rs"]
mod dmz;

use std::collections::BTreeSet;
use std::process::Command;

use flumon_tests::synth::{self, Options, hospitals::Hospital};

#[test]
fn export_from_a_real_dmz_opens_in_the_vault() {
    let t = tempfile::tempdir().unwrap();
    let p = |n: &str| t.path().join(n);
    let vault_exe = env!("CARGO_BIN_EXE_flumon-vault");
    // vault keys, 2 of 3
    let mut pf = Vec::new();
    for i in 1..=3 {
        std::fs::write(p(&format!("pass{i}")), format!("officer {i} passphrase\n")).unwrap();
        pf.push(p(&format!("pass{i}")).display().to_string());
    }
    let out = Command::new(vault_exe)
        .args([
            "keygen",
            "--out",
            p("vault").to_str().unwrap(),
            "--shares",
            "3",
            "--threshold",
            "2",
            "--kdf-mib",
            "8",
            "--kdf-passes",
            "1",
        ])
        .args(["--passphrase-file", &pf[0], "--passphrase-file", &pf[1], "--passphrase-file", &pf[2]])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // a DMZ that wraps to that key, one hospital, today's synthetic upload
    let mut d = dmz::Dmz::init(&p("dmz"), Some(&p("vault/vault.pub.pem")));
    let h = Hospital::generate(21, 0);
    let c = d.create_hospital(&h.code, &h.name, h.county.code, h.level);
    d.start();
    let today = flumon_agent::now_cst().date();
    let opts = Options {
        seed: 21,
        hospitals: 1,
        date: today,
        out: p("synth"),
        scale: 0.2,
        lab_only_rate: 0.0,
        upload_hour: 0,
        ..Options::default()
    };
    let (files, _) = synth::upload(&opts, &h, today).unwrap();
    let exports = p("synth").join(std::path::Path::new(&files[0].path).parent().unwrap());
    let now = files[0].upload_time.clone();
    std::fs::create_dir_all(p("agent/scans")).unwrap();
    std::fs::write(p("agent/token"), c["token"].as_str().unwrap()).unwrap();
    let scan = b"%PDF-1.4 /Type /Page death record scan".to_vec();
    std::fs::write(p("agent/scans/ZY42_1-1_6.pdf"), &scan).unwrap();
    std::fs::write(
        p("agent/agent.toml"),
        format!(
            "[hospital]\nuscc = \"{}\"\n[dmz]\nurl = \"{}\"\nca = \"{}\"\ncert = {:?}\nkey = {:?}\ntoken_file = \"token\"\n\
             [source]\nfolder = \"{}\"\n[scans]\nfolder = \"scans\"\n",
            h.code,
            d.url(),
            d.ca().display(),
            c["cert"].as_str().unwrap(),
            c["key"].as_str().unwrap(),
            exports.display()
        ),
    )
    .unwrap();
    let agent = dmz::binary("flumon-agent");
    let out = Command::new(&agent)
        .args(["run", "--once", "--config"])
        .arg(p("agent/agent.toml"))
        .env("FLUMON_NOW", &now)
        .output()
        .unwrap();
    assert!(out.status.success(), "agent: {}", String::from_utf8_lossy(&out.stderr));
    // what the agent sent: the same extraction, recomputed
    let cfg = flumon_agent::config::AgentConfig::load(&p("agent/agent.toml")).unwrap();
    let src = flumon_agent::source::read_folder(&exports, None).unwrap();
    let ecfg = flumon_agent::extract::ExtractConfig {
        org: h.code.clone(),
        now: flumon_shared::validate::cells::parse_datetime(&now).unwrap(),
        days: 7,
        chunk_rows: cfg.upload.chunk_rows,
    };
    let sent: BTreeSet<Vec<u8>> = flumon_agent::extract::extract(src, Default::default(), &ecfg)
        .unwrap()
        .chunks
        .into_iter()
        .map(|c| c.csv)
        .collect();
    assert!(!sent.is_empty());

    // export (through the running server's admin listener)
    let rep = d.export_raw(&p("media"));
    assert_eq!(rep["items"].as_u64().unwrap() as usize, sent.len() + 1, "{rep}");
    let arch = p("media").join(rep["folder"].as_str().unwrap());
    let ok = Command::new(vault_exe)
        .args(["verify", arch.to_str().unwrap(), "--dmz-pubkey"])
        .arg(p("dmz/keys/dmz-sign.pub.pem"))
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));

    let open = |shares: &[usize], out: &str| {
        let mut cmd = Command::new(vault_exe);
        cmd.args(["open", arch.to_str().unwrap(), "--vault-dir", p("vault").to_str().unwrap(), "--hospital", &h.code]);
        cmd.args(["--reason", "核查上报原始数据 (e2e test)", "--officer", "王五", "--out", p(out).to_str().unwrap()]);
        cmd.arg("--dmz-pubkey").arg(p("dmz/keys/dmz-sign.pub.pem"));
        for &s in shares {
            cmd.arg("--share").arg(p(&format!("vault/share-{s}-of-3.key")));
            cmd.args(["--passphrase-file", &pf[s - 1]]);
        }
        cmd.output().unwrap()
    };
    let one = open(&[2], "out1");
    assert!(!one.status.success());
    assert!(String::from_utf8_lossy(&one.stderr).contains("份额不足"));
    let two = open(&[2, 3], "out2");
    assert!(two.status.success(), "{}", String::from_utf8_lossy(&two.stderr));
    let mut got = BTreeSet::new();
    let mut scans = 0;
    for e in std::fs::read_dir(p("out2")).unwrap() {
        let path = e.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        if path.extension().unwrap() == "pdf" {
            assert_eq!(bytes, scan);
            scans += 1;
        } else {
            got.insert(bytes);
        }
    }
    assert_eq!(scans, 1);
    assert_eq!(got, sent, "the opened originals are exactly what the agent uploaded");
    let j = std::fs::read_to_string(p("vault/vault-journal.log")).unwrap();
    assert!(j.contains("王五") && j.contains("核查上报原始数据") && j.contains("vault.unlock.refused"));
}
