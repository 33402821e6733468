#!/bin/sh
# guest-test.sh — the sealfs test plan, run by /init inside the VM that
# scripts/vm.sh boots (busybox sh; sealfs, daxbench, ndctl on PATH).
#
# Sequences A and B are four boots of the same pmem image (phase = vmphase):
#   1  create the devdax namespace (--align=$vmalign), bad-input checks, raw
#      mapping bandwidth, mkfs, mount, POSIX smoke, bandwidth through the
#      mount, seal tests, umount, fsck
#   2  (after a clean power-off) mount, every file against the manifest, fsck
#   3  mount, write + fsync a file, then the host SIGKILLs QEMU
#   4  (after that crash) fsck, mount, the crash file and the manifest, fsck
# Sequence C (virtio-fs from the host's daemon) is in guest-virtiofs.sh,
# sequence R (RDMA over a sealed window) in guest-rdma.sh.
# Results go to /host/results-PHASE.txt, one line each:
#   PASS|FAIL|SKIP <seq><phase> <check>[ — detail]   INFO ...   "| " output
# and the last line "END". The host counts them (scripts/vm.sh).
set -u

SEQ=${vmseq:-A}
PHASE=${vmphase:-1}
ALIGN=${vmalign:-2M}
DEV=/dev/dax0.0
MNT=/mnt
H=/host
RES=$H/results-$PHASE.txt
REF=/tmp/ref
OUT=/tmp/out
: >"$RES"

say() {
	read -r _up _ </proc/uptime
	echo "sealfs-vm[$SEQ$PHASE ${_up}s] $*"
}
record() { echo "$*" >>"$RES"; }
pass() {
	record "PASS $SEQ$PHASE $1"
	say "PASS $1"
}
fail() {
	record "FAIL $SEQ$PHASE $1${2:+ — $2}"
	say "FAIL $1${2:+ — $2}"
	if [ -s "$OUT" ]; then
		tail -n 8 "$OUT" | sed 's/^/| /' >>"$RES"
		tail -n 8 "$OUT" | sed 's/^/    | /'
	fi
}
skip() {
	record "SKIP $SEQ$PHASE $1${2:+ — $2}"
	say "SKIP $1${2:+ — $2}"
}
info() {
	record "INFO $SEQ$PHASE $*"
	say "info $*"
}

# expect_good NAME CMD... : CMD must exit 0.
expect_good() {
	_name=$1
	shift
	if "$@" >"$OUT" 2>&1; then
		pass "$_name"
		return 0
	else
		fail "$_name" "exit $?: $*"
		return 1
	fi
}

# expect_fail NAME CMD... : CMD must fail cleanly — non-zero exit, not a panic
# (101) or a signal, not "command not found" (127), and with a message.
expect_fail() {
	_name=$1
	shift
	"$@" >"$OUT" 2>&1
	_rc=$?
	if [ $_rc -eq 0 ]; then
		fail "$_name" "succeeded: $*"
		return 1
	elif [ $_rc -eq 101 ] || [ $_rc -ge 126 ]; then
		fail "$_name" "exit $_rc (panic, signal or not runnable): $*"
		return 1
	elif [ ! -s "$OUT" ]; then
		fail "$_name" "exit $_rc but no error message: $*"
		return 1
	fi
	pass "$_name (exit $_rc: $(head -n1 "$OUT" | cut -c1-100))"
	return 0
}

# sealfs with a bound on each call; `sealfs mount` returns once the mount is
# live and leaves its daemon behind, which timeout does not touch.
sfs() {
	_t=$1
	shift
	timeout "$_t" sealfs "$@"
}

mounted() { grep -q " $MNT " /proc/mounts; }

do_mount() {
	expect_good "mount $DEV $MNT" sfs 120 mount "$DEV" "$MNT" || return 1
	if grep -q "^$DEV $MNT fuse" /proc/mounts; then
		pass "/proc/mounts: $(grep " $MNT " /proc/mounts | cut -d' ' -f1-3)"
	else
		fail "/proc/mounts shows $DEV on $MNT as fuse" "$(grep " $MNT " /proc/mounts || echo 'not mounted')"
		mounted || return 1
	fi
}

