//! SM2 (GB/T 32918): signatures with the distinguishing id
//! `1234567812345678`, public-key encryption of short data keys in C1C3C2
//! order, and PKCS#8 / SPKI PEM key files that OpenSSL and GmSSL read.
//!
//! ```text
//!   Sm2PrivateKey ──sign(msg)──▶ Sm2Signature (64 B r‖s; to_der() for OpenSSL)
//!        │   ▲                          │
//!        │   └──decrypt(C1‖C3‖C2)       ▼
//!        └──public_key()──▶ Sm2PublicKey ──verify(msg, sig)
//!                                   └──encrypt(data key) ──▶ 04‖x‖y ‖ C3(32) ‖ C2
//!   files: private "-----BEGIN PRIVATE KEY-----" (PKCS#8, id-ecPublicKey + curve 1.2.156.10197.1.301)
//!          public  "-----BEGIN PUBLIC KEY-----"  (SPKI, same algorithm identifier)
//! ```
//!
//! Signing is hedged: the nonce comes from RFC 6979 mixed with fresh OS
//! randomness (the `sm2` crate's randomized signer). The secret scalar lives
//! in `sm2::SecretKey`, which zeroizes on drop; the `sm2` crate's transient
//! `SigningKey` made for each signature has no zeroize of its own.

use std::path::Path;

use sm2::dsa::signature::{MultipartVerifier, RandomizedMultipartSigner};
use sm2::dsa::{Signature, SigningKey, VerifyingKey};
use sm2::elliptic_curve::Generate;
use sm2::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use sm2::pke::{Cipher, DecryptingKey, EncryptingKey, Mode};
use sm2::{PublicKey, SecretKey};
use zeroize::Zeroizing;

use super::RingRng;
use super::hash::sm3;
use super::keys::{read_secret_file, write_new_file, write_secret_file};
use crate::{Error, Result};

/// The distinguishing identifier of GB/T 35276 / GM/T 0009 (the default).
pub const SM2_DIST_ID: &str = "1234567812345678";
/// Length of a signature as flumon stores it: r ‖ s, 32 bytes each.
pub const SM2_SIGNATURE_LEN: usize = 64;
/// Longest plaintext [`Sm2PublicKey::encrypt`] accepts (a data key or two).
const MAX_SM2_PLAINTEXT: usize = 1024;
/// C1 (uncompressed point) + C3 (SM3) lengths.
const C1_LEN: usize = 65;
const C3_LEN: usize = 32;
/// Largest PEM public key file read.
const MAX_PUBLIC_PEM: u64 = 4096;

/// An SM2 private key. Zeroized on drop; Debug shows only the public key's
/// fingerprint.
pub struct Sm2PrivateKey {
    secret: SecretKey,
    public: Sm2PublicKey,
}

/// An SM2 public key (signature verification, encryption).
#[derive(Clone)]
pub struct Sm2PublicKey {
    key: PublicKey,
    verifying: VerifyingKey,
}

/// An SM2 signature (r, s), stored as 64 bytes r ‖ s (big-endian, 32 each).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Sm2Signature([u8; SM2_SIGNATURE_LEN]);

impl Sm2PrivateKey {
    /// A fresh key pair from the OS generator (ring's `SystemRandom`).
    pub fn generate() -> Result<Self> {
        let secret = SecretKey::try_generate_from_rng(&mut RingRng)
            .map_err(|_| Error::Crypto("system random generator failed".into()))?;
        Self::from_secret(secret)
    }

    fn from_secret(secret: SecretKey) -> Result<Self> {
        let public = Sm2PublicKey::from_key(secret.public_key())?;
        Ok(Sm2PrivateKey { secret, public })
    }

    /// The 32-byte big-endian secret scalar (e.g. for a test vector).
    pub fn from_scalar_bytes(bytes: &[u8]) -> Result<Self> {
        let secret = SecretKey::from_slice(bytes).map_err(|_| Error::Key("not a valid SM2 secret scalar".into()))?;
        Self::from_secret(secret)
    }

