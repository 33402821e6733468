//! `checkpoint::verify` and `decode` with the allocator as the block sink.
//! The body is `sealfs::fuzzing::checkpoint`, shared with the stable loops in fs/tests/fuzz_loops.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sealfs::fuzzing::checkpoint(data);
});
