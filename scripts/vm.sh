#!/usr/bin/env bash
# scripts/vm.sh — run sealfs on a real device-DAX device (/dev/dax0.0) inside a
# QEMU guest (software emulation, emulated NVDIMM) and test it there.
#
# What it does (docs/vm.md has the details and the figures):
#   1. fetches QEMU (bookworm-backports), a 6.12 backports kernel, seabios,
#      busybox-static and ndctl from Debian's archive with a private apt
#      configuration, unpacking them into a cache folder (nothing is installed
#      on the host); re-runs reuse the cache; for sequence C also QEMU >= 11.1
#      from trixie-backports with trixie's loader and libraries (a second
#      private apt configuration, $cache/trixie-root);
#   2. builds a static sealfs (glibc, +crt-static; its own CARGO_TARGET_DIR) and the
#      static helpers scripts/vm/daxbench.c (raw mapping) and scripts/vm/vfsmap.c;
#   3. packs a busybox initramfs with ndctl, the NVDIMM/DAX and 9p modules,
#      sealfs and the guest test script (scripts/vm/guest-test.sh);
#   4. runs two sequences of four boots each on a fresh pmem image:
#        A: namespace --align=2M, -cpu max   (clwb)
#        B: namespace --align=4K, default CPU (clflush only)
#      boot 1 mkfs + POSIX smoke + bandwidth, boot 2 verify after a clean
#      power-off, boot 3 write+fsync then QEMU is SIGKILLed, boot 4 verify
#      after that crash;
#      and, beside them, sequence C: sealfs on the host (an image file) serves
#      the guest as virtio-fs over vhost-user with a DAX window (QEMU >= 11.1;
#      scripts/vm/guest-virtiofs.sh): POSIX smoke, DAX bytes both ways, seals
#      across the boundary, a revoked guest mapping, a SIGKILLed daemon;
#      and sequence R: three boots on /dev/dax0.0 with Soft-RoCE (rdma_rxe over a
#      dummy interface) and scripts/vm/rdma-agent.c (static, against Debian's
#      libibverbs-dev): RDMA registrations of a sealed window (scripts/vm/guest-rdma.sh),
#      boot 3 on trixie-backports' kernel for on-demand paging;
#   5. prints the checks (sequence C also "virtiofs: N passed, N failed", sequence
#      R "rdma: N passed, N failed") and one
#      final line "N passed, N failed[, N skipped]";
#      exits non-zero on any failure, 0 with a reason when it must skip.
#
# Environment:
#   SEALFS_VM_CACHE     cache folder (default ~/.cache/sealfs-vm)
#   SEALFS_VM_SEQ       which sequences to run: "A B C R" (default), or any of them;
#                       "V" is the virtio-fs benchmark (scripts/bench.sh --virtiofs):
#                       SEALFS_BENCH_MB (256) and SEALFS_BENCH_FILES (300) size it,
#                       SEALFS_VIRTIOFSD=PATH runs your own virtiofsd
#   SEALFS_VM_BIN       use this sealfs binary instead of building one
#   SEALFS_VM_TARGET_DIR  CARGO_TARGET_DIR of the static build (default CACHE/target,
#                       kept apart from target/ so the normal build stays valid)
#   SEALFS_VM_STANDIN=1 use scripts/vm/standin-sealfs.sh instead of sealfs
#                       (tests this harness itself; see docs/vm.md)
#   SEALFS_VM_KERNEL    guest kernel package (default linux-image-6.12.95+deb12-amd64;
#                       when the archive no longer has it, the current 6.12
#                       backports kernel is taken)
#   SEALFS_VM_MIRROR    Debian mirror URL (default: the one apt on this host uses)
#   SEALFS_VM_TIMEOUT   seconds allowed per boot (default 600)
#   SEALFS_VM_SMP       guest CPUs (default 1; the sequences run in parallel,
#                       one QEMU per host core)
#   SEALFS_VM_SERIAL=1  run the sequences one after the other
#   SEALFS_VM_KEEP=1    keep the work folder (logs, images) and print its path
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=${SEALFS_VM_CACHE:-${HOME:-~}/.cache/sealfs-vm}
kernel_want=${SEALFS_VM_KERNEL:-linux-image-6.12.95+deb12-amd64}
boot_timeout=${SEALFS_VM_TIMEOUT:-600}
# Outside the work tree so that CI's fresh clones on the same machine build incrementally.
vm_target=${SEALFS_VM_TARGET_DIR:-$cache/target}
sequences=${SEALFS_VM_SEQ:-A B C R}
t_start=$(date +%s)

say() { printf 'vm: %s\n' "$*"; }
skip() {
	say "skipped: $*"
	echo "0 passed, 0 failed, 1 skipped"
	exit 0
}
die() {
	say "error: $*" >&2
	echo "0 passed, 1 failed"
	exit 1
}

work=""
qemu_pid=""
seq_pids=()
cleanup() {
	local rc=$? p f
	for p in "${seq_pids[@]}"; do kill "$p" 2>/dev/null || true; done
	# Every QEMU this script started leaves its pid in $work/qemu-*.pid.
	if [[ -n $work ]]; then
		for f in "$work"/qemu-*.pid; do
			[[ -e $f ]] || continue
			p=$(cat "$f")
			[[ -n $p ]] && kill -KILL "$p" 2>/dev/null || true
		done
	fi
	[[ -n $qemu_pid ]] && kill -KILL "$qemu_pid" 2>/dev/null || true
	# Sequence C: the host's seal holder, its FUSE mount and its daemon.
	if [[ -n $work ]]; then
		for f in "$work"/holder-C.pid "$work"/daemon-C.pid; do
			[[ -e $f ]] || continue
			p=$(cat "$f")
			[[ -n $p ]] && kill -KILL "$p" 2>/dev/null || true
		done
		grep -qF " $work/mnt-C " /proc/mounts 2>/dev/null && umount -l "$work/mnt-C" 2>/dev/null || true
	fi
	if [[ -n $work && -d $work ]]; then
		if [[ ${SEALFS_VM_KEEP:-0} == 1 ]]; then
			say "work folder kept: $work"
		else
			rm -rf "$work"
		fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM
set -E
trap 'say "error: \"$BASH_COMMAND\" failed (line $LINENO)" >&2' ERR

[[ $(uname -m) == x86_64 ]] || skip "needs an x86_64 host (found $(uname -m))"

# ---------------------------------------------------------------------------
# 1. Packages, into $cache/root (never installed on the host)
# ---------------------------------------------------------------------------
aptdir=$cache/apt
debs=$cache/debs
root=$cache/root
multiarch=usr/lib/x86_64-linux-gnu
ready=$cache/ready # written once everything is unpacked; lists the kernel version

apt_opts=()
find_mirror() { # -> the Debian mirror URL (SEALFS_VM_MIRROR or this host's apt sources)
	local mirror=${SEALFS_VM_MIRROR:-}
	if [[ -z $mirror ]]; then
		# The mirror this host's apt already uses for bookworm (deb822 or one-line format).
		mirror=$(
			{
				cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '
					/^[[:space:]]*$/ { if (uris != "" && suites ~ /(^| )bookworm( |$)/) print uris; uris = ""; suites = "" }
					/^URIs:/ { $1 = ""; uris = $0 }
					/^Suites:/ { $1 = ""; suites = $0 " " }
					END { if (uris != "" && suites ~ /(^| )bookworm( |$)/) print uris }'
				cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
					sed -n 's/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*\) bookworm .*/\2/p'
			} | tr ' ' '\n' | grep -v -e security -e '^$' | head -n1
		) || true
	fi
	[[ -n $mirror ]] || return 1
	echo "$mirror"
}

setup_apt() {
	local mirror
	mirror=$(find_mirror) || return 1
	local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	[[ -r $keyring ]] || return 1
	mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial" "$debs"
	cat >"$aptdir/sources.list" <<-EOF
		deb [signed-by=$keyring] $mirror bookworm main
		deb [signed-by=$keyring] $mirror bookworm-backports main
	EOF
	# QEMU and the kernel come from bookworm-backports, everything else from bookworm.
	cat >"$aptdir/preferences" <<-EOF
		Package: qemu-system-x86 qemu-system-common qemu-system-data linux-image-amd64
		Pin: release n=bookworm-backports
		Pin-Priority: 990
	EOF
	: >"$aptdir/status"
	apt_opts=(
		-o "Dir::Etc::SourceList=$aptdir/sources.list" -o Dir::Etc::SourceParts=/dev/null
		-o "Dir::Etc::Preferences=$aptdir/preferences" -o Dir::Etc::PreferencesParts=/dev/null
		-o "Dir::State::Lists=$aptdir/lists" -o "Dir::Cache=$aptdir/cache"
		-o "Dir::State::Status=$aptdir/status" -o Debug::NoLocking=1
		-o "APT::Sandbox::User=$(id -un)" -o quiet=1
	)
}

apt_update() {
	say "apt-get update (private lists for bookworm and bookworm-backports)"
	apt-get "${apt_opts[@]}" --error-on=any update >"$aptdir/update.log" 2>&1 || {
		tail -n5 "$aptdir/update.log" >&2
		return 1
	}
}

candidate() { # PACKAGE -> candidate version or nothing
	apt-cache "${apt_opts[@]}" policy "$1" 2>/dev/null | awk '/Candidate:/ && $2 != "(none)" { print $2 }'
}

download() { # PACKAGE... -> .debs in $debs, unpacked into $root
	local p
	(cd "$debs" && apt-get "${apt_opts[@]}" download "$@" >>"$aptdir/download.log" 2>&1) || {
		tail -n5 "$aptdir/download.log" >&2
		return 1
	}
	for p in "$@"; do
		local f
		f=$(ls -t "$debs/${p}_"*.deb 2>/dev/null | head -n1) || true
		[[ -n $f ]] || return 1
		dpkg-deb -x "$f" "$root" || return 1
		echo "$p" >>"$cache/unpacked"
	done
}

# Debian names a library package after its soname: libfoo.so.1 -> libfoo1,
# libfoo2.so.0 -> libfoo2-0. A few do not follow that rule.
soname_package() {
	case $1 in
	libglib-2.0.so.* | libgio-2.0.so.* | libgobject-2.0.so.* | libgmodule-2.0.so.*) echo libglib2.0-0 ;;
	libjpeg.so.62) echo libjpeg62-turbo ;;
	libdb-5.3.so) echo libdb5.3 ;;
	libz.so.1) echo zlib1g ;;
	libcrypto.so.3 | libssl.so.3) echo libssl3 ;;
	*)
		local stem=${1%%.so*} ver=${1#*.so.}
		if [[ $stem =~ [0-9]$ ]]; then echo "$stem-$ver"; else echo "$stem$ver"; fi
		;;
	esac
}

