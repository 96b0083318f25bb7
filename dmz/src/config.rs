//! The DMZ's configuration: `dmz.toml`, read with serde (unknown keys are
//! errors), paths relative to the file's own folder made absolute.
//!
//! ```text
//!  dmz.toml ─▶ FileConfig (deny_unknown_fields) ─▶ resolve paths ─▶ Config ─▶ flumon_dmz::run
//! ```
//! `init` writes a working file; every value except the paths has a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The whole configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This DMZ node's id (batch file names and headers): 1..=32 of `A-Z a-z 0-9 . _ -`.
    pub node_id: String,
    pub listen: Listen,
    pub paths: Paths,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub batch: BatchConfig,
    #[serde(default)]
    pub desens: DesensConfig,
    #[serde(default)]
    pub figures: FiguresConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub mail: MailConfig,
    /// Settings of the web pages (owned by `crate::web`, which parses this table itself).
    #[serde(default)]
    pub web: toml::Table,
}

/// Listener addresses.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// Public HTTPS listener (hospitals, agents).
    pub public: SocketAddr,
    /// Admin HTTPS listener (reviewers, operators, metrics): keep it on a management network.
    pub admin: SocketAddr,
}

/// Files and folders. Relative paths are relative to the folder of dmz.toml.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Paths {
    /// sled store, audit journal.
    pub data_dir: PathBuf,
    /// Sealed batch files for `flumon-transfer send`.
    pub outbox: PathBuf,
    /// Mail written as files when no SMTP relay is configured.
    pub maildir: PathBuf,
    /// TLS server certificate chain (PEM) and key (PKCS#8 PEM).
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// The DMZ's CA for agent client certificates.
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    /// SM4 link key (batches).
    pub link_key: PathBuf,
    /// SM2 key that signs batches, journal checkpoints and export manifests, and its public key.
    pub sign_key: PathBuf,
    pub sign_pub: PathBuf,
    /// HMAC-SM3 datagram key (used by the transfer sender; kept with the link keys).
    pub mac_key: PathBuf,
    /// Person key and pseudonym key (32 bytes each, hex file).
    pub person_key: PathBuf,
    pub pseudonym_key: PathBuf,
    /// The offline vault's SM2 public key (raw data keys are wrapped to it).
    pub vault_pub: PathBuf,
    /// Operator credentials for the admin listener: token file and client certificate.
    pub operator_token: PathBuf,
    pub operator_cert: PathBuf,
    pub operator_key: PathBuf,
}

/// Request limits and timeouts.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest record upload (INTERFACE: 64 MiB).
    pub upload_max_bytes: usize,
    /// Most data rows of one upload (INTERFACE: 200,000).
    pub upload_max_rows: usize,
    /// Largest death scan (INTERFACE: 50 MiB).
    pub scan_max_bytes: usize,
    /// Largest body of any other request.
    pub other_max_bytes: usize,
    /// Seconds to read a request's header (also the TLS handshake).
    pub header_timeout_secs: u64,
    /// Seconds to read a request's body.
    pub body_timeout_secs: u64,
    /// Idle keep-alive seconds.
    pub idle_timeout_secs: u64,
    /// Requests a minute per API token or account (token bucket rate), and its burst.
    pub per_token_per_minute: u32,
    pub per_token_burst: u32,
    /// Requests a minute per client address, and its burst.
    pub per_addr_per_minute: u32,
    pub per_addr_burst: u32,
    /// Most uploads processed at once (each may hold a 64 MiB body).
    pub max_concurrent_uploads: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            upload_max_bytes: 64 << 20,
            upload_max_rows: 200_000,
            scan_max_bytes: 50 << 20,
            other_max_bytes: 1 << 20,
            header_timeout_secs: 15,
            body_timeout_secs: 300,
            idle_timeout_secs: 60,
            per_token_per_minute: 600,
            per_token_burst: 120,
            per_addr_per_minute: 1200,
            per_addr_burst: 240,
            max_concurrent_uploads: 8,
        }
    }
}

/// The batcher.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Cut a batch at this many payload bytes (default 4 MiB).
    pub max_payload_bytes: usize,
    /// Cut a batch when its oldest entry is this old (default 10 s).
    pub max_age_secs: u64,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig { max_payload_bytes: 4 << 20, max_age_secs: 10 }
    }
}

/// The hospital portal's figures (docs/DECISIONS.md: folded when read).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FiguresConfig {
    /// Fold every hospital's logged facts this often (default 300 s); pages fold their own when read.
    pub fold_every_secs: u64,
}

impl Default for FiguresConfig {
    fn default() -> Self {
        FiguresConfig { fold_every_secs: 300 }
    }
}

/// The sled store (store/filter.rs).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Memory of the key filter that spares sled the lookups of keys never
    /// written (MiB, a power of two is used; 0 = off). 32 MiB keeps false
    /// "maybe"s near 1% up to about 25 million records' keys (computed: 4 bits set a key).
    pub key_filter_mib: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { key_filter_mib: 32 }
    }
}

