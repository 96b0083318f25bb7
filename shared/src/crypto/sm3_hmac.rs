//! HMAC-SM3 (RFC 2104) on flumon's own SM3, with the key folded into two
//! chaining values once ([`HmacSm3Key`]), so a MAC costs only the message
//! blocks plus two.
//!
//! ```text
//!   key ─▶ K0 (64 B) ─▶ compress(IV, K0 ^ ipad) = inner,  compress(IV, K0 ^ opad) = outer
//!   msg ─▶ SM3 from inner (prefix 64) ─▶ d ─▶ SM3 from outer (prefix 64) ─▶ tag
//! ```

use zeroize::Zeroize;

use super::sm3_core::{IV, Sm3State, compress_blocks};

/// An HMAC-SM3 key, ready to MAC. Zeroized on drop, never printed.
#[derive(Clone)]
pub struct HmacSm3Key {
    inner: [u32; 8],
    outer: [u32; 8],
}

impl std::fmt::Debug for HmacSm3Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacSm3Key([redacted])")
    }
}

impl Drop for HmacSm3Key {
    fn drop(&mut self) {
        self.inner.zeroize();
        self.outer.zeroize();
    }
}

impl HmacSm3Key {
    /// Prepares `key` (any length; keys over 64 bytes are hashed first).
    pub fn new(key: &[u8]) -> Self {
        let mut k0 = [0u8; 64];
        if key.len() > 64 {
            let mut d = super::sm3(key);
            if let Some(dst) = k0.get_mut(..32) {
                dst.copy_from_slice(&d);
            }
            d.zeroize();
        } else if let Some(dst) = k0.get_mut(..key.len()) {
            dst.copy_from_slice(key);
        }
        let mut ipad = k0.map(|b| b ^ 0x36);
        let mut opad = k0.map(|b| b ^ 0x5c);
        let (mut inner, mut outer) = (IV, IV);
        compress_blocks(&mut inner, &[ipad]);
        compress_blocks(&mut outer, &[opad]);
        k0.zeroize();
        ipad.zeroize();
        opad.zeroize();
        HmacSm3Key { inner, outer }
    }

    /// The tag of the concatenation of `parts`.
    pub fn mac_parts(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut s = Sm3State::resume(self.inner, 64);
        for p in parts {
            s.update(p);
        }
        let d = s.finalize();
        let mut o = Sm3State::resume(self.outer, 64);
        o.update(&d);
        o.finalize()
    }

    /// The tag of `data`.
    pub fn mac(&self, data: &[u8]) -> [u8; 32] {
        self.mac_parts(&[data])
    }

    /// Appends the tag of every message of `msgs` to `out`, in order.
    pub fn mac_many(&self, msgs: &[&[u8]], out: &mut Vec<[u8; 32]>) {
        out.extend(msgs.iter().map(|m| self.mac(m)));
    }
}
