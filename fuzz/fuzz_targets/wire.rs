//! TOS's wire decoder on arbitrary bytes: it may refuse them, never panic, and whatever it
//! decodes encodes to the same bytes. `cargo +nightly fuzz run wire`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(broken) = tos_adapter::tx::check_round_trip(data) {
        panic!("{broken}");
    }
});