do_umount_fsck() {
	if mounted; then
		expect_good "umount $MNT" umount "$MNT"
	fi
	expect_good "fsck $DEV exits 0" sfs 300 fsck "$DEV"
}

# --- the reference tree ------------------------------------------------------

# make_tree ROOT: the same files and operations on tmpfs (reference) and on
# sealfs. Random contents come from /tmp/rand, made once per boot.
make_tree() {
	r=$1
	mkdir -p "$r/d1/d2/d3" "$r/many" "$r/empty" || return 1
	cp /tmp/rand/f4097 "$r/d1/f4097" &&
		cp /tmp/rand/f65537 "$r/d1/d2/f65537" &&
		cp /tmp/rand/f1m "$r/d1/d2/d3/f1m" &&
		dd if=/tmp/rand/big of="$r/big" bs=1M 2>/dev/null &&
		: >"$r/empty/zero" || return 1
	i=0
	while [ $i -lt 3000 ]; do
		printf '%*d\n' $((i % 200)) $i >"$r/many/f$i" || return 1
		i=$((i + 1))
	done
	mv "$r/d1/f4097" "$r/d1/renamed4097" &&
		mv "$r/d1/d2/f65537" "$r/moved65537" &&
		echo doomed >"$r/d1/gone" && rm "$r/d1/gone" &&
		ln -s d1/d2/d3/f1m "$r/link-f1m" &&
		ln "$r/big" "$r/d1/big-hardlink" &&
		mkdir "$r/d1/tmpdir" && rmdir "$r/d1/tmpdir" && mkdir "$r/keepdir" &&
		dd if=/tmp/rand/patch of="$r/big" bs=4096 seek=100 conv=notrunc 2>/dev/null &&
		echo appended >>"$r/d1/d2/d3/f1m" &&
		truncate -s 10000 "$r/d1/renamed4097" &&
		truncate -s 100 "$r/moved65537" &&
		rm "$r/many/f17" "$r/many/f2999" &&
		mv "$r/many/f18" "$r/many/renamed18" &&
		chmod 0600 "$r/d1/d2/d3/f1m" &&
		dd if=/tmp/rand/patch of="$r/fsynced" bs=4096 conv=fsync 2>/dev/null &&
		sync "$r/fsynced" "$r/d1"
}

# describe ROOT: every entry's name, type, mode; size, link count and a hash
# of the contents for files; symlink targets — one pass (daxbench tree, a
# static helper: lstat + read per file) so the 3000 files cost one lookup and
# one open each. md5sum checks the larger files separately (MD5_FILES).
describe() {
	daxbench tree "$1" | sort
	echo "# hard link"
	echo "$(stat -c %i "$1/big") $(stat -c %i "$1/d1/big-hardlink")" | awk '{ print ($1 == $2) ? "same inode" : "different inodes" }'
}
MD5_FILES="big d1/big-hardlink d1/renamed4097 moved65537 d1/d2/d3/f1m fsynced"

verify_manifest() { # NAME
	if [ ! -s $H/manifest.txt ]; then
		skip "$1" "no manifest from boot 1"
		return
	fi
	t0=$(date +%s)
	describe "$MNT/tree" >/tmp/now.txt 2>&1
	if diff $H/manifest.txt /tmp/now.txt >"$OUT" 2>&1; then
		pass "$1 ($(grep -c . $H/manifest.txt) entries, $(($(date +%s) - t0))s)"
	else
		fail "$1" "differs from the boot-1 manifest"
	fi
	expect_good "md5sum -c of the larger files" sh -c "cd $MNT/tree && md5sum -c $H/md5.txt"
}

make_random() {
	mkdir -p /tmp/rand
	head -c 4097 /dev/urandom >/tmp/rand/f4097
	head -c 65537 /dev/urandom >/tmp/rand/f65537
	head -c 1048577 /dev/urandom >/tmp/rand/f1m
	head -c 5242880 /dev/urandom >/tmp/rand/big
	head -c 4096 /dev/urandom >/tmp/rand/patch
}

