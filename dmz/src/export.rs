//! Operator work on the raw archive: `export-raw` copies still-encrypted
//! items, their wrapped keys and a signed manifest to a folder (removable
//! media for the offline vault) and marks them exported; `purge-raw`
//! deletes exported items older than N days. Nothing unexported is ever
//! deleted.
//!
//! ```text
//!  raw_meta (not exported, time ≥ since) ─▶ TO/flumon-raw-<node>-<time>/
//!      items/<item>.sm4   ciphertext (segmented SM4-GCM, aad = item id ‖ hospital)
//!      items/<item>.key   data key wrapped to the vault (SM2 C1C3C2, hex)
//!      manifest.json      items: id, hospital, kind, type, receipt, time, SM3 + size of ciphertext
//!      manifest.sig       SM2 signature (r‖s hex) by the DMZ key over manifest.json
//!      dmz-sign.pub.pem   the key to check it with
//!  every file fsynced ─▶ items marked exported_at ─▶ durable ─▶ audit raw.exported
//!  purge: exported_at < now − N days ─▶ delete chunks + meta ─▶ durable ─▶ audit raw.purged
//! ```

use std::io::Write;
use std::path::Path;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use crate::archive::{self, RawMeta};
use crate::error::{Error, Result, codec};
use crate::hospitals::now_cst;
use crate::state::AppState;
use crate::store::trees;

/// What an export did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExportReport {
    /// The folder written (inside the target).
    pub folder: String,
    pub items: usize,
    pub bytes: u64,
}

/// What a purge did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PurgeReport {
    pub items: usize,
    pub bytes: u64,
}

#[derive(Serialize)]
struct ManifestItem<'a> {
    item_id: &'a str,
    hospital: &'a str,
    kind: &'a str,
    #[serde(rename = "type")]
    ty: Option<&'a str>,
    receipt_id: Option<&'a str>,
    time: NaiveDateTime,
    file: String,
    key_file: String,
    cipher_sm3: &'a str,
    cipher_size: u64,
    plain_sm3: &'a str,
    plain_size: u64,
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// Exports every unexported item received at or after `since` into a new folder under `to` (blocking).
pub fn export_raw(state: &AppState, to: &Path, since: Option<NaiveDateTime>) -> Result<ExportReport> {
    let store = &state.store;
    let mut items: Vec<RawMeta> = archive::all_meta(store)?
        .into_iter()
        .filter(|m| m.complete && m.exported_at.is_none() && since.is_none_or(|s| m.time >= s))
        .collect();
    items.sort_by(|a, b| a.item_id.cmp(&b.item_id));
    let now = now_cst();
    let folder = format!("flumon-raw-{}-{}", state.config.node_id, now.format("%Y%m%dT%H%M%S%3f"));
    let dir = to.join(&folder);
    let items_dir = dir.join("items");
    std::fs::create_dir_all(&items_dir)?;
    let mut manifest_items = Vec::with_capacity(items.len());
    let mut total = 0u64;
    for m in &items {
        let file = format!("items/{}.sm4", m.item_id);
        let key_file = format!("items/{}.key", m.item_id);
        let path = dir.join(&file);
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&path)?;
        let mut hasher = flumon_shared::crypto::Sm3Hasher::new();
        let n = archive::read_cipher(store, &m.item_id, Tee { a: &mut f, b: &mut hasher })?;
        f.sync_all()?;
        if n != m.cipher_size || hex::encode(hasher.finalize()) != m.cipher_sm3 {
            return Err(Error::Internal(format!("archive item {} does not match its metadata", m.item_id)));
        }
        write_synced(&dir.join(&key_file), format!("{}\n", m.wrapped_key).as_bytes())?;
        total += n;
        manifest_items.push(ManifestItem {
            item_id: &m.item_id,
            hospital: &m.hospital,
            kind: &m.kind,
            ty: m.ty.as_deref(),
            receipt_id: m.receipt_id.as_deref(),
            time: m.time,
            file,
            key_file,
            cipher_sm3: &m.cipher_sm3,
            cipher_size: m.cipher_size,
            plain_sm3: &m.plain_sm3,
            plain_size: m.plain_size,
        });
    }
    std::fs::File::open(&items_dir)?.sync_all()?;
    let manifest = serde_json::json!({
        "format": "flumon-raw-export/1",
        "node": state.config.node_id,
        "created": now,
        "encryption": "segmented SM4-GCM (docs/FORMATS.md §1); caller aad = UTF-8 item id followed by UTF-8 hospital code; \
                       data key wrapped with the vault SM2 public key, C1C3C2, hex",
        "items": manifest_items,
    });
    let manifest = serde_json::to_vec_pretty(&manifest).map_err(codec)?;
    write_synced(&dir.join("manifest.json"), &manifest)?;
    let sig = state.keys.sign.sign(&manifest)?;
    write_synced(&dir.join("manifest.sig"), format!("{}\n", hex::encode(sig.to_bytes())).as_bytes())?;
    write_synced(&dir.join("dmz-sign.pub.pem"), state.keys.sign.public_key().to_spki_pem()?.as_bytes())?;
    std::fs::File::open(&dir)?.sync_all()?;
    if let Some(parent) = dir.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    let meta = store.tree(trees::RAW_META)?;
    for m in &items {
        let mut m2 = m.clone();
        m2.exported_at = Some(now);
        meta.insert(m.item_id.as_bytes(), serde_json::to_vec(&m2).map_err(codec)?)?;
    }
    store.durable_blocking()?;
    let report = ExportReport { folder, items: items.len(), bytes: total };
    state.audit.append_blocking(
        "raw.exported",
        &serde_json::json!({"folder": report.folder, "items": report.items, "bytes": report.bytes}),
    )?;
    Ok(report)
}

/// Deletes exported items whose export is older than `days` days (blocking).
pub fn purge_raw(state: &AppState, days: u32) -> Result<PurgeReport> {
    let store = &state.store;
    let cutoff = now_cst() - chrono::Duration::days(i64::from(days));
    let mut report = PurgeReport { items: 0, bytes: 0 };
    for m in archive::all_meta(store)? {
        // never anything unexported
        let Some(at) = m.exported_at else { continue };
        if at < cutoff || (days == 0 && at <= now_cst()) {
            archive::delete_item(store, &m.item_id)?;
            report.items += 1;
            report.bytes += m.cipher_size;
        }
    }
    store.durable_blocking()?;
    state.audit.append_blocking(
        "raw.purged",
        &serde_json::json!({"older_than_days": days, "items": report.items, "bytes": report.bytes}),
    )?;
    Ok(report)
}

struct Tee<'a, A: Write, B: Write> {
    a: &'a mut A,
    b: &'a mut B,
}

impl<A: Write, B: Write> Write for Tee<'_, A, B> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.a.write_all(buf)?;
        self.b.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.a.flush()?;
        self.b.flush()
    }
}
