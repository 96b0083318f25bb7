//! Person keys and pseudonyms (INTERFACE §5): keyed HMAC-SM3 values that let
//! the intranet link records without learning identifiers.
//!
//! ```text
//!  person_key(K_person, ZJLX, SFZH) = HMAC-SM3(K_person, ZJLX ‖ 0x1F ‖ normalised SFZH)
//!  pseudonym (K_pseudo, ZZJGDM, kind, value) = HMAC-SM3(K_pseudo, ZZJGDM ‖ 0x1F ‖ kind ‖ 0x1F ‖ value)
//!  output: the first 16 bytes of the MAC, each hex digit 0–f written as a letter a–p
//! ```
//!
//! Output is 32 letters (128 bits): ARCHITECTURE invariant 2 wants nothing that
//! could look like a number, and 128 bits make a collision among even 10¹⁰
//! keys a 10⁻¹⁹ event. The key types hold their bytes and the precomputed
//! HMAC state, zeroize both on drop, compare in constant time and print as
//! `[redacted]`.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sm3::Sm3;
use subtle::ConstantTimeEq;

use crate::validate::ids::fifteen_to_eighteen;
use zeroize::Zeroize;

/// Length of a key in bytes.
pub const KEY_LEN: usize = 32;
/// Length of a person key or pseudonym in letters.
pub const KEY_LETTERS: usize = 32;
/// The byte between the parts of an HMAC input (ASCII unit separator).
const SEP: u8 = 0x1F;

/// The secret bytes and the HMAC-SM3 state after the key (ipad/opad blocks).
struct Keyed {
    bytes: [u8; KEY_LEN],
    mac: Hmac<Sm3>,
}

impl Keyed {
    fn new(mut bytes: [u8; KEY_LEN]) -> Self {
        // A key shorter than SM3's 64-byte block is zero-padded by HMAC
        // itself, so this is HMAC with the 32-byte key, built infallibly.
        let mut block = [0u8; 64];
        for (b, k) in block.iter_mut().zip(bytes.iter()) {
            *b = *k;
        }
        let mac = <Hmac<Sm3> as KeyInit>::new(&block.into());
        block.zeroize();
        let keyed = Keyed { bytes, mac };
        bytes.zeroize();
        keyed
    }

    /// HMAC over the parts joined by 0x1F, written as [`KEY_LETTERS`] letters.
    fn letters(&self, parts: &[&[u8]]) -> String {
        let mut mac = self.mac.clone();
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                mac.update(&[SEP]);
            }
            mac.update(p);
        }
        let tag = mac.finalize().into_bytes();
        let mut out = String::with_capacity(KEY_LETTERS);
        for b in tag.iter().take(KEY_LETTERS / 2) {
            out.push(char::from(b'a' + (b >> 4)));
            out.push(char::from(b'a' + (b & 0x0F)));
        }
        out
    }

    fn ct_eq(&self, other: &Keyed) -> bool {
        self.bytes.as_slice().ct_eq(other.bytes.as_slice()).into()
    }
}

impl Drop for Keyed {
    fn drop(&mut self) {
        // `mac` (sm3 and hmac built with their `zeroize` feature) wipes itself.
        self.bytes.zeroize();
    }
}

macro_rules! key_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name(Keyed);

        impl $name {
            /// A key from its 32 bytes.
            pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
                $name(Keyed::new(bytes))
            }

            /// A key from a slice, which must be exactly 32 bytes.
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                let arr: [u8; KEY_LEN] = bytes.try_into().ok()?;
                Some(Self::from_bytes(arr))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[redacted]")
            }
        }

        impl PartialEq for $name {
            /// Constant time.
            fn eq(&self, other: &Self) -> bool {
                self.0.ct_eq(&other.0)
            }
        }

        impl Eq for $name {}

        impl zeroize::ZeroizeOnDrop for $name {}
    };
}

key_type!(
    /// The key of person keys (SFZH → person key). Exists only in the DMZ and the vault.
    PersonKey
);
key_type!(
    /// The key of pseudonyms (JZLSH, JLID → pseudonym). Shared by all DMZ nodes.
    PseudonymKey
);

/// The person key of an identity document, or `None` when ZJLX is 9 (无证件)
/// or the number is empty after trimming.
pub fn person_key(key: &PersonKey, zjlx: &str, sfzh: &str) -> Option<String> {
    let zjlx = zjlx.trim();
    let number = normalise_number(zjlx, sfzh)?;
    Some(key.0.letters(&[zjlx.as_bytes(), number.as_bytes()]))
}

/// The number as the person key sees it: trimmed, upper-case, and for a
/// 居民身份证 (ZJLX 1) of 15 digits its 18-digit form. `None` for ZJLX 9 or an
/// empty number.
pub fn normalise_number(zjlx: &str, sfzh: &str) -> Option<String> {
    let zjlx = zjlx.trim();
    let up = sfzh.trim().to_uppercase();
    if zjlx == "9" || up.is_empty() {
        return None;
    }
    if zjlx == "1"
        && let Some(long) = fifteen_to_eighteen(&up)
    {
        return Some(long);
    }
    Some(up)
}

