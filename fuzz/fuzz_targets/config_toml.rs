//! Fuzz target: hostile text as send.toml, recv.toml and a `[link]` table
//! through flumon-transfer's parsers (serde, deny_unknown_fields) and value
//! checks; errors are fine, a panic is the finding. The body lives in
//! flumon-transfer (fuzz::fuzz_config) so unit tests run it too. Seeds: the
//! templates of deploy/config/.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(broken) = flumon_transfer::fuzz::fuzz_config(data) {
        panic!("config invariant broken: {broken}");
    }
});
