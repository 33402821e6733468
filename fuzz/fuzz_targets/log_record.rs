//! `record::decode_header` / `decode_record` and the encode/decode round trips.
//! The body is `sealfs::fuzzing::log_record`, shared with the stable loops in fs/tests/fuzz_loops.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sealfs::fuzzing::log_record(data);
});
