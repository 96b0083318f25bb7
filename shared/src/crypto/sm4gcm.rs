//! SM4 (GB/T 32907) and SM4-GCM (NIST SP 800-38D with SM4 as the block
//! cipher, as RFC 8998 uses it): `aes_gcm::AesGcm<sm4::Sm4, U12>`.
//!
//! ```text
//!   key(16) nonce(12) aad plaintext ──▶ sm4_gcm_seal ──▶ ciphertext ‖ tag(16)
//!   key(16) nonce(12) aad ct‖tag    ──▶ sm4_gcm_open ──▶ plaintext | Error::Crypto
//! ```
//!
//! A (key, nonce) pair must never encrypt two messages: callers either use a
//! fresh random nonce per message or a counter under a fresh key.

use aes_gcm::AesGcm;
use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use sm4::Sm4;
use sm4::cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt};

use super::keys::SymKey;
use crate::{Error, Result};

/// SM4-GCM nonce length (96 bits).
pub const GCM_NONCE_LEN: usize = 12;
/// SM4-GCM tag length (128 bits), appended to the ciphertext.
pub const GCM_TAG_LEN: usize = 16;

/// SM4-GCM with a 96-bit nonce and 128-bit tag.
pub(crate) type Sm4Gcm = AesGcm<Sm4, U12>;

/// Builds the SM4-GCM cipher for `key`.
pub(crate) fn cipher(key: &SymKey) -> Sm4Gcm {
    Sm4Gcm::new(&Array::from(*key.as_bytes()))
}

/// Encrypts and authenticates: returns `ciphertext ‖ tag`.
pub fn sm4_gcm_seal(key: &SymKey, nonce: &[u8; GCM_NONCE_LEN], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    seal_with(&cipher(key), nonce, aad, plaintext)
}

/// Checks the tag and decrypts `ciphertext ‖ tag`.
pub fn sm4_gcm_open(key: &SymKey, nonce: &[u8; GCM_NONCE_LEN], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
    open_with(&cipher(key), nonce, aad, sealed)
}

pub(crate) fn seal_with(c: &Sm4Gcm, nonce: &[u8; GCM_NONCE_LEN], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    c.encrypt(&Array::from(*nonce), Payload { msg: plaintext, aad })
        .map_err(|_| Error::Crypto("SM4-GCM encryption failed (input too long)".into()))
}

pub(crate) fn open_with(c: &Sm4Gcm, nonce: &[u8; GCM_NONCE_LEN], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
    if sealed.len() < GCM_TAG_LEN {
        return Err(Error::Crypto("SM4-GCM: ciphertext shorter than the tag".into()));
    }
    c.decrypt(&Array::from(*nonce), Payload { msg: sealed, aad })
        .map_err(|_| Error::Crypto("SM4-GCM authentication failed".into()))
}

/// SM4 of a single 16-byte block (for known-answer and interop tests, and
/// for building other modes in tests; not a mode of operation by itself).
pub fn sm4_encrypt_block(key: &SymKey, block: &[u8; 16]) -> [u8; 16] {
    let c = Sm4::new(&Array::from(*key.as_bytes()));
    let mut b = Array::from(*block);
    c.encrypt_block(&mut b);
    b.into()
}

/// Inverse of [`sm4_encrypt_block`].
pub fn sm4_decrypt_block(key: &SymKey, block: &[u8; 16]) -> [u8; 16] {
    let c = Sm4::new(&Array::from(*key.as_bytes()));
    let mut b = Array::from(*block);
    c.decrypt_block(&mut b);
    b.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace([' ', '\n'], "")).unwrap()
    }

    #[test]
    fn sm4_block_kat_gbt32907() {
        // GB/T 32907-2016 Appendix A, example 1.
        let key = SymKey::from_slice(&h("0123456789abcdeffedcba9876543210")).unwrap();
        let pt: [u8; 16] = h("0123456789abcdeffedcba9876543210").try_into().unwrap();
        let ct = sm4_encrypt_block(&key, &pt);
        assert_eq!(ct.to_vec(), h("681edf34d206965e86b3e94f536e4246"));
        assert_eq!(sm4_decrypt_block(&key, &ct), pt);
    }

    #[test]
    fn sm4_block_kat_million_iterations() {
        // GB/T 32907-2016 Appendix A, example 2: 1,000,000 encryptions.
        let key = SymKey::from_slice(&h("0123456789abcdeffedcba9876543210")).unwrap();
        let c = Sm4::new(&Array::from(*key.as_bytes()));
        let mut b = Array::from(<[u8; 16]>::try_from(h("0123456789abcdeffedcba9876543210")).unwrap());
        for _ in 0..1_000_000 {
            c.encrypt_block(&mut b);
        }
        assert_eq!(b.to_vec(), h("595298c7c6fd271f0402f804c33d3f66"));
    }

    #[test]
    fn sm4_gcm_kat_rfc8998() {
        // RFC 8998 Appendix A.1 (SM4-GCM).
        let key = SymKey::from_slice(&h("0123456789ABCDEFFEDCBA9876543210")).unwrap();
        let nonce: [u8; 12] = h("00001234567800000000ABCD").try_into().unwrap();
        let aad = h("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2");
        let pt = h("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB CCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD
                    EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFF EEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA");
        let ct = h("17F399F08C67D5EE19D0DC9969C4BB7D 5FD46FD3756489069157B282BB200735
                    D82710CA5C22F0CCFA7CBF93D496AC15 A56834CBCF98C397B4024A2691233B8D");
        let tag = h("83DE3541E4C2B58177E065A9BF7B62EC");
        let sealed = sm4_gcm_seal(&key, &nonce, &aad, &pt).unwrap();
        assert_eq!(&sealed[..ct.len()], &ct[..]);
        assert_eq!(&sealed[ct.len()..], &tag[..]);
        assert_eq!(sm4_gcm_open(&key, &nonce, &aad, &sealed).unwrap(), pt);
    }

    #[test]
    fn sm4_gcm_rejects_tampering() {
        let key = SymKey::generate().unwrap();
        let nonce = [9u8; 12];
        let sealed = sm4_gcm_seal(&key, &nonce, b"aad", b"hello").unwrap();
        for i in 0..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 0x80;
            assert!(sm4_gcm_open(&key, &nonce, b"aad", &t).is_err());
        }
        assert!(sm4_gcm_open(&key, &nonce, b"aae", &sealed).is_err());
        assert!(sm4_gcm_open(&key, &[8u8; 12], b"aad", &sealed).is_err());
        assert!(sm4_gcm_open(&SymKey::generate().unwrap(), &nonce, b"aad", &sealed).is_err());
        assert!(sm4_gcm_open(&key, &nonce, b"aad", &sealed[..15]).is_err());
        assert!(sm4_gcm_open(&key, &nonce, b"aad", &[]).is_err());
        let empty = sm4_gcm_seal(&key, &nonce, b"", b"").unwrap();
        assert_eq!(empty.len(), GCM_TAG_LEN);
        assert_eq!(sm4_gcm_open(&key, &nonce, b"", &empty).unwrap(), b"");
    }
}
