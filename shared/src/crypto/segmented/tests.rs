//! Tests of the segmented SM4-GCM file format: round trips, every kind of
//! tampering the format promises to catch, and limits.

use super::*;
use proptest::prelude::*;

const AAD: &[u8] = b"item:42|hospital:110101001";

fn key() -> SymKey {
    SymKey::from_slice(&[0x5a; 16]).unwrap()
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// Splits a sealed file into header and its segments (ciphertext ‖ tag).
fn segments(sealed: &[u8], seg: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
    let (h, body) = sealed.split_at(SEG_HEADER_LEN);
    (h.to_vec(), body.chunks(seg + GCM_TAG_LEN).map(|c| c.to_vec()).collect())
}

#[test]
fn round_trip_sizes() {
    for (n, seg) in [(0, 16), (1, 16), (15, 16), (16, 16), (17, 16), (32, 16), (33, 16), (1000, 64), (4096, 1024)] {
        let pt = data(n);
        let sealed = seal_with_segment_size(&key(), AAD, seg, &pt).unwrap();
        let segs = (n as u32).div_ceil(seg).max(1) as usize;
        assert_eq!(sealed.len(), SEG_HEADER_LEN + n + segs * GCM_TAG_LEN, "n={n} seg={seg}");
        assert_eq!(open(&key(), AAD, &sealed).unwrap(), pt, "n={n} seg={seg}");
    }
}

#[test]
fn default_segments_one_mib_exact_multiple() {
    let pt = data(2 << 20);
    let sealed = seal(&key(), AAD, &pt).unwrap();
    // exactly two full segments, the second one marked last; no empty extra segment
    assert_eq!(sealed.len(), SEG_HEADER_LEN + pt.len() + 2 * GCM_TAG_LEN);
    assert_eq!(&sealed[12..16], &(1u32 << 20).to_be_bytes());
    assert_eq!(open(&key(), AAD, &sealed).unwrap(), pt);
}

#[test]
fn empty_plaintext_is_one_tag_only_segment() {
    let sealed = seal(&key(), AAD, b"").unwrap();
    assert_eq!(sealed.len(), SEG_HEADER_LEN + GCM_TAG_LEN);
    assert_eq!(open(&key(), AAD, &sealed).unwrap(), b"");
    // header alone is a truncated file
    assert!(open(&key(), AAD, &sealed[..SEG_HEADER_LEN]).is_err());
}

#[test]
fn truncation_is_caught_everywhere() {
    let pt = data(100);
    let sealed = seal_with_segment_size(&key(), AAD, 32, &pt).unwrap();
    for cut in 0..sealed.len() {
        assert!(open(&key(), AAD, &sealed[..cut]).is_err(), "cut at {cut}");
    }
    // dropping the whole last segment (a clean segment boundary)
    let (h, segs) = segments(&sealed, 32);
    let mut t = h.clone();
    for s in &segs[..segs.len() - 1] {
        t.extend_from_slice(s);
    }
    assert!(open(&key(), AAD, &t).is_err());
}

#[test]
fn exact_multiple_truncated_to_a_full_segment_is_caught() {
    let pt = data(64);
    let sealed = seal_with_segment_size(&key(), AAD, 32, &pt).unwrap();
    let first_only = &sealed[..SEG_HEADER_LEN + 32 + GCM_TAG_LEN];
    assert!(open(&key(), AAD, first_only).is_err());
}

#[test]
fn reordered_segments_are_caught() {
    let pt = data(32 * 3);
    let sealed = seal_with_segment_size(&key(), AAD, 32, &pt).unwrap();
    let (h, segs) = segments(&sealed, 32);
    let mut swapped = h.clone();
    for i in [1, 0, 2] {
        swapped.extend_from_slice(&segs[i]);
    }
    assert!(open(&key(), AAD, &swapped).is_err());
}

#[test]
fn segments_swapped_between_files_are_caught() {
    // same key, same AAD, same sizes: only the file id / per-file key differ
    let a = seal_with_segment_size(&key(), AAD, 32, &data(96)).unwrap();
    let b = seal_with_segment_size(&key(), AAD, 32, &data(96)).unwrap();
    let (ha, sa) = segments(&a, 32);
    let (_, sb) = segments(&b, 32);
    let mut mixed = ha.clone();
    mixed.extend_from_slice(&sa[0]);
    mixed.extend_from_slice(&sb[1]);
    mixed.extend_from_slice(&sa[2]);
    assert!(open(&key(), AAD, &mixed).is_err());
    // b's header with a's body
    let (hb, _) = segments(&b, 32);
    let mut hdr_swap = hb.clone();
    hdr_swap.extend_from_slice(&a[SEG_HEADER_LEN..]);
    assert!(open(&key(), AAD, &hdr_swap).is_err());
}

#[test]
fn every_flipped_bit_is_caught() {
    let pt = data(70);
    let sealed = seal_with_segment_size(&key(), AAD, 32, &pt).unwrap();
    for i in 0..sealed.len() {
        for bit in [0x01u8, 0x80] {
            let mut t = sealed.clone();
            t[i] ^= bit;
            assert!(open(&key(), AAD, &t).is_err(), "byte {i} bit {bit:#x}");
        }
    }
}

#[test]
fn wrong_aad_or_key_is_caught() {
    let sealed = seal(&key(), AAD, b"scan of a death certificate").unwrap();
    assert!(open(&key(), b"item:43|hospital:110101001", &sealed).is_err());
    assert!(open(&key(), b"", &sealed).is_err());
    assert!(open(&SymKey::from_slice(&[0x5b; 16]).unwrap(), AAD, &sealed).is_err());
}

#[test]
fn trailing_bytes_are_caught() {
    for n in [0, 10, 32, 64] {
        let mut sealed = seal_with_segment_size(&key(), AAD, 32, &data(n)).unwrap();
        sealed.push(0);
        assert!(open(&key(), AAD, &sealed).is_err(), "n={n}");
        sealed.extend_from_slice(&[0u8; 48]);
        assert!(open(&key(), AAD, &sealed).is_err(), "n={n}");
    }
}

#[test]
fn header_checks_before_allocation() {
    let sealed = seal_with_segment_size(&key(), AAD, 32, &data(10)).unwrap();
    let mut t = sealed.clone();
    t[12..16].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(open(&key(), AAD, &t), Err(Error::Format(_))));
    let mut t = sealed.clone();
    t[12..16].copy_from_slice(&15u32.to_be_bytes());
    assert!(matches!(open(&key(), AAD, &t), Err(Error::Format(_))));
    let mut t = sealed.clone();
    t[0] = b'X';
    assert!(matches!(open(&key(), AAD, &t), Err(Error::Format(_))));
    let mut t = sealed.clone();
    t[8] = 2;
    assert!(matches!(open(&key(), AAD, &t), Err(Error::Format(_))));
    let lim = SegmentLimits { max_segment_size: 16, ..SegmentLimits::default() };
    assert!(open_with_limits(&key(), AAD, &sealed, lim).is_err());
    assert!(seal_with_segment_size(&key(), AAD, 15, b"x").is_err());
    assert!(seal_with_segment_size(&key(), AAD, MAX_SEGMENT_SIZE + 1, b"x").is_err());
}

