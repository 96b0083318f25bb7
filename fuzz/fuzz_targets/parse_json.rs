//! Fuzz the json upload parser: no panic, and the invariants of
//! `flumon_shared::parse::fuzz::run` hold for every input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = flumon_shared::parse::fuzz::parse_json(data) {
        panic!("invariant broken: {e}");
    }
});
