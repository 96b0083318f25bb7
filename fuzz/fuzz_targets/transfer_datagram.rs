//! Fuzz target: hostile link datagrams through the transfer receiver's
//! checks (length, magic, MAC, replay window, bodies, RaptorQ), and an
//! encode → lossy link → decode round trip. The body lives in
//! flumon-transfer so unit tests run it too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(broken) = flumon_transfer::fuzz::fuzz_datagram(data) {
        panic!("transfer invariant broken: {broken}");
    }
});
