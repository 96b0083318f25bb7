//! Fuzz target: the segmented SM4-GCM file readers on arbitrary bytes (header
//! checks before allocation, segment framing, truncation handling), the
//! streaming one and the seeking one, which must agree.
#![no_main]

use std::io::{Read, Seek, SeekFrom};

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(key) = flumon_shared::crypto::SymKey::from_slice(&[0x42; 16]) else { return };
    let limits = flumon_shared::crypto::SegmentLimits { max_segment_size: 1 << 16, max_plaintext: 1 << 20 };
    let streamed = flumon_shared::crypto::open_with_limits(&key, b"fuzz", data, limits);
    let seeked = flumon_shared::crypto::SeekDecryptReader::new(&key, b"fuzz", std::io::Cursor::new(data), limits)
        .ok()
        .and_then(|mut r| {
            // the end first, as a zip reader does, then everything
            let _ = r.seek(SeekFrom::End(-3)).ok().map(|_| r.read(&mut [0u8; 8]));
            r.seek(SeekFrom::Start(0)).ok()?;
            let mut out = Vec::new();
            r.read_to_end(&mut out).ok().map(|_| out)
        });
    assert_eq!(streamed.ok(), seeked, "the two readers disagree");
});