smoke() {
	make_random
	rm -rf "$REF"
	make_tree "$REF" >"$OUT" 2>&1 || {
		fail "reference tree on tmpfs (harness)"
		return
	}
	describe "$REF" >$H/manifest.txt 2>&1
	(cd "$REF" && md5sum $MD5_FILES) >$H/md5.txt
	t0=$(date +%s)
	expect_good "POSIX smoke: mkdir, write (3000 small files + 4 KiB..5 MiB), rename, unlink, symlink, hard link, truncate, chmod, fsync" \
		make_tree "$MNT/tree"
	info "tree with 3000 small files made through the mount in $(($(date +%s) - t0))s"
	verify_manifest "read back: every name, type, mode, size, link count, content hash and symlink target matches"
	expect_good "ls -la and ls | wc on the 3000-file directory" sh -c "ls -la $MNT/tree >/dev/null && [ \$(ls $MNT/tree/many | wc -l) -eq 2998 ]"
	expect_good "cmp of the 1 MiB file against its source" sh -c "head -c 1048577 $MNT/tree/d1/d2/d3/f1m | cmp - /tmp/rand/f1m"
	expect_good "symlink resolves (readlink + read through it)" sh -c "[ \$(readlink $MNT/tree/link-f1m) = d1/d2/d3/f1m ] && cmp $MNT/tree/link-f1m $MNT/tree/d1/d2/d3/f1m"
	expect_good "hard link: both names, one inode, nlink 2" sh -c "[ \$(stat -c %h $MNT/tree/big) -eq 2 ] && [ \$(stat -c %i $MNT/tree/big) -eq \$(stat -c %i $MNT/tree/d1/big-hardlink) ]"
	expect_good "unlinked and renamed-away names are gone" sh -c "[ ! -e $MNT/tree/d1/gone ] && [ ! -e $MNT/tree/d1/f4097 ] && [ ! -e $MNT/tree/many/f18 ]"
	expect_fail "rmdir of a non-empty directory fails" rmdir "$MNT/tree/d1"
	expect_good "df (statfs) on the mount" df "$MNT"
}

bandwidth_mount() {
	if expect_good "256 MiB in 1 MiB blocks through the mount: write+fsync, read back, stamps ok" daxbench bw-file "$MNT/bw.bin" 256; then
		info "bandwidth through sealfs: $(cat "$OUT")"
	fi
	rm -f "$MNT/bw.bin"
}

# A DAX window on the real device: map, write, flush with the guest CPU's write-back
# instruction, read back (sealfs map --verify), then the window bandwidth figures.
window_tests() {
	w=$MNT/window.bin
	if expect_good "window: write(2) read back through a window; window stores flushed ($WB_EXPECT) read back by read(2)" \
		sfs 300 map --verify --size 32M "$w"; then
		cp "$OUT" /tmp/verify.out
		info "window verify: $(cat /tmp/verify.out)"
		md5sum <"$w" >$H/window.md5
		expect_good "window: the flush used $WB_EXPECT (the guest CPU's best)" grep -q "flushed with $WB_EXPECT)" /tmp/verify.out
	fi
	expect_good "window: no mapping pins left after the command" sh -c "sealfs stat $MNT | grep -q ', 0 mapping pins'"
	if expect_good "window bandwidth: sealfs map --bench --size 64M" sfs 300 map --bench --size 64M "$MNT/winbench.bin"; then
		info "window bench: $(tr '\n' ';' <"$OUT")"
	fi
	rm -f "$MNT/winbench.bin"
}

window_held() { # after a reboot or a crash
	if [ ! -s $H/window.md5 ]; then
		skip "window-written file intact" "no window file from boot 1"
		return
	fi
	expect_good "file written through a window in boot 1 is intact" sh -c "md5sum <'$MNT/window.bin' | cmp - $H/window.md5"
}

