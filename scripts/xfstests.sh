#!/usr/bin/env bash
# Run a subset of xfstests (generic/) against sealfs, and bindfs as a reference,
# the way xfstests' README.fuse describes: FSTYP=fuse, FUSE_SUBTYP=.<name>.
#
#   scripts/xfstests.sh XFSTESTS_DIR [--fs sealfs|bindfs|both] [--list FILE]
#                       [--timeout SECS] [--work DIR] [--tests "generic/001 ..."]
#                       [--record FILE] [--sealfs BIN] [--size SIZE]
#
# The sealfs images live on a tmpfs the runner mounts (WORK/sealfs/img): sealfs
# is made for memory (DAX devices); on a disk-backed image every allocating
# write waits for the disk (ordered mode flushes new blocks before the extent
# record), which makes the write-heavy tests run into the watchdog.
#
# XFSTESTS_DIR is an xfstests checkout the user has built (`make`); this project
# never downloads or builds xfstests. Must run as root (mounts, /sbin helper,
# test users). See docs/testing.md, section "xfstests".
set -euo pipefail

usage() {
	sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
	cat <<'EOF'

Options:
  --fs sealfs|bindfs|both  filesystem(s) to test (default sealfs)
  --list FILE              test list (default tests/xfstests/list)
  --tests "T1 T2 ..."      run only these tests (expectations still from the list)
  --timeout SECS           per-test watchdog (default 900); on expiry: "hang"
  --work DIR               images, mount points, results (default /var/tmp/sealfs-xfstests)
  --record FILE            also write the outcomes, in list format, to FILE
                           (FILE.bindfs and FILE.sealfs with --fs both)
  --sealfs BIN             sealfs binary (default target/release/sealfs)
  --size SIZE              size of each sealfs image (default 4G, sparse, on a
                           tmpfs of twice that size plus 64M at WORK/sealfs/img)
  --bindfs-size SIZE       size of each tmpfs behind bindfs (default 3G)
Environment:
  SEALFS_MOUNT_OPTS        -o options xfstests passes to sealfs (default allow_other)
  BINDFS_MOUNT_OPTS        -o options xfstests passes to bindfs (default allow_other)
Exit status: 0 when every test met its expectation (or improved), 1 otherwise.
EOF
}

die() { echo "xfstests.sh: $*" >&2; exit 2; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
XFSTESTS_DIR=
FS=sealfs
LIST=$REPO/tests/xfstests/list
ONLY=
TIMEOUT=900
WORK=/var/tmp/sealfs-xfstests
RECORD=
SEALFS_BIN=$REPO/target/release/sealfs
SIZE=4G
BINDFS_SIZE=3G

while [ $# -gt 0 ]; do
	case $1 in
	--fs) FS=${2:?}; shift 2 ;;
	--list) LIST=${2:?}; shift 2 ;;
	--tests) ONLY=${2:?}; shift 2 ;;
	--timeout) TIMEOUT=${2:?}; shift 2 ;;
	--work) WORK=${2:?}; shift 2 ;;
	--record) RECORD=${2:?}; shift 2 ;;
	--sealfs) SEALFS_BIN=${2:?}; shift 2 ;;
	--size) SIZE=${2:?}; shift 2 ;;
	--bindfs-size) BINDFS_SIZE=${2:?}; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	-*) die "unknown option $1 (see --help)" ;;
	*) [ -z "$XFSTESTS_DIR" ] || die "more than one XFSTESTS_DIR"; XFSTESTS_DIR=$1; shift ;;
	esac
done

