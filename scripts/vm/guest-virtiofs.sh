# guest-virtiofs.sh — sequence C of the sealfs VM tests: the host's sealfs
# daemon serves this guest as virtio-fs (vhost-user) with a DAX window.
# Sourced by guest-test.sh (its pass/fail/expect_* helpers, smoke and
# verify_manifest); vfsmap and sealfs are on PATH.
#
#   1  mount -t virtiofs; POSIX smoke; the host checks the tree through its
#      own mount; seals across the boundary (host's permanent and held seals
#      against a guest truncate, the guest's permanent seal seen on the host)
#   2  mount -o dax=always; the seals held over the guest's reboot; bytes
#      stored through a guest mapping read by the host and host pwrites read
#      through the guest's mapping; live window mappings in `sealfs stat`;
#      the host truncates a file the guest has mapped (recall, revocation)
#   3  mount -o dax=always; write + fsync, then the host SIGKILLs the daemon
#      and QEMU
#   4  (new daemon after fsck) everything fsynced in boot 3, the boot-1 tree
#      and the permanent seals are there
#
# The host acts when asked: `step NAME` creates /host/step-NAME and waits for
# the host's answer /host/done-NAME ("ok" or "fail: why"); scripts/vm.sh does
# the host side (c_step) and counts its own checks.

VFS_TAG=sealfs
# Unaligned ranges, one across the 2 MiB boundary, one at the very end of a 4 MiB file.
SPECS_A="1:13 4095:2 4097:100 2097100:200 3000000:5000 4194300:4"
SPECS_B="0:1 777:3333 2097151:2 2097152:4096 4194303:1"

step() { # NAME [SECS]
	_s=$1
	_t=${2:-120}
	rm -f "$H/done-$_s"
	say "STEP $_s"
	: >"$H/step-$_s"
	_i=0
	while [ ! -e "$H/done-$_s" ]; do
		_i=$((_i + 1))
		if [ $_i -gt $((_t * 10)) ]; then
			fail "host answered step $_s" "no answer within ${_t}s"
			return 1
		fi
		sleep 0.1
	done
	read -r _ans <"$H/done-$_s"
	say "host: $_s: $_ans"
	[ "$_ans" = ok ]
}

# expect_msg NAME TEXT CMD... : CMD must fail and say TEXT (e.g. the strerror of an errno).
expect_msg() {
	_name=$1
	_want=$2
	shift 2
	"$@" >"$OUT" 2>&1
	_rc=$?
	if [ $_rc -ne 0 ] && grep -q "$_want" "$OUT"; then
		pass "$_name (exit $_rc: $(head -n1 "$OUT" | cut -c1-100))"
		return 0
	fi
	fail "$_name" "exit $_rc, wanted \"$_want\": $* said: $(head -n1 "$OUT" | cut -c1-120)"
	return 1
}

vfs_mount() { # [dax]
	if [ "${1:-}" = dax ]; then
		expect_good "mount -t virtiofs -o dax=always $VFS_TAG $MNT" mount -t virtiofs -o dax=always $VFS_TAG $MNT || return 1
		_want="dax=always"
	else
		expect_good "mount -t virtiofs $VFS_TAG $MNT" mount -t virtiofs $VFS_TAG $MNT || return 1
		_want=""
	fi
	_line=$(grep " $MNT " /proc/mounts)
	case "$_line" in
	"$VFS_TAG $MNT virtiofs "*"$_want"*) pass "/proc/mounts: $_line" ;;
	*) fail "/proc/mounts shows $VFS_TAG on $MNT as virtiofs${_want:+ with $_want}" "${_line:-not mounted}" ;;
	esac
	dmesg | grep -i -E 'virtiofs|virtio_fs' | tail -n 3 | while read -r l; do info "dmesg: $l"; done
}

vfs_umount() {
	mounted && expect_good "umount $MNT" umount "$MNT"
}

