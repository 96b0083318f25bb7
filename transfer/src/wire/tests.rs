#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use flumon_shared::crypto::MacKey;
use proptest::prelude::*;

use super::*;

fn key() -> MacSigner {
    MacSigner::new(&MacKey::from_slice(5, &[9u8; 32]).unwrap()).unwrap()
}

fn hdr(kind: Kind) -> Header {
    Header { kind, key_id: 5, session: 0x1122_3344_5566_7788, number: 42 }
}

#[test]
fn data_layout_is_as_documented() {
    let k = key();
    let dh = DataHead { seq: 7, content_id: [1; 8], batch_len: 3000, block: 2, attempt: 1, esi: 9 };
    let mut out = Vec::new();
    dh.write(&hdr(Kind::Data), &[0xaa; 64], &k, &mut out);
    assert_eq!(out.len(), DATA_OVERHEAD + 64);
    assert_eq!(&out[..4], &[b'F', b'T', 1, 1]);
    assert_eq!(&out[4..8], &5u32.to_be_bytes());
    assert_eq!(&out[24..32], &7u64.to_be_bytes());
    assert_eq!(&out[44..46], &2u16.to_be_bytes());
    assert_eq!(out[46], 1);
    assert_eq!(&out[48..52], &9u32.to_be_bytes());
    let h = precheck(&out, DATA_OVERHEAD + 64).unwrap();
    assert_eq!(h, hdr(Kind::Data));
    assert_eq!(peek_batch_id(&out), Some((7, [1; 8])));
    let body = authenticate(&out, &k).unwrap();
    let (back, sym) = DataHead::parse(body, 64).unwrap();
    assert_eq!(back, dh);
    assert_eq!(sym, &[0xaa; 64][..]);
    assert_eq!(DataHead::parse(body, 72), Err(Reject::Malformed));
}

#[test]
fn checks_come_in_order() {
    let k = key();
    let mut out = Vec::new();
    DataHead { seq: 1, content_id: [0; 8], batch_len: 1, block: 0, attempt: 1, esi: 0 }.write(
        &hdr(Kind::Data),
        &[0; 64],
        &k,
        &mut out,
    );
    for n in 0..MIN_DATAGRAM {
        assert_eq!(precheck(&out[..n], 1000), Err(Reject::Short));
    }
    assert_eq!(precheck(&out, out.len() - 1), Err(Reject::Long));
    let mut foreign = out.clone();
    foreign[2] = 2;
    assert_eq!(precheck(&foreign, 1000), Err(Reject::Foreign));
    let mut kind = out.clone();
    kind[3] = 9;
    assert_eq!(precheck(&kind, 1000), Err(Reject::Foreign));
    for i in 0..out.len() {
        let mut bad = out.clone();
        bad[i] ^= 0x40;
        if precheck(&bad, 1000).is_ok() {
            assert_eq!(authenticate(&bad, &k), Err(Reject::BadMac), "byte {i}");
        }
    }
    let other = MacSigner::new(&MacKey::from_slice(5, &[8u8; 32]).unwrap()).unwrap();
    assert_eq!(authenticate(&out, &other), Err(Reject::BadMac));
}

#[test]
fn heartbeat_and_manifest_lengths() {
    let k = key();
    let hb = Heartbeat {
        time_ms: 1,
        session_start_ms: 2,
        latest_seq: 9,
        sent_through: 8,
        queue_depth: 1,
        interval_ms: 1000,
        passes: 2,
        mtu: 1500,
        symbol_size: 1400,
        block_symbols: 750,
        repair_ppm: 100_000,
        repair_extra: 2,
        digest: [7; 32],
    };
    let mut out = Vec::new();
    hb.write(&hdr(Kind::Heartbeat), &k, &mut out);
    assert_eq!(out.len(), heartbeat_len());
    assert_eq!(out.len(), 128);
    let body = authenticate(&out, &k).unwrap();
    assert_eq!(Heartbeat::parse(body).unwrap(), hb);
    assert_eq!(Heartbeat::parse(&body[1..]), Err(Reject::Malformed));
    let bad = Heartbeat { sent_through: 10, ..hb };
    let mut out = Vec::new();
    bad.write(&hdr(Kind::Heartbeat), &k, &mut out);
    assert_eq!(Heartbeat::parse(authenticate(&out, &k).unwrap()), Err(Reject::Malformed));

    assert_eq!(manifest_capacity(1400), 29);
    let part = ManifestPart {
        time_ms: 5,
        part: 0,
        parts: 1,
        entries: (0..29).map(|i| ManifestEntry { seq: i, len: 100, passes: 2, sm3: [i as u8; 32] }).collect(),
    };
    let mut out = Vec::new();
    part.write(&hdr(Kind::Manifest), &k, &mut out);
    assert!(out.len() <= DATA_OVERHEAD + 1400, "{}", out.len());
    let body = authenticate(&out, &k).unwrap();
    assert_eq!(ManifestPart::parse(body, 29).unwrap(), part);
    assert_eq!(ManifestPart::parse(body, 28), Err(Reject::Malformed));
}

proptest! {
    #[test]
    fn data_round_trip(seq: u64, cid: [u8; 8], len in 1u32.., block: u16, attempt in 1u8.., esi in 0u32..MAX_ESI,
                       session: u64, number: u64, sym in proptest::collection::vec(any::<u8>(), 64..=64)) {
        let k = key();
        let h = Header { kind: Kind::Data, key_id: 5, session, number };
        let dh = DataHead { seq, content_id: cid, batch_len: len, block, attempt, esi };
        let mut out = Vec::new();
        dh.write(&h, &sym, &k, &mut out);
        prop_assert_eq!(precheck(&out, out.len()).unwrap(), h);
        let (back, s) = DataHead::parse(authenticate(&out, &k).unwrap(), 64).unwrap();
        prop_assert_eq!(back, dh);
        prop_assert_eq!(s, &sym[..]);
    }

    #[test]
    fn manifest_round_trip(entries in proptest::collection::vec((any::<u64>(), any::<u32>(), any::<u8>(), any::<[u8; 32]>()), 1..29),
                           time: u64, parts in 1u16.., number: u64) {
        let k = key();
        let part = ManifestPart { time_ms: time, part: parts - 1, parts,
            entries: entries.into_iter().map(|(seq, len, passes, sm3)| ManifestEntry { seq, len, passes, sm3 }).collect() };
        let h = Header { kind: Kind::Manifest, key_id: 5, session: 1, number };
        let mut out = Vec::new();
        part.write(&h, &k, &mut out);
        prop_assert_eq!(ManifestPart::parse(authenticate(&out, &k).unwrap(), 29).unwrap(), part);
    }

    #[test]
    fn garbage_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..200)) {
        let k = key();
        if let Ok(h) = precheck(&buf, 200) {
            let _ = peek_batch_id(&buf);
            let _ = authenticate(&buf, &k);
            let body = &buf[HEADER_LEN..buf.len() - MAC_LEN];
            match h.kind {
                Kind::Data => { let _ = DataHead::parse(body, 64); }
                Kind::Heartbeat => { let _ = Heartbeat::parse(body); }
                Kind::Manifest => { let _ = ManifestPart::parse(body, 29); }
            }
        }
    }
}