[ -n "$XFSTESTS_DIR" ] || { usage >&2; exit 2; }
case $FS in sealfs|bindfs|both) ;; *) die "--fs must be sealfs, bindfs or both" ;; esac
[[ $TIMEOUT =~ ^[0-9]+$ ]] || die "--timeout takes seconds"
[ "$(id -u)" = 0 ] || die "must run as root (mounts, /sbin/mount.fuse.* helpers, test users)"
XFSTESTS_DIR=$(cd "$XFSTESTS_DIR" && pwd)
[ -x "$XFSTESTS_DIR/check" ] || die "$XFSTESTS_DIR has no ./check"
[ -x "$XFSTESTS_DIR/ltp/fsx" ] || die "$XFSTESTS_DIR is not built: run make there first"
[ -f "$LIST" ] || die "no test list $LIST"
LIST=$(cd "$(dirname "$LIST")" && pwd)/$(basename "$LIST")
case $FS in sealfs|both)
	[ -x "$SEALFS_BIN" ] || die "no sealfs binary at $SEALFS_BIN (cargo build --release)" ;;
esac

# ---------------------------------------------------------------- packages
# Only what this runner itself calls; xfstests' own build dependencies are the
# user's business (README in xfstests). apt-get update runs only when needed.
apt_updated=0
need() { # need COMMAND PACKAGE
	command -v "$1" >/dev/null 2>&1 && return 0
	[ -x "/sbin/$1" ] && return 0
	command -v apt-get >/dev/null 2>&1 || die "$1 missing (install package $2)"
	if [ $apt_updated = 0 ]; then apt-get update -qq; apt_updated=1; fi
	echo "xfstests.sh: installing $2 (for $1)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
need mount.fuse3 fuse3
need fusermount3 fuse3
need fuser psmisc
need findmnt util-linux
need timeout coreutils
need xfs_io xfsprogs
need getfattr attr
need getfacl acl
need bc bc
case $FS in bindfs|both) need bindfs bindfs ;; esac

# ---------------------------------------------------------------- users
# README of xfstests, "Setup Environment": fsgqa (with home), fsgqa2, 123456-fsgqa,
# and the groups fsgqa and fsgqa2.
make_user() { # make_user NAME [useradd args]
	local name=$1; shift
	getent passwd "$name" >/dev/null && return 0
	useradd "$@" "$name" 2>/dev/null || useradd --badname "$@" "$name" ||
		echo "xfstests.sh: could not create user $name (tests that need it report notrun)" >&2
}
make_user fsgqa -m
make_user fsgqa2
make_user 123456-fsgqa
getent group fsgqa >/dev/null || groupadd fsgqa
getent group fsgqa2 >/dev/null || groupadd fsgqa2

# ---------------------------------------------------------------- work dir
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd -P)   # canonical: mount sources/targets must match findmnt's view
mkdir -p "$WORK/bin"

# The fuse.<subtype> problem: xfstests compares the type column of `df -T` for
# TEST_DEV with $FSTYP (common/rc: _fs_type, _check_mounted_on), and _fs_type
# maps only fuse.glusterfs and fuse.ceph-fuse back. A df shim, first on PATH
# when ./check computes DF_PROG (common/config: DF_PROG=$(type -P df)), reports
# fuse$FUSE_SUBTYP as "fuse"; the real mount keeps its subtype, so remounts
# still reach the /sbin/mount.fuse.<subtype> helper. See docs/testing.md.
REAL_DF=$(PATH=/usr/bin:/bin:$PATH type -P df)
# Without a file operand df stats every mount on the machine; the shim limits it
# to our type, so a slow or hung FUSE mount elsewhere (another run, another
# daemon) cannot stall xfstests or hold our mount busy during its umount.
cat > "$WORK/bin/df" <<EOF
#!/usr/bin/env bash
# generated by sealfs scripts/xfstests.sh: report fuse\$FUSE_SUBTYP as fuse
set -o pipefail
sub=\${FUSE_SUBTYP:-}
[ -n "\$sub" ] || exec $REAL_DF "\$@"
args=("\$@")
operand=0
for a in "\$@"; do case \$a in -*) ;; *) operand=1 ;; esac; done
[ \$operand = 1 ] || args+=(-t "fuse\$sub")
$REAL_DF "\${args[@]}" | sed -E "s/^([^ ]+ +)fuse\${sub//./\\\\.}( |\\\$)/\\1fuse\\2/"
EOF
chmod +x "$WORK/bin/df"

