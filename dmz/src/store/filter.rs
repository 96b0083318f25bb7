//! A Bloom filter over the keys of the trees that every new record looks
//! up (the dedupe keys of `outbound`, `scope_case`, `scope_lab`), so that a lookup of a key that
//! was never written skips sled. Most lookups of a new record are such
//! misses, and a sled lookup costs microseconds (it rebuilds the leaf).
//!
//! ```text
//!  serve starts ─▶ KeyFilter::new(bits) (absent() says "maybe" for everything)
//!              └─▶ builder thread: every key of the three trees ─▶ add ─▶ ready
//!  writer: filter.add(tree, key) ─▶ THEN sled insert       (a key in sled always has its bits)
//!  reader: filter.absent(tree, key) ? "not in sled" : sled get
//! ```
//! `absent` is true only once the builder has added every key that was in
//! the trees when it started, and only when one of the key's bits is clear;
//! the keys written while it runs were added by their writers. A removed
//! key keeps its bits (a false "maybe": one sled lookup, as without the
//! filter). The filter lives in memory only and is built again at each
//! start, in the background. Its size is `[store] key_filter_mib` (0 = off).

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Bits set per key.
const PROBES: u64 = 4;

/// The trees the filter covers (a tag hashed with the key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keys {
    Dedupe = 1,
    ScopeCase = 2,
    ScopeLab = 3,
}

/// The filter: a power-of-two number of bits, shared by the three trees.
pub struct KeyFilter {
    words: Box<[AtomicU64]>,
    /// Bits − 1.
    mask: u64,
    ready: AtomicBool,
    hasher: std::collections::hash_map::RandomState,
}

impl std::fmt::Debug for KeyFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFilter").field("bits", &(self.mask.wrapping_add(1))).field("ready", &self.ready()).finish()
    }
}

impl KeyFilter {
    /// A filter of about `mib` MiB (rounded down to a power of two, at least
    /// 64 bits); `None` for 0 (off).
    pub fn new(mib: u32) -> Option<KeyFilter> {
        if mib == 0 {
            return None;
        }
        let bits = (u64::from(mib) << 23).max(64);
        let bits = 1u64 << (63 - bits.leading_zeros());
        let words = (0..bits / 64).map(|_| AtomicU64::new(0)).collect();
        Some(KeyFilter {
            words,
            mask: bits - 1,
            ready: AtomicBool::new(false),
            hasher: std::collections::hash_map::RandomState::new(),
        })
    }

    /// The bit positions of `key` in `tree`.
    fn probes(&self, tree: Keys, key: &[u8]) -> impl Iterator<Item = u64> + use<> {
        let h = self.hasher.hash_one((tree as u8, key));
        let (a, b) = (h, h.rotate_left(32) | 1);
        let mask = self.mask;
        (0..PROBES).map(move |i| a.wrapping_add(i.wrapping_mul(b)) & mask)
    }

    fn word(&self, bit: u64) -> Option<&AtomicU64> {
        self.words.get(usize::try_from(bit / 64).ok()?)
    }

    /// Records that `key` may be in `tree`. Call before writing it to sled.
    pub fn add(&self, tree: Keys, key: &[u8]) {
        for bit in self.probes(tree, key) {
            if let Some(w) = self.word(bit) {
                w.fetch_or(1 << (bit % 64), Ordering::Relaxed);
            }
        }
    }

    /// True when `key` is certainly not in `tree` (the filter is built and
    /// one of its bits is clear); false means "look in sled".
    pub fn absent(&self, tree: Keys, key: &[u8]) -> bool {
        if !self.ready.load(Ordering::Acquire) {
            return false;
        }
        // `probes` masks every bit into the filter, so `word` finds each; were one missing, "maybe"
        self.probes(tree, key)
            .any(|bit| self.word(bit).is_some_and(|w| w.load(Ordering::Relaxed) & (1 << (bit % 64)) == 0))
    }

    /// Whether the builder has finished.
    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Adds every key of `trees` that starts with its prefix (the builder;
    /// blocking), then makes the filter answer. A read error leaves it
    /// answering "maybe" for ever.
    pub fn build(&self, trees: &[(Keys, sled::Tree, &[u8])]) -> Result<u64, sled::Error> {
        let mut n = 0u64;
        for (tag, tree, prefix) in trees {
            for k in tree.scan_prefix(prefix).keys() {
                self.add(*tag, &k?);
                n += 1;
            }
        }
        self.ready.store(true, Ordering::Release);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

    use super::*;

    #[test]
    fn off_at_zero_and_a_power_of_two() {
        assert!(KeyFilter::new(0).is_none());
        let f = KeyFilter::new(1).unwrap();
        assert_eq!(f.mask + 1, 1 << 23);
        assert_eq!(f.words.len(), (1 << 23) / 64);
    }

    /// Never "absent" before it is built, never for a key added (by a writer
    /// or the builder), and rarely for others when there is room.
    #[test]
    fn no_false_absent_and_few_false_maybe() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let t = db.open_tree("dedupe").unwrap();
        for i in 0..5_000u32 {
            t.insert(format!("before-{i}"), &[][..]).unwrap();
        }
        let f = KeyFilter::new(1).unwrap();
        assert!(!f.absent(Keys::Dedupe, b"never"), "not built: maybe");
        f.add(Keys::Dedupe, b"written-while-building");
        t.insert("other-prefix", &[][..]).unwrap();
        assert_eq!(f.build(&[(Keys::Dedupe, t.clone(), b"before-")]).unwrap(), 5_000);
        assert!(f.ready());
        for i in 0..5_000u32 {
            assert!(!f.absent(Keys::Dedupe, format!("before-{i}").as_bytes()));
        }
        assert!(!f.absent(Keys::Dedupe, b"written-while-building"));
        // the same bytes in another tree are another key
        let other = (0..5_000u32).filter(|i| !f.absent(Keys::ScopeCase, format!("before-{i}").as_bytes())).count();
        assert!(other < 50, "{other} false maybes of 5,000");
        let never = (0..10_000u32).filter(|i| !f.absent(Keys::Dedupe, format!("never-{i}").as_bytes())).count();
        assert!(never < 100, "{never} false maybes of 10,000");
    }
}
