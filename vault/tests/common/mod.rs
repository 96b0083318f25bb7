//! Test helpers: a vault made with light KDF settings, and an export folder
//! written exactly as `flumon-dmz export-raw` writes one (dmz/src/export.rs),
//! without a DMZ.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::path::{Path, PathBuf};

use flumon_shared::crypto::{Sm2PrivateKey, Sm2PublicKey, SymKey, seal_with_segment_size, sm3};
use flumon_vault::keystore::{self, KdfParams, KeygenConfig, Unlock};
use zeroize::Zeroizing;

pub const LIGHT: KdfParams = KdfParams { m_kib: 8 * 1024, t: 1, p: 1 };

pub fn pass(i: usize) -> Zeroizing<String> {
    Zeroizing::new(format!("officer-{i}-passphrase"))
}

/// A vault in `dir` split 3 ways, 2 needed.
pub fn vault_2_of_3(dir: &Path) -> keystore::KeygenReport {
    keystore::keygen(&KeygenConfig {
        out: dir.to_path_buf(),
        shares: Some((3, 2)),
        passphrases: (1..=3).map(pass).collect(),
        kdf: LIGHT,
    })
    .unwrap()
}

pub fn unlock(dir: &Path, which: &[u8]) -> Vec<Unlock> {
    which
        .iter()
        .map(|&x| Unlock { path: dir.join(keystore::share_file_name(x, 3)), passphrase: pass(usize::from(x)) })
        .collect()
}

pub struct Plain {
    pub id: String,
    pub hospital: String,
    pub kind: &'static str,
    pub bytes: Vec<u8>,
}

/// Writes an export folder under `to` as the DMZ would; returns (folder, DMZ signing key).
pub fn fake_export(to: &Path, vault_pub: &Sm2PublicKey, items: &[Plain]) -> (PathBuf, Sm2PrivateKey) {
    let dmz = Sm2PrivateKey::generate().unwrap();
    let dir = to.join("flumon-raw-dmz-1-20250101T000000000");
    std::fs::create_dir_all(dir.join("items")).unwrap();
    let mut list = Vec::new();
    for p in items {
        let key = SymKey::generate().unwrap();
        let aad = [p.id.as_bytes(), p.hospital.as_bytes()].concat();
        let ct = seal_with_segment_size(&key, &aad, 64, &p.bytes).unwrap();
        std::fs::write(dir.join(format!("items/{}.sm4", p.id)), &ct).unwrap();
        let wrapped = vault_pub.encrypt(key.as_bytes()).unwrap();
        std::fs::write(dir.join(format!("items/{}.key", p.id)), format!("{}\n", hex::encode(wrapped))).unwrap();
        list.push(serde_json::json!({
            "item_id": p.id, "hospital": p.hospital, "kind": p.kind, "type": if p.kind == "upload" { Some("outpatient") } else { None },
            "receipt_id": null, "time": "2025-01-01T02:00:00",
            "file": format!("items/{}.sm4", p.id), "key_file": format!("items/{}.key", p.id),
            "cipher_sm3": hex::encode(sm3(&ct)), "cipher_size": ct.len(),
            "plain_sm3": hex::encode(sm3(&p.bytes)), "plain_size": p.bytes.len(),
        }));
    }
    let manifest = serde_json::to_vec_pretty(&serde_json::json!({
        "format": "flumon-raw-export/1", "node": "dmz-1", "created": "2025-01-01T03:00:00",
        "encryption": "segmented SM4-GCM", "items": list,
    }))
    .unwrap();
    std::fs::write(dir.join("manifest.json"), &manifest).unwrap();
    std::fs::write(dir.join("manifest.sig"), format!("{}\n", hex::encode(dmz.sign(&manifest).unwrap().to_bytes())))
        .unwrap();
    std::fs::write(dir.join("dmz-sign.pub.pem"), dmz.public_key().to_spki_pem().unwrap()).unwrap();
    (dir, dmz)
}

pub fn sample_items() -> Vec<Plain> {
    let csv = "ZZJGDM,JLID\n12345678901234567X,病例一\n".repeat(20).into_bytes();
    vec![
        Plain {
            id: "dmz-1-r0000000000000001".into(),
            hospital: "91110000000000001A".into(),
            kind: "upload",
            bytes: csv,
        },
        Plain {
            id: "dmz-1-r0000000000000002".into(),
            hospital: "91110000000000001A".into(),
            kind: "scan",
            bytes: b"%PDF-1.4 scan".to_vec(),
        },
        Plain {
            id: "dmz-1-r0000000000000003".into(),
            hospital: "91110000000000002B".into(),
            kind: "upload",
            bytes: Vec::new(),
        },
    ]
}