# Both permanent seals refuse a truncate from the guest (EPERM).
seals_held() { # WHEN
	expect_msg "$1: the guest's permanent seal refuses a guest truncate (EPERM)" "Operation not permitted" truncate -s 0 "$MNT/gseal.bin"
	expect_msg "$1: the host's permanent seal refuses a guest truncate (EPERM)" "Operation not permitted" truncate -s 0 "$MNT/hseal.bin"
	expect_good "$1: the host-sealed file is intact" sh -c "md5sum <'$MNT/hseal.bin' | cmp - $H/hseal.md5"
}

vfs_phase1() {
	vfs_mount || {
		fail "POSIX smoke and seal tests over virtio-fs" "not mounted"
		return
	}
	smoke
	step tree
	head -c 262144 /dev/urandom >/tmp/seal.bin
	md5sum </tmp/seal.bin >$H/hseal.md5
	for f in hseal hheld gseal; do cp /tmp/seal.bin "$MNT/$f.bin"; done
	sync "$MNT/hseal.bin" "$MNT/hheld.bin" "$MNT/gseal.bin"
	if step host-seal; then
		expect_msg "host's permanent seal: a guest truncate is refused (EPERM)" "Operation not permitted" truncate -s 0 "$MNT/hseal.bin"
		expect_msg "host's held (temporary) seal: a guest truncate is refused (ETXTBSY)" "Text file busy" truncate -s 0 "$MNT/hheld.bin"
		expect_good "host's seals: an in-place guest write is allowed" dd if=/tmp/seal.bin of="$MNT/hheld.bin" bs=4096 count=1 conv=notrunc,fsync
	fi
	step host-unhold &&
		expect_good "host's held seal released: a guest truncate works (retried for 5 s)" \
			sh -c "for i in 1 2 3 4 5 6 7 8 9 10; do truncate -s 4096 '$MNT/hheld.bin' && exit 0; sleep 0.5; done; exit 1"
	expect_good "guest: sealfs seal --immutable on the virtio-fs mount (the ioctl crosses virtio-fs)" sfs 60 seal --immutable "$MNT/gseal.bin"
	expect_msg "guest's permanent seal: a guest truncate is refused (EPERM)" "Operation not permitted" truncate -s 0 "$MNT/gseal.bin"
	step guest-seal
	# A small file for the DAX read in boot 2 (written here without DAX).
	printf '%0100d' 7 >$H/small.txt
	cp $H/small.txt "$MNT/small.txt" && sync "$MNT/small.txt"
	step small-before
	vfs_umount
}

