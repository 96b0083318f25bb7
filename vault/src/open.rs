//! `open`: decrypt raw originals from a verified archive and write them as
//! they were uploaded, with every open journaled before any plaintext exists.
//!
//! ```text
//!  archive.verify ─▶ select items (--item | --hospital [--since]) ─▶ unlock key (M of N)
//!  ─▶ journal "vault.open" {officer, os_user, reason, archive, manifest_sm3, items, …}   (fsynced)
//!  ─▶ per item: wrapped key ─SM2 decrypt (C1C3C2)─▶ SM4 key ─▶ DecryptReader(aad = id ‖ hospital)
//!        ─▶ OUT/<id>.part ─▶ SM3 + size = manifest plain_sm3 / plain_size ─▶ rename OUT/<id>.<ext>
//!  ─▶ journal "vault.opened" {opened, failed, …} ─▶ checkpoint signed with the vault key
//! ```
//! A failure removes the partial file of that item and is journaled. Data
//! keys and the private key are zeroized on drop.
//!
//! **Id lists in parts.** A journal line may not exceed
//! [`MAX_LINE`](flumon_shared::journal::MAX_LINE) (64 KiB), so the id list of
//! `vault.open`, `vault.opened` and `vault.unlock.refused` is written in one
//! or more consecutive entries of the same kind, each with at most
//! [`IDS_PER_ENTRY`] ids and always under the line limit. Every part repeats
//! the whole detail (who, when, why, archive, …) and adds `part` (1-based),
//! `parts`, `<list>_total` (ids in the whole list) and `<list>_sm3`: the SM3,
//! in hex, of every id of the whole list in order, each followed by `\n`
//! ([`ids_sm3`]). An auditor lists every id by concatenating `part` 1 ..=
//! `parts` and checks the count and the SM3. All `vault.open` parts are on
//! disk before the first plaintext byte is written.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;
use serde::Serialize;

use flumon_shared::crypto::{DecryptReader, Sm2PrivateKey, Sm2PublicKey, Sm3Hasher, SymKey};
use flumon_shared::journal::{Journal, JournalEntry, MAX_LINE};

use crate::Error;
use crate::archive::{Archive, Item};
use crate::keystore::{self, Unlock};

/// The vault's journal file name (in the vault folder).
pub const JOURNAL_FILE: &str = "vault-journal.log";

/// At most this many item ids in one journal entry (entries are also cut
/// to stay under the journal's line limit).
pub const IDS_PER_ENTRY: usize = 500;

/// Which items to open.
#[derive(Clone, Debug)]
pub enum Selection {
    Item(String),
    Hospital { code: String, since: Option<NaiveDateTime> },
}

/// What `open` needs.
pub struct OpenConfig {
    pub archive: PathBuf,
    /// The vault folder: vault.pub.pem and the journal.
    pub vault_dir: PathBuf,
    pub keys: Vec<Unlock>,
    pub select: Selection,
    pub reason: String,
    pub officer: String,
    pub out: PathBuf,
    /// The DMZ's signing public key; `None` trusts the archive's copy (with a warning).
    pub dmz_pub: Option<Sm2PublicKey>,
}

/// One opened item.
#[derive(Debug, Serialize)]
pub struct Opened {
    pub item_id: String,
    pub hospital: String,
    pub kind: String,
    #[serde(rename = "type")]
    pub ty: Option<String>,
    pub path: PathBuf,
    pub bytes: u64,
}

/// What `open` did.
#[derive(Debug, Serialize)]
pub struct OpenReport {
    pub opened: Vec<Opened>,
    pub signer: String,
    pub signer_from_archive: bool,
}

/// Picks the items of `sel`.
pub fn select<'a>(archive: &'a Archive, sel: &Selection) -> Vec<&'a Item> {
    archive
        .manifest
        .items
        .iter()
        .filter(|it| match sel {
            Selection::Item(id) => &it.item_id == id,
            Selection::Hospital { code, since } => &it.hospital == code && since.is_none_or(|s| it.time >= s),
        })
        .collect()
}

