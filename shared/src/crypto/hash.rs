//! SM3 (GB/T 32905) and HMAC-SM3 (RFC 2104 with SM3), on flumon's own SM3
//! (sm3_core.rs, sm3_hmac.rs).
//!
//! ```text
//!   bytes ──▶ sm3() ──▶ [u8; 32]            (batch payload digest, journal chain)
//!   key, bytes ──▶ hmac_sm3() ──▶ [u8; 32]  (datagram MACs, truncated to 16 B by the link)
//!   tag ──▶ hmac_sm3_verify() ──▶ bool      (constant time; accepts truncated tags ≥ 16 B)
//! ```

use subtle::ConstantTimeEq;

use super::sm3_core::Sm3State;
use super::sm3_hmac::HmacSm3Key;

/// Length of an SM3 digest and of a full HMAC-SM3 tag.
pub const SM3_LEN: usize = 32;

/// Shortest truncated HMAC-SM3 tag [`hmac_sm3_verify`] accepts.
const MIN_TAG_LEN: usize = 16;

/// SM3 digest of `data`.
pub fn sm3(data: &[u8]) -> [u8; SM3_LEN] {
    let mut s = Sm3State::default();
    s.update(data);
    s.finalize()
}

/// Incremental SM3: feed pieces with [`Sm3Hasher::update`], then
/// [`Sm3Hasher::finalize`]. Also usable as an [`std::io::Write`] sink.
#[derive(Clone, Default)]
pub struct Sm3Hasher(Sm3State);

impl Sm3Hasher {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self(Sm3State::default())
    }

    /// Feed more bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The digest of everything fed so far.
    pub fn finalize(self) -> [u8; SM3_LEN] {
        self.0.finalize()
    }
}

impl std::fmt::Debug for Sm3Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sm3Hasher")
    }
}

impl std::io::Write for Sm3Hasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// HMAC-SM3 of `data` under `key` (any key length; RFC 2104).
pub fn hmac_sm3(key: &[u8], data: &[u8]) -> [u8; SM3_LEN] {
    hmac_sm3_parts(key, &[data])
}

/// HMAC-SM3 of the concatenation of `parts` under `key`.
pub fn hmac_sm3_parts(key: &[u8], parts: &[&[u8]]) -> [u8; SM3_LEN] {
    HmacSm3Key::new(key).mac_parts(parts)
}

/// Checks `tag` against HMAC-SM3(`key`, `data`) in constant time. `tag` may
/// be the full 32 bytes or a prefix of at least 16 bytes (a truncated MAC as
/// the link uses); anything shorter or longer is rejected.
pub fn hmac_sm3_verify(key: &[u8], data: &[u8], tag: &[u8]) -> bool {
    if tag.len() < MIN_TAG_LEN || tag.len() > SM3_LEN {
        return false;
    }
    let full = hmac_sm3(key, data);
    match full.get(..tag.len()) {
        Some(expected) => expected.ct_eq(tag).into(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    #[test]
    fn sm3_kat_abc() {
        assert_eq!(sm3(b"abc").to_vec(), h("66c7f0f4 62eeedd9 d1f2d46b dc10e4e2 4167c487 5cf2f7a2 297da02b 8f4ba8e0"));
    }

    #[test]
    fn sm3_kat_abcd16() {
        let m = b"abcd".repeat(16);
        assert_eq!(m.len(), 64);
        assert_eq!(sm3(&m).to_vec(), h("debe9ff9 2275b8a1 38604889 c18e5a4d 6fdb70e5 387e5765 293dcba3 9c0c5732"));
    }

    #[test]
    fn incremental_equals_one_shot() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        for split in [0, 1, 63, 64, 65, 500, 1000] {
            let mut hs = Sm3Hasher::new();
            hs.update(&data[..split]);
            hs.update(&data[split..]);
            assert_eq!(hs.finalize(), sm3(&data));
        }
        let mut hs = Sm3Hasher::new();
        std::io::copy(&mut &data[..], &mut hs).unwrap();
        assert_eq!(hs.finalize(), sm3(&data));
    }

    #[test]
    fn hmac_sm3_kat() {
        // Computed independently with OpenSSL 3.0:
        // printf 'abc' | openssl mac -digest SM3 -macopt hexkey:000102…1f HMAC
        let key: Vec<u8> = (0u8..32).collect();
        assert_eq!(hmac_sm3(&key, b"abc").to_vec(), h(HMAC_KAT_ABC));
    }

    const HMAC_KAT_ABC: &str = "a8f95cf26f204957e7ca73c9602a25dda35f168b28103b51dfc968c810416b63";

    #[test]
    fn hmac_verify_full_truncated_and_wrong() {
        let key = b"link key 0001";
        let tag = hmac_sm3(key, b"datagram");
        assert!(hmac_sm3_verify(key, b"datagram", &tag));
        assert!(hmac_sm3_verify(key, b"datagram", &tag[..16]));
        assert!(!hmac_sm3_verify(key, b"datagram", &tag[..15]));
        assert!(!hmac_sm3_verify(key, b"datagram", &[]));
        assert!(!hmac_sm3_verify(key, b"datagrau", &tag));
        assert!(!hmac_sm3_verify(b"other key", b"datagram", &tag));
        let mut bad = tag;
        bad[31] ^= 1;
        assert!(!hmac_sm3_verify(key, b"datagram", &bad));
        assert_eq!(hmac_sm3_parts(key, &[b"data", b"gram"]), tag);
    }
}