vfs_phase2() {
	vfs_mount dax || {
		fail "DAX window, seal and revocation tests" "not mounted with dax=always"
		return
	}
	seals_held "after the guest rebooted"
	expect_good "DAX read of a 100-byte file written in boot 1: exact" cmp "$MNT/small.txt" $H/small.txt
	step small-after

	# (a) guest stores through its mapping, the host reads through its mount.
	a=$MNT/dax-a.bin
	truncate -s 4M "$a"
	echo "$SPECS_A" >$H/specs-a
	expect_good "DAX (a): guest stores bytes through a MAP_SHARED mapping (unaligned, across 2 MiB), msync" vfsmap write "$a" 7 $SPECS_A
	expect_good "DAX (a): guest reads the whole 4 MiB back through a new mapping: exact" vfsmap mcheck "$a" 7 $SPECS_A
	step dax-a

	# (b) the host pwrites in place, the guest reads through its mapping.
	b=$MNT/dax-b.bin
	truncate -s 4M "$b"
	echo "$SPECS_B" >$H/specs-b
	expect_good "DAX (b): guest maps the new 4 MiB file: all zero" vfsmap mcheck "$b" 0
	if step dax-b; then
		expect_good "DAX (b): guest reads the host's pwrite through a mapping: whole file exact" vfsmap mcheck "$b" 9 $SPECS_B
		expect_good "DAX (b): and through read(2) on the dax=always mount" vfsmap check "$b" 9 $SPECS_B
	fi

	# (c) a live mapping in the host's counters, then the host truncates the file: one
	# 2 MiB file, so the guest holds exactly one window slot (one mapping pin) of it.
	r=$MNT/dax-r.bin
	truncate -s 2M "$r"
	expect_good "revoke: guest writes 2 MiB of pattern with write(2) + fsync" vfsmap pwrite "$r" 5 0:2097152
	rm -f $H/held-r $H/go-r
	vfsmap hold "$r" 5 1048581 64 $H/held-r $H/go-r 120 >/tmp/hold-r.out 2>&1 &
	hp=$!
	_i=0
	while [ ! -e $H/held-r ] && [ $_i -lt 300 ] && kill -0 $hp 2>/dev/null; do
		sleep 0.1
		_i=$((_i + 1))
	done
	if grep -q '^before: pattern' /tmp/hold-r.out; then
		pass "revoke: guest holds a DAX mapping and reads the pattern through it"
	else
		fail "revoke: guest holds a DAX mapping and reads the pattern through it" "$(tr '\n' ' ' </tmp/hold-r.out)"
	fi
	step window-stat
	step revoke 90
	: >$H/go-r
	wait $hp
	info "revoke: the holder saw: $(tr '\n' ';' </tmp/hold-r.out)"
	if grep -q '^after: zero' /tmp/hold-r.out; then
		pass "revoke: after the host's truncate the guest's old mapping reads zeros ($(grep '^after' /tmp/hold-r.out))"
	else
		fail "revoke: after the host's truncate the guest's old mapping reads zeros" "$(grep '^after' /tmp/hold-r.out || cat /tmp/hold-r.out)"
	fi
	info "revoke: guest's stat after: size $(stat -c %s "$r" 2>&1)"
	vfs_umount
}

vfs_phase3() {
	vfs_mount dax || {
		fail "crash preparation" "not mounted"
		say "READY-TO-KILL"
		step crash 30
		return
	}
	head -c 3145728 /dev/urandom >/tmp/crash.bin
	md5sum </tmp/crash.bin >$H/crash.md5
	expect_good "write 3 MiB (dd conv=fsync on dax=always), new directory + small file + fsync" sh -c "
		dd if=/tmp/crash.bin of=$MNT/crash.bin bs=1M conv=fsync 2>/dev/null &&
		mkdir $MNT/crashdir && echo after-crash >$MNT/crashdir/small &&
		sync $MNT/crashdir/small $MNT/crashdir $MNT"
	truncate -s 4M "$MNT/crash-m.bin"
	expect_good "store through a DAX mapping + msync + fsync" vfsmap write "$MNT/crash-m.bin" 11 $SPECS_A
	say "READY-TO-KILL"
	step crash 30
	sleep 600
}

vfs_phase4() {
	vfs_mount dax || {
		fail "post-crash checks" "not mounted"
		return
	}
	expect_good "after the daemon crash: file written + fsynced before it is intact" sh -c "md5sum <$MNT/crash.bin | cmp - $H/crash.md5"
	expect_good "after the daemon crash: bytes stored through the mapping + msync are there, whole file exact" vfsmap check "$MNT/crash-m.bin" 11 $SPECS_A
	expect_good "after the daemon crash: directory and file created + fsynced exist" sh -c "[ \"\$(cat $MNT/crashdir/small)\" = after-crash ]"
	verify_manifest "after the daemon crash: the boot-1 tree matches its manifest"
	seals_held "after the daemon crash"
	step seals-after
	vfs_umount
}

vfs_phase() {
	case $PHASE in
	1) vfs_phase1 ;;
	2) vfs_phase2 ;;
	3) vfs_phase3 ;;
	4) vfs_phase4 ;;
	*) fail "unknown phase $PHASE" ;;
	esac
}