ldd_missing() { # BINARY... -> sonames ldd cannot find (host libs + $root)
	LD_LIBRARY_PATH=$root/$multiarch:$root/lib/x86_64-linux-gnu ldd "$@" 2>/dev/null |
		awk '/=> not found/ { print $1 }' | sort -u
}

fetch_missing_libs() { # BINARY... : download library packages until ldd is satisfied
	local round missing pkgs s p
	for round in 1 2 3 4 5; do
		missing=$(ldd_missing "$@")
		[[ -z $missing ]] && return 0
		pkgs=()
		for s in $missing; do
			p=$(soname_package "$s")
			if [[ -z $(candidate "$p") ]]; then
				say "cannot tell which package ships $s (guessed $p)" >&2
				return 1
			fi
			pkgs+=("$p")
		done
		say "fetching libraries: ${pkgs[*]}"
		download "${pkgs[@]}" || return 1
	done
	[[ -z $(ldd_missing "$@") ]]
}

ensure_packages() {
	if [[ -s $ready ]]; then
		kver=$(cat "$ready")
		return 0
	fi
	say "filling the package cache $cache (first run only)"
	command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
		skip "no apt-get/dpkg-deb on this host and no complete cache in $cache"
	mkdir -p "$cache"
	[[ -w $cache ]] || skip "cache folder $cache is not writable"
	setup_apt || skip "no Debian bookworm mirror found in this host's apt sources (set SEALFS_VM_MIRROR) and no complete cache"
	if [[ ! -e $aptdir/lists/.updated ]] || [[ -z $(candidate qemu-system-x86) ]]; then
		if ! apt_update; then
			[[ $(id -u) == 0 ]] || skip "not root, apt-get update failed and the cache is incomplete"
			skip "cannot reach the Debian archive (apt-get update failed) and the cache in $cache is incomplete"
		fi
		touch "$aptdir/lists/.updated"
	fi
	[[ -n $(candidate qemu-system-x86) ]] || skip "the archive's package lists have no qemu-system-x86 (see $aptdir/update.log)"
	local kpkg=$kernel_want
	if [[ -z $(candidate "$kpkg") ]]; then
		# That kernel is gone: follow the backports metapackage to the current 6.12 kernel.
		kpkg=$(apt-cache "${apt_opts[@]}" show linux-image-amd64/bookworm-backports 2>/dev/null |
			sed -n 's/^Depends: .*\(linux-image-6\.12\.[^ ,]*-amd64\).*/\1/p' | head -n1) || true
		[[ -n $kpkg ]] || skip "no 6.12 kernel in bookworm-backports"
		say "$kernel_want is gone from the archive; using $kpkg"
	fi
	rm -rf "$root" "$cache/unpacked"
	mkdir -p "$root"
	local pkgs=(qemu-system-x86 qemu-system-common qemu-system-data seabios busybox-static
		ndctl libndctl6 libdaxctl1 libiniparser1 "$kpkg")
	say "downloading ${pkgs[*]}"
	if ! download "${pkgs[@]}"; then
		# Stale lists (a version was superseded): refresh once and retry.
		apt_update && download "${pkgs[@]}" || skip "cannot download the packages from the Debian archive"
	fi
	fetch_missing_libs "$root/usr/bin/qemu-system-x86_64" "$root/usr/bin/ndctl" ||
		die "could not complete QEMU's/ndctl's libraries"
	kver=${kpkg#linux-image-}
	[[ -e $root/boot/vmlinuz-$kver ]] || die "kernel image vmlinuz-$kver missing from $kpkg"
	echo "$kver" >"$ready"
	say "cache ready ($(du -sh "$cache" | cut -f1))"
}

# ---------------------------------------------------------------------------
# 1b. QEMU >= 11.1 for sequence C (virtio-fs with a DAX window), from
#     trixie-backports into $cache/trixie-root. It needs glibc 2.38, so it runs
#     through trixie's own loader with trixie's libraries: no chroot, no root.
# ---------------------------------------------------------------------------
taptdir=$cache/apt-trixie
tdebs=$cache/debs-trixie
troot=$cache/trixie-root
tready=$cache/trixie-ready # written once everything is unpacked; holds QEMU's version
qemu_min=11.1
qemu11=()     # the command line prefix that runs QEMU >= 11.1
qemu11_version=""
c_skip=""     # why sequence C cannot run, if it cannot
tapt_opts=()

setup_apt_trixie() { # MIRROR
	local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	[[ -r $keyring ]] || return 1
	mkdir -p "$taptdir/lists/partial" "$taptdir/cache" "$tdebs/partial"
	cat >"$taptdir/sources.list" <<-EOT
		deb [signed-by=$keyring] $1 trixie main
		deb [signed-by=$keyring] $1 trixie-backports main
	EOT
	: >"$taptdir/status"
	# Default-Release: QEMU, seabios and the libraries come from trixie-backports where it has
	# them (backports' priority is 100, so a plain install would take trixie's QEMU 10.0).
	# The empty dpkg status makes apt resolve the whole Depends closure, libc6 included.
	tapt_opts=(
		-o "Dir::Etc::SourceList=$taptdir/sources.list" -o Dir::Etc::SourceParts=/dev/null
		-o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null
		-o "Dir::State::Lists=$taptdir/lists" -o "Dir::Cache=$taptdir/cache"
		-o "Dir::Cache::archives=$tdebs" -o "Dir::State::Status=$taptdir/status"
		-o APT::Default-Release=trixie-backports -o Debug::NoLocking=1
		-o "APT::Sandbox::User=$(id -un)" -o quiet=1
	)
}

qemu11_command() { # sets qemu11 from $troot; fails if the loader or the binary is missing
	local ld=$troot/usr/lib64/ld-linux-x86-64.so.2 bin=$troot/usr/bin/qemu-system-x86_64
	[[ -e $ld && -x $bin ]] || return 1
	qemu11=("$ld" --library-path "$troot/$multiarch" "$bin"
		-L "$troot/usr/share/seabios" -L "$troot/usr/share/qemu")
}

qemu11_check() { # -> QEMU's version on stdout, or a reason on stderr and 1
	local missing v
	missing=$("$troot/usr/lib64/ld-linux-x86-64.so.2" --library-path "$troot/$multiarch" --list \
		"$troot/usr/bin/qemu-system-x86_64" 2>&1 | awk '/not found/ { print $1 }' | tr '\n' ' ') || true
	if [[ -n $missing ]]; then
		echo "trixie's QEMU lacks the libraries $missing" >&2
		return 1
	fi
	v=$("${qemu11[@]}" --version 2>&1 | sed -n 's/^QEMU emulator version \([0-9][0-9.]*\).*/\1/p' | head -n1) || true
	if [[ -z $v ]]; then
		echo "the unpacked QEMU does not run: $("${qemu11[@]}" --version 2>&1 | head -n1)" >&2
		return 1
	fi
	if [[ $(printf '%s\n%s\n' "$qemu_min" "$v" | sort -V | head -n1) != "$qemu_min" ]]; then
		echo "QEMU $v is older than $qemu_min" >&2
		return 1
	fi
	echo "$v"
}

ensure_qemu11() { # -> 0 with qemu11 and qemu11_version set, or 1 with the reason in c_skip
	if [[ -s $tready ]] && qemu11_command; then
		qemu11_version=$(cat "$tready")
		return 0
	fi
	say "fetching QEMU >= $qemu_min from trixie-backports into $troot (first run only)"
	if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
		c_skip="no apt-get/dpkg-deb on this host and no QEMU $qemu_min in $troot"
		return 1
	fi
	local mirror
	mirror=$(find_mirror) && setup_apt_trixie "$mirror" || {
		c_skip="no Debian mirror found in this host's apt sources (set SEALFS_VM_MIRROR) and no QEMU $qemu_min in $troot"
		return 1
	}
	local v
	v=$(apt-cache "${tapt_opts[@]}" policy qemu-system-x86 2>/dev/null | awk '/Candidate:/ && $2 != "(none)" { print $2 }') || true
	if [[ ! -e $taptdir/lists/.updated || -z $v ]] || ! dpkg --compare-versions "$v" ge "1:$qemu_min"; then
		say "apt-get update (private lists for trixie and trixie-backports)"
		if ! apt-get "${tapt_opts[@]}" --error-on=any update >"$taptdir/update.log" 2>&1; then
			tail -n5 "$taptdir/update.log" >&2
			c_skip="cannot reach the Debian archive for trixie-backports (apt-get update failed$([[ $(id -u) == 0 ]] || echo '; not root')) and no QEMU $qemu_min in $troot"
			return 1
		fi
		touch "$taptdir/lists/.updated"
		v=$(apt-cache "${tapt_opts[@]}" policy qemu-system-x86 2>/dev/null | awk '/Candidate:/ && $2 != "(none)" { print $2 }') || true
	fi
	if [[ -z $v ]] || ! dpkg --compare-versions "$v" ge "1:$qemu_min"; then
		c_skip="trixie-backports has no qemu-system-x86 >= $qemu_min (candidate: ${v:-none}); vhost-user shared memory (the DAX window) needs QEMU $qemu_min"
		return 1
	fi
	rm -f "$tdebs"/*.deb
	say "downloading qemu-system-x86 $v and its dependencies (trixie, trixie-backports)"
	if ! apt-get "${tapt_opts[@]}" -y --download-only --no-install-recommends install \
		qemu-system-x86 qemu-system-common qemu-system-data seabios >"$taptdir/download.log" 2>&1; then
		tail -n5 "$taptdir/download.log" >&2
		c_skip="cannot download qemu-system-x86 $v and its dependencies (see $taptdir/download.log)"
		return 1
	fi
	rm -rf "$troot"
	mkdir -p "$troot"
	local f n=0
	for f in "$tdebs"/*.deb; do
		dpkg-deb -x "$f" "$troot" || {
			c_skip="dpkg-deb -x $f failed"
			return 1
		}
		n=$((n + 1))
	done
	qemu11_command || {
		c_skip="$n packages unpacked, but no trixie loader or qemu-system-x86_64 in $troot"
		return 1
	}
	qemu11_version=$(qemu11_check 2>"$taptdir/check.log") || {
		c_skip=$(cat "$taptdir/check.log")
		return 1
	}
	echo "$qemu11_version" >"$tready"
	say "QEMU $qemu11_version ready ($n packages, $(du -sh "$troot" | cut -f1))"
}

# ---------------------------------------------------------------------------
# 2. Binaries: static sealfs and the raw-mapping helper
# ---------------------------------------------------------------------------
build_sealfs() { # -> path of a sealfs binary in $sealfs_bin, or empty with a reason in $sealfs_note
	sealfs_bin="" sealfs_note=""
	if [[ ${SEALFS_VM_STANDIN:-0} == 1 ]]; then
		sealfs_bin=$here/vm/standin-sealfs.sh
		sealfs_note="stand-in (scripts/vm/standin-sealfs.sh), not the real sealfs"
		return
	fi
	if [[ -n ${SEALFS_VM_BIN:-} ]]; then
		sealfs_bin=$SEALFS_VM_BIN
		return
	fi
	command -v cargo >/dev/null || {
		sealfs_note="cargo not found: no sealfs binary"
		return
	}
	say "building static sealfs (cargo build --release, CARGO_TARGET_DIR=$vm_target)"
	local log=$work/cargo.log
	# Debug info would be stripped from the initramfs copy anyway.
	if RUSTFLAGS='-C target-feature=+crt-static' CARGO_TARGET_DIR=$vm_target CARGO_PROFILE_RELEASE_DEBUG=0 \
		cargo build --release --target x86_64-unknown-linux-gnu -p sealfs --bin sealfs \
		--manifest-path "$repo/Cargo.toml" >"$log" 2>&1; then
		sealfs_bin=$vm_target/x86_64-unknown-linux-gnu/release/sealfs
	else
		sealfs_note="cargo build failed (see below); the guest runs without sealfs"
		tail -n 15 "$log" | sed 's/^/  cargo: /'
	fi
}

# ---------------------------------------------------------------------------
# 2b. Sequence R: the RDMA agent, static against Debian's libibverbs (the rxe
#     provider linked in: a static libibverbs uses the providers it is linked with)
# ---------------------------------------------------------------------------
r_skip=""  # why sequence R cannot run, if it cannot
r_agent="" # the static agent

rdma_libs_present() {
	[[ -e $root/$multiarch/libibverbs.a && -e $root/$multiarch/pkgconfig/libibverbs.pc &&
		-e $root/usr/include/infiniband/verbs.h ]] &&
		compgen -G "$root/$multiarch/librxe-rdmav*.a" >/dev/null &&
		{ [[ -e $root/$multiarch/libnl-route-3.a ]] || [[ -e $root/lib/x86_64-linux-gnu/libnl-route-3.a ]]; }
}

build_rdma_agent() { # -> r_agent, or r_skip with the reason
	local pkgs=(libibverbs-dev libibverbs1 ibverbs-providers libnl-3-dev libnl-route-3-dev)
	if [[ ${SEALFS_VM_STANDIN:-0} == 1 ]]; then
		r_skip="the stand-in (SEALFS_VM_STANDIN=1) takes no seals and sets up no windows"
		return
	fi
	if ! rdma_libs_present; then
		say "fetching ${pkgs[*]} into $root (first run with sequence R)"
		if ! command -v apt-get >/dev/null || ! setup_apt; then
			r_skip="no apt-get or no Debian mirror to fetch libibverbs-dev from, and none in $root"
			return
		fi
		if ! download "${pkgs[@]}"; then
			apt_update && download "${pkgs[@]}" || {
				r_skip="cannot download ${pkgs[*]} from the Debian archive"
				return
			}
		fi
		rdma_libs_present || {
			r_skip="libibverbs-dev unpacked, but no static libibverbs.a, librxe-rdmav*.a or libnl-route-3.a in $root"
			return
		}
	fi
	local lib=$root/$multiarch
	# shellcheck disable=SC2046 # the provider list of libibverbs.pc, one word each
	if gcc -O2 -Wall -static -DRDMA_STATIC_PROVIDERS=rxe -I"$repo/include" -idirafter "$root/usr/include" \
		-o "$work/rdma-agent" "$here/vm/rdma-agent.c" -L"$lib" -L"$root/lib/x86_64-linux-gnu" \
		-Wl,--start-group -libverbs $(sed -n 's/^Libs.private://p' "$lib/pkgconfig/libibverbs.pc") \
		-lnl-route-3 -lnl-3 -lpthread -Wl,--end-group >"$work/gcc-rdma.log" 2>&1; then
		r_agent=$work/rdma-agent
	else
		r_skip="cannot build scripts/vm/rdma-agent.c static against libibverbs: $(grep -m1 -E 'error|undefined' "$work/gcc-rdma.log")"
	fi
}

# Boot 3 of sequence R needs a kernel whose rxe has on-demand paging (6.12's has
# none): the newest kernel of trixie-backports (linux-binary-* and linux-modules-*),
# unpacked into $cache/odp-root with the trixie apt configuration of sequence C.
odp_root=$cache/odp-root
odp_ready=$cache/odp-ready # holds the kernel version once unpacked
odp_kver="" odp_vmlinuz="" odp_moddir="" odp_skip=""

odp_paths() { # sets odp_vmlinuz and odp_moddir for $odp_kver; fails if either is missing
	local d
	for d in "$odp_root/usr/lib/modules/$odp_kver" "$odp_root/lib/modules/$odp_kver"; do
		[[ -d $d/kernel ]] && odp_moddir=$d
	done
	for d in "$odp_root/usr/lib/modules/$odp_kver/vmlinuz" "$odp_root/boot/vmlinuz-$odp_kver"; do
		[[ -e $d ]] && odp_vmlinuz=$d
	done
	[[ -n $odp_moddir && -n $odp_vmlinuz ]]
}

ensure_odp_kernel() { # -> odp_kver etc., or odp_skip with the reason
	if [[ -s $odp_ready ]]; then
		odp_kver=$(cat "$odp_ready")
		odp_paths && return 0
	fi
	local mirror kpkg
	if ! command -v apt-get >/dev/null || ! mirror=$(find_mirror) || ! setup_apt_trixie "$mirror"; then
		odp_skip="no apt-get or no Debian mirror for trixie-backports' kernel, and none in $odp_root"
		return 1
	fi
	if [[ ! -e $taptdir/lists/.updated ]]; then
		apt-get "${tapt_opts[@]}" --error-on=any update >"$taptdir/update.log" 2>&1 || {
			odp_skip="cannot reach the Debian archive for trixie-backports (apt-get update failed)"
			return 1
		}
		touch "$taptdir/lists/.updated"
	fi
	kpkg=$(apt-cache "${tapt_opts[@]}" show linux-image-amd64/trixie-backports 2>/dev/null |
		sed -n 's/^Depends: .*\(linux-image-[0-9][^ ,]*-amd64\).*/\1/p' | head -n1) || true
	[[ -n $kpkg ]] || {
		odp_skip="trixie-backports has no linux-image-amd64"
		return 1
	}
	odp_kver=${kpkg#linux-image-}
	say "fetching trixie-backports' kernel $odp_kver for sequence R's ODP boot into $odp_root (first run only)"
	mkdir -p "$cache/odp-debs"
	rm -f "$cache"/odp-debs/*.deb
	(cd "$cache/odp-debs" && apt-get "${tapt_opts[@]}" download "linux-binary-$odp_kver" "linux-modules-$odp_kver" ||
		apt-get "${tapt_opts[@]}" download "$kpkg") >"$cache/odp-debs/download.log" 2>&1 || {
		odp_skip="cannot download kernel $odp_kver from trixie-backports (see $cache/odp-debs/download.log)"
		return 1
	}
	rm -rf "$odp_root"
	mkdir -p "$odp_root"
	local f
	for f in "$cache"/odp-debs/*.deb; do dpkg-deb -x "$f" "$odp_root"; done
	rm -f "$cache"/odp-debs/*.deb
	odp_paths || {
		odp_skip="kernel $odp_kver unpacked, but no vmlinuz or modules in $odp_root"
		return 1
	}
	echo "$odp_kver" >"$odp_ready"
}

# The initramfs of the ODP boot: the same files, that kernel's modules.
build_odp_initramfs() {
	local ir2=$work/initramfs-odp m
	rm -rf "$ir2"
	cp -a "$ir" "$ir2"
	rm -f "$ir2"/lib/modules/*.ko
	local missing=""
	for m in libnvdimm nfit nd_btt nd_pmem dax_pmem device_dax netfs 9pnet 9pnet_virtio 9p dummy ib_uverbs rdma_rxe; do
		[[ -n $(moddir=$odp_moddir module_file "$m") ]] || missing+=" $m"
	done
	if [[ -n $missing ]]; then
		odp_skip="kernel $odp_kver has no module$missing"
		return
	fi
	(
		moddir=$odp_moddir # this kernel's module walk stays in this subshell
		mod_seen=()
		mod_order=()
		for m in libnvdimm nfit nd_btt nd_pmem dax_pmem device_dax netfs 9pnet 9pnet_virtio 9p; do add_module "$m"; done
		: >"$ir2/etc/modules"
		for m in "${mod_order[@]}"; do
			uncompress "${m#*:}" >"$ir2/lib/modules/${m%%:*}.ko"
			echo "${m%%:*}" >>"$ir2/etc/modules"
		done
		mod_order=()
		for m in dummy ib_uverbs rdma_rxe; do add_module "$m"; done
		: >"$ir2/etc/modules-rdma"
		for m in "${mod_order[@]}"; do
			uncompress "${m#*:}" >"$ir2/lib/modules/${m%%:*}.ko"
			echo "${m%%:*}" >>"$ir2/etc/modules-rdma"
		done
	) || {
		odp_skip="the modules of kernel $odp_kver could not be packed"
		return
	}
	(cd "$ir2" && find . -mindepth 1 | LC_ALL=C sort | "$ir2/bin/busybox" cpio -o -H newc 2>/dev/null) >"$work/initrd-odp.cpio"
	say "initramfs for R's ODP boot (kernel $odp_kver): $(du -h "$work/initrd-odp.cpio" | cut -f1), for R: $(tr '\n' ' ' <"$ir2/etc/modules-rdma")"
	rm -rf "$ir2"
}

# ---------------------------------------------------------------------------
# 3. initramfs
# ---------------------------------------------------------------------------
module_dir() {
	local d
	for d in "$root/lib/modules/$kver" "$root/usr/lib/modules/$kver"; do
		[[ -d $d/kernel ]] && echo "$d" && return
	done
	return 0
}

module_file() { # NAME -> path of NAME.ko[.xz] (module names use _ where files may use -)
	local alt=${1//_/-}
	find "$moddir/kernel" \( -name "$1.ko*" -o -name "$alt.ko*" \) | head -n1
}

uncompress() { # FILE -> its contents on stdout (.ko, .ko.xz, .ko.zst)
	case $1 in
	*.xz) if command -v xz >/dev/null; then xz -dc "$1"; else "$root/bin/busybox" xzcat "$1"; fi ;;
	*.zst) zstd -qdc "$1" ;;
	*) cat "$1" ;;
	esac
}

module_deps() { # FILE -> dependency names from its .modinfo
	uncompress "$1" | tr '\0' '\n' | awk -F= '$1 == "depends" && !done { gsub(",", " ", $2); print $2; done = 1 }'
}

declare -A mod_seen
mod_order=()
add_module() { # NAME: its dependencies first, then itself
	local name=$1 f d
	[[ -n ${mod_seen[$name]:-} ]] && return 0
	mod_seen[$name]=1
	f=$(module_file "$name")
	[[ -n $f ]] || die "kernel module $name not found in $moddir"
	for d in $(module_deps "$f"); do add_module "$d"; done
	mod_order+=("$name:$f")
}

copy_with_libs() { # BINARY DEST : copy a dynamic binary and every library it needs
	local bin=$1 dest=$2 line so path
	install -D -m 0755 "$bin" "$ir$dest"
	while read -r line; do
		so=$(awk '{print $1}' <<<"$line")
		path=$(awk '$2 == "=>" { print $3 } $2 != "=>" { print $1 }' <<<"$line")
		[[ $path == /* ]] || continue
		if [[ $so == */ld-linux* ]]; then
			install -D -m 0755 "$path" "$ir/lib64/$(basename "$so")"
		else
			install -D -m 0755 "$path" "$ir/lib/x86_64-linux-gnu/$so"
		fi
	done < <(LD_LIBRARY_PATH=$root/$multiarch:$root/lib/x86_64-linux-gnu ldd "$bin" | grep -v 'linux-vdso')
}

