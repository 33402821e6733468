# Shared helpers for the sealfs scripts: package installation on a fresh Debian machine,
# the cargo toolchain, and famfs-style expect_good/expect_fail checks.
# shellcheck shell=bash

SEALFS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Installs the Debian packages whose commands are missing. Arguments: "command:package".
# apt-get update runs only when something is missing.
ensure_cmds() {
    local missing=() pair cmd pkg
    for pair in "$@"; do
        cmd=${pair%%:*}
        pkg=${pair#*:}
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        die "missing packages: ${missing[*]} (run as root, or install them)"
    fi
    say "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_cargo() {
    if ! command -v cargo >/dev/null 2>&1; then
        [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
    fi
    command -v cargo >/dev/null 2>&1 || die "cargo (Rust stable) is required: https://rustup.rs"
}

# The packages every sealfs script needs on a fresh Debian 12 machine.
ensure_base() {
    ensure_cargo
    ensure_cmds fusermount3:fuse3 setfattr:attr chattr:e2fsprogs cc:gcc
}

can_mount() {
    [ "$(id -u)" -eq 0 ] && [ -c /dev/fuse ]
}