# fusectl lets the watchdog abort a hung FUSE connection.
if [ -d /sys/fs/fuse/connections ] && ! mountpoint -q /sys/fs/fuse/connections; then
	mount -t fusectl fusectl /sys/fs/fuse/connections 2>/dev/null || true
fi

# ---------------------------------------------------------------- helpers
install_sealfs_helper() {
	local bin; bin=$(cd "$(dirname "$SEALFS_BIN")" && pwd -P)/$(basename "$SEALFS_BIN")
	# mount -t fuse.sealfs DEV MNT -o OPTS runs /sbin/mount.fuse.sealfs DEV MNT -o OPTS
	# (mount(8)'s helper convention: also -s -f -n -v -N NS -t TYPE). The sealfs
	# binary answers to that name itself, so the helper is a symlink to it.
	ln -sfn "$bin" /sbin/mount.fuse.sealfs
}

# bindfs as a reference. `mount -t fuse.bindfs` works through mount.fuse3, but
# bindfs forces its fsname to the realpath of its source directory, and
# `umount SOURCE` (how xfstests unmounts) treats an existing directory as a
# mount point and answers "not mounted". So the helper mounts DEV/../data under
# the name DEV (renamed there for the moment of the mount; bindfs keeps a
# handle), sets a subtype so remounts come back here, and does remounts itself
# (a FUSE remount is a VFS flag change: mount -i -o remount,... MNT).
install_bindfs_helper() {
	local tmp=/sbin/.mount.fuse.bindfs-xfstests.$$
	cat > "$tmp" <<'EOF'
#!/bin/sh
# mount -t fuse.bindfs-xfstests helper, installed by sealfs scripts/xfstests.sh
# DEV is a path that does not exist; its directory holds the data in "data".
dev=$1 mnt=$2
shift 2
opts=
while [ $# -gt 0 ]; do
	case $1 in
	-o) opts=$2; shift 2 ;;
	-o*) opts=${1#-o}; shift ;;
	-t|-N) shift 2 ;;
	*) shift ;;
	esac
done
case ",$opts," in
*,remount,*) exec mount -i -o "$opts" "$mnt" ;;
esac
data=$(dirname "$dev")/data
[ -d "$data" ] || { echo "mount.fuse.bindfs-xfstests: no $data" >&2; exit 32; }
mv "$data" "$dev" || exit 32
# like mount.fuse3 as root: dev and suid unless nodev/nosuid were asked for
case ",$opts," in *,nodev,*) ;; *) opts=$opts${opts:+,}dev ;; esac
case ",$opts," in *,nosuid,*) ;; *) opts=$opts,suid ;; esac
bindfs -o "subtype=bindfs-xfstests,$opts" "$dev" "$mnt"
rc=$?
mv "$dev" "$data"
exit $rc
EOF
	chmod 755 "$tmp"
	mv -f "$tmp" /sbin/mount.fuse.bindfs-xfstests
}

