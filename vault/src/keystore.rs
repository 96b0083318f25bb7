//! The vault's SM2 key pair on disk: the private key is never stored in the
//! clear. Either one key file sealed under one passphrase, or N share files
//! (Shamir over GF(256), see `shamir.rs`) each sealed under its own officer's
//! passphrase, of which M are needed.
//!
//! ```text
//!  keygen:  SM2 key ─▶ vault.pub.pem (for `flumon-dmz init --vault-pubkey`)
//!             ├ whole:  PKCS#8 DER ───────────────────────────▶ seal(passphrase) ─▶ vault.key
//!             └ shares: 32-byte scalar ─▶ split(N, M) ─▶ share x ─▶ seal(passphrase_x) ─▶ share-x-of-N.key
//!  seal:    argon2id(passphrase, salt 16 B, m KiB, t, p) ─▶ 16-byte SM4 key
//!           SM4-GCM(key, nonce 12 B, aad = header text, secret) ─▶ "sealed" (hex)
//!  unlock:  key files + passphrases ─▶ open each ─▶ (combine ≥ M shares) ─▶ Sm2PrivateKey
//!           ─▶ its public key must equal vault.pub.pem (wrong shares cannot pass)
//! ```
//! A key file is JSON (`format` = `flumon-vault-key/1`); everything but the
//! sealed bytes is bound to them through the AAD (see [`KeyFile::aad`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use flumon_shared::crypto::{Sm2PrivateKey, Sm2PublicKey, SymKey, random_array, sm4_gcm_open, sm4_gcm_seal};

use crate::Error;
use crate::shamir::{self, Share};

/// Format tag of a key file.
pub const KEY_FORMAT: &str = "flumon-vault-key/1";
/// The public key file name in a vault folder.
pub const PUBLIC_KEY_FILE: &str = "vault.pub.pem";
/// The whole (unsplit) key file name.
pub const WHOLE_KEY_FILE: &str = "vault.key";
/// Smallest argon2 memory accepted, KiB (tests); production default is [`KdfParams::default`].
pub const MIN_KDF_KIB: u32 = 8 * 1024;

/// argon2id parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdfParams {
    /// Memory, KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Default for KdfParams {
    /// 256 MiB, 3 passes, 1 lane: about a second on an ordinary workstation.
    fn default() -> Self {
        KdfParams { m_kib: 256 * 1024, t: 3, p: 1 }
    }
}

/// Which share a file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareInfo {
    pub x: u8,
    pub threshold: u8,
    pub shares: u8,
}

/// A key file as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    pub format: String,
    /// Hex SM3 fingerprint of the vault public key this belongs to.
    pub public_key: String,
    /// `None` for the whole key.
    pub share: Option<ShareInfo>,
    pub kdf: KdfParams,
    pub salt: String,
    pub nonce: String,
    pub sealed: String,
}

impl KeyFile {
    /// The associated data: every header field, one per line.
    fn aad(&self) -> Vec<u8> {
        let share =
            self.share.map(|s| format!("{}/{}/{}", s.x, s.threshold, s.shares)).unwrap_or_else(|| "whole".into());
        format!(
            "{}\n{}\n{share}\nargon2id/{}/{}/{}\n{}",
            self.format, self.public_key, self.kdf.m_kib, self.kdf.t, self.kdf.p, self.salt
        )
        .into_bytes()
    }

    /// Reads a key file (at most 64 KiB).
    pub fn load(path: &Path) -> Result<KeyFile, Error> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if meta.len() > 64 * 1024 {
            return Err(Error::KeyFile(format!("{}: 文件过大, 不是密钥文件 (too large)", path.display())));
        }
        let text = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let kf: KeyFile = serde_json::from_slice(&text).map_err(|e| {
            Error::KeyFile(format!("{}: 不是保管库密钥文件 (not a vault key file): {e}", path.display()))
        })?;
        if kf.format != KEY_FORMAT {
            return Err(Error::KeyFile(format!("{}: 不支持的格式 {} (unsupported format)", path.display(), kf.format)));
        }
        Ok(kf)
    }
}

fn derive(pass: &str, salt: &[u8], kdf: KdfParams) -> Result<SymKey, Error> {
    if kdf.m_kib < MIN_KDF_KIB || kdf.t == 0 || kdf.p == 0 || kdf.m_kib > 4 * 1024 * 1024 || kdf.t > 64 || kdf.p > 16 {
        return Err(Error::KeyFile(format!("argon2 参数超出范围 (argon2 parameters out of range): {kdf:?}")));
    }
    let params =
        argon2::Params::new(kdf.m_kib, kdf.t, kdf.p, Some(16)).map_err(|e| Error::KeyFile(format!("argon2: {e}")))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 16]);
    a.hash_password_into(pass.as_bytes(), salt, out.as_mut()).map_err(|e| Error::KeyFile(format!("argon2: {e}")))?;
    Ok(SymKey::from_slice(out.as_ref())?)
}

