//! `intranet.toml` (serde, unknown keys are errors; relative paths are
//! relative to the file's folder) and `flumon-intranet init DIR`.
//!
//! ```text
//!  DIR/intranet.toml                     listen 127.0.0.1:9443, database_url, paths below
//!  DIR/tls/server.pem, server.key        self-signed TLS certificate (SAN localhost, 127.0.0.1)
//!  DIR/keys/link.key                     copy of the DMZ's keys/link.key (SM4 link key, opens batches)
//!  DIR/keys/dmz-sign.pub.pem             copy of the DMZ's keys/dmz-sign.pub.pem (verifies batches)
//!  DIR/keys/journal-sign.pem, .pub.pem   SM2 key of the intranet's audit journal
//!  DIR/inbound/  DIR/journal/  DIR/data/intranet.db (SQLite, WAL)
//! ```
//! `init --dmz-dir D` copies the two DMZ files; without it, copy them by hand.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The whole configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// HTTPS listener.
    pub listen: SocketAddr,
    /// `sqlite://FILE` (relative to this file's folder) or `postgres://…`.
    pub database_url: String,
    pub paths: Paths,
    #[serde(default)]
    pub ingest: IngestConfig,
    /// Transfer journals shown to the security officer.
    #[serde(default)]
    pub journals: Vec<JournalSource>,
}

/// Files and folders.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Paths {
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// The transfer receiver's inbound spool.
    pub spool: PathBuf,
    pub link_key: PathBuf,
    pub dmz_pubkey: PathBuf,
    /// The intranet's audit journal and the public key of its checkpoints.
    pub journal: PathBuf,
    pub journal_key: PathBuf,
    pub journal_pub: PathBuf,
}

/// The spool watcher.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// Seconds between spool scans.
    pub poll_seconds: u64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig { poll_seconds: 5 }
    }
}

/// A journal file written elsewhere (the transfer receiver) and the key of its checkpoints.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalSource {
    pub name: String,
    pub path: PathBuf,
    pub pubkey: PathBuf,
}

impl Config {
    /// Reads and resolves `intranet.toml`.
    pub fn load(path: &Path) -> Result<Config> {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::Config(format!("无法读取 {}: {e}", path.display())))?;
        Config::parse(&text, path)
    }

    /// Parses and checks the text of the intranet.toml found at `path` (every
    /// error names it), making relative paths absolute against its folder. Reads no file.
    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let base = if base.as_os_str().is_empty() { PathBuf::from(".") } else { base };
        let base = std::fs::canonicalize(&base).unwrap_or(base);
        let p = &mut cfg.paths;
        for x in [
            &mut p.tls_cert,
            &mut p.tls_key,
            &mut p.spool,
            &mut p.link_key,
            &mut p.dmz_pubkey,
            &mut p.journal,
            &mut p.journal_key,
            &mut p.journal_pub,
        ] {
            if x.is_relative() {
                *x = base.join(&*x);
            }
        }
        for j in &mut cfg.journals {
            for x in [&mut j.path, &mut j.pubkey] {
                if x.is_relative() {
                    *x = base.join(&*x);
                }
            }
        }
        if let Some(rest) = cfg.database_url.strip_prefix("sqlite://")
            && !rest.starts_with('/')
        {
            cfg.database_url = format!("sqlite://{}", base.join(rest).display());
        }
        if cfg.ingest.poll_seconds == 0 {
            return Err(Error::Config(format!("{}: ingest.poll_seconds 须大于 0 (must be positive)", path.display())));
        }
        Ok(cfg)
    }
}