    /// Parses a PKCS#8 `PRIVATE KEY` PEM (unencrypted).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self> {
        let secret = SecretKey::from_pkcs8_pem(pem).map_err(|e| Error::Key(format!("SM2 PKCS#8 PEM: {e}")))?;
        Self::from_secret(secret)
    }

    /// Parses PKCS#8 DER.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self> {
        let secret = SecretKey::from_pkcs8_der(der).map_err(|e| Error::Key(format!("SM2 PKCS#8 DER: {e}")))?;
        Self::from_secret(secret)
    }

    /// PKCS#8 `PRIVATE KEY` PEM (LF line ends).
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>> {
        self.secret.to_pkcs8_pem(LineEnding::LF).map_err(|e| Error::Key(format!("SM2 PKCS#8 encode: {e}")))
    }

    /// PKCS#8 DER.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>> {
        let doc = self.secret.to_pkcs8_der().map_err(|e| Error::Key(format!("SM2 PKCS#8 encode: {e}")))?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    /// Reads a PKCS#8 PEM file (at most 4 KiB).
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = read_secret_file(path)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| Error::Key("key file is not UTF-8".into()))?;
        Self::from_pkcs8_pem(text)
    }

    /// Writes a new PKCS#8 PEM file (mode 0600, fsynced); refuses to overwrite.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_secret_file(path, self.to_pkcs8_pem()?.as_bytes())
    }

    /// The matching public key.
    pub fn public_key(&self) -> &Sm2PublicKey {
        &self.public
    }

    /// Signs `msg` (SM3 with Z = H(ENTL ‖ "1234567812345678" ‖ a ‖ b ‖ G ‖ P)).
    pub fn sign(&self, msg: &[u8]) -> Result<Sm2Signature> {
        self.sign_parts(&[msg])
    }

    /// Signs the concatenation of `parts` without copying them together.
    pub fn sign_parts(&self, parts: &[&[u8]]) -> Result<Sm2Signature> {
        let signer = SigningKey::new(SM2_DIST_ID, &self.secret)
            .map_err(|_| Error::Crypto("SM2 signing key setup failed".into()))?;
        // The crate returns an error instead of retrying on the negligible
        // r = 0 / r + k = n / s = 0 cases; retry with fresh randomness.
        for _ in 0..4 {
            if let Ok(sig) = signer.try_multipart_sign_with_rng(&mut RingRng, parts) {
                return Ok(Sm2Signature(sig.to_bytes().into()));
            }
        }
        Err(Error::Crypto("SM2 signing failed".into()))
    }

    /// Decrypts an SM2 ciphertext in C1C3C2 order (C1 uncompressed).
    pub fn decrypt(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let fail = || Error::Crypto("SM2 decryption failed".into());
        if ciphertext.first() != Some(&0x04)
            || ciphertext.len() <= C1_LEN + C3_LEN
            || ciphertext.len() > C1_LEN + C3_LEN + MAX_SM2_PLAINTEXT
        {
            return Err(fail());
        }
        let cipher = Cipher::<sm2::Sm2, ::sm3::Sm3>::from_slice(ciphertext, Mode::C1C3C2).map_err(|_| fail())?;
        self.decrypt_cipher(&cipher)
    }

    /// Decrypts the ASN.1 DER form (GM/T 0009 `SM2Cipher`: x, y, hash, ciphertext)
    /// that `openssl pkeyutl -encrypt` and GmSSL produce.
    pub fn decrypt_der(&self, der: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        use sm2::pkcs8::der::Decode;
        let fail = || Error::Crypto("SM2 decryption failed".into());
        if der.len() > C1_LEN + C3_LEN + MAX_SM2_PLAINTEXT + 32 {
            return Err(fail());
        }
        let cipher = Cipher::<sm2::Sm2, ::sm3::Sm3>::from_der(der).map_err(|_| fail())?;
        self.decrypt_cipher(&cipher)
    }

    fn decrypt_cipher(&self, cipher: &Cipher<'_, sm2::Sm2, ::sm3::Sm3>) -> Result<Zeroizing<Vec<u8>>> {
        let fail = || Error::Crypto("SM2 decryption failed".into());
        if cipher.c2().is_empty() || cipher.c2().len() > MAX_SM2_PLAINTEXT {
            return Err(fail());
        }
        let dk = DecryptingKey::new_with_mode(self.secret.to_nonzero_scalar(), Mode::C1C3C2);
        let mut out = Zeroizing::new(vec![0u8; cipher.c2().len()]);
        let n = dk.decrypt_cipher_with_buf(cipher, &mut out).map_err(|_| fail())?;
        out.truncate(n);
        Ok(out)
    }
}

