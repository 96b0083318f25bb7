//! flumon's 国密 (SM) cryptography: SM3 and HMAC-SM3, SM4 and SM4-GCM, the
//! segmented SM4-GCM file format, SM2 signatures and encryption, and the key
//! types that hold the secrets.
//!
//! ```text
//!   hash.rs       sm3(), Sm3Hasher, hmac_sm3(), hmac_sm3_verify()
//!   keys.rs       SymKey (SM4, 16 B)  MacKey (HMAC-SM3, 32 B + key id)   ◀── key files
//!   sm4gcm.rs     SM4 block, SM4-GCM seal/open (AesGcm<Sm4, U12>)
//!   segmented.rs  large blobs:  plaintext ─▶ 1 MiB segments ─▶ SM4-GCM each ─▶ file
//!   sm2key.rs     Sm2PrivateKey / Sm2PublicKey: sign/verify (distid 1234567812345678),
//!                 encrypt/decrypt (C1C3C2), PKCS#8 / SPKI PEM
//!
//!   users:  batch (SM4-GCM + SM2 signature), journal (SM3 chain + SM2 checkpoints),
//!           DMZ raw archive (segmented, data key wrapped with SM2 to the vault)
//! ```
//!
//! Every secret lives in a type that zeroizes on drop, compares in constant
//! time and prints as `[redacted]`. Randomness comes from `ring`'s
//! `SystemRandom` (the OS generator). The byte layouts are in docs/FORMATS.md.

mod hash;
mod keys;
mod segmented;
mod sm2key;
mod sm3_core;
mod sm3_hmac;
mod sm4gcm;

#[cfg(test)]
mod formats_tests;
#[cfg(test)]
mod interop_tests;
#[cfg(test)]
mod sm3_tests;

pub use hash::{SM3_LEN, Sm3Hasher, hmac_sm3, hmac_sm3_parts, hmac_sm3_verify, sm3};
pub(crate) use keys::sync_parent_dir;
pub use keys::{MAC_KEY_LEN, MacKey, SYM_KEY_LEN, SymKey};
pub use segmented::{
    DEFAULT_SEGMENT_SIZE, DecryptReader, EncryptWriter, MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE, SEG_HEADER_LEN, SEG_MAGIC,
    SeekDecryptReader, SegmentLimits, open, open_with_limits, seal, seal_with_segment_size,
};
pub use sm2key::{SM2_DIST_ID, SM2_SIGNATURE_LEN, Sm2PrivateKey, Sm2PublicKey, Sm2Signature};
pub use sm3_hmac::HmacSm3Key;
pub use sm4gcm::{GCM_NONCE_LEN, GCM_TAG_LEN, sm4_decrypt_block, sm4_encrypt_block, sm4_gcm_open, sm4_gcm_seal};

use ring::rand::{SecureRandom, SystemRandom};

use crate::{Error, Result};

/// Fill `buf` from the operating system's CSPRNG (ring's `SystemRandom`).
pub fn fill_random(buf: &mut [u8]) -> Result<()> {
    SystemRandom::new().fill(buf).map_err(|_| Error::Crypto("system random generator failed".into()))
}

/// `N` fresh random bytes from the operating system's CSPRNG.
pub fn random_array<const N: usize>() -> Result<[u8; N]> {
    let mut out = [0u8; N];
    fill_random(&mut out)?;
    Ok(out)
}

/// Adapter that lets the `sm2` crate (rand_core 0.10) draw from ring's
/// `SystemRandom`.
#[derive(Debug, Default)]
pub(crate) struct RingRng;

/// The OS generator failed.
#[derive(Debug)]
pub(crate) struct RngFailed;

impl std::fmt::Display for RngFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("system random generator failed")
    }
}

impl std::error::Error for RngFailed {}

impl sm2::elliptic_curve::rand_core::TryRng for RingRng {
    type Error = RngFailed;

    fn try_next_u32(&mut self) -> std::result::Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> std::result::Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> std::result::Result<(), Self::Error> {
        SystemRandom::new().fill(dst).map_err(|_| RngFailed)
    }
}

impl sm2::elliptic_curve::rand_core::TryCryptoRng for RingRng {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_is_not_constant() {
        let a: [u8; 32] = random_array().unwrap();
        let b: [u8; 32] = random_array().unwrap();
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 32]);
    }
}
