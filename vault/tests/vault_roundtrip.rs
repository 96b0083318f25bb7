//! keygen ─▶ fake export (as the DMZ writes it) ─▶ verify / open: shares,
//! passphrases, tampering, journal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::*;
use flumon_shared::crypto::Sm2PublicKey;
use flumon_vault::Error;
use flumon_vault::archive::Archive;
use flumon_vault::keystore::{self, Unlock};
use flumon_vault::open::{self, OpenConfig, Selection};

fn cfg(
    archive: &std::path::Path,
    vault: &std::path::Path,
    keys: Vec<Unlock>,
    sel: Selection,
    out: &std::path::Path,
) -> OpenConfig {
    OpenConfig {
        archive: archive.to_path_buf(),
        vault_dir: vault.to_path_buf(),
        keys,
        select: sel,
        reason: "流感聚集性疫情调查 (test)".into(),
        officer: "张三".into(),
        out: out.to_path_buf(),
        dmz_pub: None,
    }
}

#[test]
fn two_of_three_open_one_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let vault = t.path().join("vault");
    let r = vault_2_of_3(&vault);
    assert_eq!(r.key_files.len(), 3);
    let vpub = Sm2PublicKey::load(&vault.join(keystore::PUBLIC_KEY_FILE)).unwrap();
    let items = sample_items();
    let (arch, dmz) = fake_export(&t.path().join("media"), &vpub, &items);
    // verify with the trusted DMZ key and with the archive's own
    let rep = Archive::open(&t.path().join("media")).unwrap().verify(Some(dmz.public_key())).unwrap();
    assert_eq!(rep.items, 3);
    assert!(!rep.signer_from_archive);

    // one share of three: refused with a clear message, journaled
    let out = t.path().join("out");
    let e =
        open::open(&cfg(&arch, &vault, unlock(&vault, &[2]), Selection::Item(items[0].id.clone()), &out)).unwrap_err();
    assert!(matches!(e, Error::NotEnoughShares { need: 2, of: 3, got: 1 }), "{e}");
    assert!(e.to_string().contains("份额不足"), "{e}");
    assert!(!out.join(format!("{}.csv", items[0].id)).exists());

    // shares 3 and 1: opens, by hospital
    let sel = Selection::Hospital { code: "91110000000000001A".into(), since: None };
    let rep = open::open(&cfg(&arch, &vault, unlock(&vault, &[3, 1]), sel, &out)).unwrap();
    assert_eq!(rep.opened.len(), 2);
    assert_eq!(std::fs::read(out.join(format!("{}.csv", items[0].id))).unwrap(), items[0].bytes);
    assert_eq!(std::fs::read(out.join(format!("{}.pdf", items[1].id))).unwrap(), items[1].bytes);
    // an empty original opens as an empty file
    let rep = open::open(&cfg(&arch, &vault, unlock(&vault, &[1, 2, 3]), Selection::Item(items[2].id.clone()), &out))
        .unwrap();
    assert_eq!(std::fs::read(&rep.opened[0].path).unwrap(), Vec::<u8>::new());

    // the journal: keygen, refusal, two opens, each with who and why; chain and checkpoints verify
    let jr = flumon_shared::journal::verify(&vault.join(open::JOURNAL_FILE), &vpub).unwrap();
    let text = std::fs::read_to_string(vault.join(open::JOURNAL_FILE)).unwrap();
    assert!(text.contains("vault.keygen") && text.contains("vault.unlock.refused") && text.contains("vault.open"));
    assert!(text.contains("张三") && text.contains("流感聚集性疫情调查"));
    assert!(text.contains(&items[0].id));
    assert!(jr.is_intact(), "{jr:?}");
    assert!(jr.checkpoints >= 3, "{jr:?}");
}

