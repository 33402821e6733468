//! `sealfs defrag`: the administration command, a thin client of `SEALFS_IOC_DEFRAG`.

use std::ffi::OsString;
use std::fs::File;
use std::path::PathBuf;

use super::args::Args;
use super::seal::ioctl;
use super::{at, describe_io, Outcome};
use crate::abi;

/// `sealfs defrag MOUNTPOINT`
pub fn defrag(rest: Vec<OsString>) -> Outcome {
    let mut a = Args::new(rest);
    let path = PathBuf::from(a.positional("MOUNTPOINT")?);
    a.finish()?;
    let f = File::open(&path).map_err(|e| at(&path, describe_io(&e)))?;
    let mut b = vec![0u8; abi::DEFRAG_SIZE];
    ioctl(&f, &path, abi::IOC_DEFRAG, &mut b)?;
    let [files, moved, sealed, no_space] = abi::decode_defrag(&b).map_err(|e| at(&path, e))?;
    println!(
        "{}: {files} files examined, {moved} made contiguous, {sealed} left alone (sealed or mapped), {no_space} left alone (no contiguous space)",
        path.display()
    );
    Ok(())
}
