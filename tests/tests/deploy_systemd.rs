//! The systemd files of `deploy/systemd/` checked by systemd's own tools.
//!
//! ```text
//!  *.service, *.timer ─▶ copies with ExecStart → stand-in executables ─▶ systemd-analyze verify   (no warning at all)
//!                                                                     ─▶ systemd-analyze security --offline (exposure ≤ 2.0)
//!  flumon.sysusers.conf ─▶ systemd-sysusers --root=TMP ─▶ TMP/etc/passwd, group (users, shared groups)
//!  flumon.tmpfiles.conf ─▶ systemd-tmpfiles --root=TMP --create ─▶ outbox/spool owned and moded as documented
//! ```
//! Skips with a visible message when systemd-analyze is missing (Debian: apt-get install systemd).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd")
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success())
}

const UNITS: [&str; 7] = [
    "flumon-dmz.service",
    "flumon-transfer-send.service",
    "flumon-transfer-recv.service",
    "flumon-intranet.service",
    "flumon-agent.service",
    "flumon-agent-once.service",
    "flumon-agent.timer",
];

/// Copies of the units whose /usr/local/bin/… executables exist (verify checks that ExecStart is executable).
fn staged_units() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let bin = t.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for exe in ["flumon-dmz", "flumon-transfer", "flumon-intranet", "flumon-agent"] {
        let p = bin.join(exe);
        std::fs::write(&p, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for u in UNITS {
        let text = std::fs::read_to_string(dir().join(u)).unwrap();
        assert!(u.ends_with(".timer") || text.contains("ExecStart=/usr/local/bin/"), "{u}");
        let text = text.replace("/usr/local/bin/", &format!("{}/", bin.display()));
        std::fs::write(t.path().join(u), text).unwrap();
    }
    t
}

#[test]
fn units_verify_without_a_warning() {
    if !have("systemd-analyze") {
        eprintln!("跳过 (SKIPPED): systemd-analyze 不可用 (not installed; Debian: apt-get install systemd)");
        return;
    }
    let t = staged_units();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(UNITS)
        .current_dir(t.path())
        .env("SYSTEMD_LOG_COLOR", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // verify exits 0 on unknown keys and bad values ("ignoring"): any message is a failure here
    assert!(out.status.success() && stderr.trim().is_empty(), "systemd-analyze verify:\n{stderr}");

    // and the check does catch a misspelt directive
    let bad = std::fs::read_to_string(t.path().join("flumon-dmz.service"))
        .unwrap()
        .replace("NoNewPrivileges=yes", "NoNewPrivilegez=yes");
    std::fs::write(t.path().join("flumon-dmz.service"), bad).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no", "flumon-dmz.service"])
        .current_dir(t.path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("NoNewPrivilegez"));
}

#[test]
fn units_are_hardened() {
    for u in UNITS.iter().filter(|u| u.ends_with(".service")) {
        let text = std::fs::read_to_string(dir().join(u)).unwrap();
        for d in [
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "ProtectHome=yes",
            "PrivateTmp=yes",
            "CapabilityBoundingSet=\n",
            "RestrictAddressFamilies=",
            "SystemCallFilter=@system-service",
            "MemoryDenyWriteExecute=yes",
            "StateDirectory=",
            "User=flumon-",
        ] {
            assert!(text.contains(d), "{u}: {d:?} missing");
        }
        if *u != "flumon-dmz.service" {
            assert!(text.contains("IPAddressDeny=any"), "{u}: IPAddressDeny=any missing");
        }
    }
    // the link: the sender reaches only the receiver, the receiver hears only the sender
    let send = std::fs::read_to_string(dir().join("flumon-transfer-send.service")).unwrap();
    let recv = std::fs::read_to_string(dir().join("flumon-transfer-recv.service")).unwrap();
    assert!(send.contains("\nIPAddressAllow=192.0.2.2/32\n"));
    assert!(recv.contains("\nIPAddressAllow=192.0.2.1/32\n"));

    if !have("systemd-analyze") {
        eprintln!("跳过 (SKIPPED): systemd-analyze security 不可用 (not installed)");
        return;
    }
    let t = staged_units();
    for u in UNITS.iter().filter(|u| u.ends_with(".service")) {
        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--no-pager", u])
            .current_dir(t.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().find(|l| l.contains("Overall exposure level")).unwrap_or_else(|| panic!("{u}: {text}"));
        let score: f64 = line.split(':').nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
        eprintln!("{u}: exposure {score}");
        assert!(score <= 2.0, "{u}: exposure {score} > 2.0\n{text}");
    }
}

#[test]
fn sysusers_and_tmpfiles_make_the_shared_folders() {
    if !have("systemd-sysusers") || !have("systemd-tmpfiles") {
        eprintln!("跳过 (SKIPPED): systemd-sysusers / systemd-tmpfiles 不可用 (not installed)");
        return;
    }
    let uid = Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        eprintln!("跳过 (SKIPPED): systemd-tmpfiles 设置属主需要 root (chown needs root)");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::create_dir_all(r.join("etc")).unwrap();
    std::fs::create_dir_all(r.join("var/lib")).unwrap();
    let run = |tool: &str, args: &[&str]| {
        let out = Command::new(tool).arg(format!("--root={}", r.display())).args(args).output().unwrap();
        assert!(out.status.success(), "{tool}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run("systemd-sysusers", &[dir().join("flumon.sysusers.conf").to_str().unwrap()]);
    run("systemd-tmpfiles", &["--create", dir().join("flumon.tmpfiles.conf").to_str().unwrap()]);

    let passwd = std::fs::read_to_string(r.join("etc/passwd")).unwrap();
    let group = std::fs::read_to_string(r.join("etc/group")).unwrap();
    let id_of = |db: &str, name: &str| -> u32 {
        let l = db.lines().find(|l| l.starts_with(&format!("{name}:"))).unwrap_or_else(|| panic!("{name}"));
        l.split(':').nth(2).unwrap().parse().unwrap()
    };
    let members = |name: &str| -> String {
        group.lines().find(|l| l.starts_with(&format!("{name}:"))).unwrap().rsplit(':').next().unwrap().to_owned()
    };
    for u in ["flumon-dmz", "flumon-send", "flumon-recv", "flumon-intranet", "flumon-agent"] {
        assert!(passwd.contains(&format!("{u}:")) && passwd.contains("/usr/sbin/nologin"), "{u}");
    }
    let mut outbox: Vec<_> = members("flumon-outbox").split(',').map(str::to_owned).collect();
    outbox.sort();
    assert_eq!(outbox, ["flumon-dmz", "flumon-send"]);
    let mut spool: Vec<_> = members("flumon-spool").split(',').map(str::to_owned).collect();
    spool.sort();
    assert_eq!(spool, ["flumon-intranet", "flumon-recv"]);

    let check = |p: &Path, user: &str, grp: &str| {
        let m = std::fs::metadata(p).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o2770, "{}", p.display());
        assert_eq!(m.uid(), id_of(&passwd, user), "{}", p.display());
        assert_eq!(m.gid(), id_of(&group, grp), "{}", p.display());
    };
    check(&r.join("var/lib/flumon/outbox"), "flumon-dmz", "flumon-outbox");
    check(&r.join("var/lib/flumon/spool"), "flumon-recv", "flumon-spool");
}
