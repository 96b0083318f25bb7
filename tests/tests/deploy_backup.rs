//! deploy/backup.sh and deploy/restore.sh on a real DMZ and a real intranet,
//! through deploy/backup-check.sh; then the original and the restored sled
//! stores are compared tree by tree, key by key.
//!
//! ```text
//!  cargo build (debug bins) ─▶ backup-check.sh W ─▶ W/original-data, W/restored-data
//!  sled data_dir/sled (original) ═ every tree, every (key, value) ═ sled (restored)   receipts > 0
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::path::Path;
use std::process::Command;

use flumon_tests::harness::{binaries, workspace};

type Trees = Vec<(Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>)>;

fn trees(data_dir: &Path) -> Trees {
    // the DMZ's store is data_dir/sled (flumon_dmz::store); read it with sled itself
    let db = sled::Config::new().path(data_dir.join("sled")).open().unwrap();
    let mut names = db.tree_names();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let t = db.open_tree(&n).unwrap();
            let kv = t.iter().map(|r| r.unwrap()).map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
            (n.to_vec(), kv)
        })
        .collect()
}

#[test]
fn backup_destroy_restore_gives_the_same_stores() {
    let bin = binaries().unwrap();
    let w = tempfile::tempdir().unwrap();
    let work = w.path().join("w");
    let out = Command::new("bash")
        .arg(workspace().join("deploy/backup-check.sh"))
        .arg(&work)
        .env("FLUMON_BIN", &bin)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(out.status.success(), "backup-check.sh failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("备份与恢复检查通过"));

    let original = trees(&work.join("original-data"));
    let restored = trees(&work.join("restored-data"));
    let count = |t: &Trees, name: &str| t.iter().find(|(n, _)| n == name.as_bytes()).map_or(0, |(_, kv)| kv.len());
    for name in ["hospitals", "receipts", "batches", "raw_meta"] {
        assert!(count(&original, name) > 0, "tree {name} is empty in the original store");
    }
    assert_eq!(original.len(), restored.len(), "number of trees");
    for ((n1, kv1), (n2, kv2)) in original.iter().zip(&restored) {
        assert_eq!(n1, n2);
        assert_eq!(kv1.len(), kv2.len(), "tree {}", String::from_utf8_lossy(n1));
        assert!(kv1 == kv2, "tree {} differs after restore", String::from_utf8_lossy(n1));
    }
    eprintln!(
        "restored {} trees, {} receipts, {} entries in all",
        restored.len(),
        count(&restored, "receipts"),
        restored.iter().map(|(_, kv)| kv.len()).sum::<usize>()
    );
}
