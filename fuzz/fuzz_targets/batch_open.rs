//! Fuzz target: hostile batch files (header parsing, length checks,
//! signature, decryption, bounded decompression, bincode decoding), plus a
//! seal → open → tamper property. The body lives in flumon-shared so unit
//! tests run it too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(broken) = flumon_shared::batch::fuzz_open_batch(data) {
        panic!("batch invariant broken: {broken}");
    }
});
