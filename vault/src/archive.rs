//! An exported raw archive (`flumon-dmz export-raw --to DIR`), read and
//! checked before anything is decrypted.
//!
//! ```text
//!  ARCHIVE/flumon-raw-<node>-<time>/          (or ARCHIVE itself is that folder)
//!    manifest.json ── SM2 signature manifest.sig (r‖s hex) ── DMZ key (--dmz-pubkey, else dmz-sign.pub.pem)
//!    items/<id>.sm4 ── SM3 + size = manifest cipher_sm3 / cipher_size
//!    items/<id>.key ── wrapped SM4 key (C1C3C2 hex)
//!  verify: signature, format, every item file present and matching, no file outside the manifest
//! ```
//! The export folder carries its own copy of the DMZ's public key; that copy
//! proves nothing against a forger, so `verify` trusts it only when no key is
//! given and says so with the key's fingerprint, for the officer to compare.

use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use flumon_shared::crypto::{Sm2PublicKey, Sm2Signature, Sm3Hasher};

use crate::Error;

/// The manifest format the vault reads.
pub const MANIFEST_FORMAT: &str = "flumon-raw-export/1";
/// Largest manifest read.
const MAX_MANIFEST: u64 = 256 << 20;

/// One item of the manifest.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub item_id: String,
    pub hospital: String,
    pub kind: String,
    #[serde(rename = "type")]
    pub ty: Option<String>,
    pub receipt_id: Option<String>,
    pub time: NaiveDateTime,
    pub file: String,
    pub key_file: String,
    pub cipher_sm3: String,
    pub cipher_size: u64,
    pub plain_sm3: String,
    pub plain_size: u64,
}

/// The manifest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub node: String,
    pub created: NaiveDateTime,
    #[serde(default)]
    pub encryption: String,
    pub items: Vec<Item>,
}

/// An archive folder with its manifest read (not yet verified).
#[derive(Debug)]
pub struct Archive {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub manifest_bytes: Vec<u8>,
}

/// The outcome of `verify`.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub folder: String,
    pub items: usize,
    pub bytes: u64,
    /// Hex SM3 fingerprint of the key the manifest verified with.
    pub signer: String,
    /// True when the key came from the archive itself (no --dmz-pubkey).
    pub signer_from_archive: bool,
    /// Hex SM3 of manifest.json (what the journal records).
    pub manifest_sm3: String,
}

fn safe_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !id.starts_with('.')
}