impl std::fmt::Debug for Sm2PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sm2PrivateKey")
            .field("secret", &"[redacted]")
            .field("public", &hex::encode(self.public.fingerprint()))
            .finish()
    }
}

impl Sm2PublicKey {
    fn from_key(key: PublicKey) -> Result<Self> {
        let verifying =
            VerifyingKey::new(SM2_DIST_ID, key).map_err(|_| Error::Key("SM2 public key rejected".into()))?;
        Ok(Sm2PublicKey { key, verifying })
    }

    /// Parses a SEC1 point (65-byte uncompressed `04‖x‖y`, or compressed).
    pub fn from_sec1_bytes(bytes: &[u8]) -> Result<Self> {
        let key = PublicKey::from_sec1_bytes(bytes).map_err(|_| Error::Key("not an SM2 public point".into()))?;
        Self::from_key(key)
    }

    /// The 65-byte uncompressed point `04 ‖ x ‖ y`.
    pub fn to_sec1_bytes(&self) -> Vec<u8> {
        self.key.to_sec1_bytes().into_vec()
    }

    /// SM3 of the uncompressed point: a stable id for logs and key lists.
    pub fn fingerprint(&self) -> [u8; 32] {
        sm3(&self.to_sec1_bytes())
    }

    /// Parses an SPKI `PUBLIC KEY` PEM.
    pub fn from_spki_pem(pem: &str) -> Result<Self> {
        let key = PublicKey::from_public_key_pem(pem).map_err(|e| Error::Key(format!("SM2 SPKI PEM: {e}")))?;
        Self::from_key(key)
    }

    /// Parses SPKI DER.
    pub fn from_spki_der(der: &[u8]) -> Result<Self> {
        let key = PublicKey::from_public_key_der(der).map_err(|e| Error::Key(format!("SM2 SPKI DER: {e}")))?;
        Self::from_key(key)
    }

    /// SPKI `PUBLIC KEY` PEM (LF line ends).
    pub fn to_spki_pem(&self) -> Result<String> {
        self.key.to_public_key_pem(LineEnding::LF).map_err(|e| Error::Key(format!("SM2 SPKI encode: {e}")))
    }

    /// SPKI DER.
    pub fn to_spki_der(&self) -> Result<Vec<u8>> {
        let doc = self.key.to_public_key_der().map_err(|e| Error::Key(format!("SM2 SPKI encode: {e}")))?;
        Ok(doc.as_bytes().to_vec())
    }

    /// Reads an SPKI PEM file (at most 4 KiB).
    pub fn load(path: &Path) -> Result<Self> {
        use std::io::Read;
        let f = std::fs::File::open(path)?;
        let mut text = String::new();
        f.take(MAX_PUBLIC_PEM + 1).read_to_string(&mut text)?;
        if text.len() as u64 > MAX_PUBLIC_PEM {
            return Err(Error::Key(format!("public key file {} is too large", path.display())));
        }
        Self::from_spki_pem(&text)
    }