# === SEAL TESTS HOOK =========================================================
# Runs `sealfs seal` commands when the binary has them (`sealfs help seal`
# succeeds), otherwise reports "skipped". Phase 1 takes the seals; phases 2
# and 4 check that the immutable flag survived the reboot and the crash.
seal_tests() {
	if ! sealfs help seal >/dev/null 2>&1; then
		skip "seal tests" "sealfs has no seal command yet (sealfs help seal failed)"
		return
	fi
	f=$MNT/sealed.bin
	dd if=/dev/urandom of="$f" bs=1M count=2 2>/dev/null
	expect_good "temporary seal: truncate refused while COMMAND runs" \
		sfs 60 seal "$f" -- sh -c "! truncate -s 0 '$f'"
	expect_good "temporary seal: in-place write allowed while sealed" \
		sfs 60 seal "$f" -- dd if=/dev/zero of="$f" bs=4096 count=1 conv=notrunc
	expect_good "temporary seal released when the command returns (truncate works)" truncate -s 3M "$f"

	sealfs seal --hold "$f" >/tmp/hold.out 2>&1 &
	holder=$!
	sleep 1
	expect_fail "held seal: truncate refused (ETXTBSY)" truncate -s 1M "$f"
	kill -9 $holder 2>/dev/null
	wait $holder 2>/dev/null
	expect_good "seal released after the holder is killed (retried for 5 s)" \
		sh -c "for i in 1 2 3 4 5 6 7 8 9 10; do truncate -s 1M '$f' && exit 0; sleep 0.5; done; exit 1"

	sealfs seal --breakable --hold "$f" >/tmp/hold.out 2>&1 &
	holder=$!
	sleep 1
	read -r t0 _ </proc/uptime
	expect_good "breakable seal: truncate waits for the recall, then proceeds" timeout 60 truncate -s 512K "$f"
	read -r t1 _ </proc/uptime
	sleep 0.5
	info "breakable recall: truncate returned after $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')s; holder said: $(head -n2 /tmp/hold.out | tr '\n' ' ')"
	kill $holder 2>/dev/null
	wait $holder 2>/dev/null

	g=$MNT/immutable.bin
	dd if=/dev/urandom of="$g" bs=64K count=4 2>/dev/null
	md5sum <"$g" >$H/immutable.md5
	expect_good "seal --immutable" sfs 60 seal --immutable "$g"
	expect_fail "immutable: truncate refused (EPERM)" truncate -s 0 "$g"
	expect_fail "immutable: unlink refused (EPERM)" rm -f "$g"
	expect_good "immutable: in-place write allowed" sh -c "dd if='$g' of='$g' bs=4096 count=1 conv=notrunc 2>/dev/null"
}

immutable_held() { # after a reboot or a crash
	if [ ! -s $H/immutable.md5 ]; then
		skip "immutable flag held" "no immutable file from boot 1"
		return
	fi
	g=$MNT/immutable.bin
	expect_good "immutable file intact" sh -c "md5sum <'$g' | cmp - $H/immutable.md5"
	expect_fail "immutable flag held: truncate still refused" truncate -s 0 "$g"
	if [ "$PHASE" = 4 ]; then
		expect_good "unseal --immutable" sfs 60 unseal --immutable "$g"
		expect_good "after unseal, truncate works" truncate -s 0 "$g"
	fi
}
# === END OF SEAL TESTS HOOK ==================================================

# --- phases ------------------------------------------------------------------

guest_facts() {
	info "kernel $(uname -r), up $(cut -d' ' -f1 /proc/uptime)s at test start"
	flags=$(grep -m1 '^flags' /proc/cpuinfo)
	f_clwb=no f_opt=no
	case " $flags " in *" clwb "*) f_clwb=yes ;; esac
	case " $flags " in *" clflushopt "*) f_opt=yes ;; esac
	WB_EXPECT=clflush
	[ $f_opt = yes ] && WB_EXPECT=clflushopt
	[ $f_clwb = yes ] && WB_EXPECT=clwb
	info "guest CPU ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')): clflush=yes clflushopt=$f_opt clwb=$f_clwb; daxbench: $(daxbench cpu)"
	note=$(cat /etc/sealfs-note 2>/dev/null)
	[ -n "$note" ] && info "sealfs binary: $note"
	if command -v sealfs >/dev/null; then
		info "sealfs --version: $(sealfs --version 2>&1 | head -n1)"
	fi
}

