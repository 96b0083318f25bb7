//! Fuzz target: the segmented SM4-GCM file reader on arbitrary bytes (header
//! checks before allocation, segment framing, truncation handling).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(key) = flumon_shared::crypto::SymKey::from_slice(&[0x42; 16]) else { return };
    let limits = flumon_shared::crypto::SegmentLimits { max_segment_size: 1 << 16, max_plaintext: 1 << 20 };
    let _ = flumon_shared::crypto::open_with_limits(&key, b"fuzz", data, limits);
});
