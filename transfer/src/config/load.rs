//! Loading send.toml and recv.toml: read (bounded), paths made absolute
//! against the file's folder, values checked, keys loaded.
//!
//! ```text
//!  file ─read ≤ 1 MiB─▶ parse(text): toml (deny_unknown_fields) ─▶ base.join(paths)
//!       ─▶ check (values only) ─▶ keys ─▶ SendConfig / RecvConfig
//! ```
//! `parse` and `check` touch no key file, so the `config_toml` fuzz target
//! (crate::fuzz::fuzz_config) runs them on hostile text.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use flumon_shared::crypto::{MacKey, Sm2PrivateKey, Sm2PublicKey, SymKey};

use super::*;
use crate::error::{Error, Result};

fn base_of(path: &Path) -> PathBuf {
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let base = if base.as_os_str().is_empty() { PathBuf::from(".") } else { base };
    std::fs::canonicalize(&base).unwrap_or(base)
}

/// Largest configuration file read.
const MAX_TEXT: u64 = 1 << 20;

fn read_text(path: &Path) -> Result<String> {
    let meta = std::fs::metadata(path).map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
    if meta.len() > MAX_TEXT {
        return Err(Error::Config(format!("{} is over 1 MiB", path.display())));
    }
    std::fs::read_to_string(path).map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))
}

