//! `flumon-agent verify-release FILE --sig SIG --pubkey KEY [--sm3 HEX]`:
//! checks a downloaded release (the agent program from the DMZ's 下载中心)
//! before it is installed: its SM2 signature (SM3, default distinguishing id,
//! DER as OpenSSL writes it, or the raw 64-byte r‖s) by the release key, and
//! optionally its SM3 digest as published beside it.
//!
//! ```text
//!  FILE ─▶ SM3 ─▶ (== --sm3?) ─┐
//!  SIG (DER | r‖s) ────────────┼─▶ SM2 verify with KEY (SPKI PEM) ─▶ "校验通过" + digest | error
//! ```
//! The same check with OpenSSL (docs/AGENT.md):
//! `openssl pkeyutl -verify -pubin -inkey KEY -rawin -in FILE -sigfile SIG -digest sm3 -pkeyopt distid:1234567812345678`

use std::path::{Path, PathBuf};

use flumon_shared::crypto::{Sm2PublicKey, Sm2Signature, sm3};

use crate::Error;

/// Arguments of `verify-release`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// 下载的文件 (the downloaded file)
    pub file: PathBuf,
    /// 签名文件 (.sig, SM2 签名, DER)
    #[arg(long)]
    pub sig: PathBuf,
    /// 发布签名公钥 (release-sign.pub.pem, SPKI PEM)
    #[arg(long)]
    pub pubkey: PathBuf,
    /// 公布的 SM3 摘要 (64 位十六进制), 给出时一并核对 (the published SM3 digest, checked when given)
    #[arg(long)]
    pub sm3: Option<String>,
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Read { path: path.display().to_string(), source })
}

/// Verifies; returns the file's SM3 digest (hex) when everything matches.
pub fn verify(args: &Args) -> Result<String, Error> {
    let data = read(&args.file)?;
    let digest = hex::encode(sm3(&data));
    if let Some(want) = &args.sm3 {
        let want = want.trim().to_ascii_lowercase();
        if want != digest {
            return Err(Error::Config(format!(
                "SM3 摘要不符: 文件为 {digest}, 公布的是 {want}。文件已损坏或被篡改, 请勿安装 (digest mismatch)"
            )));
        }
    }
    let sig_bytes = read(&args.sig)?;
    let sig = Sm2Signature::from_der(&sig_bytes)
        .or_else(|_| Sm2Signature::from_bytes(&sig_bytes))
        .map_err(|_| Error::Config("签名文件格式不对, 应为 DER 或 64 字节 r‖s (bad signature file)".into()))?;
    let pem = std::fs::read_to_string(&args.pubkey)
        .map_err(|source| Error::Read { path: args.pubkey.display().to_string(), source })?;
    let key = Sm2PublicKey::from_spki_pem(&pem)
        .map_err(|e| Error::Config(format!("公钥文件无法读取, 应为 SPKI PEM (bad public key): {e}")))?;
    key.verify(&data, &sig).map_err(|_| {
        Error::Config(
            "签名校验失败: 文件不是用该发布密钥签名的, 或已被改动。请勿安装 (signature does not verify)".into(),
        )
    })?;
    Ok(digest)
}

/// The subcommand: prints the result in Chinese (and English).
pub fn main(args: &Args) -> Result<(), Error> {
    let digest = verify(args)?;
    println!("校验通过 (verified): {}\nSM3: {digest}", args.file.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flumon_shared::crypto::Sm2PrivateKey;

    #[test]
    fn good_release_verifies_and_tampering_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = Sm2PrivateKey::generate().unwrap();
        let file = dir.path().join("flumon-agent");
        let sig = dir.path().join("flumon-agent.sig");
        let pubkey = dir.path().join("release.pub.pem");
        std::fs::write(&file, b"\x7fELF a program").unwrap();
        std::fs::write(&sig, key.sign(b"\x7fELF a program").unwrap().to_der().unwrap()).unwrap();
        key.public_key().save(&pubkey).unwrap();
        let mut a = Args { file: file.clone(), sig, pubkey, sm3: None };
        let d = verify(&a).unwrap();
        a.sm3 = Some(d.to_uppercase());
        verify(&a).unwrap();
        a.sm3 = Some("00".repeat(32));
        assert!(verify(&a).unwrap_err().to_string().contains("摘要不符"));
        a.sm3 = None;
        std::fs::write(&file, b"\x7fELF a program!").unwrap();
        assert!(verify(&a).unwrap_err().to_string().contains("签名校验失败"));
        let other = Sm2PrivateKey::generate().unwrap();
        std::fs::write(&file, b"\x7fELF a program").unwrap();
        std::fs::remove_file(&a.pubkey).unwrap();
        other.public_key().save(&a.pubkey).unwrap();
        assert!(verify(&a).is_err());
    }
}