build_initramfs() {
	ir=$work/initramfs
	mkdir -p "$ir"/{bin,dev,proc,sys,tmp,run,mnt,host,etc,lib/modules,lib/x86_64-linux-gnu,lib64}
	local bb=$root/bin/busybox
	[[ -x $bb ]] || bb=$root/usr/bin/busybox
	install -m 0755 "$bb" "$ir/bin/busybox"
	copy_with_libs "$root/usr/bin/ndctl" /bin/ndctl
	install -m 0755 "$here/vm/init" "$ir/init"
	install -m 0755 "$here/vm/guest-test.sh" "$ir/bin/guest-test.sh"
	install -m 0755 "$work/daxbench" "$ir/bin/daxbench"
	install -m 0755 "$here/vm/guest-virtiofs.sh" "$ir/bin/guest-virtiofs.sh"
	install -m 0755 "$here/vm/guest-bench-virtiofs.sh" "$ir/bin/guest-bench-virtiofs.sh"
	install -m 0755 "$work/vfsmap" "$ir/bin/vfsmap"
	if [[ -n $sealfs_bin ]]; then
		if file_is_script "$sealfs_bin"; then
			install -m 0755 "$sealfs_bin" "$ir/bin/sealfs"
		else
			if LC_ALL=C ldd "$sealfs_bin" 2>&1 | grep -q '=>'; then
				say "warning: $sealfs_bin is dynamically linked; copying its libraries too"
				copy_with_libs "$sealfs_bin" /bin/sealfs
			else
				install -m 0755 "$sealfs_bin" "$ir/bin/sealfs"
			fi
			strip --strip-debug "$ir/bin/sealfs" 2>/dev/null || true
		fi
	fi
	echo "${sealfs_note:-}" >"$ir/etc/sealfs-note"
	moddir=$(module_dir)
	[[ -n $moddir ]] || die "no modules folder for $kver in $root"
	local m
	for m in libnvdimm nfit nd_btt nd_pmem dax_pmem device_dax netfs 9pnet 9pnet_virtio 9p; do
		add_module "$m"
	done
	: >"$ir/etc/modules"
	for m in "${mod_order[@]}"; do
		local name=${m%%:*} f=${m#*:}
		uncompress "$f" >"$ir/lib/modules/$name.ko"
		echo "$name" >>"$ir/etc/modules"
	done
	if [[ -n $r_agent ]]; then
		# Sequence R: Soft-RoCE, loaded by guest-rdma.sh only (not at every boot).
		install -m 0755 "$r_agent" "$ir/bin/rdma-agent"
		install -m 0755 "$here/vm/guest-rdma.sh" "$ir/bin/guest-rdma.sh"
		local missing=""
		for m in dummy crc32_generic rdma_rxe; do
			[[ -n $(module_file "$m") ]] || missing+=" $m"
		done
		if [[ -n $missing ]]; then
			r_skip="the guest kernel $kver has no module$missing (CONFIG_RDMA_RXE, CONFIG_DUMMY)"
		else
			mod_order=()
			for m in dummy crc32_generic rdma_rxe; do add_module "$m"; done
			: >"$ir/etc/modules-rdma"
			for m in "${mod_order[@]}"; do
				local name=${m%%:*} f=${m#*:}
				uncompress "$f" >"$ir/lib/modules/$name.ko"
				echo "$name" >>"$ir/etc/modules-rdma"
			done
		fi
	fi
	(cd "$ir" && find . -mindepth 1 | LC_ALL=C sort | "$ir/bin/busybox" cpio -o -H newc 2>/dev/null) >"$work/initrd.cpio"
	if [[ -n $r_agent && -z $r_skip && -z $odp_skip ]]; then build_odp_initramfs; fi
	say "initramfs: $(du -h "$work/initrd.cpio" | cut -f1), modules: $(tr '\n' ' ' <"$ir/etc/modules")$([[ -s $ir/etc/modules-rdma ]] && echo "; for R: $(tr '\n' ' ' <"$ir/etc/modules-rdma")")"
}

file_is_script() { [[ $(head -c2 "$1") == '#!' ]]; }

# ---------------------------------------------------------------------------
# 4. Boots
# ---------------------------------------------------------------------------
passed=0 failed=0 skipped=0
host_check() { # NAME OK(0/1) [DETAIL]
	if [[ $2 == 0 ]]; then
		passed=$((passed + 1))
		echo "  PASS  $1"
	else
		failed=$((failed + 1))
		echo "  FAIL  $1${3:+ — $3}"
	fi
}

boot() { # SEQ PHASE ALIGN CPU IMAGE SHARE MODE(normal|kill) -> sets boot_secs
	# (BOOT_KERNEL and BOOT_INITRD, if set, replace the kernel and the initramfs)
	local seq=$1 phase=$2 align=$3 cpu=$4 img=$5 share=$6 mode=$7
	local tag=$seq$phase log=$work/console-$seq$phase.log
	local cpu_args=()
	[[ $cpu == default ]] || cpu_args=(-cpu "$cpu")
	rm -f "$share/ready-to-kill"
	local t0
	t0=$(date +%s.%N)
	LD_LIBRARY_PATH=$root/$multiarch:$root/lib/x86_64-linux-gnu \
		"$root/usr/bin/qemu-system-x86_64" \
		-L "$root/usr/share/qemu" -L "$root/usr/share/seabios" \
		-nodefaults -no-user-config -accel tcg "${cpu_args[@]}" -smp "${SEALFS_VM_SMP:-1}" \
		-machine pc,nvdimm=on -m 1G,slots=2,maxmem=4G \
		-object "memory-backend-file,id=mem1,share=on,mem-path=$img,size=1G,align=2M" \
		-device nvdimm,id=nvdimm1,memdev=mem1 \
		-virtfs "local,path=$share,mount_tag=host,security_model=none,id=host" \
		-kernel "${BOOT_KERNEL:-$root/boot/vmlinuz-$kver}" -initrd "${BOOT_INITRD:-$work/initrd.cpio}" \
		-append "console=ttyS0 rdinit=/init panic=-1 quiet loglevel=4 vmseq=$seq vmphase=$phase vmalign=$align" \
		-display none -serial "file:$log" -monitor none -nic none -no-reboot \
		</dev/null >"$work/qemu-$tag.out" 2>&1 &
	qemu_pid=$!
	echo "$qemu_pid" >"$work/qemu-$seq.pid"
	local deadline=$(($(date +%s) + boot_timeout)) status=ok
	while kill -0 "$qemu_pid" 2>/dev/null; do
		if [[ $mode == kill && -e $share/ready-to-kill ]]; then
			kill -KILL "$qemu_pid"
			status=killed
			break
		fi
		if (($(date +%s) > deadline)); then
			kill -KILL "$qemu_pid"
			status=timeout
			break
		fi
		sleep 0.2
	done
	boot_done "$seq" "$t0" "$status"
}

boot_done() { # SEQ T0 STATUS : reaps the boot's QEMU; sets boot_secs and boot_status
	wait "$qemu_pid" 2>/dev/null || true
	qemu_pid=""
	rm -f "$work/qemu-$1.pid"
	boot_secs=$(awk -v a="$2" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	boot_status=$3
}

report_guest() { # RESULTS-FILE : print and count the guest's checks
	local f=$1 kind rest
	while IFS= read -r line; do
		kind=${line%% *}
		rest=${line#* }
		case $kind in
		PASS)
			passed=$((passed + 1))
			echo "  PASS  $rest"
			;;
		FAIL)
			failed=$((failed + 1))
			echo "  FAIL  $rest"
			;;
		SKIP)
			skipped=$((skipped + 1))
			echo "  SKIP  $rest"
			;;
		INFO) echo "  info  $rest" ;;
		"|") echo "        $line" ;;
		esac
	done <"$f"
}

