//! HMAC-SM3 truncated to 16 bytes, with the keyed state prepared once
//! (flumon's own SM3, shared::crypto::HmacSm3Key: the two key blocks are
//! compressed once, not per datagram); `tag_many` / `verify_many` take a
//! chunk of datagrams at once.
//!
//! ```text
//!  MacKey (shared, zeroized) ─▶ MacSigner { id, HmacSm3Key } ─▶ tag(datagram)[..16]
//!  [datagram; n] ─▶ tag_many / verify_many ─▶ tags / verdicts
//!  KeyRing: key id ─▶ MacSigner  (receiver; several during a rotation)
//! ```
//! The keyed state zeroizes on drop and is never printed.

use flumon_shared::crypto::{HmacSm3Key, MacKey};
use subtle::ConstantTimeEq;

use super::MAC_LEN;

/// One datagram key, ready to MAC.
#[derive(Clone)]
pub struct MacSigner {
    id: u32,
    state: HmacSm3Key,
}

impl std::fmt::Debug for MacSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MacSigner").field("id", &self.id).field("key", &"[redacted]").finish()
    }
}

impl MacSigner {
    /// Prepares the keyed state (`Option` kept for callers; HMAC takes any key length).
    pub fn new(key: &MacKey) -> Option<MacSigner> {
        Some(MacSigner { id: key.id(), state: HmacSm3Key::new(key.as_bytes()) })
    }

    /// The key id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The 16-byte tag of `data`.
    pub fn tag(&self, data: &[u8]) -> [u8; MAC_LEN] {
        truncate(&self.state.mac(data))
    }

    /// Constant-time check of a 16-byte tag.
    pub fn verify(&self, data: &[u8], tag: &[u8]) -> bool {
        tag.len() == MAC_LEN && bool::from(self.tag(data).ct_eq(tag))
    }

    /// The 16-byte tags of several messages.
    pub fn tag_many(&self, msgs: &[&[u8]], out: &mut Vec<[u8; MAC_LEN]>) {
        let mut full = Vec::with_capacity(msgs.len());
        self.state.mac_many(msgs, &mut full);
        out.extend(full.iter().map(truncate));
    }

    /// [`MacSigner::verify`] of several (message, tag) pairs; one verdict each, in order.
    pub fn verify_many(&self, pairs: &[(&[u8], &[u8])], out: &mut Vec<bool>) {
        let msgs: Vec<&[u8]> = pairs.iter().map(|p| p.0).collect();
        let mut tags = Vec::with_capacity(pairs.len());
        self.tag_many(&msgs, &mut tags);
        out.extend(pairs.iter().zip(&tags).map(|((_, t), want)| t.len() == MAC_LEN && bool::from(want.ct_eq(t))));
    }
}

fn truncate(full: &[u8; 32]) -> [u8; MAC_LEN] {
    full.first_chunk::<MAC_LEN>().copied().unwrap_or_default()
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
        let msgs: Vec<Vec<u8>> = (0..11).map(|i| vec![i as u8; if i < 9 { 1400 } else { 7 }]).collect();
        let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
        let mut tags = Vec::new();
        s.tag_many(&refs, &mut tags);
        assert_eq!(tags.len(), 11);
        for (t, m) in tags.iter().zip(&refs) {
            assert_eq!(*t, s.tag(m));
        }
        let mut pairs: Vec<(&[u8], &[u8])> = refs.iter().zip(&tags).map(|(m, t)| (*m, t.as_slice())).collect();
        pairs[3].1 = &tag;
        pairs[10].1 = &tag[..15];
        let mut ok = Vec::new();
        s.verify_many(&pairs, &mut ok);
        assert_eq!(ok.iter().filter(|v| !**v).count(), 2);
        assert!(!ok[3] && !ok[10] && ok[0] && ok[9]);
        let ring = KeyRing::new(&[key]);
        assert!(ring.get(7).is_some() && ring.get(8).is_none());
        assert!(!format!("{s:?}").contains("03"));
    }
}
