#!/bin/sh
# A stand-in for the sealfs CLI, used only to test the VM harness itself
# (SEALFS_VM_STANDIN=1 scripts/vm.sh). It is NOT a filesystem on the device:
# mkfs/fsck only write/check a magic string at offset 0 of the device (through
# daxbench's mapping), and mount bind-mounts a folder of the host's 9p share,
# so files persist across boots and crashes the way the plan expects. Checks
# that look at the device's contents or the fuse type fail with it, as they should.
magic="SEALFS-STANDIN-MAGIC"
has_magic() { [ "$(daxbench peek "$1" 0 ${#magic} 2>/dev/null)" = "$magic" ]; }

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
--version) echo "standin-sealfs (harness self-test, not sealfs)" ;;
mkfs)
	force=0
	[ "${1:-}" = --force ] && force=1 && shift
	dev=$1
	if has_magic "$dev" && [ $force = 0 ]; then
		echo "standin mkfs: $dev already holds a filesystem (use --force)" >&2
		exit 1
	fi
	printf '%s' "$magic" | daxbench poke "$dev" 0 || exit 2
	rm -rf /host/standin-fs && mkdir -p /host/standin-fs
	;;
mount)
	dev=$1 mnt=$2
	has_magic "$dev" || {
		echo "standin mount: $dev holds no filesystem" >&2
		exit 1
	}
	mount --bind /host/standin-fs "$mnt"
	;;
fsck)
	has_magic "$1" || {
		echo "standin fsck: $1 holds no filesystem" >&2
		exit 1
	}
	;;
*)
	echo "standin-sealfs: unknown command '$cmd'" >&2
	exit 2
	;;
esac