run_sequence() { # SEQ ALIGN CPU
	local seq=$1 align=$2 cpu=$3
	local img=$work/pmem-$seq.img share=$work/share-$seq
	mkdir -p "$share"
	rm -f "$img"
	truncate -s 1G "$img"
	local phase mode res
	for phase in 1 2 3 4; do
		mode=normal
		[[ $phase == 3 ]] && mode=kill
		echo "== sequence $seq (namespace --align=$align, cpu $cpu), boot $phase"
		boot "$seq" "$phase" "$align" "$cpu" "$img" "$share" "$mode"
		res=$share/results-$phase.txt
		if [[ -s $res ]]; then
			report_guest "$res"
		fi
		case $mode:$boot_status in
		normal:ok)
			if grep -q '^END' "$res" 2>/dev/null; then
				host_check "$seq$phase guest ran its tests and powered off (${boot_secs}s boot-to-result)" 0
			else
				host_check "$seq$phase guest powered off before reporting" 1 "console log:"
				tail -n 25 "$work/console-$seq$phase.log" | sed 's/^/        | /'
			fi
			;;
		kill:killed)
			host_check "$seq$phase host killed QEMU (SIGKILL) after the guest's write+fsync (${boot_secs}s)" 0
			;;
		*)
			host_check "$seq$phase boot ended: $boot_status after ${boot_secs}s" 1 "console log:"
			tail -n 25 "$work/console-$seq$phase.log" | sed 's/^/        | /'
			;;
		esac
		echo "$seq$phase=${boot_secs}s" >>"$work/boot-times"
		say "sequence $seq boot $phase: $boot_status after ${boot_secs}s" >&2
	done
	rm -f "$img"
	echo "$passed $failed $skipped" >"$work/counts-$seq"
}

