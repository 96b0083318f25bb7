//! Tests of the batch format: round trips, tampering in every byte region,
//! each check of `open_batch` on its own, and the fuzz body on random input.

use super::*;
use proptest::prelude::*;

type E = (u64, String);

struct Keys {
    link: SymKey,
    sign: Sm2PrivateKey,
}

fn keys() -> &'static Keys {
    static K: std::sync::OnceLock<Keys> = std::sync::OnceLock::new();
    K.get_or_init(|| Keys { link: SymKey::generate().unwrap(), sign: Sm2PrivateKey::generate().unwrap() })
}

fn fields(n: u32) -> BatchFields {
    BatchFields {
        node_id: "dmz-gd-01".into(),
        sequence: 123_456,
        created_ms: 1_764_100_000_000,
        counts: EntryCounts {
            records: n.saturating_sub(2),
            registry: 1.min(n),
            receipts: 1.min(n.saturating_sub(1)),
            scans: 0,
            journal_heads: 0,
        },
    }
}

fn entries(n: u32) -> Vec<E> {
    (0..n as u64).map(|i| (i * 1_000_003, format!("病例 {i} 甲型流感 H1N1"))).collect()
}

fn open(b: &[u8]) -> Result<(BatchHeader, Vec<E>)> {
    open_batch(b, &keys().link, keys().sign.public_key(), &BatchLimits::default())
}

#[test]
fn round_trip_and_header() {
    let e = entries(50);
    let b = seal_batch(&fields(50), &e, &keys().link, &keys().sign).unwrap();
    let (h, back) = open(&b).unwrap();
    assert_eq!(back, e);
    assert_eq!(h.node_id, "dmz-gd-01");
    assert_eq!(h.sequence, 123_456);
    assert_eq!(h.created_ms, 1_764_100_000_000);
    assert_eq!(h.counts, fields(50).counts);
    assert_eq!(h.total_len(), b.len() as u64);
    assert_eq!(peek_header(&b, &BatchLimits::default()).unwrap(), h);
    // peek works on a prefix holding only the header
    assert_eq!(peek_header(&b[..h.encoded_len()], &BatchLimits::default()).unwrap(), h);
    // the digest is SM3 of the bincode payload
    let payload = bincode::serde::encode_to_vec(&e, bincode::config::standard()).unwrap();
    assert_eq!(h.payload_sm3, sm3(&payload));
    assert_eq!(h.payload_len, payload.len() as u64);
}

#[test]
fn empty_batch_round_trips() {
    let b = seal_batch::<E>(&fields(0), &[], &keys().link, &keys().sign).unwrap();
    assert_eq!(open(&b).unwrap().1, Vec::<E>::new());
}

#[test]
fn every_byte_flipped_is_rejected() {
    let b = seal_batch(&fields(3), &entries(3), &keys().link, &keys().sign).unwrap();
    let hl = peek_header(&b, &BatchLimits::default()).unwrap().encoded_len();
    for i in 0..b.len() {
        let mut t = b.clone();
        t[i] ^= 0x10;
        let err = open(&t).unwrap_err();
        // header and body bytes fail at parse or signature; the signature itself fails to verify
        match err {
            Error::Format(_) | Error::Crypto(_) => {}
            other => panic!("byte {i} (header len {hl}): unexpected error {other:?}"),
        }
    }
}

#[test]
fn truncation_and_trailing_bytes_are_rejected() {
    let b = seal_batch(&fields(3), &entries(3), &keys().link, &keys().sign).unwrap();
    for cut in [0, 1, 8, 50, b.len() - 65, b.len() - 64, b.len() - 1] {
        assert!(open(&b[..cut]).is_err(), "cut {cut}");
    }
    let mut t = b.clone();
    t.push(0);
    assert!(matches!(open(&t), Err(Error::Format(_))));
}

#[test]
fn wrong_keys_are_rejected() {
    let b = seal_batch(&fields(3), &entries(3), &keys().link, &keys().sign).unwrap();
    let other = Sm2PrivateKey::generate().unwrap();
    let r = open_batch::<E>(&b, &keys().link, other.public_key(), &BatchLimits::default());
    assert!(matches!(r, Err(Error::Crypto(m)) if m.contains("signature")));
    // correctly signed, but sealed under another link key: the GCM tag fails
    let b2 = seal_batch(&fields(3), &entries(3), &SymKey::generate().unwrap(), &keys().sign).unwrap();
    assert!(matches!(open(&b2), Err(Error::Crypto(m)) if m.contains("SM4-GCM")));
}