/// The pseudonym of a JZLSH or JLID. `kind` is `"JZLSH"` (the same for every
/// record type, so links survive) or `"JLID:<type>"`; `value` is used exactly
/// as given.
pub fn pseudonym(key: &PseudonymKey, zzjgdm: &str, kind: &str, value: &str) -> String {
    key.0.letters(&[zzjgdm.as_bytes(), kind.as_bytes(), value.as_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::ids::id_check_char;

    fn key_bytes(start: u8) -> [u8; 32] {
        std::array::from_fn(|i| start + i as u8)
    }

    /// Letters of a hex string: 0–f → a–p.
    fn hex_letters(hex: &str) -> String {
        hex.to_ascii_lowercase().chars().map(|c| char::from(b'a' + c.to_digit(16).unwrap() as u8)).collect()
    }

    #[test]
    fn known_answers_from_openssl() {
        // printf '1\x1f11010519491231002X' | openssl mac -digest SM3 \
        //   -macopt hexkey:000102…1f HMAC   (OpenSSL 3.0.19)
        let pk = PersonKey::from_bytes(key_bytes(0x00));
        let full = "088155E3111CCFDEC1D906D0D27F56C42CFB45E880C52E9908C2EB7E2CE99E2C";
        let want = hex_letters(&full[..32]);
        assert_eq!(person_key(&pk, "1", "11010519491231002X").as_deref(), Some(want.as_str()));
        // 15-digit form, lower-case x and spaces give the same key
        assert_eq!(person_key(&pk, " 1 ", "110105491231002").as_deref(), Some(want.as_str()));
        assert_eq!(person_key(&pk, "1", " 11010519491231002x ").as_deref(), Some(want.as_str()));

        // printf '91110000100000000A\x1fJZLSH\x1fZY2026000123' | openssl mac … hexkey:202122…3f HMAC
        let k = PseudonymKey::from_bytes(key_bytes(0x20));
        let full = "5539A1C8D242566B7CDBF48FFE2F900DAD6ACA3B5C869B00D4501FA429420BA5";
        assert_eq!(pseudonym(&k, "91110000100000000A", "JZLSH", "ZY2026000123"), hex_letters(&full[..32]));
    }

    #[test]
    fn shapes_of_output() {
        let pk = PersonKey::from_bytes(key_bytes(1));
        let k = PseudonymKey::from_bytes(key_bytes(1));
        let a = person_key(&pk, "2", "E12345678").unwrap();
        let b = pseudonym(&k, "91110000100000000A", "JLID:summary", "1");
        for s in [&a, &b] {
            assert_eq!(s.len(), KEY_LETTERS);
            assert!(s.bytes().all(|c| (b'a'..=b'p').contains(&c)), "{s}");
        }
        // domain separation: type of document, kind, hospital, key
        assert_ne!(person_key(&pk, "3", "E12345678").unwrap(), a);
        assert_ne!(pseudonym(&k, "91110000100000000A", "JZLSH", "1"), b);
        assert_ne!(pseudonym(&k, "91110000100000000B", "JLID:summary", "1"), b);
        let k2 = PseudonymKey::from_bytes(key_bytes(2));
        assert_ne!(pseudonym(&k2, "91110000100000000A", "JLID:summary", "1"), b);
        // passports: upper-cased, not converted
        assert_eq!(person_key(&pk, "2", "e12345678").unwrap(), a);
    }

    #[test]
    fn no_key_without_document() {
        let pk = PersonKey::from_bytes(key_bytes(1));
        assert_eq!(person_key(&pk, "9", "11010519491231002X"), None);
        assert_eq!(person_key(&pk, " 9", ""), None);
        assert_eq!(person_key(&pk, "1", "   "), None);
    }

    #[test]
    fn fifteen_digit_ids() {
        assert_eq!(fifteen_to_eighteen("110105491231002").as_deref(), Some("11010519491231002X"));
        assert_eq!(id_check_char("11010519491231002"), Some('X'));
        assert_eq!(id_check_char("44052418800101001"), Some('4'));
        assert_eq!(fifteen_to_eighteen("11010549123100"), None);
        assert_eq!(fifteen_to_eighteen("11010549123100X"), None);
        assert_eq!(normalise_number("2", "110105491231002").as_deref(), Some("110105491231002"));
        // multi-byte input of 15 bytes is no ID and no panic
        assert_eq!(fifteen_to_eighteen("一二三四五"), None);
    }

    #[test]
    fn key_hygiene() {
        let a = PersonKey::from_bytes(key_bytes(7));
        let b = PersonKey::from_slice(&key_bytes(7)).unwrap();
        let c = PersonKey::from_bytes(key_bytes(8));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(PersonKey::from_slice(&[0u8; 31]).is_none());
        assert_eq!(format!("{a:?}"), "[redacted]");
        assert_eq!(format!("{:?}", PseudonymKey::from_bytes(key_bytes(7))), "[redacted]");
        fn zod<T: zeroize::ZeroizeOnDrop>() {}
        // Hmac<Sm3> has no marker, but its parts wipe themselves: the block
        // buffer (block-buffer's Drop) and both SM3 states (Sm3Core's Drop)
        zod::<Sm3>();
        zod::<sm3::block_api::Sm3Core>();
        zod::<PersonKey>();
    }
}