# ---------------------------------------------------------------- list
# Format: "generic/001 pass  # optional reason"; expected is pass|notrun|fail.
declare -A EXPECT REASON
ORDER=()
load_list() {
	local line t e r
	while IFS= read -r line || [ -n "$line" ]; do
		line=${line%%$'\r'}
		if [[ $line =~ ^[[:space:]]*(#|$) ]]; then continue; fi
		r=
		if [[ $line == *#* ]]; then r=${line#*#}; r=${r# }; fi
		read -r t e _ <<<"${line%%#*}"
		case $e in pass|notrun|fail) ;; *) die "$LIST: bad expectation '$e' for $t" ;; esac
		[ -e "$XFSTESTS_DIR/tests/$t" ] || echo "xfstests.sh: $t not in this xfstests" >&2
		EXPECT[$t]=$e
		REASON[$t]=$r
		ORDER+=("$t")
	done < "$LIST"
}
load_list
if [ -n "$ONLY" ]; then
	ORDER=()
	for t in $ONLY; do ORDER+=("$t"); done
fi

# ---------------------------------------------------------------- mounts
# Current filesystem's layout (set by setup_*).
CUR= TEST_DEV= SCRATCH_DEV= TEST_MNT= SCRATCH_MNT= CFG=
daemon_pids() { # processes holding the test/scratch backing store
	local p
	for p in "$@"; do [ -e "$p" ] && fuser "$p" 2>/dev/null; done | tr -s ' ' '\n' | grep -E '^[0-9]+$' | sort -u || true
}
backing() {
	case $CUR in
	sealfs) echo "$TEST_DEV" "$SCRATCH_DEV" ;;
	bindfs) echo "$WORK/bindfs/test-src/data" "$WORK/bindfs/scratch-src/data" \
		"$WORK/bindfs/test-src/dev" "$WORK/bindfs/scratch-src/dev" ;;
	esac
}
# Unmount test and scratch; with --force abort the FUSE connections first
# (a hung daemon never answers) and kill what still holds the backing store.
teardown_mounts() {
	local force=${1:-} m conn i
	[ -n "$CUR" ] || return 0
	for m in "$TEST_MNT" "$SCRATCH_MNT"; do
		while mountpoint -q "$m" 2>/dev/null; do
			if [ -n "$force" ]; then
				conn=$(mountpoint -d "$m" 2>/dev/null | cut -d: -f2)
				[ -n "$conn" ] && [ -w "/sys/fs/fuse/connections/$conn/abort" ] &&
					echo 1 > "/sys/fs/fuse/connections/$conn/abort" 2>/dev/null || true
				umount -l "$m" 2>/dev/null || break
			else
				umount "$m" 2>/dev/null || { teardown_mounts force; return 0; }
			fi
		done
	done
	# daemons exit once unmounted (FUSE DESTROY / ENODEV); wait, then kill
	for i in $(seq 50); do
		[ -z "$(daemon_pids $(backing))" ] && break
		sleep 0.2
	done
	local pids; pids=$(daemon_pids $(backing))
	if [ -n "$pids" ]; then
		echo "xfstests.sh: killing leftover daemons: $pids" >&2
		kill -KILL $pids 2>/dev/null || true
		sleep 0.5
	fi
}

CHILD=
cleanup() {
	local rc=$?
	set +e
	if [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; then
		kill -TERM "$CHILD"
		wait "$CHILD"
	fi
	teardown_mounts
	for d in "$WORK/bindfs/test-src" "$WORK/bindfs/scratch-src" "$WORK/sealfs/img"; do
		mountpoint -q "$d" 2>/dev/null && umount "$d"
	done
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

write_config() { # write_config SUBTYPE OPTS
	CFG=$WORK/$CUR/local.config
	cat > "$CFG" <<EOF
# generated by sealfs scripts/xfstests.sh --fs $CUR
export FSTYP=fuse
export FUSE_SUBTYP=.$1
export TEST_DEV=$TEST_DEV
export TEST_DIR=$TEST_MNT
export SCRATCH_DEV=$SCRATCH_DEV
export SCRATCH_MNT=$SCRATCH_MNT
export TEST_FS_MOUNT_OPTS="-o $2"
export MOUNT_OPTIONS="-o $2"
export RESULT_BASE=$WORK/$CUR/results
EOF
}

setup_sealfs() {
	CUR=sealfs
	install_sealfs_helper
	local d=$WORK/sealfs bytes
	mkdir -p "$d/test" "$d/scratch" "$d/img"
	TEST_DEV=$d/img/test.img SCRATCH_DEV=$d/img/scratch.img TEST_MNT=$d/test SCRATCH_MNT=$d/scratch
	teardown_mounts force
	# The images on a tmpfs of their own (see the top of this file): sparse, so
	# only what the tests write takes memory.
	bytes=$(numfmt --from=iec "$SIZE") || die "--size $SIZE: not a size"
	mountpoint -q "$d/img" && umount "$d/img"
	mount -t tmpfs -o "size=$((2 * bytes + (64 << 20))),mode=0700" xfstests-sealfs "$d/img"
	# Images are made once per run: xfstests cannot re-create a FUSE filesystem.
	local img
	for img in "$TEST_DEV" "$SCRATCH_DEV"; do
		rm -f "$img"
		truncate -s "$SIZE" "$img"
		"$SEALFS_BIN" mkfs --size "$SIZE" "$img" >/dev/null
	done
	write_config sealfs "${SEALFS_MOUNT_OPTS:-allow_other}"
}

setup_bindfs() {
	CUR=bindfs
	install_bindfs_helper
	local d=$WORK/bindfs s
	mkdir -p "$d/test" "$d/scratch" "$d/test-src" "$d/scratch-src"
	TEST_DEV=$d/test-src/dev SCRATCH_DEV=$d/scratch-src/dev TEST_MNT=$d/test SCRATCH_MNT=$d/scratch
	teardown_mounts force
	for s in "$d/test-src" "$d/scratch-src"; do
		mountpoint -q "$s" && umount "$s"
		mount -t tmpfs -o "size=$BINDFS_SIZE,mode=0755" "xfstests-bindfs" "$s"
		mkdir "$s/data"
	done
	write_config bindfs-xfstests "${BINDFS_MOUNT_OPTS:-allow_other}"
}

# ---------------------------------------------------------------- run
# Runs ./check for one test under the watchdog; sets GOT and NOTE.
run_one() {
	local t=$1 log=$WORK/$CUR/logs/${1//\//-}.log rc=0
	mkdir -p "$WORK/$CUR/logs"
	# In the background so that a signal reaches our trap at once; timeout(1)
	# passes TERM on to ./check's process group.
	( cd "$XFSTESTS_DIR" &&
	  PATH="$WORK/bin:$PATH" HOST_OPTIONS="$CFG" \
	  exec timeout -k 30 "$TIMEOUT" ./check "$t" ) > "$log" 2>&1 < /dev/null &
	CHILD=$!
	wait "$CHILD" || rc=$?
	CHILD=
	local res=$WORK/$CUR/results/$t
	NOTE=
	if [ $rc = 124 ] || [ $rc = 137 ]; then
		GOT=hang
		NOTE="no result after ${TIMEOUT}s; mounts aborted"
		teardown_mounts force
	elif grep -q "^Not run: $t\$" "$log"; then   # check also says "Passed all" then
		GOT=notrun
		[ -f "$res.notrun" ] && NOTE=$(head -1 "$res.notrun")
	elif grep -q "^Failures: $t\$" "$log"; then
		GOT=fail
		NOTE=$(grep -m1 -E "^$t " "$log" | sed -E "s|^$t +||; s| *\(see .*||; s|^[0-9]+s \.\.\. *||" || true)
		[ -f "$res.out.bad" ] && NOTE="$NOTE (${res#"$WORK/"}.out.bad)"
	elif grep -q "^Passed all 1 tests" "$log"; then
		GOT=pass
	else
		GOT=error
		NOTE="./check did not run it (exit $rc): $(grep -v '^$' "$log" | tail -1)"
		teardown_mounts force
	fi
}

run_fs() {
	local fs=$1 t exp got start secs verdict
	setup_"$fs"
	local rec=$WORK/$fs/outcomes
	: > "$rec"
	echo "== xfstests on $fs: ${#ORDER[@]} tests, watchdog ${TIMEOUT}s, results in $WORK/$fs"
	local npass=0 nfail=0 nnotrun=0 nreg=0 nimp=0 nknown=0
	local -a rows=()
	declare -A BEXP=()
	if [ "$fs" = bindfs ] && [ -f "$REPO/tests/xfstests/bindfs.results" ] && [ "$LIST" = "$REPO/tests/xfstests/list" ]; then
		while read -r t e _; do
			if [[ $t =~ ^[a-z]+/[0-9]+$ ]]; then BEXP[$t]=$e; fi
		done < "$REPO/tests/xfstests/bindfs.results"
	fi
	for t in "${ORDER[@]}"; do
		if [ "$fs" = bindfs ]; then exp=${BEXP[$t]:-?}; else exp=${EXPECT[$t]:-pass}; fi
		start=$(date +%s)
		run_one "$t"
		if [ "$GOT" = error ]; then
			# ./check gave up before the test (e.g. "umount: target is busy" while
			# it empties the scratch fs): a harness hiccup, so try once more.
			local first=$NOTE
			sleep 2
			run_one "$t"
			[ "$GOT" = error ] || NOTE="second try (first: $first)${NOTE:+; $NOTE}"
		fi
		got=$GOT
		secs=$(( $(date +%s) - start ))
		case $got in
		pass) npass=$((npass + 1)) ;;
		notrun) nnotrun=$((nnotrun + 1)) ;;
		*) nfail=$((nfail + 1)) ;;
		esac
		if [ "$got" = "$exp" ] || [ "$exp" = "?" ]; then verdict=
		elif [ "$got" = pass ]; then verdict=improved; nimp=$((nimp + 1))
		elif [ "$exp" = fail ] && [ "$got" = notrun ]; then verdict=changed
		else verdict=REGRESSION; nreg=$((nreg + 1))
		fi
		[ "$exp" = fail ] && [ "$got" = fail ] && nknown=$((nknown + 1))
		printf '%-13s %-7s %-7s %5ss %-11s %s\n' "$t" "$exp" "$got" "$secs" "$verdict" "$NOTE"
		rows+=("$(printf '%-13s %-7s %-7s %5s %-11s %s' "$t" "$exp" "$got" "$secs" "$verdict" "$NOTE")")
		printf '%-13s %-7s # %s\n' "$t" "$got" "$NOTE" >> "$rec"
	done
	teardown_mounts
	local fsck_bad=0
	if [ "$fs" = sealfs ]; then
		# xfstests cannot check a FUSE filesystem; sealfs fsck does, once unmounted.
		local img
		for img in "$TEST_DEV" "$SCRATCH_DEV"; do
			if "$SEALFS_BIN" fsck "$img" > "$WORK/sealfs/fsck-$(basename "$img").log" 2>&1; then
				echo "fsck $(basename "$img"): clean"
			else
				echo "fsck $(basename "$img"): FAILED (see $WORK/sealfs/fsck-$(basename "$img").log)"
				fsck_bad=1
			fi
		done
	fi
	{
		echo
		printf '%-13s %-7s %-7s %6s %-11s %s\n' test expected got seconds verdict note
		printf '%s\n' "${rows[@]}"
	} > "$WORK/$fs/table.txt"
	echo
	printf '%-13s %-7s %-7s %6s %-11s %s\n' test expected got seconds verdict note
	printf '%s\n' "${rows[@]}"
	echo
	echo "$fs: $nreg regressions, $nimp improvements, $nknown known failures"
	SUMMARY+=("$fs: $npass passed, $nfail failed, $nnotrun notrun")
	if [ -n "$RECORD" ]; then
		if [ "$FS" = both ]; then cp "$rec" "$RECORD.$fs"; else cp "$rec" "$RECORD"; fi
	fi
	[ $nreg = 0 ] && [ $fsck_bad = 0 ] || STATUS=1
	CUR=
	if [ "$fs" = sealfs ]; then
		umount "$WORK/sealfs/img" 2>/dev/null || true
	fi
	if [ "$fs" = bindfs ]; then
		umount "$WORK/bindfs/test-src" "$WORK/bindfs/scratch-src" 2>/dev/null || true
	fi
}

STATUS=0
SUMMARY=()
case $FS in
both) run_fs bindfs; run_fs sealfs ;;
*) run_fs "$FS" ;;
esac
echo
printf '%s\n' "${SUMMARY[@]}"
exit $STATUS