#[test]
fn header_is_bound_as_aad_even_when_re_signed() {
    // An insider with the signing key but not the link key rewrites the
    // sequence number and signs again: the GCM tag still fails.
    let mut b = seal_batch(&fields(3), &entries(3), &keys().link, &keys().sign).unwrap();
    let seq_at = 8 + 2 + 1 + "dmz-gd-01".len();
    b[seq_at + 7] ^= 1;
    let n = b.len() - 64;
    let sig = keys().sign.sign(&b[..n]).unwrap();
    b[n..].copy_from_slice(&sig.to_bytes());
    assert!(matches!(open(&b), Err(Error::Crypto(m)) if m.contains("SM4-GCM")));
}

#[test]
fn digest_mismatch_is_rejected() {
    let e = entries(3);
    let payload = bincode::serde::encode_to_vec(&e, bincode::config::standard()).unwrap();
    let b = seal_payload(&fields(3), 3, &payload, Some([0u8; 32]), &keys().link, &keys().sign).unwrap();
    assert!(matches!(open(&b), Err(Error::Format(m)) if m.contains("digest")));
}

#[test]
fn trailing_payload_bytes_and_count_mismatch_are_rejected() {
    let e = entries(3);
    let mut payload = bincode::serde::encode_to_vec(&e, bincode::config::standard()).unwrap();
    payload.push(0);
    let b = seal_payload(&fields(3), 3, &payload, None, &keys().link, &keys().sign).unwrap();
    assert!(matches!(open(&b), Err(Error::Format(m)) if m.contains("trailing")));

    let payload = bincode::serde::encode_to_vec(&e[..2], bincode::config::standard()).unwrap();
    let b = seal_payload(&fields(3), 3, &payload, None, &keys().link, &keys().sign).unwrap();
    assert!(matches!(open(&b), Err(Error::Format(m)) if m.contains("entries")));
    // the wrong entry type does not decode
    let b = seal_batch(&fields(3), &entries(3), &keys().link, &keys().sign).unwrap();
    let r = open_batch::<(u64, u64)>(&b, &keys().link, keys().sign.public_key(), &BatchLimits::default());
    assert!(r.is_err());
}

#[test]
fn seal_encoded_checks_the_count() {
    let e = entries(300);
    let mut encoded = Vec::new();
    for x in &e {
        encoded.extend(bincode::serde::encode_to_vec(x, bincode::config::standard()).unwrap());
    }
    let f = fields(300);
    let b = seal_encoded(&f, 300, &encoded, &keys().link, &keys().sign).unwrap();
    assert_eq!(open(&b).unwrap().1, e);
    // a count that does not match the header's counts is refused when sealing
    assert!(seal_encoded(&f, 299, &encoded, &keys().link, &keys().sign).is_err());
    // a count that matches the header but not the bytes makes a batch that does not open
    let short = fields(299);
    let bad = seal_encoded(&short, 299, &encoded, &keys().link, &keys().sign).unwrap();
    assert!(open(&bad).is_err());
}

#[test]
fn seal_checks_its_inputs() {
    let mut f = fields(3);
    assert!(seal_batch(&f, &entries(2), &keys().link, &keys().sign).is_err(), "counts ≠ entries");
    f.node_id = "bad/id".into();
    assert!(seal_batch(&f, &entries(3), &keys().link, &keys().sign).is_err());
    f.node_id = String::new();
    assert!(seal_batch(&f, &entries(3), &keys().link, &keys().sign).is_err());
}

#[test]
fn payload_limit_is_checked_before_anything_else() {
    let e = entries(200);
    let b = seal_batch(&fields(200), &e, &keys().link, &keys().sign).unwrap();
    let h = peek_header(&b, &BatchLimits::default()).unwrap();
    let tight = BatchLimits { max_payload: h.payload_len - 1 };
    assert!(peek_header(&b, &tight).is_err());
    assert!(open_batch::<E>(&b, &keys().link, keys().sign.public_key(), &tight).is_err());
    let exact = BatchLimits { max_payload: h.payload_len };
    assert_eq!(open_batch::<E>(&b, &keys().link, keys().sign.public_key(), &exact).unwrap().1, e);
}

