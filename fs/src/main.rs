//! The `sealfs` binary: see `sealfs help`.

fn main() {
    std::process::exit(sealfs::cli::main())
}
