#!/bin/sh
# guest-bench-virtiofs.sh — the guest side of the virtio-fs benchmark (scripts/vm.sh,
# SEALFS_VM_SEQ=bench): the same workload over three mounts of one guest, one after the other:
#
#   dax        sealfs, mount -t virtiofs -o dax=always (reads and in-place writes through the window)
#   nodax      sealfs, mount -t virtiofs (every read and write a FUSE request)
#   virtiofsd  virtiofsd exporting a directory of the same host tmpfs (vhost-user-fs-pci)
#
# Workload per mount (fresh mount each, so no cache carries over):
#   seq_write  a preallocated MB MiB file overwritten in 1 MiB writes, then fsync
#              (preallocated: the guest kernel sends file-extending writes as FUSE writes even
#              under dax, so only an overwrite takes the window)
#   seq_read   the same file read in 1 MiB reads after dropping the guest's caches
#   stat_pass  FILES empty files created, listed with ls -l three times, each stat'ed, removed
#
# Prints "BENCH LABEL METRIC SECONDS" lines; the host turns them into figures and ratios.
# Times come from /proc/uptime (10 ms): every phase takes well over a second here.

MB=${BENCH_MB:-256}
FILES=${BENCH_FILES:-300}
MNT=/bench

now() {
	read -r _up _idle </proc/uptime
	echo "$_up"
}

since() { # START -> seconds since START
	awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'
}

run() { # LABEL TAG [MOUNT-OPTIONS]
	_label=$1
	mkdir -p $MNT
	if ! mount -t virtiofs "$2" $MNT ${3:+-o "$3"}; then
		echo "BENCH $_label failed mount -t virtiofs $2 ${3:+-o $3}"
		return
	fi
	truncate -s ${MB}M $MNT/bench.dat
	_t=$(now)
	dd if=/dev/zero of=$MNT/bench.dat bs=1M count="$MB" conv=notrunc,fsync 2>/dev/null ||
		echo "BENCH $_label failed seq_write"
	echo "BENCH $_label seq_write $(since "$_t")"
	sync
	echo 3 >/proc/sys/vm/drop_caches
	_t=$(now)
	dd if=$MNT/bench.dat of=/dev/null bs=1M 2>/dev/null || echo "BENCH $_label failed seq_read"
	echo "BENCH $_label seq_read $(since "$_t")"
	rm -f $MNT/bench.dat
	_t=$(now)
	mkdir $MNT/d
	_i=0
	while [ $_i -lt "$FILES" ]; do
		: >$MNT/d/f$_i
		_i=$((_i + 1))
	done
	for _n in 1 2 3; do
		ls -l $MNT/d >/dev/null
	done
	_i=0
	while [ $_i -lt "$FILES" ]; do
		stat -c %s $MNT/d/f$_i >/dev/null
		_i=$((_i + 1))
	done
	rm -r $MNT/d
	echo "BENCH $_label stat_pass $(since "$_t")"
	umount $MNT
}

run dax sealfs dax=always
run nodax sealfs
run virtiofsd vfsd
echo "BENCH done"