# ---------------------------------------------------------------------------
# 4b. Sequence C: the host's sealfs daemon serves the guest as virtio-fs
#     (vhost-user) with a DAX window; QEMU >= 11.1 (section 1b)
# ---------------------------------------------------------------------------
c_img="" c_mnt="" c_sock="" c_share="" c_dlog=""
c_window=64M
c_holder="" # pid of the host's `sealfs seal --hold`

c_daemon_pid() { # -> pid of the daemon serving $c_sock (the process this script started)
	local d
	for d in /proc/[0-9]*; do
		{ tr '\0' ' ' <"$d/cmdline"; } 2>/dev/null | grep -qF -- "vhost_user=$c_sock," && echo "${d#/proc/}" && return 0
	done
	return 0
}

c_mounted() { grep -qF " $c_mnt " /proc/mounts; }

c_threads() { # the daemon's threads and where each waits in the kernel
	local pid t
	pid=$(cat "$work/daemon-C.pid" 2>/dev/null) || true
	[[ -n $pid && -d /proc/$pid ]] || return 0
	for t in /proc/"$pid"/task/*; do
		printf '%s: %s; ' "$(cat "$t/comm" 2>/dev/null)" "$(cat "$t/wchan" 2>/dev/null)"
	done
}

c_mount() { # WHAT: the host mount with the vhost-user socket; a host check
	rm -f "$c_sock"
	local t0=$SECONDS rc=0
	RUST_LOG=${RUST_LOG:-sealfs=debug} SEALFS_LOG=$c_dlog timeout 120 "$sealfs_bin" mount "$c_img" "$c_mnt" \
		-o "vhost_user=$c_sock,vhost_tag=sealfs,vhost_window=$c_window,break_timeout=1000" \
		>"$work/mount-C.out" 2>&1 || rc=$?
	if [[ $rc == 0 ]] && c_mounted && [[ -S $c_sock ]]; then
		c_daemon_pid >"$work/daemon-C.pid"
		host_check "$1: sealfs mount IMAGE MNT -o vhost_user=SOCK,vhost_tag=sealfs,vhost_window=$c_window,break_timeout=1000: host mount live and socket listening ($((SECONDS - t0))s, daemon pid $(cat "$work/daemon-C.pid"))" 0
		return 0
	fi
	host_check "$1: sealfs mount with vhost_user=SOCK" 1 "exit $rc, mounted: $(c_mounted && echo yes || echo no), socket: $([[ -S $c_sock ]] && echo yes || echo no); it said: $(head -c 300 "$work/mount-C.out" | tr '\n' ' ')"
	return 1
}

c_umount() { # WHAT: umount, wait for the daemon to exit, fsck; host checks
	local pid i
	pid=$(cat "$work/daemon-C.pid" 2>/dev/null) || true
	if c_mounted; then
		local rc=0
		timeout 60 umount "$c_mnt" >"$work/umount-C.out" 2>&1 || rc=$?
		host_check "$1: umount of the host mount" $rc "$(cat "$work/umount-C.out")"
	fi
	for ((i = 0; i < 300; i++)); do
		[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
		host_check "$1: the daemon exited after umount" 1 "pid $pid still running after 30 s"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$work/daemon-C.pid"
	c_fsck "$1"
}

c_fsck() { # WHAT
	local rc=0
	timeout 300 "$sealfs_bin" fsck "$c_img" >"$work/fsck-C.out" 2>&1 || rc=$?
	host_check "$1: sealfs fsck IMAGE exits 0" $rc "exit $rc: $(tail -n 5 "$work/fsck-C.out" | tr '\n' ' ')"
	echo "  info  $1: fsck: $(tail -n 1 "$work/fsck-C.out")"
}

c_stat_field() { # REGEX-WITH-ONE-NUMBER -> the number from `sealfs stat` (empty if absent)
	timeout 30 "$sealfs_bin" stat "$c_mnt" 2>&1 | sed -n "s/.*$1.*/\\1/p" | head -n1 || true
}

c_small_back() { # after boot 2: the 100-byte file's blocks are what they were before the guest's DAX read
	local want n="" i
	want=$(cat "$work/small-bytes" 2>/dev/null) || true
	for ((i = 0; i < 50; i++)); do
		n=$(timeout 30 "$sealfs_bin" extents "$c_mnt/small.txt" 2>/dev/null | awk 'NR > 1 { s += $3 } END { print s + 0 }') || n=""
		[[ -n $want && $n == "$want" ]] && break
		sleep 0.2
	done
	local ok=1
	[[ -n $want && $n == "$want" ]] && ok=0
	host_check "host: after the guest's boot ended, the 100-byte file it read through DAX holds what it held before (${want:-?} -> ${n:-?} bytes in sealfs extents)" $ok
}

c_answer() { # NAME ok|"fail: why"
	printf '%s\n' "$2" >"$c_share/.done-$1"
	mv "$c_share/.done-$1" "$c_share/done-$1"
}

