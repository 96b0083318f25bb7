//! `flumon-transfer init --dmz-dir DIR --out DIR`: send.toml and recv.toml
//! that work together on loopback, from the keys `flumon-dmz init` wrote.
//!
//! ```text
//!  DMZ DIR/dmz.toml (node_id, paths) ─┐   keys/link.key, keys/link-mac.key, keys/dmz-sign.pub.pem, outbox/
//!                                     ▼
//!  OUT/send.toml     outbox, MAC key, DMZ public key (in DIR), journal key keys/send-journal.pem (new)
//!  OUT/recv.toml     copies in recv-keys/ (link key, MAC key, DMZ public key), keys/recv-journal.pem (new)
//!  OUT/spool/ quarantine/ ferry/ send-state/ recv-state/        UDP 127.0.0.1:<port> (47100)
//! ```
//! Nothing is overwritten; key files are written 0600 and fsynced.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use flumon_shared::crypto::{MacKey, Sm2PrivateKey, Sm2PublicKey, SymKey};

use crate::config::{FerryInFile, FerryOutFile, LinkFile, Mode, RecvDiodeFile, RecvFile, SendDiodeFile, SendFile};
use crate::error::{Error, Result};

/// The DMZ's files `init` reads.
#[derive(Debug)]
pub struct DmzFiles {
    pub node_id: String,
    pub outbox: PathBuf,
    pub link_key: PathBuf,
    pub mac_key: PathBuf,
    pub sign_pub: PathBuf,
}

/// Finds the DMZ's node id and key files: from `dmz.toml` (flumon-dmz's
/// `[paths]`), else the names `flumon-dmz init` uses.
pub fn dmz_files(dir: &Path) -> Result<DmzFiles> {
    let dir = std::fs::canonicalize(dir).map_err(|e| Error::Config(format!("{}: {e}", dir.display())))?;
    let mut f = DmzFiles {
        node_id: "dmz-1".into(),
        outbox: dir.join("outbox"),
        link_key: dir.join("keys/link.key"),
        mac_key: dir.join("keys/link-mac.key"),
        sign_pub: dir.join("keys/dmz-sign.pub.pem"),
    };
    let toml_path = dir.join("dmz.toml");
    if toml_path.exists() {
        let text = std::fs::read_to_string(&toml_path)?;
        let t: toml::Table =
            toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", toml_path.display())))?;
        if let Some(n) = t.get("node_id").and_then(|v| v.as_str()) {
            f.node_id = n.to_owned();
        }
        if let Some(p) = t.get("paths").and_then(|v| v.as_table()) {
            let get = |k: &str| p.get(k).and_then(|v| v.as_str()).map(|s| dir.join(s));
            f.outbox = get("outbox").unwrap_or(f.outbox);
            f.link_key = get("link_key").unwrap_or(f.link_key);
            f.mac_key = get("mac_key").unwrap_or(f.mac_key);
            f.sign_pub = get("sign_pub").unwrap_or(f.sign_pub);
        }
    }
    Ok(f)
}

/// What init wrote.
#[derive(Debug)]
pub struct InitReport {
    pub send_toml: PathBuf,
    pub recv_toml: PathBuf,
    pub node_id: String,
}

