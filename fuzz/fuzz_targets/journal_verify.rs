//! Fuzz target: the audit journal reader and verifier on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(broken) = flumon_shared::journal::fuzz_verify_journal(data) {
        panic!("journal invariant broken: {broken}");
    }
});