fn seal(
    secret: &[u8],
    pass: &str,
    public_fp: &str,
    share: Option<ShareInfo>,
    kdf: KdfParams,
) -> Result<KeyFile, Error> {
    if pass.chars().count() < 8 {
        return Err(Error::Usage("口令至少 8 个字符 (passphrase: at least 8 characters)".into()));
    }
    let salt: [u8; 16] = random_array()?;
    let nonce: [u8; 12] = random_array()?;
    let mut kf = KeyFile {
        format: KEY_FORMAT.into(),
        public_key: public_fp.into(),
        share,
        kdf,
        salt: hex::encode(salt),
        nonce: hex::encode(nonce),
        sealed: String::new(),
    };
    let key = derive(pass, &salt, kdf)?;
    kf.sealed = hex::encode(sm4_gcm_seal(&key, &nonce, &kf.aad(), secret)?);
    Ok(kf)
}

/// Opens a key file with its passphrase.
pub fn unseal(kf: &KeyFile, pass: &str, shown: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
    let bad = || Error::KeyFile(format!("{shown}: 文件已损坏 (corrupt key file)"));
    let salt = hex::decode(&kf.salt).map_err(|_| bad())?;
    let nonce: [u8; 12] = hex::decode(&kf.nonce).ok().and_then(|n| n.try_into().ok()).ok_or_else(bad)?;
    let sealed = hex::decode(&kf.sealed).map_err(|_| bad())?;
    let key = derive(pass, &salt, kf.kdf)?;
    sm4_gcm_open(&key, &nonce, &kf.aad(), &sealed)
        .map(Zeroizing::new)
        .map_err(|_| Error::WrongPassphrase(shown.to_owned()))
}

/// What `keygen` needs.
pub struct KeygenConfig {
    pub out: PathBuf,
    /// `Some((n, m))`: split into n shares, m needed.
    pub shares: Option<(u8, u8)>,
    /// One passphrase (whole key) or one per share, in share order.
    pub passphrases: Vec<Zeroizing<String>>,
    pub kdf: KdfParams,
}

/// What `keygen` wrote.
#[derive(Debug, Serialize)]
pub struct KeygenReport {
    pub public_key: PathBuf,
    pub fingerprint: String,
    pub key_files: Vec<PathBuf>,
    pub journal: PathBuf,
}

/// The share file name of share `x` of `n`.
pub fn share_file_name(x: u8, n: u8) -> String {
    format!("share-{x}-of-{n}.key")
}

/// Makes the vault key pair and writes the public key, the sealed key file(s) and a new journal into `out`.
pub fn keygen(cfg: &KeygenConfig) -> Result<KeygenReport, Error> {
    let want = cfg.shares.map_or(1, |(n, _)| usize::from(n));
    if cfg.passphrases.len() != want {
        return Err(Error::Usage(format!(
            "需要 {want} 个口令, 提供了 {} 个 (passphrases needed)",
            cfg.passphrases.len()
        )));
    }
    std::fs::create_dir_all(&cfg.out).map_err(|e| Error::io(&cfg.out, e))?;
    let pub_path = cfg.out.join(PUBLIC_KEY_FILE);
    if pub_path.exists() {
        return Err(Error::Usage(format!("{} 已存在, 不会覆盖 (exists; not overwritten)", pub_path.display())));
    }
    let key = Sm2PrivateKey::generate()?;
    let fp = hex::encode(key.public_key().fingerprint());
    let mut files = Vec::new();
    match cfg.shares {
        None => {
            let der = key.to_pkcs8_der()?;
            let pass = cfg.passphrases.first().map(|p| p.as_str()).unwrap_or_default();
            let kf = seal(&der, pass, &fp, None, cfg.kdf)?;
            files.push((cfg.out.join(WHOLE_KEY_FILE), kf));
        }
        Some((n, m)) => {
            let scalar = scalar_of(&key)?;
            for (share, pass) in shamir::split(&scalar, n, m)?.iter().zip(&cfg.passphrases) {
                let info = ShareInfo { x: share.x, threshold: m, shares: n };
                let kf = seal(&share.y, pass, &fp, Some(info), cfg.kdf)?;
                files.push((cfg.out.join(share_file_name(share.x, n)), kf));
            }
        }
    }
    for (path, kf) in &files {
        let text = serde_json::to_vec_pretty(kf).map_err(|e| Error::Internal(e.to_string()))?;
        crate::write_new(path, &text, 0o600)?;
    }
    key.public_key().save(&pub_path)?;
    let journal = cfg.out.join(crate::open::JOURNAL_FILE);
    let mut j = flumon_shared::journal::Journal::create(&journal, key.public_key())?;
    let detail = serde_json::json!({
        "fingerprint": fp,
        "shares": cfg.shares.map(|(n, m)| serde_json::json!({"n": n, "m": m})),
        "os_user": crate::os_user(),
        "kdf": cfg.kdf,
    });
    j.append("vault.keygen", &detail)?;
    j.checkpoint(&key)?;
    Ok(KeygenReport {
        public_key: pub_path,
        fingerprint: fp,
        key_files: files.into_iter().map(|(p, _)| p).collect(),
        journal,
    })
}