#[test]
fn decompression_is_bounded_and_exact() {
    let data = vec![7u8; 100_000];
    let z = zstd::bulk::compress(&data, 3).unwrap();
    assert_eq!(decompress_bounded(&z, 100_000).unwrap(), data);
    assert!(decompress_bounded(&z, 99_999).is_err(), "more than declared");
    assert!(decompress_bounded(&z, 100_001).is_err(), "less than declared");
    let mut t = z.clone();
    t.push(0);
    assert!(decompress_bounded(&t, 100_000).is_err(), "bytes after the frame");
    let mut two = z.clone();
    two.extend_from_slice(&z);
    assert!(decompress_bounded(&two, 200_000).is_err(), "a second frame");
    assert!(decompress_bounded(b"not zstd", 5).is_err());
    assert!(decompress_bounded(&[], 0).is_err());
}

#[test]
fn fuzz_body_on_seeds_and_random_input() {
    let seed = fuzz_seed_batch().unwrap();
    let mut with_mode = vec![0u8];
    with_mode.extend_from_slice(&seed);
    fuzz_open_batch(&with_mode).unwrap();
    // every single-byte change of the seed in "hostile file" mode
    for i in (1..with_mode.len()).step_by(7) {
        let mut t = with_mode.clone();
        t[i] ^= 0x55;
        fuzz_open_batch(&t).unwrap();
    }
    for mode in 0u8..3 {
        fuzz_open_batch(&[mode]).unwrap();
        fuzz_open_batch(&[mode, 0, 0]).unwrap();
    }
    fuzz_open_batch(&[]).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn prop_round_trip(e in proptest::collection::vec((any::<u64>(), ".{0,40}"), 0..60)) {
        let f = BatchFields { counts: EntryCounts { records: e.len() as u32, ..EntryCounts::default() }, ..fields(0) };
        let b = seal_batch(&f, &e, &keys().link, &keys().sign).unwrap();
        let (h, back) = open(&b).unwrap();
        prop_assert_eq!(back, e);
        prop_assert_eq!(h.counts, f.counts);
    }

    /// Entries encoded one by one and sealed with `seal_encoded` give the
    /// payload `seal_batch` gives for the list (a count across the varint
    /// boundary at 251 included).
    #[test]
    fn prop_seal_encoded_is_seal_batch(e in proptest::collection::vec((any::<u64>(), ".{0,12}"), 0..300)) {
        let f = BatchFields { counts: EntryCounts { records: e.len() as u32, ..EntryCounts::default() }, ..fields(0) };
        let mut encoded = Vec::new();
        for x in &e {
            encoded.extend(bincode::serde::encode_to_vec(x, bincode::config::standard()).unwrap());
        }
        let a = seal_encoded(&f, e.len(), &encoded, &keys().link, &keys().sign).unwrap();
        let b = seal_batch(&f, &e, &keys().link, &keys().sign).unwrap();
        let (ha, back) = open(&a).unwrap();
        let hb = peek_header(&b, &BatchLimits::default()).unwrap();
        prop_assert_eq!(back, e);
        prop_assert_eq!(ha.payload_sm3, hb.payload_sm3);
        prop_assert_eq!(ha.payload_len, hb.payload_len);
    }

    #[test]
    fn prop_fuzz_body_holds(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        prop_assert_eq!(fuzz_open_batch(&data), Ok(()));
    }
}

