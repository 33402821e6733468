//! The ioctl ABI, from the `sealfs-abi` crate (numbers, argument layouts, their codec).
//!
//! Its decoders fail with [`sealfs_abi::AbiError`], which `?` turns into
//! [`crate::Error`] (`Invalid` → EINVAL, `TooBig` → E2BIG). The one encoder that can fail
//! is wrapped here so the daemon's dispatch gets a [`crate::Result`] directly.

pub use sealfs_abi::*;

/// [`sealfs_abi::encode_mapping_answer`] with the daemon's error type: more than
/// [`MAP_EXTENTS_MAX`] extents → E2BIG.
pub fn encode_mapping_answer(req: &[u8], extents: &[Triple]) -> crate::Result<Vec<u8>> {
    Ok(sealfs_abi::encode_mapping_answer(req, extents)?)
}
