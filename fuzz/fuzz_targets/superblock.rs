//! `Superblock::decode` and `superblock::pick` on two slot images and a device size.
//! The body is `sealfs::fuzzing::superblock`, shared with the stable loops in fs/tests/fuzz_loops.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sealfs::fuzzing::superblock(data);
});