/// Opens the selected items.
pub fn open(cfg: &OpenConfig) -> Result<OpenReport, Error> {
    if cfg.reason.trim().chars().count() < 4 {
        return Err(Error::Usage("必须用 --reason 写明开启原因 (at least 4 characters) (a reason is required)".into()));
    }
    let archive = Archive::open(&cfg.archive)?;
    let verified = archive.verify(cfg.dmz_pub.as_ref())?;
    let items = select(&archive, &cfg.select);
    if items.is_empty() {
        return Err(Error::Usage("没有符合条件的条目 (no item matches)".into()));
    }
    let vault_pub = Sm2PublicKey::load(&cfg.vault_dir.join(keystore::PUBLIC_KEY_FILE))?;
    let mut journal = Journal::open_or_create(&cfg.vault_dir.join(JOURNAL_FILE), &vault_pub)?;
    let ids: Vec<&str> = items.iter().map(|i| i.item_id.as_str()).collect();
    let mut base = serde_json::Map::new();
    base.insert("officer".into(), cfg.officer.clone().into());
    base.insert("os_user".into(), crate::os_user().into());
    base.insert("reason".into(), cfg.reason.clone().into());
    base.insert("archive".into(), verified.folder.clone().into());
    let key = match keystore::unlock(&cfg.keys, &vault_pub) {
        Ok(k) => k,
        Err(e) => {
            let mut detail = base;
            detail.insert("error".into(), e.to_string().into());
            append_parts(&mut journal, "vault.unlock.refused", detail, "items", &ids)?;
            return Err(e);
        }
    };
    let mut detail = base.clone();
    detail.insert("manifest_sm3".into(), verified.manifest_sm3.clone().into());
    detail.insert("signer".into(), verified.signer.clone().into());
    detail.insert("out".into(), cfg.out.display().to_string().into());
    append_parts(&mut journal, "vault.open", detail, "items", &ids)?;
    std::fs::create_dir_all(&cfg.out).map_err(|e| Error::io(&cfg.out, e))?;
    let mut opened = Vec::new();
    let mut failure = None;
    for it in &items {
        match open_item(&archive, it, &key, &cfg.out) {
            Ok(o) => opened.push(o),
            Err(e) => {
                failure = Some((it.item_id.clone(), e));
                break;
            }
        }
    }
    let done: Vec<&str> = opened.iter().map(|o| o.item_id.as_str()).collect();
    let mut detail = serde_json::Map::new();
    detail.insert("officer".into(), cfg.officer.clone().into());
    detail.insert("os_user".into(), crate::os_user().into());
    detail.insert("reason".into(), cfg.reason.clone().into());
    detail.insert(
        "failed".into(),
        failure.as_ref().map(|(id, e)| serde_json::json!({"item": id, "error": e.to_string()})).into(),
    );
    append_parts(&mut journal, "vault.opened", detail, "opened", &done)?;
    journal.checkpoint(&key)?;
    if let Some((_, e)) = failure {
        return Err(e);
    }
    Ok(OpenReport { opened, signer: verified.signer, signer_from_archive: verified.signer_from_archive })
}

/// The SM3 (hex) of an id list as journaled: every id followed by `\n`.
pub fn ids_sm3(ids: &[&str]) -> String {
    let mut h = Sm3Hasher::new();
    for id in ids {
        h.update(id.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// Appends `detail` once per part of `ids` (see the module doc): the ids of a
/// part under `list`, plus `part`, `parts`, `<list>_total` and `<list>_sm3`.
/// The parts are cut before anything is written, so a detail too large for
/// the journal is refused whole.
fn append_parts(
    journal: &mut Journal,
    kind: &str,
    mut detail: serde_json::Map<String, serde_json::Value>,
    list: &str,
    ids: &[&str],
) -> Result<(), Error> {
    detail.insert(format!("{list}_total"), ids.len().into());
    detail.insert(format!("{list}_sm3"), ids_sm3(ids).into());
    // The longest the line can be with an empty list: widest seq, time, part, parts.
    detail.insert("part".into(), u64::MAX.into());
    detail.insert("parts".into(), u64::MAX.into());
    detail.insert(list.into(), serde_json::Value::Array(Vec::new()));
    let widest = JournalEntry {
        seq: u64::MAX,
        time: u64::MAX,
        kind: kind.into(),
        detail: serde_json::Value::Object(detail.clone()),
        prev: "0".repeat(64),
    };
    let fixed = serde_json::to_vec(&widest).map_err(|e| Error::Internal(format!("journal detail: {e}")))?.len();
    let budget = MAX_LINE.saturating_sub(fixed);
    let parts = split_ids(ids, budget, IDS_PER_ENTRY).ok_or_else(|| {
        Error::Usage(format!(
            "日志条目过长: 开启人/原因/条目编号太长 (journal entry would exceed {MAX_LINE} bytes: officer, reason or an item id too long)"
        ))
    })?;
    let total = parts.len();
    for (n, part) in parts.into_iter().enumerate() {
        detail.insert("part".into(), (n + 1).into());
        detail.insert("parts".into(), total.into());
        detail.insert(list.into(), part.into());
        journal.append(kind, &serde_json::Value::Object(detail.clone()))?;
    }
    Ok(())
}

/// Cuts `ids` into consecutive parts of at most `max` ids whose JSON array
/// (`["a","b"]`, brackets not counted) is at most `budget` bytes; at least one
/// part (empty for an empty list). `None` if one id alone does not fit.
fn split_ids<'a>(ids: &[&'a str], budget: usize, max: usize) -> Option<Vec<Vec<&'a str>>> {
    let mut parts: Vec<Vec<&'a str>> = Vec::new();
    let mut cur: Vec<&'a str> = Vec::new();
    let mut bytes = 0usize;
    for &id in ids {
        // the quoted, escaped id plus its comma
        let cost = serde_json::to_string(id).ok()?.len() + 1;
        if cost > budget || max == 0 {
            return None;
        }
        if cur.len() == max || bytes + cost > budget {
            parts.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        cur.push(id);
        bytes += cost;
    }
    if !cur.is_empty() || parts.is_empty() {
        parts.push(cur);
    }
    Some(parts)
}

/// The file extension of plaintext by its first bytes.
fn extension(head: &[u8], kind: &str) -> &'static str {
    if head.starts_with(b"%PDF-") {
        "pdf"
    } else if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
        "tiff"
    } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        "jpg"
    } else if head.starts_with(b"\x89PNG") {
        "png"
    } else if head.starts_with(b"PK\x03\x04") {
        "xlsx"
    } else if head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        "json"
    } else if kind == "upload" {
        "csv"
    } else {
        "bin"
    }
}