# One step the guest asked for; host checks, then the answer the guest waits for.
c_step() { # NAME
	local name=$1 ok=0 out=$work/step-$1.out t0 t1 n before after rc pid
	: >"$out"
	case $name in
	tree)
		# The tree the guest made, seen through the host's own mount.
		{
			timeout 120 "$work/daxbench" tree "$c_mnt/tree" | sort || true
			echo "# hard link"
			echo "$(timeout 30 stat -c %i "$c_mnt/tree/big") $(timeout 30 stat -c %i "$c_mnt/tree/d1/big-hardlink")" |
				awk '{ print ($1 == $2) ? "same inode" : "different inodes" }'
		} >"$work/host-tree.txt" 2>&1 || true
		diff "$c_share/manifest.txt" "$work/host-tree.txt" >"$out" 2>&1 || ok=1
		host_check "host: the guest's tree read through the host mount matches the guest's manifest ($(grep -c . "$c_share/manifest.txt" 2>/dev/null) entries)" $ok "$(head -n 6 "$out" | tr '\n' ' ')"
		;;
	host-seal)
		timeout 60 "$sealfs_bin" seal --immutable "$c_mnt/hseal.bin" >"$out" 2>&1 || ok=1
		host_check "host: sealfs seal --immutable on a file the guest wrote" $ok "$(head -n 2 "$out" | tr '\n' ' ')"
		"$sealfs_bin" seal --hold "$c_mnt/hheld.bin" >"$work/hold-C.out" 2>&1 &
		c_holder=$!
		echo "$c_holder" >"$work/holder-C.pid"
		for ((n = 0; n < 50; n++)); do
			grep -q 'held by pid' "$work/hold-C.out" 2>/dev/null && break
			sleep 0.1
		done
		if grep -q 'held by pid' "$work/hold-C.out"; then
			host_check "host: sealfs seal --hold on another file ($(head -n1 "$work/hold-C.out"))" 0
		else
			host_check "host: sealfs seal --hold on another file" 1 "$(head -n 2 "$work/hold-C.out" | tr '\n' ' ')"
			ok=1
		fi
		;;
	host-unhold)
		if [[ -n $c_holder ]]; then
			kill -KILL "$c_holder" 2>/dev/null || true
			wait "$c_holder" 2>/dev/null || true
			c_holder=""
			rm -f "$work/holder-C.pid"
		fi
		;;
	guest-seal)
		timeout 30 "$sealfs_bin" seals "$c_mnt/gseal.bin" >"$out" 2>&1 || true
		grep -q immutable "$out" || ok=1
		host_check "host: sealfs seals lists the permanent seal the guest set over virtio-fs" $ok "$(head -n 3 "$out" | tr '\n' ' ')"
		rc=0
		timeout 30 truncate -c -s 0 "$c_mnt/gseal.bin" >"$out" 2>&1 || rc=$?
		n=1
		[[ $rc != 0 ]] && grep -q 'Operation not permitted' "$out" && n=0
		host_check "host: a host truncate of the guest-sealed file is refused (EPERM)" $n "exit $rc: $(head -n1 "$out")"
		;;
	dax-a)
		timeout 60 "$work/vfsmap" check "$c_mnt/dax-a.bin" 7 $(cat "$c_share/specs-a") >"$out" 2>&1 || ok=1
		host_check "DAX (a): the host reads the guest's mapped stores through its mount: whole 4 MiB exact ($(head -n1 "$out"))" $ok
		;;
	dax-b)
		timeout 60 "$work/vfsmap" pwrite "$c_mnt/dax-b.bin" 9 $(cat "$c_share/specs-b") >"$out" 2>&1 || ok=1
		host_check "DAX (b): the host pwrites + fsyncs in place through its mount (unaligned, across 2 MiB)" $ok "$(head -n1 "$out")"
		;;
	window-stat)
		timeout 30 "$sealfs_bin" stat "$c_mnt" >"$out" 2>&1 || true
		n=$(sed -n 's/.*guest window mappings: \([0-9][0-9]*\).*/\1/p' "$out" | head -n1)
		[[ -n $n && $n -ge 1 ]] || ok=1
		host_check "host: sealfs stat shows the guest's live DAX mapping (guest window mappings: ${n:-absent})" $ok "$(grep -i -E 'guest|window|pins' "$out" | tr '\n' ' ')"
		;;
	revoke)
		before=$(c_stat_field '\([0-9][0-9]*\) revocations')
		t0=$(date +%s.%N)
		rc=0
		timeout 60 truncate -c -s 0 "$c_mnt/dax-r.bin" >"$out" 2>&1 || rc=$?
		t1=$(date +%s.%N)
		local secs
		secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
		after=$(c_stat_field '\([0-9][0-9]*\) revocations')
		host_check "revoke: the host truncates the file the guest has mapped: it succeeds after ${secs}s (break_timeout=1000)" \
			"$([[ $rc == 0 ]] && awk -v s="$secs" 'BEGIN { exit !(s >= 0.9 && s < 30) }' && echo 0 || echo 1)" "exit $rc: $(head -n1 "$out")"
		n=1
		[[ -n $before && -n $after ]] && ((after == before + 1)) && n=0
		host_check "revoke: sealfs stat counts one more revocation (${before:-?} -> ${after:-?})" $n
		[[ $rc == 0 ]] || ok=1
		;;
	crash)
		pid=$(cat "$work/daemon-C.pid" 2>/dev/null) || true
		if [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null; then
			host_check "crash: the host SIGKILLed the daemon (pid $pid) after the guest's fsync" 0
		else
			host_check "crash: the host SIGKILLed the daemon after the guest's fsync" 1 "no daemon pid (${pid:-none})"
		fi
		[[ -n $qemu_pid ]] && kill -KILL "$qemu_pid" 2>/dev/null || true
		c_crashed=1
		return
		;;
	small-before | small-after)
		# Allocated bytes from the daemon (`sealfs extents`), not st_blocks, which the
		# host's attribute cache may keep from before the guest's read.
		n=$(timeout 30 "$sealfs_bin" extents "$c_mnt/small.txt" 2>"$out" | awk 'NR > 1 { s += $3 } END { print s + 0 }') || ok=1
		if [[ $name == small-before ]]; then
			echo "$n" >"$work/small-bytes"
			host_check "host: bytes allocated to the guest's 100-byte file: $n (sealfs extents)" $ok "$(head -n1 "$out")"
		else
			# The guest's slot may back the whole 2 MiB while it lives; c_small_back
			# checks that it is given back when the guest's device stops.
			echo "  info  host: bytes allocated to the 100-byte file while the guest holds its slot: ${n:-?} (sealfs extents)"
		fi
		;;
	seals-after)
		timeout 30 "$sealfs_bin" seals "$c_mnt/gseal.bin" >"$out" 2>&1 || true
		grep -q immutable "$out" || ok=1
		host_check "host, after the daemon crash: the guest's permanent seal is still listed" $ok "$(head -n 2 "$out" | tr '\n' ' ')"
		timeout 30 "$sealfs_bin" seals "$c_mnt/hseal.bin" >"$out" 2>&1 || true
		n=0
		grep -q immutable "$out" || n=1 ok=1
		host_check "host, after the daemon crash: the host's permanent seal is still listed" $n "$(head -n 2 "$out" | tr '\n' ' ')"
		;;
	*)
		host_check "guest asked for an unknown step $name" 1
		ok=1
		;;
	esac
	if [[ $ok == 0 ]]; then c_answer "$name" ok; else c_answer "$name" "fail: see the host's checks"; fi
}

boot_c() { # PHASE -> boot_status (ok|killed|timeout|no-start), boot_secs; serves the guest's steps
	local phase=$1 log=$work/console-C$1.log f name t0
	local -A answered=()
	rm -f "$c_share"/step-* "$c_share"/done-*
	c_crashed=0
	t0=$(date +%s.%N)
	"${qemu11[@]}" -nodefaults -no-user-config -accel tcg -smp "${SEALFS_VM_SMP:-1}" \
		-machine pc -m 512M \
		-object memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem \
		-chardev "socket,id=sealfs0,path=$c_sock" \
		-device vhost-user-test-device-pci,chardev=sealfs0,virtio-id=26,num_vqs=2,config_size=40 \
		-virtfs "local,path=$c_share,mount_tag=host,security_model=none,id=host" \
		-kernel "$root/boot/vmlinuz-$kver" -initrd "$work/initrd.cpio" \
		-append "console=ttyS0 rdinit=/init panic=-1 quiet loglevel=4 vmseq=C vmphase=$phase" \
		-display none -serial "file:$log" -monitor none -nic none -no-reboot \
		</dev/null >"$work/qemu-C$phase.out" 2>&1 &
	qemu_pid=$!
	echo "$qemu_pid" >"$work/qemu-C.pid"
	# QEMU does the vhost-user handshake before it starts the guest: no console output
	# after a minute means the daemon took the connection but does not answer it.
	local start=$(date +%s) status=ok
	local deadline=$((start + (boot_timeout < 300 ? boot_timeout : 300)))
	while kill -0 "$qemu_pid" 2>/dev/null; do
		if [[ ! -s $log ]] && (($(date +%s) > start + 60)); then
			kill -KILL "$qemu_pid"
			status=no-start
			break
		fi
		for f in "$c_share"/step-*; do
			[[ -e $f ]] || continue
			name=${f##*/step-}
			[[ -n ${answered[$name]:-} ]] && continue
			answered[$name]=1
			c_step "$name"
		done
		if [[ $c_crashed == 1 ]]; then
			status=killed
			break
		fi
		if (($(date +%s) > deadline)); then
			kill -KILL "$qemu_pid"
			status=timeout
			break
		fi
		sleep 0.2
	done
	boot_done C "$t0" "$status"
}

c_show_logs() { # after a failure: the ends of QEMU's output and the daemon's log
	local phase=$1
	if [[ -s $work/qemu-C$phase.out ]]; then
		echo "        QEMU said:"
		tail -n 8 "$work/qemu-C$phase.out" | sed 's/^/        | /'
	fi
	if [[ -s $c_dlog ]]; then
		echo "        daemon log (RUST_LOG=${RUST_LOG:-sealfs=debug}), last lines:"
		tail -n 12 "$c_dlog" | cut -c1-200 | sed 's/^/        | /'
	fi
}

c_prepare() { # in the main shell, before the sequences start: sets c_skip when C cannot run
	if [[ ${SEALFS_VM_STANDIN:-0} == 1 ]]; then
		c_skip="the stand-in (SEALFS_VM_STANDIN=1) cannot serve vhost-user"
	elif [[ $(id -u) != 0 ]]; then
		c_skip="the host's sealfs mount needs root"
	elif [[ ! -c /dev/fuse ]]; then
		c_skip="no /dev/fuse on the host"
	else
		ensure_qemu11 || true
	fi
	[[ -z $c_skip ]] || say "sequence C will be skipped: $c_skip"
	return 0
}

run_sequence_c() {
	echo "== sequence C (virtio-fs from the host's daemon, DAX window; QEMU ${qemu11_version:-none})"
	if [[ -n $c_skip ]]; then
		skipped=$((skipped + 1))
		echo "  SKIP  C virtio-fs sequence — $c_skip"
		echo "virtiofs: 0 passed, 0 failed, 1 skipped"
		echo "$passed $failed $skipped" >"$work/counts-C"
		return
	fi
	c_img=$work/vfs-C.img c_mnt=$work/mnt-C c_sock=$work/vfs-C.sock
	c_share=$work/share-C c_dlog=$work/daemon-C.log
	mkdir -p "$c_mnt" "$c_share"
	rm -f "$c_img"
	local rc=0
	timeout 120 "$sealfs_bin" mkfs --size 1G "$c_img" >"$work/mkfs-C.out" 2>&1 || rc=$?
	host_check "C: sealfs mkfs --size 1G IMAGE" $rc "exit $rc: $(head -n 3 "$work/mkfs-C.out" | tr '\n' ' ')"
	local phase res served=0
	c_mount "C1" && served=1
	for phase in 1 2 3 4; do
		echo "== sequence C, boot $phase"
		if [[ $served == 0 ]]; then
			host_check "C$phase guest boot" 1 "not booted: no daemon serves the vhost-user socket"
			continue
		fi
		boot_c "$phase"
		if [[ $boot_status == no-start ]]; then
			# The same daemon did not serve this VMM: say so (with where its threads
			# wait), then give the boot a new daemon so that the later checks still run.
			host_check "C$phase the daemon serves a new QEMU after the previous one exited" 1 \
				"QEMU showed no console output within 60 s (handshake unanswered); daemon threads (name: kernel wait channel): $(c_threads)"
			c_show_logs "$phase"
			c_umount "C$phase (restart)"
			served=0
			c_mount "C$phase a new daemon" || continue
			served=1
			boot_c "$phase"
		fi
		res=$c_share/results-$phase.txt
		[[ -s $res ]] && report_guest "$res"
		case $phase:$boot_status in
		3:killed) ;;
		[124]:ok)
			if grep -q '^END' "$res" 2>/dev/null; then
				host_check "C$phase guest ran its tests and powered off (${boot_secs}s boot-to-result)" 0
			else
				host_check "C$phase guest powered off before reporting" 1 "console log:"
				{ tail -n 25 "$work/console-C$phase.log" 2>/dev/null || echo "(no console output)"; } | sed "s/^/        | /"
				c_show_logs "$phase"
			fi
			;;
		*)
			host_check "C$phase boot ended: $boot_status after ${boot_secs}s" 1 "console log:"
			{ tail -n 25 "$work/console-C$phase.log" 2>/dev/null || echo "(no console output)"; } | sed "s/^/        | /"
			c_show_logs "$phase"
			;;
		esac
		[[ $phase == 2 ]] && c_mounted && c_small_back
		echo "C$phase=${boot_secs}s" >>"$work/boot-times"
		say "sequence C boot $phase: $boot_status after ${boot_secs}s" >&2
		if [[ $phase == 3 ]]; then
			# The daemon was SIGKILLed: its FUSE mount is dead; fsck, then a new daemon.
			umount -l "$c_mnt" 2>/dev/null || true
			rm -f "$work/daemon-C.pid"
			c_fsck "C3 after the daemon was SIGKILLed"
			served=0
			c_mount "C4 a new daemon" && served=1
		fi
	done
	if [[ $served == 1 ]]; then c_umount "C end"; fi
	echo "virtiofs: $passed passed, $failed failed$( ((skipped > 0)) && echo ", $skipped skipped")"
	echo "$passed $failed $skipped" >"$work/counts-C"
}

