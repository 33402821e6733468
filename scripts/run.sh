#!/usr/bin/env bash
# The first thing to run on a fresh machine: builds sealfs, makes a 1 GiB image, mounts
# it, writes and reads files, shows df and `sealfs stat`, shows a seal holding against a
# truncate, unmounts and runs fsck. Installs what it needs when it is missing.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$SEALFS_ROOT"

ensure_base
can_mount || die "mounting needs root and /dev/fuse"
say "building (release)"
cargo build --release -q --bin sealfs
bin=$SEALFS_ROOT/target/release/sealfs
work=${SEALFS_DEMO_DIR:-$(mktemp -d /tmp/sealfs-demo.XXXXXX)}
img=$work/fs.img
mnt=$work/mnt
mkdir -p "$mnt"
cleanup() {
    if mountpoint -q "$mnt" 2>/dev/null; then umount "$mnt" || umount -l "$mnt"; fi
}
trap cleanup EXIT

run() { printf '$ %s\n' "$*"; "$@"; }

run "$bin" mkfs --force --size 1G "$img"
run "$bin" mount "$img" "$mnt"
run mkdir "$mnt/docs"
printf 'hello from sealfs\n' > "$mnt/docs/hello.txt"
echo '$ echo "hello from sealfs" > docs/hello.txt'
run cat "$mnt/docs/hello.txt"
run dd if=/dev/urandom of="$mnt/data.bin" bs=1M count=64 status=none
sum_in=$(md5sum < "$mnt/data.bin")
run ln -s docs/hello.txt "$mnt/link"
run setfattr -n user.note -v demo "$mnt/docs/hello.txt"
run getfattr -n user.note "$mnt/docs/hello.txt"
run ls -la "$mnt" "$mnt/docs"
run df -h "$mnt"
run "$bin" stat "$mnt"
if "$bin" help seal >/dev/null 2>&1; then
    say "a temporary seal holds the extent map: truncate is refused while it is held"
    run "$bin" seal "$mnt/data.bin" -- sh -c "truncate -s 0 '$mnt/data.bin' 2>&1 || true"
    say "the seal is gone: truncate succeeds"
    run truncate -s 1M "$mnt/data.bin"
    run stat -c '%n %s bytes' "$mnt/data.bin"
fi
run umount "$mnt"
run "$bin" mount "$img" "$mnt"
if [ -f "$mnt/data.bin" ] && [ "$(stat -c %s "$mnt/data.bin")" -eq $((64 << 20)) ]; then
    [ "$(md5sum < "$mnt/data.bin")" = "$sum_in" ] && say "64 MiB file intact after remount"
fi
run cat "$mnt/docs/hello.txt"
run umount "$mnt"
run "$bin" fsck "$img"
say "done; the image is $img"