#[test]
fn plaintext_limit_enforced() {
    let sealed = seal_with_segment_size(&key(), AAD, 16, &data(100)).unwrap();
    let lim = SegmentLimits { max_plaintext: 99, ..SegmentLimits::default() };
    assert!(open_with_limits(&key(), AAD, &sealed, lim).is_err());
    let lim = SegmentLimits { max_plaintext: 100, ..SegmentLimits::default() };
    assert_eq!(open_with_limits(&key(), AAD, &sealed, lim).unwrap(), data(100));
}

#[test]
fn streaming_through_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("raw.enc");
    let pt = data(300_000);
    let f = std::fs::File::create(&p).unwrap();
    let mut w = EncryptWriter::with_segment_size(&key(), AAD, 4096, std::io::BufWriter::new(f)).unwrap();
    for chunk in pt.chunks(777) {
        w.write_all(chunk).unwrap();
    }
    w.finish().unwrap();
    let mut r = DecryptReader::new(&key(), AAD, std::fs::File::open(&p).unwrap()).unwrap();
    let mut out = Vec::new();
    let mut small = [0u8; 1000];
    loop {
        let n = r.read(&mut small).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&small[..n]);
    }
    assert_eq!(out, pt);
}

#[test]
fn unfinished_writer_leaves_an_unreadable_file() {
    let mut out = Vec::new();
    {
        let mut w = EncryptWriter::with_segment_size(&key(), AAD, 16, &mut out).unwrap();
        w.write_all(&data(40)).unwrap();
        // dropped without finish()
    }
    assert!(open(&key(), AAD, &out).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn prop_round_trip(
        pt in proptest::collection::vec(any::<u8>(), 0..3000),
        seg in 16u32..400,
        aad in proptest::collection::vec(any::<u8>(), 0..40),
        write_chunk in 1usize..500,
        read_chunk in 1usize..500,
    ) {
        let mut w = EncryptWriter::with_segment_size(&key(), &aad, seg, Vec::new()).unwrap();
        for c in pt.chunks(write_chunk) {
            w.write_all(c).unwrap();
        }
        let sealed = w.finish().unwrap();
        prop_assert_eq!(sealed.len(), SEG_HEADER_LEN + pt.len() + (pt.len() as u32).div_ceil(seg).max(1) as usize * GCM_TAG_LEN);
        let mut r = DecryptReader::new(&key(), &aad, &sealed[..]).unwrap();
        let mut out = Vec::new();
        let mut buf = vec![0u8; read_chunk];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 { break; }
            out.extend_from_slice(&buf[..n]);
        }
        prop_assert_eq!(&out, &pt);
        prop_assert_eq!(open(&key(), &aad, &sealed).unwrap(), pt);
    }

    #[test]
    fn prop_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = open(&key(), AAD, &bytes);
        let mut with_header = seal_with_segment_size(&key(), AAD, 16, b"")
            .unwrap()[..SEG_HEADER_LEN].to_vec();
        with_header.extend_from_slice(&bytes);
        prop_assert!(open(&key(), AAD, &with_header).is_err());
    }
}