#[test]
fn wrong_passphrase_and_wrong_key_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let vault = t.path().join("vault");
    vault_2_of_3(&vault);
    let vpub = Sm2PublicKey::load(&vault.join(keystore::PUBLIC_KEY_FILE)).unwrap();
    let mut keys = unlock(&vault, &[1, 2]);
    keys[1].passphrase = zeroize::Zeroizing::new("not the passphrase".into());
    let e = keystore::unlock(&keys, &vpub).err().unwrap();
    assert!(matches!(e, Error::WrongPassphrase(_)), "{e}");
    assert!(e.to_string().contains("口令错误"));
    // the same share twice is not two shares
    let mut keys = unlock(&vault, &[1]);
    keys.extend(unlock(&vault, &[1]));
    assert!(keystore::unlock(&keys, &vpub).is_err());
    // shares of another vault do not combine with ours
    let other = t.path().join("other");
    vault_2_of_3(&other);
    let mut keys = unlock(&vault, &[1]);
    keys.extend(unlock(&other, &[2]));
    let e = keystore::unlock(&keys, &vpub).err().unwrap();
    assert!(e.to_string().contains("不属于本保管库"), "{e}");
    // a whole key file (single passphrase) round trip
    let whole = t.path().join("whole");
    keystore::keygen(&keystore::KeygenConfig {
        out: whole.clone(),
        shares: None,
        passphrases: vec![pass(9)],
        kdf: LIGHT,
    })
    .unwrap();
    let wpub = Sm2PublicKey::load(&whole.join(keystore::PUBLIC_KEY_FILE)).unwrap();
    let k =
        keystore::unlock(&[Unlock { path: whole.join(keystore::WHOLE_KEY_FILE), passphrase: pass(9) }], &wpub).unwrap();
    assert_eq!(k.public_key(), &wpub);
    let bad = keystore::unlock(&[Unlock { path: whole.join(keystore::WHOLE_KEY_FILE), passphrase: pass(8) }], &wpub);
    assert!(matches!(bad, Err(Error::WrongPassphrase(_))));
    // no key material in the clear on disk
    let text = std::fs::read_to_string(whole.join(keystore::WHOLE_KEY_FILE)).unwrap();
    assert!(!text.contains("PRIVATE KEY"));
}

#[test]
fn tampered_archives_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let vault = t.path().join("vault");
    vault_2_of_3(&vault);
    let vpub = Sm2PublicKey::load(&vault.join(keystore::PUBLIC_KEY_FILE)).unwrap();
    let items = sample_items();
    let id0 = items[0].id.clone();

    let refuse = |name: &str, arch: &std::path::Path, dmz: Option<&Sm2PublicKey>| {
        let out = t.path().join(format!("out-{name}"));
        let mut c = cfg(arch, &vault, unlock(&vault, &[1, 2]), Selection::Item(id0.clone()), &out);
        c.dmz_pub = dmz.cloned();
        let e = open::open(&c).err().unwrap_or_else(|| panic!("{name}: opened"));
        assert!(matches!(e, Error::Tampered(_)), "{name}: {e}");
        let left: Vec<_> = std::fs::read_dir(&out).map(|d| d.collect()).unwrap_or_default();
        assert!(left.is_empty(), "{name}: plaintext left behind");
    };

    // one flipped ciphertext byte
    let (a, _) = fake_export(&t.path().join("m1"), &vpub, &items);
    let f = a.join(format!("items/{id0}.sm4"));
    let mut b = std::fs::read(&f).unwrap();
    b[50] ^= 1;
    std::fs::write(&f, b).unwrap();
    refuse("ciphertext", &a, None);

    // manifest edited (hospital code changed)
    let (a, _) = fake_export(&t.path().join("m2"), &vpub, &items);
    let m =
        std::fs::read_to_string(a.join("manifest.json")).unwrap().replace("91110000000000002B", "91110000000000003C");
    std::fs::write(a.join("manifest.json"), m).unwrap();
    refuse("manifest", &a, None);

    // re-signed by someone else: passes with the archive's key, refused with the DMZ's
    let (a, real) = fake_export(&t.path().join("m3"), &vpub, &items);
    let (b, _) = fake_export(&t.path().join("m4"), &vpub, &items);
    refuse("forged signer", &b, Some(real.public_key()));
    assert!(Archive::open(&a).unwrap().verify(Some(real.public_key())).is_ok());

    // ciphertext and manifest digests consistent, but the item moved to another hospital:
    // the AAD (item id ‖ hospital) refuses it after the signature check
    let mut moved = sample_items();
    let (a, _) = fake_export(&t.path().join("m5"), &vpub, &moved);
    moved[0].hospital = "91110000000000009Z".into();
    let (b, _) = fake_export(&t.path().join("m6"), &vpub, &moved);
    std::fs::copy(a.join(format!("items/{id0}.sm4")), b.join(format!("items/{id0}.sm4"))).unwrap();
    std::fs::copy(a.join(format!("items/{id0}.key")), b.join(format!("items/{id0}.key"))).unwrap();
    let m = std::fs::read_to_string(b.join("manifest.json")).unwrap();
    // fix the digest lines so only the AAD can catch the move, and re-sign with b's own key
    let ct = std::fs::read(b.join(format!("items/{id0}.sm4"))).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&m).unwrap();
    v["items"][0]["cipher_sm3"] = hex::encode(flumon_shared::crypto::sm3(&ct)).into();
    v["items"][0]["cipher_size"] = ct.len().into();
    let bytes = serde_json::to_vec_pretty(&v).unwrap();
    std::fs::write(b.join("manifest.json"), &bytes).unwrap();
    let signer = flumon_shared::crypto::Sm2PrivateKey::generate().unwrap();
    std::fs::write(b.join("manifest.sig"), hex::encode(signer.sign(&bytes).unwrap().to_bytes())).unwrap();
    std::fs::write(b.join("dmz-sign.pub.pem"), signer.public_key().to_spki_pem().unwrap()).unwrap();
    refuse("moved item", &b, None);

    // a file that is not in the manifest
    let (a, _) = fake_export(&t.path().join("m7"), &vpub, &items);
    std::fs::write(a.join("items/extra.sm4"), b"x").unwrap();
    refuse("extra file", &a, None);
}