    /// Writes a new SPKI PEM file (mode 0644, fsynced); refuses to overwrite.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_new_file(path, self.to_spki_pem()?.as_bytes(), 0o644)
    }

    /// Verifies `sig` over `msg`.
    pub fn verify(&self, msg: &[u8], sig: &Sm2Signature) -> Result<()> {
        self.verify_parts(&[msg], sig)
    }

    /// Verifies `sig` over the concatenation of `parts`.
    pub fn verify_parts(&self, parts: &[&[u8]], sig: &Sm2Signature) -> Result<()> {
        let bad = || Error::Crypto("SM2 signature does not verify".into());
        let s = Signature::from_slice(&sig.0).map_err(|_| bad())?;
        self.verifying.multipart_verify(parts, &s).map_err(|_| bad())
    }

    /// Encrypts a short secret (≤ 1 KiB, e.g. an SM4 data key) to this key:
    /// `04 ‖ x1 ‖ y1 ‖ C3 ‖ C2` (C1C3C2, GB/T 32918.4-2016 order).
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>> {
        self.check_plaintext(plaintext)?;
        EncryptingKey::new_with_mode(self.key, Mode::C1C3C2)
            .encrypt(&mut RingRng, plaintext)
            .map_err(|_| Error::Crypto("SM2 encryption failed".into()))
    }

    /// Encrypts to the ASN.1 DER `SM2Cipher` form (for OpenSSL / GmSSL).
    pub fn encrypt_der(&self, plaintext: &[u8]) -> Result<Vec<u8>> {
        self.check_plaintext(plaintext)?;
        EncryptingKey::new_with_mode(self.key, Mode::C1C3C2)
            .encrypt_der(&mut RingRng, plaintext)
            .map_err(|_| Error::Crypto("SM2 encryption failed".into()))
    }

    fn check_plaintext(&self, plaintext: &[u8]) -> Result<()> {
        if plaintext.is_empty() || plaintext.len() > MAX_SM2_PLAINTEXT {
            return Err(Error::Crypto(format!("SM2 encrypts 1..={MAX_SM2_PLAINTEXT} bytes")));
        }
        Ok(())
    }
}

impl PartialEq for Sm2PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Sm2PublicKey {}

impl std::fmt::Debug for Sm2PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sm2PublicKey({})", hex::encode(self.fingerprint()))
    }
}

impl Sm2Signature {
    /// From 64 bytes r ‖ s; rejects r or s outside [1, n-1].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; SM2_SIGNATURE_LEN] =
            bytes.try_into().map_err(|_| Error::Crypto("SM2 signature must be 64 bytes".into()))?;
        Signature::from_slice(&arr).map_err(|_| Error::Crypto("SM2 signature out of range".into()))?;
        Ok(Sm2Signature(arr))
    }

    /// r ‖ s.
    pub fn to_bytes(&self) -> [u8; SM2_SIGNATURE_LEN] {
        self.0
    }

    /// ASN.1 DER `SEQUENCE { INTEGER r, INTEGER s }` (what OpenSSL and GmSSL use).
    pub fn to_der(&self) -> Result<Vec<u8>> {
        let s = Signature::from_slice(&self.0).map_err(|_| Error::Crypto("SM2 signature out of range".into()))?;
        Ok(der_signature(&s.r_bytes(), &s.s_bytes()))
    }

    /// Parses the DER form.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let s = Signature::from_der(der).map_err(|_| Error::Crypto("not a DER SM2 signature".into()))?;
        Ok(Sm2Signature(s.to_bytes().into()))
    }
}

impl std::fmt::Debug for Sm2Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sm2Signature({})", hex::encode(self.0))
    }
}

/// DER of two non-negative 32-byte big-endian integers (avoids the
/// `expect` inside `sm2`'s own `to_der`).
fn der_signature(r: &[u8], s: &[u8]) -> Vec<u8> {
    fn int(v: &[u8], out: &mut Vec<u8>) {
        let start = v.iter().position(|&b| b != 0).unwrap_or(v.len().saturating_sub(1));
        let body = v.get(start..).unwrap_or_default();
        let pad = body.first().is_some_and(|&b| b & 0x80 != 0);
        out.push(0x02);
        out.push((body.len() + usize::from(pad)) as u8);
        if pad {
            out.push(0);
        }
        out.extend_from_slice(body);
    }
    let mut inner = Vec::with_capacity(70);
    int(r, &mut inner);
    int(s, &mut inner);
    let mut out = Vec::with_capacity(inner.len() + 2);
    out.push(0x30);
    out.push(inner.len() as u8);
    out.extend_from_slice(&inner);
    out
}

#[cfg(test)]
mod tests;