# ---------------------------------------------------------------------------
# 4b'. Sequence R: RDMA registrations over a sealed window (scripts/vm/guest-rdma.sh),
#      two boots of one pmem image: the tests, then the RDMA-written file after a reboot
# ---------------------------------------------------------------------------
run_sequence_r() {
	echo "== sequence R (RDMA over a sealed window: Soft-RoCE, $(basename "$r_agent" 2>/dev/null || echo no agent), /dev/dax0.0 --align=2M)"
	if [[ -n $r_skip ]]; then
		skipped=$((skipped + 1))
		echo "  SKIP  R RDMA sequence — $r_skip"
		echo "rdma: 0 passed, 0 failed, 1 skipped"
		echo "$passed $failed $skipped" >"$work/counts-R"
		return
	fi
	local img=$work/pmem-R.img share=$work/share-R phase res
	mkdir -p "$share"
	rm -f "$img"
	truncate -s 1G "$img"
	for phase in 1 2 3; do
		if [[ $phase == 3 ]]; then
			echo "== sequence R, boot 3 (kernel ${odp_kver:-none}: on-demand paging)"
			if [[ -n $odp_skip || ! -s $work/initrd-odp.cpio ]]; then
				skipped=$((skipped + 1))
				echo "  SKIP  R3 on-demand paging on a kernel whose rxe has it — ${odp_skip:-no initramfs for it}"
				continue
			fi
			BOOT_KERNEL=$odp_vmlinuz BOOT_INITRD=$work/initrd-odp.cpio boot R 3 2M default "$img" "$share" normal
		else
			echo "== sequence R, boot $phase"
			boot R "$phase" 2M default "$img" "$share" normal
		fi
		res=$share/results-$phase.txt
		[[ -s $res ]] && report_guest "$res"
		if [[ $boot_status == ok ]] && grep -q '^END' "$res" 2>/dev/null; then
			host_check "R$phase guest ran its tests and powered off (${boot_secs}s boot-to-result)" 0
		else
			host_check "R$phase boot ended: $boot_status after ${boot_secs}s, $(grep -q '^END' "$res" 2>/dev/null && echo reported || echo 'before reporting')" 1 "console log:"
			tail -n 25 "$work/console-R$phase.log" | sed 's/^/        | /'
		fi
		echo "R$phase=${boot_secs}s" >>"$work/boot-times"
		say "sequence R boot $phase: $boot_status after ${boot_secs}s" >&2
	done
	rm -f "$img"
	echo "rdma: $passed passed, $failed failed$( ((skipped > 0)) && echo ", $skipped skipped")"
	echo "$passed $failed $skipped" >"$work/counts-R"
}

# ---------------------------------------------------------------------------
# 4c. Sequence V (not in the default run; scripts/bench.sh --virtiofs): the
#     virtio-fs benchmark. One guest, three mounts one after the other
#     (scripts/vm/guest-bench-virtiofs.sh): sealfs with dax=always, sealfs
#     without DAX, and virtiofsd (>= 1.14) exporting a directory of the same
#     host tmpfs that holds sealfs's image. Prints figures and ratio lines.
# ---------------------------------------------------------------------------
vroot=$cache/virtiofsd-root
vready=$cache/virtiofsd-ready # holds virtiofsd's version once unpacked
virtiofsd_min=1.14
virtiofsd_cmd=()
v_skip=""

