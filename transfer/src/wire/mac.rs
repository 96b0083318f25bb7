//! HMAC-SM3 truncated to 16 bytes, with the keyed state prepared once and
//! cloned per datagram (saves the two key-block compressions of every MAC).
//!
//! ```text
//!  MacKey (shared, zeroized) ─▶ MacSigner { id, Hmac<Sm3> keyed } ─clone─▶ update(datagram) ─▶ tag[..16]
//!  KeyRing: key id ─▶ MacSigner  (receiver; several during a rotation)
//! ```
//! The keyed state zeroizes on drop (hmac's `zeroize` feature) and is never
//! printed.

use flumon_shared::crypto::MacKey;
use hmac::{Hmac, KeyInit, Mac};
use sm3::Sm3;

use super::MAC_LEN;

/// One datagram key, ready to MAC.
#[derive(Clone)]
pub struct MacSigner {
    id: u32,
    state: Hmac<Sm3>,
}

impl std::fmt::Debug for MacSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MacSigner").field("id", &self.id).field("key", &"[redacted]").finish()
    }
}

impl MacSigner {
    /// Prepares the keyed state; `None` only if HMAC refused the key length (it does not).
    pub fn new(key: &MacKey) -> Option<MacSigner> {
        let state = <Hmac<Sm3> as KeyInit>::new_from_slice(key.as_bytes()).ok()?;
        Some(MacSigner { id: key.id(), state })
    }

    /// The key id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The 16-byte tag of `data`.
    pub fn tag(&self, data: &[u8]) -> [u8; MAC_LEN] {
        let full = self.state.clone().chain_update(data).finalize().into_bytes();
        let mut out = [0u8; MAC_LEN];
        for (o, b) in out.iter_mut().zip(full.iter()) {
            *o = *b;
        }
        out
    }

    /// Constant-time check of a 16-byte tag.
    pub fn verify(&self, data: &[u8], tag: &[u8]) -> bool {
        tag.len() == MAC_LEN && self.state.clone().chain_update(data).verify_truncated_left(tag).is_ok()
    }
}

/// The receiver's keys by key id.
#[derive(Clone, Debug, Default)]
pub struct KeyRing {
    keys: Vec<MacSigner>,
}

impl KeyRing {
    /// A ring of the given keys.
    pub fn new(keys: &[MacKey]) -> KeyRing {
        KeyRing { keys: keys.iter().filter_map(MacSigner::new).collect() }
    }

    /// The key with this id.
    pub fn get(&self, id: u32) -> Option<&MacSigner> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// Key ids held.
    pub fn ids(&self) -> Vec<u32> {
        self.keys.iter().map(|k| k.id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_shared_hmac_and_rejects_others() {
        let key = MacKey::from_slice(7, &[3u8; 32]).unwrap();
        let s = MacSigner::new(&key).unwrap();
        let tag = s.tag(b"datagram");
        assert_eq!(&key.mac(b"datagram")[..16], &tag);
        assert!(s.verify(b"datagram", &tag));
        assert!(!s.verify(b"datagram!", &tag));
        assert!(!s.verify(b"datagram", &tag[..15]));
        let mut bad = tag;
        bad[0] ^= 1;
        assert!(!s.verify(b"datagram", &bad));
        let ring = KeyRing::new(&[key]);
        assert!(ring.get(7).is_some() && ring.get(8).is_none());
        assert!(!format!("{s:?}").contains("03"));
    }
}