#[test]
fn cli_keygen_verify_open() {
    let t = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_flumon-vault");
    let vault = t.path().join("vault");
    let pf: Vec<String> = (1..=3)
        .map(|i| {
            let p = t.path().join(format!("p{i}"));
            std::fs::write(&p, format!("{}\n", pass(i).as_str())).unwrap();
            p.display().to_string()
        })
        .collect();
    let out = std::process::Command::new(exe)
        .args([
            "keygen",
            "--out",
            vault.to_str().unwrap(),
            "--shares",
            "3",
            "--threshold",
            "2",
            "--kdf-mib",
            "8",
            "--kdf-passes",
            "1",
        ])
        .args(pf.iter().flat_map(|p| ["--passphrase-file", p.as_str()]))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let vpub = Sm2PublicKey::load(&vault.join("vault.pub.pem")).unwrap();
    let items = sample_items();
    let (arch, _) = fake_export(&t.path().join("media"), &vpub, &items);
    let out = std::process::Command::new(exe).args(["verify", arch.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out =
        std::process::Command::new(exe).args(["list", t.path().join("media").to_str().unwrap()]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
    let open = |shares: &[usize]| {
        let mut c = std::process::Command::new(exe);
        c.args(["open", arch.to_str().unwrap(), "--vault-dir", vault.to_str().unwrap(), "--item", &items[0].id]);
        c.args(["--reason", "复核上报数据", "--officer", "李四", "--out", t.path().join("out").to_str().unwrap()]);
        for &s in shares {
            c.args(["--share", vault.join(keystore::share_file_name(s as u8, 3)).to_str().unwrap()]);
            c.args(["--passphrase-file", &pf[s - 1]]);
        }
        c.output().unwrap()
    };
    let one = open(&[1]);
    assert!(!one.status.success());
    assert!(String::from_utf8_lossy(&one.stderr).contains("份额不足"), "{}", String::from_utf8_lossy(&one.stderr));
    let two = open(&[1, 3]);
    assert!(two.status.success(), "{}", String::from_utf8_lossy(&two.stderr));
    assert_eq!(std::fs::read(t.path().join("out").join(format!("{}.csv", items[0].id))).unwrap(), items[0].bytes);
    let j = std::process::Command::new(exe)
        .args(["verify-journal", "--vault-dir", vault.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(j.status.success(), "{}", String::from_utf8_lossy(&j.stderr));
}