fn open_item(archive: &Archive, it: &Item, key: &Sm2PrivateKey, out: &Path) -> Result<Opened, Error> {
    let (file, _) = archive.item_paths(it)?;
    let wrapped = archive.wrapped_key(it)?;
    let raw = key.decrypt(&wrapped).map_err(|_| {
        Error::Tampered(format!(
            "条目 {} 的数据密钥无法解开: 不是本保管库的密钥或已被改动 (cannot unwrap data key)",
            it.item_id
        ))
    })?;
    let dk = SymKey::from_slice(&raw)?;
    drop(raw);
    let aad = [it.item_id.as_bytes(), it.hospital.as_bytes()].concat();
    let f = std::fs::File::open(&file).map_err(|e| Error::io(&file, e))?;
    let mut reader = DecryptReader::new(&dk, &aad, std::io::BufReader::new(f))
        .map_err(|e| Error::Tampered(format!("条目 {}: {e}", it.item_id)))?;
    let part = out.join(format!("{}.part", it.item_id));
    let result = (|| -> Result<(u64, [u8; 32], Vec<u8>), Error> {
        let mut w = std::fs::OpenOptions::new();
        w.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut w, 0o600);
        let mut w = w.open(&part).map_err(|e| Error::io(&part, e))?;
        let mut h = Sm3Hasher::new();
        let mut head = Vec::new();
        let mut buf = zeroize::Zeroizing::new(vec![0u8; 64 * 1024]);
        let mut n = 0u64;
        loop {
            let k = reader.read(&mut buf).map_err(|e| {
                Error::Tampered(format!("条目 {} 解密失败: 密文被改动 (authentication failed): {e}", it.item_id))
            })?;
            if k == 0 {
                break;
            }
            let chunk = buf.get(..k).unwrap_or_default();
            if head.len() < 16 {
                head.extend(chunk.iter().take(16 - head.len()));
            }
            h.update(chunk);
            w.write_all(chunk).map_err(|e| Error::io(&part, e))?;
            n += k as u64;
        }
        w.sync_all().map_err(|e| Error::io(&part, e))?;
        Ok((n, h.finalize(), head))
    })();
    let (n, digest, head) = match result {
        Ok(x) => x,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
    };
    if n != it.plain_size || hex::encode(digest) != it.plain_sm3 {
        let _ = std::fs::remove_file(&part);
        return Err(Error::Tampered(format!(
            "条目 {} 的明文与清单的 SM3 不符 (plaintext digest mismatch)",
            it.item_id
        )));
    }
    let path = out.join(format!("{}.{}", it.item_id, extension(&head, &it.kind)));
    if path.exists() {
        let _ = std::fs::remove_file(&part);
        return Err(Error::Usage(format!("{} 已存在, 不会覆盖 (exists; not overwritten)", path.display())));
    }
    std::fs::rename(&part, &path).map_err(|e| Error::io(&path, e))?;
    Ok(Opened {
        item_id: it.item_id.clone(),
        hospital: it.hospital.clone(),
        kind: it.kind.clone(),
        ty: it.ty.clone(),
        path,
        bytes: n,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn split_ids_bounds_count_and_bytes() {
        let ids: Vec<String> = (0..23).map(|i| format!("id-{i:02}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        // each id costs 8 bytes ("id-00" quoted + comma)
        let parts = split_ids(&refs, 30, 10).unwrap();
        assert!(parts.iter().all(|p| p.len() <= 3 && !p.is_empty()));
        assert_eq!(parts.concat(), refs);
        let parts = split_ids(&refs, 1000, 10).unwrap();
        assert_eq!(parts.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 3]);
        assert_eq!(split_ids(&[], 10, 10).unwrap(), vec![Vec::<&str>::new()]);
        assert!(split_ids(&refs, 7, 10).is_none());
        assert_ne!(ids_sm3(&refs), ids_sm3(&refs[1..]));
    }
}
