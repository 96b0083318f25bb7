//! flumon's SM3 / HMAC-SM3 against the GB/T 32905 vectors, and by proptest
//! against the `sm3` and `hmac` crates (random lengths, splits, keys).

use ::sm3::{Digest, Sm3};
use hmac::{Hmac, KeyInit, Mac};
use proptest::prelude::*;

use super::sm3_core::{IV, Sm3State};
use super::{HmacSm3Key, Sm3Hasher, hmac_sm3, sm3};

fn reference(data: &[u8]) -> [u8; 32] {
    Sm3::digest(data).into()
}

fn reference_hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = <Hmac<Sm3> as KeyInit>::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().into()
}

#[test]
fn gbt32905_vectors() {
    // GB/T 32905-2016 appendix A, examples 1 and 2
    assert_eq!(hex::encode(sm3(b"abc")), "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
    assert_eq!(
        hex::encode(sm3(&b"abcd".repeat(16))),
        "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
    );
    assert_eq!(hex::encode(sm3(b"")), "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b");
}

#[test]
fn padding_boundaries_match_the_crate() {
    let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
    for n in [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 191, 192, 300] {
        assert_eq!(sm3(&data[..n]), reference(&data[..n]), "length {n}");
    }
}

#[test]
fn hmac_long_key_and_many() {
    let key = [0x42u8; 100];
    assert_eq!(hmac_sm3(&key, b"abc"), reference_hmac(&key, b"abc"));
    let k = HmacSm3Key::new(b"link");
    let data: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
    let mut msgs: Vec<&[u8]> = data.chunks(500).take(9).collect();
    msgs.extend([&data[..3], &data[..64], &data[..1], &data[..64], &data[..200]]);
    let mut out = Vec::new();
    k.mac_many(&msgs, &mut out);
    assert_eq!(out.len(), msgs.len());
    for (t, m) in out.iter().zip(&msgs) {
        assert_eq!(*t, reference_hmac(b"link", m));
    }
    assert!(!format!("{k:?}").contains("6c696e6b"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn one_shot_and_streaming_match_the_crate(data in proptest::collection::vec(any::<u8>(), 0..2000),
                                              cuts in proptest::collection::vec(any::<usize>(), 0..4)) {
        let want = reference(&data);
        prop_assert_eq!(sm3(&data), want);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (data.len() + 1)).collect();
        cuts.sort_unstable();
        let mut h = Sm3Hasher::new();
        let mut at = 0;
        for c in cuts.into_iter().chain([data.len()]) {
            h.update(&data[at..c]);
            at = c;
        }
        prop_assert_eq!(h.finalize(), want);
    }

    #[test]
    fn hmac_matches_the_crate(key in proptest::collection::vec(any::<u8>(), 0..150),
                              data in proptest::collection::vec(any::<u8>(), 0..1600)) {
        prop_assert_eq!(hmac_sm3(&key, &data), reference_hmac(&key, &data));
    }

    #[test]
    fn resume_after_a_prefix(prefix in proptest::collection::vec(any::<u8>(), 64..=64),
                             data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut h = IV;
        super::sm3_core::compress_blocks(&mut h, prefix.as_chunks::<64>().0);
        let mut s = Sm3State::resume(h, 64);
        s.update(&data);
        prop_assert_eq!(s.finalize(), reference(&[prefix.as_slice(), &data].concat()));
    }
}