phase1() {
	expect_good "ndctl create-namespace --mode=devdax --align=$ALIGN" \
		ndctl create-namespace -f -e namespace0.0 --mode=devdax --align="$ALIGN"
	i=0
	while [ ! -c $DEV ] && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	expect_good "$DEV is a character device" test -c $DEV || return
	size=$(cat /sys/bus/dax/devices/dax0.0/size)
	align=$(cat /sys/bus/dax/devices/dax0.0/align)
	want=$((2 * 1024 * 1024))
	[ "$ALIGN" = 4K ] && want=4096
	info "dax0.0 size=$size align=$align"
	expect_good "sysfs align is $want and size is a non-zero multiple of it" \
		test "$align" -eq $want -a "$size" -gt 0 -a $((size % align)) -eq 0

	expect_fail "mount refuses a zeroed device (no sealfs on it)" sfs 60 mount $DEV $MNT
	mounted && umount $MNT
	expect_fail "fsck refuses a zeroed device" sfs 60 fsck $DEV

	if expect_good "raw mapping of $DEV: 256 MiB in 1 MiB blocks written (flushed) and read back" daxbench bw-map $DEV 256; then
		info "bandwidth raw mapping: $(cat "$OUT")"
	fi
	expect_fail "mount refuses a device full of garbage" sfs 60 mount $DEV $MNT
	mounted && umount $MNT

	expect_good "mkfs $DEV" sfs 120 mkfs $DEV
	expect_fail "second mkfs without --force is refused" sfs 120 mkfs $DEV
	if do_mount; then
		smoke
		bandwidth_mount
		seal_tests
		window_tests
	else
		skip "POSIX smoke, bandwidth, seal and window tests" "not mounted"
	fi
	do_umount_fsck
}

phase2() {
	if do_mount; then
		verify_manifest "after a clean power-off: every file matches the boot-1 manifest"
		immutable_held
		window_held
	else
		skip "manifest check" "not mounted"
	fi
	do_umount_fsck
}

phase3() {
	if do_mount; then
		head -c 3145728 /dev/urandom >/tmp/crash.bin
		md5sum </tmp/crash.bin >$H/crash.md5
		expect_good "write 3 MiB + fsync, new directory + small file + fsync" sh -c "
			dd if=/tmp/crash.bin of=$MNT/crash.bin bs=1M conv=fsync 2>/dev/null &&
			mkdir $MNT/crashdir && echo after-crash >$MNT/crashdir/small &&
			sync $MNT/crashdir/small $MNT/crashdir $MNT"
	else
		skip "crash preparation" "not mounted"
	fi
	say "READY-TO-KILL"
	: >$H/ready-to-kill
	sleep 600
}

phase4() {
	expect_good "fsck right after the crash (before mount) exits 0" sfs 300 fsck "$DEV"
	if do_mount; then
		expect_good "file written+fsynced before the crash is intact" sh -c "md5sum <$MNT/crash.bin | cmp - $H/crash.md5"
		expect_good "directory and file created+fsynced before the crash exist" sh -c "[ \"\$(cat $MNT/crashdir/small)\" = after-crash ]"
		verify_manifest "after the crash: every boot-1 file matches the manifest"
		immutable_held
		window_held
	else
		skip "post-crash checks" "not mounted"
	fi
	do_umount_fsck
}

say "start: sequence $SEQ, boot $PHASE, align $ALIGN"
guest_facts
if [ "$SEQ" = C ]; then
	# virtio-fs served by the host's daemon (scripts/vm/guest-virtiofs.sh)
	. /bin/guest-virtiofs.sh
	vfs_phase
elif [ "$SEQ" = R ]; then
	# RDMA registrations over a sealed window (scripts/vm/guest-rdma.sh)
	. /bin/guest-rdma.sh
	rdma_phase
elif [ "$SEQ" = V ]; then
	# the virtio-fs benchmark: its BENCH lines go to the results file for the host
	BENCH_MB=${vmbenchmb:-256} BENCH_FILES=${vmbenchfiles:-300} sh /bin/guest-bench-virtiofs.sh >>"$RES" 2>&1
else
	case $PHASE in
	1) phase1 ;;
	2) phase2 ;;
	3) phase3 ;;
	4) phase4 ;;
	*) fail "unknown phase $PHASE" ;;
	esac
fi
info "boot $PHASE done at uptime $(cut -d' ' -f1 /proc/uptime)s"
record END
say "END"
