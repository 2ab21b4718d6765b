//! The block-file decoder of `replay` on arbitrary bytes: it may refuse a line, never
//! panic. `cargo +nightly fuzz run block_file`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tos_blockstm::blockfile::decode_for_fuzzing(data);
});