/// Desensitisation settings (INTERFACE §5).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DesensConfig {
    /// Drop free text altogether instead of scrubbing it.
    pub drop_free_text: bool,
}

/// Outgoing mail (used by `crate::mail`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// SMTP relay `host:port`; none: mail is written to `paths.maildir`.
    pub smtp_relay: Option<String>,
    /// Sender address.
    pub from: String,
}

impl Config {
    /// Reads and checks `path`, making relative paths absolute against its folder.
    pub fn load(path: &Path) -> Result<Config> {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        Config::parse(&text, path)
    }

    /// Parses and checks the text of the dmz.toml found at `path` (every error
    /// names it), making relative paths absolute against its folder. Reads no file.
    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let base = if base.as_os_str().is_empty() { PathBuf::from(".") } else { base };
        let base = std::fs::canonicalize(&base).unwrap_or(base);
        cfg.paths.resolve(&base);
        cfg.check().map_err(|e| match e {
            Error::Config(m) => Error::Config(format!("{}: {m}", path.display())),
            other => other,
        })?;
        Ok(cfg)
    }

    /// Checks values that serde cannot.
    pub fn check(&self) -> Result<()> {
        flumon_shared::batch::check_node_id(self.node_id.as_bytes())
            .map_err(|e| Error::Config(format!("node_id: {e}")))?;
        if self.batch.max_payload_bytes == 0 || self.batch.max_age_secs == 0 {
            return Err(Error::Config(
                "batch.max_payload_bytes 和 batch.max_age_secs 须大于 0 (must be positive)".into(),
            ));
        }
        if self.store.key_filter_mib > 4096 {
            return Err(Error::Config("store.key_filter_mib 须在 0 到 4096 之间 (must be 0 to 4096)".into()));
        }
        if !(1..=86_400).contains(&self.figures.fold_every_secs) {
            return Err(Error::Config("figures.fold_every_secs 须在 1 到 86400 之间 (must be 1 to 86400)".into()));
        }
        Ok(())
    }
}

impl Paths {
    fn resolve(&mut self, base: &Path) {
        for p in [
            &mut self.data_dir,
            &mut self.outbox,
            &mut self.maildir,
            &mut self.tls_cert,
            &mut self.tls_key,
            &mut self.ca_cert,
            &mut self.ca_key,
            &mut self.link_key,
            &mut self.sign_key,
            &mut self.sign_pub,
            &mut self.mac_key,
            &mut self.person_key,
            &mut self.pseudonym_key,
            &mut self.vault_pub,
            &mut self.operator_token,
            &mut self.operator_cert,
            &mut self.operator_key,
        ] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }
}

#[cfg(test)]
#[path = "../../shared/testsupport/config_mutants.rs"]
mod config_mutants;

#[cfg(test)]
mod tests {
    //! dmz.toml loader on thousands of mutated templates: Ok or Err, never a
    //! panic, every error names the file (issue 8).
    use super::*;

    const TEMPLATE: &str = include_str!("../../deploy/config/dmz.toml");

    #[test]
    fn mutated_templates_never_panic_and_errors_name_the_file() {
        let path = Path::new("/nonexistent-flumon/etc/dmz.toml");
        let cfg = Config::parse(TEMPLATE, path).unwrap();
        crate::web::settings::WebSettings::from_config(&cfg).unwrap();
        let variants = config_mutants::mutants(TEMPLATE, 0xd3a2, 3000);
        let seen = config_mutants::check_all(&variants, "dmz.toml", |text| {
            let cfg = Config::parse(text, path).map_err(|e| e.to_string())?;
            // [web] is read later by the web module: it must not panic either
            let _ = crate::web::settings::WebSettings::from_config(&cfg);
            Ok(())
        });
        assert!(seen.ok > 100 && seen.err > 1000, "{seen:?}");
        // not UTF-8: through load, from a file
        config_mutants::check_not_utf8_files(&seen, "dmz.toml", 20, |f| {
            Config::load(f).map(drop).map_err(|e| e.to_string())
        });
        // a few errors name the key too
        let cases = [
            (TEMPLATE.replace("max_age_secs = 10", "max_age_secs = 0"), "batch.max_age_secs"),
            (TEMPLATE.replace("node_id = \"dmz-1\"", "node_id = \"a/b\""), "node_id"),
            (TEMPLATE.replace("[limits]", "[limits]\nupload_max_bytes = -1"), "upload_max_bytes"),
            (TEMPLATE.replace("[batch]", "[batch]\nbogus = 1"), "bogus"),
        ];
        config_mutants::check_keys_named(TEMPLATE, "dmz.toml", &cases, |t| {
            Config::parse(t, path).map(drop).map_err(|e| e.to_string())
        });
    }
}
