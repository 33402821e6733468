//! Patches to the metadata of a small valid image, then fsck, a read-only mount and a tree walk.
//! The body is `sealfs::fuzzing::image`, shared with the stable loops in fs/tests/fuzz_loops.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sealfs::fuzzing::image(data);
});