/// The 32-byte secret scalar, from the PKCS#8 DER (RFC 5915 privateKey OCTET STRING).
fn scalar_of(key: &Sm2PrivateKey) -> Result<Zeroizing<Vec<u8>>, Error> {
    let der = key.to_pkcs8_der()?;
    // ECPrivateKey ::= SEQUENCE { INTEGER 1, OCTET STRING (32) … }: find "02 01 01 04 20"
    let pos = der
        .windows(5)
        .position(|w| w == [0x02, 0x01, 0x01, 0x04, 0x20])
        .ok_or_else(|| Error::Internal("PKCS#8 layout".into()))?;
    let s = der.get(pos + 5..pos + 37).ok_or_else(|| Error::Internal("PKCS#8 layout".into()))?;
    let out = Zeroizing::new(s.to_vec());
    let check = Sm2PrivateKey::from_scalar_bytes(&out)?;
    if check.public_key() != key.public_key() {
        return Err(Error::Internal("PKCS#8 scalar does not match".into()));
    }
    Ok(out)
}

/// A key file with its passphrase, as the officer gives it.
pub struct Unlock {
    pub path: PathBuf,
    pub passphrase: Zeroizing<String>,
}

/// Rebuilds the vault private key from key files; its public key must be `expected`.
pub fn unlock(files: &[Unlock], expected: &Sm2PublicKey) -> Result<Sm2PrivateKey, Error> {
    let fp = hex::encode(expected.fingerprint());
    let mut loaded = Vec::with_capacity(files.len());
    for u in files {
        let kf = KeyFile::load(&u.path)?;
        if kf.public_key != fp {
            return Err(Error::KeyFile(format!(
                "{}: 该密钥文件不属于本保管库 (belongs to another vault key {})",
                u.path.display(),
                kf.public_key
            )));
        }
        loaded.push((kf, u));
    }
    let wrong =
        || Error::KeyFile("恢复出的私钥与保管库公钥不符 (rebuilt key does not match the vault public key)".into());
    let (first, _) = loaded.first().ok_or_else(|| Error::Usage("未提供密钥文件 (no key file given)".into()))?;
    let key = match first.share {
        None => {
            let (kf, u) = loaded.first().ok_or_else(wrong)?;
            if loaded.len() != 1 {
                return Err(Error::Usage("完整密钥文件只需一个 (give the whole key file alone)".into()));
            }
            let der = unseal(kf, &u.passphrase, &u.path.display().to_string())?;
            Sm2PrivateKey::from_pkcs8_der(&der)?
        }
        Some(info) => {
            if loaded
                .iter()
                .any(|(k, _)| k.share.map(|s| (s.threshold, s.shares)) != Some((info.threshold, info.shares)))
            {
                return Err(Error::KeyFile("份额文件不属于同一次拆分 (shares of different splits)".into()));
            }
            if loaded.len() < usize::from(info.threshold) {
                return Err(Error::NotEnoughShares { need: info.threshold, of: info.shares, got: loaded.len() });
            }
            let mut shares = Vec::with_capacity(loaded.len());
            for (kf, u) in &loaded {
                let y = unseal(kf, &u.passphrase, &u.path.display().to_string())?;
                shares.push(Share { x: kf.share.map_or(0, |s| s.x), y });
            }
            let scalar = shamir::combine(&shares)?;
            Sm2PrivateKey::from_scalar_bytes(&scalar).map_err(|_| wrong())?
        }
    };
    if key.public_key() != expected {
        return Err(wrong());
    }
    Ok(key)
}