ensure_virtiofsd() { # -> 0 with virtiofsd_cmd set, or 1 with the reason in v_skip
	local bin
	if [[ -n ${SEALFS_VIRTIOFSD:-} ]]; then
		virtiofsd_cmd=("$SEALFS_VIRTIOFSD")
		return 0
	fi
	bin=$vroot/usr/libexec/virtiofsd
	if [[ ! -s $vready ]]; then
		# Debian has virtiofsd >= 1.14 in sid only (trixie: 1.13); its libraries (libc,
		# libseccomp, libcap-ng) are trixie's, already in $troot for QEMU.
		say "fetching virtiofsd >= $virtiofsd_min from Debian sid into $vroot (first run only)"
		local mirror sapt=$cache/apt-sid
		mirror=$(find_mirror) || {
			v_skip="no Debian mirror found (set SEALFS_VM_MIRROR, or SEALFS_VIRTIOFSD=PATH)"
			return 1
		}
		mkdir -p "$sapt/lists/partial" "$sapt/cache" "$sapt/debs/partial"
		echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror sid main" >"$sapt/sources.list"
		: >"$sapt/status"
		local o=(-o "Dir::Etc::SourceList=$sapt/sources.list" -o Dir::Etc::SourceParts=/dev/null
			-o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null
			-o "Dir::State::Lists=$sapt/lists" -o "Dir::Cache=$sapt/cache"
			-o "Dir::Cache::archives=$sapt/debs" -o "Dir::State::Status=$sapt/status"
			-o Debug::NoLocking=1 -o "APT::Sandbox::User=$(id -un)" -o quiet=1)
		apt-get "${o[@]}" update >"$sapt/update.log" 2>&1 || {
			v_skip="cannot reach Debian sid for virtiofsd (apt-get update failed; SEALFS_VIRTIOFSD=PATH uses your own)"
			return 1
		}
		rm -f "$sapt/debs"/*.deb
		(cd "$sapt/debs" && apt-get "${o[@]}" download virtiofsd >"$sapt/download.log" 2>&1) || {
			v_skip="cannot download virtiofsd from sid (see $sapt/download.log)"
			return 1
		}
		rm -rf "$vroot"
		mkdir -p "$vroot"
		dpkg-deb -x "$sapt"/debs/virtiofsd_*.deb "$vroot" || {
			v_skip="dpkg-deb -x of virtiofsd failed"
			return 1
		}
	fi
	virtiofsd_cmd=("$troot/usr/lib64/ld-linux-x86-64.so.2" --library-path "$troot/$multiarch" "$bin")
	local v
	v=$("${virtiofsd_cmd[@]}" --version 2>&1 | awk '/^virtiofsd/ { print $2; exit }') || true
	if [[ -z $v ]] || [[ $(printf '%s\n%s\n' "$virtiofsd_min" "$v" | sort -V | head -n1) != "$virtiofsd_min" ]]; then
		v_skip="the unpacked virtiofsd does not run or is older than $virtiofsd_min: $("${virtiofsd_cmd[@]}" --version 2>&1 | head -n1)"
		return 1
	fi
	echo "$v" >"$vready"
}

run_sequence_v() {
	echo "== sequence V (virtio-fs benchmark; QEMU ${qemu11_version:-none})"
	if [[ -z $c_skip ]]; then ensure_virtiofsd || true; else v_skip=$c_skip; fi
	if [[ -n $v_skip ]]; then
		skipped=$((skipped + 1))
		echo "  SKIP  V virtio-fs benchmark — $v_skip"
		echo "$passed $failed $skipped" >"$work/counts-V"
		return
	fi
	local tfs=$work/tmpfs-V
	mkdir -p "$tfs"
	# sealfs's image and virtiofsd's directory share one tmpfs: the same memory behind both.
	mount -t tmpfs -o size=4G tmpfs "$tfs" || {
		host_check "V: a tmpfs for the image and the shared directory" 1
		echo "$passed $failed $skipped" >"$work/counts-V"
		return
	}
	c_img=$tfs/vfs-V.img c_mnt=$work/mnt-V c_sock=$work/vfs-V.sock
	c_share=$work/share-V c_dlog=$work/daemon-V.log
	local vsock=$work/virtiofsd-V.sock vdir=$tfs/shared rc=0
	mkdir -p "$c_mnt" "$c_share" "$vdir"
	timeout 120 "$sealfs_bin" mkfs --size 2G "$c_img" >"$work/mkfs-V.out" 2>&1 || rc=$?
	host_check "V: sealfs mkfs --size 2G IMAGE (on a tmpfs)" $rc "$(head -n 2 "$work/mkfs-V.out" | tr '\n' ' ')"
	rm -f "$c_sock" "$vsock"
	RUST_LOG=${RUST_LOG:-sealfs=info} SEALFS_LOG=$c_dlog timeout 120 "$sealfs_bin" mount "$c_img" "$c_mnt" \
		-o "vhost_user=$c_sock,vhost_tag=sealfs" >"$work/mount-V.out" 2>&1 || rc=$?
	host_check "V: sealfs mount IMAGE MNT -o vhost_user=SOCK (default 512 MiB window)" "$([[ $rc == 0 && -S $c_sock ]] && echo 0 || echo 1)" "$(head -c 300 "$work/mount-V.out")"
	"${virtiofsd_cmd[@]}" --socket-path="$vsock" --shared-dir="$vdir" --cache=auto --sandbox=none \
		>"$work/virtiofsd-V.log" 2>&1 &
	local vpid=$! i
	for ((i = 0; i < 100; i++)); do
		[[ -S $vsock ]] && break
		sleep 0.1
	done
	host_check "V: virtiofsd $(cat "$vready" 2>/dev/null || echo "(SEALFS_VIRTIOFSD)") --shared-dir (same tmpfs) --cache=auto listening" "$([[ -S $vsock ]] && echo 0 || echo 1)" "$(tail -n 3 "$work/virtiofsd-V.log" | tr '\n' ' ')"
	local log=$work/console-V1.log
	timeout "$boot_timeout" "${qemu11[@]}" -nodefaults -no-user-config -accel tcg -smp 1 \
		-machine pc -m 1G \
		-object memory-backend-memfd,id=mem,size=1G,share=on -numa node,memdev=mem \
		-chardev "socket,id=sealfs0,path=$c_sock" \
		-device vhost-user-test-device-pci,chardev=sealfs0,virtio-id=26,num_vqs=2,config_size=40 \
		-chardev "socket,id=vfsd0,path=$vsock" \
		-device vhost-user-fs-pci,chardev=vfsd0,tag=vfsd \
		-virtfs "local,path=$c_share,mount_tag=host,security_model=none,id=host" \
		-kernel "$root/boot/vmlinuz-$kver" -initrd "$work/initrd.cpio" \
		-append "console=ttyS0 rdinit=/init panic=-1 quiet loglevel=4 vmseq=V vmphase=1 vmbenchmb=${SEALFS_BENCH_MB:-256} vmbenchfiles=${SEALFS_BENCH_FILES:-300}" \
		-display none -serial "file:$log" -monitor none -nic none -no-reboot \
		</dev/null >"$work/qemu-V1.out" 2>&1 || rc=$?
	kill "$vpid" 2>/dev/null || true
	wait "$vpid" 2>/dev/null || true
	local res=$c_share/results-1.txt
	[[ -s $res ]] && report_guest "$res"
	umount "$c_mnt" 2>/dev/null || umount -l "$c_mnt" 2>/dev/null || true
	bench_figures "$res"
	umount -l "$tfs" 2>/dev/null || true
	echo "$passed $failed $skipped" >"$work/counts-V"
}

bench_figures() { # RESULTS : the guest's BENCH lines as figures and ratios
	local res=$1
	if ! grep -q '^BENCH done' "$res" 2>/dev/null; then
		host_check "V: the guest finished the benchmark" 1 "console log:"
		tail -n 20 "$work/console-V1.log" 2>/dev/null | sed 's/^/        | /'
		return
	fi
	if grep -q '^BENCH .* failed' "$res"; then
		host_check "V: every benchmark step ran" 1 "$(grep '^BENCH .* failed' "$res" | tr '\n' ' ')"
		return
	fi
	awk -v mb="${SEALFS_BENCH_MB:-256}" -v files="${SEALFS_BENCH_FILES:-300}" '
		$1 == "BENCH" && NF == 4 { t[$2, $3] = $4 }
		function r(a, b) { return (b > 0) ? a / b : 0 }
		function rate(w, l) { return (t[l, w] > 0) ? mb / t[l, w] : 0 }
		END {
			printf "virtiofs benchmark (one TCG guest; %d MiB file, %d files; seconds, lower is better)\n", mb, files
			split("seq_write seq_read stat_pass", ws, " ")
			for (i = 1; i <= 3; i++) {
				w = ws[i]
				printf "  %-10s dax %6.2f s   nodax %6.2f s   virtiofsd %6.2f s", w, t["dax", w], t["nodax", w], t["virtiofsd", w]
				if (w != "stat_pass")
					printf "   (%.0f / %.0f / %.0f MiB/s)", rate(w, "dax"), rate(w, "nodax"), rate(w, "virtiofsd")
				printf "\n"
			}
			# Ratios: the other side'\''s time over sealfs'\''s (above 1: sealfs is faster).
			dw = r(t["nodax", "seq_write"], t["dax", "seq_write"]); dr = r(t["nodax", "seq_read"], t["dax", "seq_read"])
			vw = r(t["virtiofsd", "seq_write"], t["nodax", "seq_write"]); vr = r(t["virtiofsd", "seq_read"], t["nodax", "seq_read"])
			vs = r(t["virtiofsd", "stat_pass"], t["nodax", "stat_pass"])
			xw = r(t["virtiofsd", "seq_write"], t["dax", "seq_write"]); xr = r(t["virtiofsd", "seq_read"], t["dax", "seq_read"])
			printf "virtiofs_seq_write_dax_vs_nodax ratio=%.2f\n", dw
			printf "virtiofs_seq_read_dax_vs_nodax ratio=%.2f\n", dr
			printf "virtiofs_seq_write_vs_virtiofsd ratio=%.2f\n", vw
			printf "virtiofs_seq_read_vs_virtiofsd ratio=%.2f\n", vr
			printf "virtiofs_stat_pass_vs_virtiofsd ratio=%.2f\n", vs
			printf "virtiofs_dax_vs_nodax ratio=%.2f\n", sqrt(dw * dr)
			printf "virtiofs_vs_virtiofsd ratio=%.2f\n", exp((log(vw) + log(vr) + log(vs)) / 3)
			printf "virtiofs_dax_vs_virtiofsd ratio=%.2f\n", sqrt(xw * xr)
		}' "$res"
}

bandwidth_summary() { # SEQ : one line from the guest's bandwidth figures of boot 1
	local res=$work/share-$1/results-1.txt raw fs
	[[ -s $res ]] || return 0
	raw=$(sed -n 's/.*bandwidth raw mapping: //p' "$res")
	fs=$(sed -n 's/.*bandwidth through sealfs: //p' "$res")
	[[ -n $raw ]] || return 0
	awk -v seq="$1" -v raw="$raw" -v fs="$fs" 'BEGIN {
		n = split(raw, a, " "); for (i = 1; i <= n; i++) { split(a[i], kv, "="); r[kv[1]] = kv[2] }
		n = split(fs, a, " "); for (i = 1; i <= n; i++) { split(a[i], kv, "="); f[kv[1]] = kv[2] }
		line = sprintf("vm: bandwidth %s, 1 MiB blocks: raw mapping (%s) write %s MB/s, read %s MB/s", seq, r["flush"], r["write_MBps"], r["read_MBps"])
		if (f["write_MBps"] != "")
			line = line sprintf("; through sealfs write %s MB/s, read %s MB/s (%.0f%% and %.0f%% of raw)",
				f["write_MBps"], f["read_MBps"], 100 * f["write_MBps"] / r["write_MBps"], 100 * f["read_MBps"] / r["read_MBps"])
		print line
	}'
}

# ---------------------------------------------------------------------------
main() {
	ensure_packages
	[[ -e $root/usr/bin/qemu-system-x86_64 && -e $root/usr/bin/ndctl ]] ||
		die "cache $cache is incomplete; remove $ready to refill it"
	work=$(mktemp -d "${TMPDIR:-/tmp}/sealfs-vm.XXXXXX")

	command -v gcc >/dev/null || skip "gcc not found (needed for scripts/vm/daxbench.c: apt-get install gcc libc6-dev)"
	gcc -O2 -Wall -static -o "$work/daxbench" "$here/vm/daxbench.c" 2>"$work/gcc.log" ||
		skip "cannot build a static scripts/vm/daxbench.c ($(head -n1 "$work/gcc.log"); is libc6-dev installed?)"
	gcc -O2 -Wall -static -o "$work/vfsmap" "$here/vm/vfsmap.c" 2>"$work/gcc.log" ||
		skip "cannot build a static scripts/vm/vfsmap.c ($(head -n1 "$work/gcc.log"))"
	build_sealfs
	[[ -n $sealfs_note ]] && say "note: $sealfs_note"
	case " $sequences " in *" C "* | *" V "*) c_prepare ;; esac
	case " $sequences " in *" R "*)
		build_rdma_agent
		[[ -n $r_skip ]] || ensure_odp_kernel || true
		;;
	esac
	[[ -z $r_skip ]] || say "sequence R will be skipped: $r_skip"
	build_initramfs
	say "ready after $(($(date +%s) - t_start))s; booting (kernel $kver, TCG)"

	local s p f s_seq
	for s in $sequences; do
		case $s in
		A) set -- A 2M max ;;
		B) set -- B 4K default ;;
		C | V | R) set -- ;;
		*) die "unknown sequence $s (A, B, C, R, or V: the virtio-fs benchmark)" ;;
		esac
		local run=run_sequence
		[[ $s == C ]] && run=run_sequence_c
		[[ $s == R ]] && run=run_sequence_r
		[[ $s == V ]] && run=run_sequence_v
		if [[ ${SEALFS_VM_SERIAL:-0} == 1 ]]; then
			$run "$@" >"$work/report-$s.txt"
		else
			$run "$@" >"$work/report-$s.txt" &
			seq_pids+=($!)
		fi
	done
	for p in "${seq_pids[@]}"; do wait "$p" || true; done
	seq_pids=()
	for s in $sequences; do
		cat "$work/report-$s.txt"
		read -r p f s_seq <"$work/counts-$s" || {
			host_check "sequence $s reported its counts" 1
			continue
		}
		passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s_seq))
	done
	for s in $sequences; do bandwidth_summary "$s"; done
	touch "$work/boot-times"
	say "boot-to-result: $(tr '\n' ' ' <"$work/boot-times")"
	say "total $(($(date +%s) - t_start))s"
	local line="$passed passed, $failed failed"
	((skipped > 0)) && line+=", $skipped skipped"
	echo "$line"
	[[ $failed == 0 ]] || exit 1
}

main "$@"
