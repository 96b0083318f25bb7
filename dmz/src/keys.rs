//! Key material the running DMZ holds, loaded once at start from the files
//! that `init` wrote. Every secret type zeroizes on drop and prints as
//! `[redacted]`; nothing here is ever logged.
//!
//! ```text
//!  link.key (SM4) ─────────▶ batches (SM4-GCM)
//!  dmz-sign.pem (SM2) ─────▶ batch signatures, journal checkpoints, export manifests
//!  person.key, pseudonym.key ─▶ Desensitiser (HMAC-SM3)
//!  vault.pub.pem (SM2 public) ─▶ wraps each upload's fresh SM4 data key (C1C3C2)
//!  ca.pem + ca.key ────────▶ agent client certificates
//!  operator.token (SM3 kept), operator.pem (fingerprint kept) ─▶ admin operator endpoints
//! ```
//! The vault's private key is never read here.

use std::path::Path;

use flumon_shared::crypto::{Sm2PrivateKey, Sm2PublicKey, SymKey, sm3};
use flumon_shared::desens::keys::{KEY_LEN, PersonKey, PseudonymKey};
use flumon_shared::desens::outbound::Desensitiser;
use flumon_shared::desens::scrub::ScrubOptions;
use zeroize::Zeroizing;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::tls::Ca;

/// Everything secret or signing the server needs.
pub struct Keys {
    pub link: SymKey,
    pub sign: Sm2PrivateKey,
    pub vault: Sm2PublicKey,
    pub desens: Desensitiser,
    pub ca: Ca,
    /// SM3 of the operator token.
    pub operator_token_sm3: [u8; 32],
    /// Fingerprint of the operator's client certificate.
    pub operator_cert_fp: String,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys([redacted])")
    }
}

/// Reads a 32-byte key written as 64 hex digits on one line (mode 0600).
pub fn read_hex32(path: &Path) -> Result<Zeroizing<[u8; KEY_LEN]>> {
    let text = Zeroizing::new(std::fs::read_to_string(path)?);
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    hex::decode_to_slice(text.trim(), out.as_mut_slice())
        .map_err(|_| Error::Config(format!("{}: expected 64 hex digits", path.display())))?;
    Ok(out)
}

/// Writes a fresh 32-byte random key as hex (mode 0600, refuses to overwrite).
pub fn write_new_hex32(path: &Path) -> Result<()> {
    let key: Zeroizing<[u8; KEY_LEN]> = Zeroizing::new(flumon_shared::crypto::random_array()?);
    let mut text = Zeroizing::new(hex::encode(key.as_slice()));
    text.push('\n');
    write_secret(path, text.as_bytes())
}

/// Creates `path` with mode 0600 (fails if it exists) and fsyncs it.
pub fn write_secret(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// Creates `path` (mode 0644, not secret; fails if it exists) and fsyncs it.
pub fn write_public(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

impl Keys {
    /// Loads every key named by `cfg`.
    pub fn load(cfg: &Config) -> Result<Keys> {
        let p = &cfg.paths;
        let person = read_hex32(&p.person_key)?;
        let pseudo = read_hex32(&p.pseudonym_key)?;
        let token = Zeroizing::new(std::fs::read_to_string(&p.operator_token)?);
        let op_cert = crate::tls::load_certs(&p.operator_cert)?;
        let operator_cert_fp = op_cert.first().map(|c| crate::tls::fingerprint(c)).unwrap_or_default();
        Ok(Keys {
            link: SymKey::load(&p.link_key)?,
            sign: Sm2PrivateKey::load(&p.sign_key)?,
            vault: Sm2PublicKey::load(&p.vault_pub)?,
            desens: Desensitiser {
                person: PersonKey::from_bytes(*person),
                pseudonym: PseudonymKey::from_bytes(*pseudo),
                scrub: ScrubOptions::default(),
                drop_free_text: cfg.desens.drop_free_text,
            },
            ca: Ca::load(&p.ca_cert, &p.ca_key)?,
            operator_token_sm3: sm3(token.trim().as_bytes()),
            operator_cert_fp,
        })
    }
}