fn parse_toml<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<T> {
    if text.len() as u64 > MAX_TEXT {
        return Err(Error::Config(format!("{} is over 1 MiB", path.display())));
    }
    toml::from_str(text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
}

fn key_err(what: &str, path: &Path) -> impl FnOnce(flumon_shared::Error) -> Error {
    let msg = format!("{what} {}", path.display());
    move |e| Error::Config(format!("{msg}: {e}"))
}

impl SendFile {
    /// Reads send.toml (paths relative to its folder made absolute).
    pub fn load(path: &Path) -> Result<SendFile> {
        SendFile::parse(&read_text(path)?, path)
    }

    /// Parses the text of send.toml found at `path` (errors name it; relative
    /// paths are made absolute against its folder). Reads no other file.
    pub fn parse(text: &str, path: &Path) -> Result<SendFile> {
        let mut f: SendFile = parse_toml(text, path)?;
        let base = base_of(path);
        for p in
            [&mut f.outbox, &mut f.state_dir, &mut f.journal, &mut f.journal_key, &mut f.dmz_public_key, &mut f.mac_key]
        {
            *p = base.join(&*p);
        }
        if let Some(fe) = f.ferry.as_mut() {
            fe.ferry_out = base.join(&fe.ferry_out);
        }
        Ok(f)
    }

    /// Checks the values (no key is read).
    pub fn check(&self) -> Result<()> {
        self.checked().map(|_| ())
    }

    fn checked(&self) -> Result<(LinkSettings, SendDiodeFile)> {
        let link = self.link.settings()?;
        let d = self.diode.clone().unwrap_or(SendDiodeFile {
            target: SocketAddr::from(([127, 0, 0, 1], 0)),
            local_addr: d_local(),
            rate_mbit: d_rate(),
            burst_bytes: d_burst(),
            send_buffer_bytes: d_sndbuf(),
            passes: d_passes(),
            pass_gap_ms: d_pass_gap(),
            heartbeat_ms: d_heartbeat(),
            manifest_secs: d_manifest_secs(),
            manifest_hours: d_manifest_hours(),
        });
        if self.mode == Mode::Diode && self.diode.is_none() {
            return Err(Error::Config("mode = \"diode\" needs a [diode] section".into()));
        }
        if self.mode == Mode::Ferry && self.ferry.is_none() {
            return Err(Error::Config("mode = \"ferry\" needs a [ferry] section with ferry_out".into()));
        }
        link.check_addr(&d.target)?;
        if !(1..=16).contains(&d.passes) {
            return Err(Error::Config("diode.passes must be 1..=16".into()));
        }
        if !(100..=60_000).contains(&d.heartbeat_ms) {
            return Err(Error::Config("diode.heartbeat_ms must be 100..=60000".into()));
        }
        if d.manifest_secs == 0 || d.manifest_hours == 0 || self.retention_days == 0 {
            return Err(Error::Config("manifest_secs, manifest_hours and retention_days must be positive".into()));
        }
        link.check_max_batch(self.max_batch_bytes)?;
        Ok((link, d))
    }

    /// Checks the values and loads the keys.
    pub fn into_config(self) -> Result<SendConfig> {
        let (link, d) = self.checked()?;
        Ok(SendConfig {
            mode: self.mode,
            journal_key: Sm2PrivateKey::load(&self.journal_key).map_err(key_err("journal key", &self.journal_key))?,
            dmz_public_key: Sm2PublicKey::load(&self.dmz_public_key)
                .map_err(key_err("DMZ public key", &self.dmz_public_key))?,
            check_signatures: self.check_signatures,
            mac_key: MacKey::load(&self.mac_key).map_err(key_err("MAC key", &self.mac_key))?,
            link,
            outbox: self.outbox,
            state_dir: self.state_dir,
            journal: self.journal,
            retention_days: self.retention_days,
            max_batch_bytes: self.max_batch_bytes,
            diode: SendDiode {
                target: d.target,
                local_addr: d.local_addr,
                rate_bytes: u64::from(d.rate_mbit) * 125_000,
                burst_bytes: u64::from(d.burst_bytes.max(65_536)),
                send_buffer_bytes: d.send_buffer_bytes as usize,
                passes: d.passes,
                pass_gap_ms: u64::from(d.pass_gap_ms),
                heartbeat_ms: d.heartbeat_ms,
                manifest_secs: u64::from(d.manifest_secs),
                manifest_hours: u64::from(d.manifest_hours),
            },
            ferry_out: self.ferry.map(|f| f.ferry_out),
        })
    }
}

impl SendConfig {
    /// Reads send.toml into a runtime config.
    pub fn load(path: &Path) -> Result<SendConfig> {
        SendFile::load(path)?.into_config()
    }
}

impl RecvFile {
    /// Reads recv.toml (paths relative to its folder made absolute).
    pub fn load(path: &Path) -> Result<RecvFile> {
        RecvFile::parse(&read_text(path)?, path)
    }

    /// Parses the text of recv.toml found at `path` (errors name it; relative
    /// paths are made absolute against its folder). Reads no other file.
    pub fn parse(text: &str, path: &Path) -> Result<RecvFile> {
        let mut f: RecvFile = parse_toml(text, path)?;
        let base = base_of(path);
        for p in [
            &mut f.spool,
            &mut f.quarantine,
            &mut f.state_dir,
            &mut f.journal,
            &mut f.journal_key,
            &mut f.link_key,
            &mut f.dmz_public_key,
        ] {
            *p = base.join(&*p);
        }
        for p in &mut f.mac_keys {
            *p = base.join(&*p);
        }
        if let Some(fe) = f.ferry.as_mut() {
            fe.ferry_in = base.join(&fe.ferry_in);
        }
        Ok(f)
    }

    /// Checks the values (no key is read).
    pub fn check(&self) -> Result<()> {
        self.checked().map(|_| ())
    }

    fn checked(&self) -> Result<(LinkSettings, RecvDiodeFile)> {
        let link = self.link.settings()?;
        if self.mode == Mode::Diode && self.diode.is_none() {
            return Err(Error::Config("mode = \"diode\" needs a [diode] section".into()));
        }
        if self.mode == Mode::Ferry && self.ferry.is_none() {
            return Err(Error::Config("mode = \"ferry\" needs a [ferry] section with ferry_in".into()));
        }
        if self.mac_keys.is_empty() || self.mac_keys.len() > 8 {
            return Err(Error::Config("mac_keys must list 1..=8 key files".into()));
        }
        link.check_max_batch(self.max_batch_bytes)?;
        let d = self.diode.clone().unwrap_or(RecvDiodeFile {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            recv_buffer_bytes: d_rcvbuf(),
            max_open_batches: d_open_batches(),
            max_open_bytes: d_open_bytes(),
            partial_timeout_secs: d_partial_timeout(),
        });
        link.check_addr(&d.listen)?;
        if d.max_open_batches == 0 || d.max_open_bytes == 0 || d.partial_timeout_secs == 0 {
            return Err(Error::Config("diode limits must be positive".into()));
        }
        Ok((link, d))
    }

    /// Checks the values and loads the keys.
    pub fn into_config(self) -> Result<RecvConfig> {
        let (link, d) = self.checked()?;
        let mut mac_keys = Vec::with_capacity(self.mac_keys.len());
        for p in &self.mac_keys {
            let k = MacKey::load(p).map_err(key_err("MAC key", p))?;
            if mac_keys.iter().any(|m: &MacKey| m.id() == k.id()) {
                return Err(Error::Config(format!("two MAC keys with key id {}", k.id())));
            }
            mac_keys.push(k);
        }
        let (ferry_in, settle_ms) = match self.ferry {
            Some(f) => (Some(f.ferry_in), u64::from(f.settle_ms)),
            None => (None, u64::from(d_settle())),
        };
        Ok(RecvConfig {
            mode: self.mode,
            journal_key: Sm2PrivateKey::load(&self.journal_key).map_err(key_err("journal key", &self.journal_key))?,
            link_key: SymKey::load(&self.link_key).map_err(key_err("link key", &self.link_key))?,
            dmz_public_key: Sm2PublicKey::load(&self.dmz_public_key)
                .map_err(key_err("DMZ public key", &self.dmz_public_key))?,
            mac_keys,
            link,
            spool: self.spool,
            quarantine: self.quarantine,
            state_dir: self.state_dir,
            journal: self.journal,
            first_seq: self.first_seq,
            gap_grace_secs: u64::from(self.gap_grace_secs.max(1)),
            max_batch_bytes: self.max_batch_bytes,
            max_payload_bytes: self.max_payload_bytes,
            diode: RecvDiode {
                listen: d.listen,
                recv_buffer_bytes: d.recv_buffer_bytes as usize,
                max_open_batches: d.max_open_batches as usize,
                max_open_bytes: d.max_open_bytes,
                partial_timeout_secs: u64::from(d.partial_timeout_secs),
            },
            ferry_in,
            settle_ms,
        })
    }
}

impl RecvConfig {
    /// Reads recv.toml into a runtime config.
    pub fn load(path: &Path) -> Result<RecvConfig> {
        RecvFile::load(path)?.into_config()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_rejected() {
        let text = "node_id = \"a\"\nmtu = 1500\nbogus = 1\n";
        assert!(toml::from_str::<LinkFile>(text).is_err());
        let ok: LinkFile = toml::from_str("node_id = \"dmz-1\"\n").unwrap();
        let s = ok.settings().unwrap();
        assert_eq!(
            (s.mtu, s.symbol_size, s.block_symbols, s.repair_ppm, s.repair_extra),
            (1500, 1400, 750, 100_000, 2)
        );
    }

    #[test]
    fn bad_link_values_fail() {
        for text in [
            "node_id = \"a/b\"\n",
            "node_id = \"a\"\nsymbol_size = 1401\n",
            "node_id = \"a\"\nsymbol_size = 1440\n",
            "node_id = \"a\"\nblock_symbols = 0\n",
            "node_id = \"a\"\nrepair_ratio = -0.1\n",
        ] {
            let f: LinkFile = toml::from_str(text).unwrap();
            assert!(f.settings().is_err(), "{text}");
        }
    }
}