/// Writes send.toml, recv.toml and their keys and folders into `out`.
pub fn init(dmz_dir: &Path, out: &Path, port: u16) -> Result<InitReport> {
    let d = dmz_files(dmz_dir)?;
    let link_key = SymKey::load(&d.link_key).map_err(|e| Error::Config(format!("{}: {e}", d.link_key.display())))?;
    let mac_key = MacKey::load(&d.mac_key).map_err(|e| Error::Config(format!("{}: {e}", d.mac_key.display())))?;
    let sign_pub =
        Sm2PublicKey::load(&d.sign_pub).map_err(|e| Error::Config(format!("{}: {e}", d.sign_pub.display())))?;
    std::fs::create_dir_all(out)?;
    let (send_toml, recv_toml) = (out.join("send.toml"), out.join("recv.toml"));
    for p in [&send_toml, &recv_toml] {
        if p.exists() {
            return Err(Error::Config(format!("{} exists; refusing to overwrite", p.display())));
        }
    }
    for sub in ["keys", "recv-keys", "spool", "quarantine", "ferry", "send-state", "recv-state"] {
        std::fs::create_dir_all(out.join(sub))?;
    }
    for side in ["send", "recv"] {
        let k = Sm2PrivateKey::generate()?;
        k.save(&out.join(format!("keys/{side}-journal.pem")))?;
        k.public_key().save(&out.join(format!("keys/{side}-journal.pub.pem")))?;
    }
    link_key.save(&out.join("recv-keys/link.key"))?;
    mac_key.save(&out.join("recv-keys/link-mac.key"))?;
    sign_pub.save(&out.join("recv-keys/dmz-sign.pub.pem"))?;
    let link = LinkFile {
        node_id: d.node_id.clone(),
        mtu: 1500,
        symbol_size: 1400,
        block_symbols: 750,
        repair_ratio: 0.10,
        repair_extra: 2,
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let send = SendFile {
        mode: Mode::Diode,
        outbox: d.outbox.clone(),
        state_dir: "send-state".into(),
        journal: "send-journal.log".into(),
        journal_key: "keys/send-journal.pem".into(),
        dmz_public_key: d.sign_pub.clone(),
        check_signatures: false,
        mac_key: d.mac_key.clone(),
        retention_days: 7,
        max_batch_bytes: 272 << 20,
        link: link.clone(),
        diode: Some(SendDiodeFile {
            target: addr,
            local_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            rate_mbit: 800,
            burst_bytes: 256 << 10,
            send_buffer_bytes: 4 << 20,
            passes: 2,
            pass_gap_ms: 500,
            heartbeat_ms: 1000,
            manifest_secs: 60,
            manifest_hours: 6,
        }),
        ferry: Some(FerryOutFile { ferry_out: "ferry".into() }),
    };
    let recv = RecvFile {
        mode: Mode::Diode,
        spool: "spool".into(),
        quarantine: "quarantine".into(),
        state_dir: "recv-state".into(),
        journal: "recv-journal.log".into(),
        journal_key: "keys/recv-journal.pem".into(),
        link_key: "recv-keys/link.key".into(),
        dmz_public_key: "recv-keys/dmz-sign.pub.pem".into(),
        mac_keys: vec!["recv-keys/link-mac.key".into()],
        first_seq: 1,
        gap_grace_secs: 10,
        max_batch_bytes: 272 << 20,
        max_payload_bytes: flumon_shared::batch::DEFAULT_MAX_PAYLOAD,
        link,
        diode: Some(RecvDiodeFile {
            listen: addr,
            recv_buffer_bytes: 32 << 20,
            max_open_batches: 64,
            max_open_bytes: 1 << 30,
            partial_timeout_secs: 300,
        }),
        ferry: Some(FerryInFile { ferry_in: "ferry".into(), settle_ms: 2000 }),
    };
    let head = "# Written by `flumon-transfer init`. Relative paths are relative to this file's folder.\n\
                # Both files must agree on [link] (PROTOCOL.md §1); mode = \"diode\" | \"ferry\".\n\n";
    let st = toml::to_string_pretty(&send).map_err(|e| Error::Config(e.to_string()))?;
    let rt = toml::to_string_pretty(&recv).map_err(|e| Error::Config(e.to_string()))?;
    crate::fsutil::write_atomic(out, "send.toml", format!("{head}{st}").as_bytes())?;
    crate::fsutil::write_atomic(out, "recv.toml", format!("{head}{rt}").as_bytes())?;
    Ok(InitReport { send_toml, recv_toml, node_id: d.node_id })
}
