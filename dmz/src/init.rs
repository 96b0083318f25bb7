//! `flumon-dmz init DIR`: a working configuration for a local deployment.
//!
//! ```text
//!  DIR/dmz.toml                     listeners 127.0.0.1:8443 (public) / :8444 (admin), paths below
//!  DIR/ca/ca.pem, ca.key            the DMZ's CA (P-256): agent client certs, and the local server cert
//!  DIR/tls/server.pem, server.key   TLS server certificate (SAN localhost, 127.0.0.1), signed by the CA
//!  DIR/keys/link.key                SM4 link key (batches)          keys/link-mac.key  HMAC-SM3, key id 1
//!  DIR/keys/dmz-sign.pem, .pub.pem  SM2 signing key (batches, journal, manifests)
//!  DIR/keys/person.key, pseudonym.key   32-byte HMAC keys of desensitisation
//!  DIR/keys/release-sign.pem, .pub.pem   SM2 release key (下载中心; copy of the public key in data/downloads/)
//!  DIR/keys/vault.pub.pem           the vault's SM2 PUBLIC key (copied from --vault-pubkey)
//!  DIR/vault-DEMO-ONLY/             without --vault-pubkey: a vault key pair for local use only
//!  DIR/operator/operator.token, operator.pem, operator.key   admin listener operator credentials
//!  DIR/data/  DIR/outbox/  DIR/mail-outbox/
//! ```
//! Secrets are written 0600 and fsynced; nothing is overwritten: an existing
//! DIR/dmz.toml makes init refuse.

use std::path::{Path, PathBuf};

use flumon_shared::crypto::{MacKey, Sm2PrivateKey, Sm2PublicKey, SymKey};

use crate::config::{
    BatchConfig, Config, DesensConfig, FiguresConfig, LimitsConfig, Listen, MailConfig, Paths, StoreConfig,
};
use crate::error::{Error, Result};
use crate::keys::{write_new_hex32, write_public, write_secret};
use crate::tls::{self, Ca};

/// What init wrote.
#[derive(Debug)]
pub struct InitReport {
    pub config: PathBuf,
    /// True when a demo vault key pair was generated.
    pub demo_vault: bool,
}

/// The warning printed when init made a demo vault key.
pub const DEMO_VAULT_WARNING: &str = "\
警告: 未提供 --vault-pubkey, 已在 vault-DEMO-ONLY/ 生成演示用保管库密钥对。该私钥仅限本地测试, \
严禁用于生产: 生产环境中保管库私钥只能存在于离线工作站。\n\
WARNING: no --vault-pubkey given; a DEMO vault key pair was generated in vault-DEMO-ONLY/. \
It is for local use only, never for production: the vault's private key must exist only on the offline workstation.";

fn rel(p: &str) -> PathBuf {
    PathBuf::from(p)
}