impl Archive {
    /// Opens `dir`: the export folder itself, or a folder holding exactly one export.
    pub fn open(dir: &Path) -> Result<Archive, Error> {
        let dir = if dir.join("manifest.json").is_file() {
            dir.to_path_buf()
        } else {
            let mut found = Vec::new();
            for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
                let p = e.map_err(|e| Error::io(dir, e))?.path();
                if p.join("manifest.json").is_file() {
                    found.push(p);
                }
            }
            match found.len() {
                1 => found.remove(0),
                0 => {
                    return Err(Error::Archive(format!(
                        "{}: 没有 manifest.json, 不是导出目录 (not an export folder)",
                        dir.display()
                    )));
                }
                n => {
                    return Err(Error::Archive(format!(
                        "{}: 含 {n} 个导出目录, 请指定其中一个 (several exports; name one)",
                        dir.display()
                    )));
                }
            }
        };
        let path = dir.join("manifest.json");
        let len = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?.len();
        if len > MAX_MANIFEST {
            return Err(Error::Archive("manifest.json 过大 (too large)".into()));
        }
        let manifest_bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
            .map_err(|e| Error::Archive(format!("manifest.json 无法解析 (unreadable): {e}")))?;
        Ok(Archive { dir, manifest, manifest_bytes })
    }

    /// The folder's name.
    pub fn folder(&self) -> String {
        self.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }

    /// Checks the manifest signature (with `dmz_pub`, else the archive's own key) and every item file.
    pub fn verify(&self, dmz_pub: Option<&Sm2PublicKey>) -> Result<VerifyReport, Error> {
        let (key, from_archive) = match dmz_pub {
            Some(k) => (k.clone(), false),
            None => (Sm2PublicKey::load(&self.dir.join("dmz-sign.pub.pem"))?, true),
        };
        let sig_path = self.dir.join("manifest.sig");
        let sig_text = std::fs::read_to_string(&sig_path).map_err(|e| Error::io(&sig_path, e))?;
        let sig = hex::decode(sig_text.trim())
            .ok()
            .and_then(|b| Sm2Signature::from_bytes(&b).ok())
            .ok_or_else(|| Error::Tampered("manifest.sig 格式错误 (malformed signature)".into()))?;
        key.verify(&self.manifest_bytes, &sig).map_err(|_| {
            Error::Tampered("清单签名验证失败: 清单被改动或不是该 DMZ 签发 (manifest signature does not verify)".into())
        })?;
        if self.manifest.format != MANIFEST_FORMAT {
            return Err(Error::Archive(format!(
                "不支持的导出格式 {} (unsupported export format)",
                self.manifest.format
            )));
        }
        let mut listed = std::collections::BTreeSet::new();
        let mut bytes = 0u64;
        for it in &self.manifest.items {
            self.check_item(it)?;
            listed.insert(format!("{}.sm4", it.item_id));
            listed.insert(format!("{}.key", it.item_id));
            bytes = bytes.saturating_add(it.cipher_size);
        }
        let items_dir = self.dir.join("items");
        if items_dir.is_dir() {
            for e in std::fs::read_dir(&items_dir).map_err(|e| Error::io(&items_dir, e))? {
                let name = e.map_err(|e| Error::io(&items_dir, e))?.file_name().to_string_lossy().into_owned();
                if !listed.contains(&name) {
                    return Err(Error::Tampered(format!("items/{name} 不在清单中 (file not in the manifest)")));
                }
            }
        }
        Ok(VerifyReport {
            folder: self.folder(),
            items: self.manifest.items.len(),
            bytes,
            signer: hex::encode(key.fingerprint()),
            signer_from_archive: from_archive,
            manifest_sm3: hex::encode(flumon_shared::crypto::sm3(&self.manifest_bytes)),
        })
    }

    /// The paths of an item's ciphertext and wrapped key, after checking the names.
    pub fn item_paths(&self, it: &Item) -> Result<(PathBuf, PathBuf), Error> {
        if !safe_id(&it.item_id)
            || it.file != format!("items/{}.sm4", it.item_id)
            || it.key_file != format!("items/{}.key", it.item_id)
        {
            return Err(Error::Tampered(format!("条目 {:?} 的文件名不合规 (bad item file names)", it.item_id)));
        }
        Ok((self.dir.join(&it.file), self.dir.join(&it.key_file)))
    }

    fn check_item(&self, it: &Item) -> Result<(), Error> {
        let (file, key) = self.item_paths(it)?;
        let mut f = std::fs::File::open(&file).map_err(|e| Error::io(&file, e))?;
        let mut h = Sm3Hasher::new();
        let n = std::io::copy(&mut f, &mut h).map_err(|e| Error::io(&file, e))?;
        if n != it.cipher_size || hex::encode(h.finalize()) != it.cipher_sm3 {
            return Err(Error::Tampered(format!(
                "条目 {} 的密文与清单的 SM3 不符 (ciphertext digest mismatch)",
                it.item_id
            )));
        }
        if !key.is_file() {
            return Err(Error::Tampered(format!("条目 {} 缺少密钥文件 (wrapped key missing)", it.item_id)));
        }
        Ok(())
    }

    /// An item's wrapped key (C1C3C2 bytes).
    pub fn wrapped_key(&self, it: &Item) -> Result<Vec<u8>, Error> {
        let (_, key) = self.item_paths(it)?;
        let text = std::fs::read_to_string(&key).map_err(|e| Error::io(&key, e))?;
        if text.len() > 4096 {
            return Err(Error::Tampered(format!("条目 {} 的密钥文件过大 (wrapped key too large)", it.item_id)));
        }
        hex::decode(text.trim())
            .map_err(|_| Error::Tampered(format!("条目 {} 的密钥文件格式错误 (bad wrapped key)", it.item_id)))
    }
}
