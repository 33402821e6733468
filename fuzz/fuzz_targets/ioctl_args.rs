//! The ioctl argument decoders of `sealfs::abi`.
//! The body is `sealfs::fuzzing::ioctl_args`, shared with the stable loops in fs/tests/fuzz_loops.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sealfs::fuzzing::ioctl_args(data);
});