fn write_new(path: &Path, bytes: &[u8], secret: bool) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(if secret { 0o600 } else { 0o644 }).open(path)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// Writes a working configuration into `dir`; copies the DMZ's link key and public key from `dmz_dir`.
pub fn init(dir: &Path, dmz_dir: Option<&Path>) -> Result<PathBuf> {
    let config_path = dir.join("intranet.toml");
    if config_path.exists() {
        return Err(Error::Config(format!("{} 已存在，拒绝覆盖 (exists)", config_path.display())));
    }
    for sub in ["tls", "keys", "inbound", "journal", "data"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .map_err(|e| Error::Tls(e.to_string()))?;
    write_new(&dir.join("tls/server.pem"), ck.cert.pem().as_bytes(), false)?;
    write_new(&dir.join("tls/server.key"), zeroize::Zeroizing::new(ck.signing_key.serialize_pem()).as_bytes(), true)?;
    let jk = flumon_shared::crypto::Sm2PrivateKey::generate()?;
    jk.save(&dir.join("keys/journal-sign.pem"))?;
    jk.public_key().save(&dir.join("keys/journal-sign.pub.pem"))?;
    if let Some(d) = dmz_dir {
        for (from, to) in [("keys/link.key", "keys/link.key"), ("keys/dmz-sign.pub.pem", "keys/dmz-sign.pub.pem")] {
            let bytes = zeroize::Zeroizing::new(std::fs::read(d.join(from))?);
            write_new(&dir.join(to), &bytes, to.ends_with(".key"))?;
        }
    }
    let cfg = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 9443)),
        database_url: "sqlite://data/intranet.db".into(),
        paths: Paths {
            tls_cert: "tls/server.pem".into(),
            tls_key: "tls/server.key".into(),
            spool: "inbound".into(),
            link_key: "keys/link.key".into(),
            dmz_pubkey: "keys/dmz-sign.pub.pem".into(),
            journal: "journal/intranet.journal".into(),
            journal_key: "keys/journal-sign.pem".into(),
            journal_pub: "keys/journal-sign.pub.pem".into(),
        },
        ingest: IngestConfig::default(),
        journals: Vec::new(),
    };
    let text = toml::to_string_pretty(&cfg).map_err(|e| Error::Config(e.to_string()))?;
    let header = "# flumon-intranet configuration, written by `flumon-intranet init`.\n\
                  # Relative paths are relative to this file's folder. keys/link.key and keys/dmz-sign.pub.pem\n\
                  # are copies of the files `flumon-dmz init` wrote under the DMZ's keys/.\n\
                  # Transfer journals for the security officer: [[journals]] name = \"receiver\", path = …, pubkey = …\n\n";
    write_new(&config_path, format!("{header}{text}").as_bytes(), false)?;
    Ok(config_path)
}

#[cfg(test)]
#[path = "../../shared/testsupport/config_mutants.rs"]
mod config_mutants;

#[cfg(test)]
mod tests {
    //! intranet.toml loader on thousands of mutated templates: Ok or Err,
    //! never a panic, every error names the file (issue 8).
    use super::*;

    const TEMPLATE: &str = include_str!("../../deploy/config/intranet.toml");

    #[test]
    fn mutated_templates_never_panic_and_errors_name_the_file() {
        let path = Path::new("/nonexistent-flumon/etc/intranet.toml");
        Config::parse(TEMPLATE, path).unwrap();
        let variants = config_mutants::mutants(TEMPLATE, 0x1a7e, 3000);
        let seen = config_mutants::check_all(&variants, "intranet.toml", |text| {
            Config::parse(text, path).map(drop).map_err(|e| e.to_string())
        });
        assert!(seen.ok > 100 && seen.err > 1000, "{seen:?}");
        // not UTF-8: through load, from a file
        config_mutants::check_not_utf8_files(&seen, "intranet.toml", 20, |f| {
            Config::load(f).map(drop).map_err(|e| e.to_string())
        });
        // a few errors name the key too
        let cases = [
            (TEMPLATE.replace("poll_seconds = 5", "poll_seconds = 0"), "ingest.poll_seconds"),
            (TEMPLATE.replace("poll_seconds = 5", "poll_seconds = -5"), "poll_seconds"),
            (TEMPLATE.replace("[ingest]", "[ingest]\nbogus = 1"), "bogus"),
            (TEMPLATE.replace("name = \"receiver\"", "name = 7"), "name"),
        ];
        config_mutants::check_keys_named(TEMPLATE, "intranet.toml", &cases, |t| {
            Config::parse(t, path).map(drop).map_err(|e| e.to_string())
        });
    }
}