/// Writes a new configuration into `dir`.
pub fn init(dir: &Path, vault_pubkey: Option<&Path>) -> Result<InitReport> {
    let config_path = dir.join("dmz.toml");
    if config_path.exists() {
        return Err(Error::Config(format!("{} exists; refusing to overwrite", config_path.display())));
    }
    for sub in ["ca", "tls", "keys", "operator", "data", "outbox", "mail-outbox"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    let paths = Paths {
        data_dir: rel("data"),
        outbox: rel("outbox"),
        maildir: rel("mail-outbox"),
        tls_cert: rel("tls/server.pem"),
        tls_key: rel("tls/server.key"),
        ca_cert: rel("ca/ca.pem"),
        ca_key: rel("ca/ca.key"),
        link_key: rel("keys/link.key"),
        sign_key: rel("keys/dmz-sign.pem"),
        sign_pub: rel("keys/dmz-sign.pub.pem"),
        mac_key: rel("keys/link-mac.key"),
        person_key: rel("keys/person.key"),
        pseudonym_key: rel("keys/pseudonym.key"),
        vault_pub: rel("keys/vault.pub.pem"),
        operator_token: rel("operator/operator.token"),
        operator_cert: rel("operator/operator.pem"),
        operator_key: rel("operator/operator.key"),
    };
    let at = |p: &Path| dir.join(p);

    // CA, then the server and operator certificates it signs
    let ca = tls::generate_ca("flumon DMZ CA")?;
    write_public(&at(&paths.ca_cert), ca.cert_pem.as_bytes())?;
    let ca_key = ca.key_pem.as_ref().ok_or_else(|| Error::Internal("CA key missing".into()))?;
    write_secret(&at(&paths.ca_key), ca_key.as_bytes())?;
    let ca = Ca::load(&at(&paths.ca_cert), &at(&paths.ca_key))?;
    let server = ca.issue_server(&["localhost", "127.0.0.1", "::1"])?;
    write_public(&at(&paths.tls_cert), server.cert_pem.as_bytes())?;
    write_secret(&at(&paths.tls_key), server.key_pem.as_ref().map(|k| k.as_bytes()).unwrap_or_default())?;
    let op = ca.issue_client("flumon operator")?;
    write_public(&at(&paths.operator_cert), op.cert_pem.as_bytes())?;
    write_secret(&at(&paths.operator_key), op.key_pem.as_ref().map(|k| k.as_bytes()).unwrap_or_default())?;
    let token = crate::hospitals::new_secret()?;
    write_secret(&at(&paths.operator_token), format!("{}\n", token.as_str()).as_bytes())?;

    // link keys
    SymKey::generate()?.save(&at(&paths.link_key))?;
    MacKey::generate(1)?.save(&at(&paths.mac_key))?;
    let sign = Sm2PrivateKey::generate()?;
    sign.save(&at(&paths.sign_key))?;
    sign.public_key().save(&at(&paths.sign_pub))?;

    // release signing key (下载中心): signs the agent program published by deploy/release-agent.sh;
    // its public key is also put where the download center serves it
    let release = Sm2PrivateKey::generate()?;
    release.save(&dir.join(crate::web::downloads::RELEASE_KEY))?;
    release.public_key().save(&dir.join(crate::web::downloads::RELEASE_PUB))?;
    let served = dir.join(&paths.data_dir).join(crate::web::downloads::DIR);
    std::fs::create_dir_all(&served)?;
    release.public_key().save(&served.join(crate::web::downloads::PUB_NAME))?;

    // desensitisation keys
    write_new_hex32(&at(&paths.person_key))?;
    write_new_hex32(&at(&paths.pseudonym_key))?;

    // the vault's public key
    let demo_vault = match vault_pubkey {
        Some(p) => {
            let pk = Sm2PublicKey::load(p)?;
            pk.save(&at(&paths.vault_pub))?;
            false
        }
        None => {
            let demo = dir.join("vault-DEMO-ONLY");
            std::fs::create_dir_all(&demo)?;
            let vk = Sm2PrivateKey::generate()?;
            vk.save(&demo.join("vault.pem"))?;
            vk.public_key().save(&demo.join("vault.pub.pem"))?;
            vk.public_key().save(&at(&paths.vault_pub))?;
            write_public(&demo.join("README.txt"), DEMO_VAULT_WARNING.as_bytes())?;
            true
        }
    };

    let cfg = Config {
        node_id: "dmz-1".to_owned(),
        listen: Listen {
            public: std::net::SocketAddr::from(([127, 0, 0, 1], 8443)),
            admin: std::net::SocketAddr::from(([127, 0, 0, 1], 8444)),
        },
        paths,
        limits: LimitsConfig::default(),
        batch: BatchConfig::default(),
        desens: DesensConfig::default(),
        figures: FiguresConfig::default(),
        store: StoreConfig::default(),
        mail: MailConfig { smtp_relay: None, from: "flumon@localhost".to_owned() },
        web: toml::Table::new(),
    };
    let text = toml::to_string_pretty(&cfg).map_err(|e| Error::Config(e.to_string()))?;
    let header = "# flumon-dmz configuration, written by `flumon-dmz init`.\n\
                  # Relative paths are relative to this file's folder.\n\n";
    write_public(&config_path, format!("{header}{text}").as_bytes())?;
    Ok(InitReport { config: config_path, demo_vault })
}