/// Writes seed inputs for the cargo-fuzz targets into `$FLUMON_FUZZ_SEEDS`
/// (run: `FLUMON_FUZZ_SEEDS=$PWD/fuzz/seeds cargo test -p flumon-shared --lib write_fuzz_seeds -- --ignored`).
#[test]
#[ignore = "writes files; run by hand to refresh fuzz/seeds"]
fn write_fuzz_seeds() {
    let Ok(dir) = std::env::var("FLUMON_FUZZ_SEEDS") else { return };
    let dir = std::path::Path::new(&dir);
    let fk = Sm2PrivateKey::from_scalar_bytes(&[0x17; 32]).unwrap();
    let write = |target: &str, name: &str, bytes: &[u8]| {
        std::fs::create_dir_all(dir.join(target)).unwrap();
        std::fs::write(dir.join(target).join(name), bytes).unwrap();
    };
    let mut b = vec![0u8];
    b.extend_from_slice(&fuzz_seed_batch().unwrap());
    write("batch_open", "valid_batch", &b);
    write("batch_open", "round_trip", b"\x02some entries to seal 1234567");
    let z = zstd::bulk::compress(
        &bincode::serde::encode_to_vec(vec![(1u64, "a")], bincode::config::standard()).unwrap(),
        3,
    )
    .unwrap();
    let mut m1 = vec![1u8, 0, 4];
    m1.extend_from_slice(&z);
    write("batch_open", "payload", &m1);

    let key = SymKey::from_slice(&[0x42; 16]).unwrap();
    let seg = crate::crypto::seal_with_segment_size(&key, b"fuzz", 32, &[7u8; 80]).unwrap();
    write("segmented_open", "valid_file", &seg);

    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("j");
    let mut j = crate::journal::Journal::create(&p, fk.public_key()).unwrap();
    j.append_at(1, "a", &serde_json::json!({"k": [1, 2]})).unwrap();
    j.checkpoint(&fk).unwrap();
    j.append_at(3, "b", &serde_json::json!("s")).unwrap();
    j.prune_before(2, &fk).unwrap();
    drop(j);
    write("journal_verify", "pruned_with_checkpoint", &std::fs::read(&p).unwrap());
}

#[test]
fn fuzz_bodies_hold_on_the_committed_seeds() {
    let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds");
    let run = |target: &str, body: &dyn Fn(&[u8]) -> std::result::Result<(), String>| {
        let Ok(dir) = std::fs::read_dir(seeds.join(target)) else { return };
        for f in dir {
            let bytes = std::fs::read(f.unwrap().path()).unwrap();
            body(&bytes).unwrap();
        }
    };
    run("batch_open", &fuzz_open_batch);
    run("journal_verify", &crate::journal::fuzz_verify_journal);
    let key = SymKey::from_slice(&[0x42; 16]).unwrap();
    // the segmented seeds: the stream reader and the seeking one agree (valid_file opens;
    // forged_empty_last, found by fuzzing, is refused by both)
    run("segmented_open", &|b: &[u8]| {
        use std::io::Read;
        let streamed = crate::crypto::open(&key, b"fuzz", b).ok();
        let limits = crate::crypto::SegmentLimits::default();
        let seeked = crate::crypto::SeekDecryptReader::new(&key, b"fuzz", std::io::Cursor::new(b), limits)
            .ok()
            .and_then(|mut r| {
                let mut v = Vec::new();
                r.read_to_end(&mut v).ok().map(|_| v)
            });
        if streamed == seeked { Ok(()) } else { Err(format!("readers disagree: {streamed:?} / {seeked:?}")) }
    });
    let valid = std::fs::read(seeds.join("segmented_open/valid_file")).unwrap();
    assert_eq!(crate::crypto::open(&key, b"fuzz", &valid).unwrap(), [7u8; 80]);
}

/// Found by fuzzing `batch_open` (2026-11-27, `fuzz/seeds/batch_open/oom-length-prefix`): a payload
/// whose string length prefix claims 4,261,281,277 bytes made bincode allocate them before finding
/// that 1 byte follows (its budget was 4 GiB whatever the payload). The budget now follows the
/// payload's length, so the claim is refused before anything is allocated.
#[test]
fn a_huge_length_prefix_is_refused_before_allocating() {
    // one (u64, String) entry: 5, then a string of 0xFDFDFDFD bytes (varint: 0xFC + u32 LE), then "a"
    let payload = [0x01, 0x05, 0xFC, 0xFD, 0xFD, 0xFD, 0xFD, b'a'];
    let err = super::decode_entries::<(u64, String)>(&payload, 1).unwrap_err().to_string();
    assert!(err.contains("LimitExceeded"), "refused by the budget, not by running out of input: {err}");
    // a valid payload of the same shape still decodes
    let ok = bincode::serde::encode_to_vec(vec![(5u64, "a".repeat(70_000))], bincode::config::standard()).unwrap();
    assert_eq!(super::decode_entries::<(u64, String)>(&ok, 1).unwrap()[0].1.len(), 70_000);
}
