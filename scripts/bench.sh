#!/usr/bin/env bash
# Benchmarks sealfs side by side with tmpfs, bindfs and mergerfs (the last two over a tmpfs
# directory), all in /dev/shm, in one run. Only ratios measured in the same run mean
# anything on a shared machine; see docs/performance.md for the method and the results.
#
#   scripts/bench.sh [--quick] [--out DIR]
#   scripts/bench.sh --virtiofs      the virtio-fs benchmark in a QEMU guest instead: sealfs
#                                    with and without DAX against virtiofsd, ratio lines
#                                    virtiofs_dax_vs_nodax and virtiofs_vs_virtiofsd
#                                    (SEALFS_VM_SEQ=V scripts/vm.sh; docs/performance.md)
#
# Needs root (FUSE mounts, mount of the bench dirs). Installs fio, bindfs, mergerfs, fuse3
# and gcc when missing. Prints per workload the medians, `NAME ratio=X` (sealfs vs the best
# FUSE peer, > 1 = sealfs better) and `NAME_vs_tmpfs ratio=X`, and writes DIR/results.csv,
# DIR/ratios.csv, DIR/throughput.svg, DIR/ratios.svg and DIR/bench.log (default DIR:
# bench-out/ in the repository).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

QUICK=0
OUT="$SEALFS_ROOT/bench-out"
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --virtiofs) exec env SEALFS_VM_SEQ=V "$(dirname "$0")/vm.sh" ;;
        --out) OUT=${2:?--out wants a directory}; shift ;;
        --out=*) OUT=${1#--out=} ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) die "unknown argument $1 (usage: scripts/bench.sh [--quick] [--out DIR] | --virtiofs)" ;;
    esac
    shift
done
[ "$(id -u)" -eq 0 ] || die "bench.sh needs root (FUSE and tmpfs mounts)"
[ -c /dev/fuse ] || die "/dev/fuse is missing"

# ---------------------------------------------------------------- parameters
if [ "$QUICK" -eq 1 ]; then
    MODE=quick REPS=3 SEQ_MB=512 PAR_MB=256 RAND_S=5 NFILES=20000 FSYNC_N=2000
    SCALE_N=100000 SEAL_N=20000 DEATH_N=20 WLOOP_N=20000 MAP_SIZE=256M
else
    MODE=full REPS=5 SEQ_MB=2048 PAR_MB=1024 RAND_S=10 NFILES=100000 FSYNC_N=10000
    SCALE_N=10000000 SEAL_N=100000 DEATH_N=50 WLOOP_N=50000 MAP_SIZE=1G
fi
# BENCH_SMOKE=1: tiny sizes, to check the script itself (figures meaningless)
if [ "${BENCH_SMOKE:-0}" = 1 ]; then
    MODE=smoke REPS=1 SEQ_MB=32 PAR_MB=16 RAND_S=1 NFILES=500 FSYNC_N=100
    SCALE_N=2000 SEAL_N=200 DEATH_N=3 WLOOP_N=500 MAP_SIZE=64M
fi
THREADS=${SEALFS_BENCH_THREADS:-$(nproc)}   # sealfs' default: one worker per CPU
MERGERFS_OPTS="cache.files=off,category.create=ff,dropcacheonclose=false"
BINDFS_OPTS=""

# ---------------------------------------------------------------- set-up
ensure_base
ensure_cmds fio:fio bindfs:bindfs mergerfs:mergerfs fusermount3:fuse3 gcc:gcc
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
LOG="$OUT/bench.log"
: >"$LOG"
log() { printf '%s\n' "$*" | tee -a "$LOG"; }
BENCH_T0=$(date +%s)
step() { say "[$(( $(date +%s) - BENCH_T0 )) s] $*"; }
say "building release"
(cd "$SEALFS_ROOT" && cargo build --release -q -p sealfs --bins --example scale_probe)
SEALFS="$SEALFS_ROOT/target/release/sealfs"
PROBE="$SEALFS_ROOT/target/release/examples/scale_probe"
[ -x "$SEALFS" ] && [ -x "$PROBE" ] || die "release build missing"

W=$(mktemp -d /dev/shm/sealfs-bench.XXXXXX)
# Everything (the sealfs image, the tmpfs row, bindfs' and mergerfs' sources) lives in one
# tmpfs mounted here, with transparent huge pages by default: device DAX maps 2 MiB pages,
# and an image in a huge=never tmpfs would instead pay a 4 KiB fault per page of every
# window slot. BENCH_TMPFS_HUGE=never measures the 4 KiB-page case.
HUGE=${BENCH_TMPFS_HUGE:-always}
mount -t tmpfs -o "size=60%,mode=0755,huge=$HUGE" sealfs-bench "$W" || die "cannot mount a tmpfs (huge=$HUGE) on $W"
HELPER="$W/bench_helper"
gcc -O2 -Wall -I"$SEALFS_ROOT/include" -o "$HELPER" "$SEALFS_ROOT/scripts/bench/bench_helper.c"
RAW="$W/raw.tsv"   # workload fs value
: >"$RAW"
MOUNTS=()
cleanup() {
    set +e
    local m
    for m in "${MOUNTS[@]}"; do
        mountpoint -q "$m" && { umount "$m" 2>/dev/null || umount -l "$m"; }
    done
    sleep 0.2
    # The sealfs daemons may still hold their images for a moment after umount.
    umount "$W" 2>/dev/null || umount -l "$W"
    rmdir "$W" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$W"/{sealfs,tmpfs,bind-src,bindfs,merge-src,mergerfs,scale-mnt}
"$SEALFS" mkfs --size 16G "$W/sealfs.img" >/dev/null
"$SEALFS" mount -o threads=$THREADS "$W/sealfs.img" "$W/sealfs"; MOUNTS+=("$W/sealfs")
# shellcheck disable=SC2086
bindfs $BINDFS_OPTS "$W/bind-src" "$W/bindfs"; MOUNTS+=("$W/bindfs")
mergerfs -o "$MERGERFS_OPTS" "$W/merge-src" "$W/mergerfs"; MOUNTS+=("$W/mergerfs")
MOUNTS+=("$W/scale-mnt")
FSES=(sealfs tmpfs bindfs mergerfs)
dir_of() { echo "$W/$1"; }

log "sealfs bench ($MODE): $(date -u +%Y-%m-%dT%H:%M:%SZ), $(uname -r), $(nproc) CPUs, $REPS repetitions, median"
log "  all on one tmpfs (huge=$HUGE); sealfs -o threads=$THREADS (FUSE direct I/O) on $W/sealfs.img; tmpfs $W/tmpfs"
log "  $(bindfs --version 2>&1 | head -1) (defaults) over tmpfs; $(mergerfs --version 2>&1 | head -1) -o $MERGERFS_OPTS over tmpfs"
log "  $(fio --version), $(gcc --version | head -1)"

record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RAW"; }
kv() { # kv KEY "k=v k=v" -> v
    local k=$1; shift
    printf '%s\n' "$*" | tr ' ' '\n' | sed -n "s/^$k=//p" | head -1
}
t_now() { date +%s.%N; }

# fio with terse output; prints "read_KiB/s read_iops write_KiB/s write_iops" (group totals)
run_fio() {
    fio --output-format=terse --terse-version=3 --group_reporting --ioengine=psync \
        --direct=0 --fallocate=none "$@" 2>>"$LOG" | tail -1 | awk -F';' '{print $7, $8, $48, $49}'
}

# ---------------------------------------------------------------- per-filesystem workloads
bench_fs() {
    local fs=$1 d r out
    d=$(dir_of "$fs")
    step "$fs: I/O"
    for r in $(seq "$REPS"); do
        rm -f "$d/seq.dat"
        out=$(run_fio --name=seqw --filename="$d/seq.dat" --rw=write --bs=1M --size=${SEQ_MB}M --numjobs=1)
        record seq_write_1m "$fs" "$(echo "$out" | awk '{printf "%.1f", $3/1024}')"
    done
    for r in $(seq "$REPS"); do
        out=$(run_fio --name=seqr --filename="$d/seq.dat" --rw=read --bs=1M --size=${SEQ_MB}M --numjobs=1 --invalidate=1)
        record seq_read_1m "$fs" "$(echo "$out" | awk '{printf "%.1f", $1/1024}')"
    done
    for r in $(seq "$REPS"); do
        out=$(run_fio --name=randr --filename="$d/seq.dat" --rw=randread --bs=4k --size=${SEQ_MB}M \
            --time_based --runtime="$RAND_S" --norandommap --randrepeat=0 --invalidate=1)
        record rand_read_4k "$fs" "$(echo "$out" | awk '{printf "%.0f", $2}')"
        out=$(run_fio --name=randw --filename="$d/seq.dat" --rw=randwrite --bs=4k --size=${SEQ_MB}M \
            --time_based --runtime="$RAND_S" --norandommap --randrepeat=0)
        record rand_write_4k "$fs" "$(echo "$out" | awk '{printf "%.0f", $4}')"
    done
    rm -f "$d/seq.dat"
    for r in $(seq "$REPS"); do
        rm -rf "$d/par"; mkdir "$d/par"
        out=$(run_fio --name=pw --directory="$d/par" --rw=write --bs=1M --size=${PAR_MB}M --numjobs=2)
        record parallel_write "$fs" "$(echo "$out" | awk '{printf "%.1f", $3/1024}')"
    done
    rm -rf "$d/par"
    for r in $(seq "$REPS"); do
        rm -f "$d/fsync.dat"
        out=$("$HELPER" fsync_small "$d/fsync.dat" "$FSYNC_N")
        record fsync_small "$fs" "$(kv ops_per_s "$out")"
    done
    rm -f "$d/fsync.dat"
    step "$fs: metadata"
    for r in $(seq "$REPS"); do
        rm -rf "$d/cu"; mkdir "$d/cu"
        out=$("$HELPER" create_unlink "$d/cu" "$NFILES")
        record create_unlink "$fs" "$(kv ops_per_s "$out")"
    done
    rmdir "$d/cu"
    rm -rf "$d/rd"; mkdir "$d/rd"
    "$HELPER" mkfiles "$d/rd" "$NFILES" >/dev/null
    for r in $(seq "$REPS"); do
        sleep 1.1 # past the peers' 1 s entry/attribute timeout
        out=$("$HELPER" readdir "$d/rd")
        [ "$(kv entries "$out")" -eq $((NFILES + 2)) ] || die "$fs: readdir saw $(kv entries "$out") entries"
        record readdir_100k "$fs" "$(kv entries_per_s "$out")"
        # stat: the kernel's cached names dropped first, so every FUSE filesystem answers
        # a LOOKUP per file (the daemon path, like for like).
        sync; echo 2 >/proc/sys/vm/drop_caches
        out=$("$HELPER" stat "$d/rd" "$NFILES")
        record stat "$fs" "$(kv us_per_op "$out")"
        # stat_cached: the same a second time, 1.1 s later, as each filesystem's default
        # cache lifetime leaves it (bindfs, mergerfs: 1 s, so LOOKUPs again; sealfs: 60 s).
        sleep 1.1
        out=$("$HELPER" stat "$d/rd" "$NFILES")
        record stat_cached "$fs" "$(kv us_per_op "$out")"
    done
    rm -rf "$d/rd"
}

for fs in "${FSES[@]}"; do bench_fs "$fs"; done

# ---------------------------------------------------------------- sealfs-only rows
S="$W/sealfs"
step "sealfs: seals and windows"
# Seal cycles against one no-op ioctl round trip of the same moment (noop before and after,
# averaged): only same-run ratios mean anything on a shared machine. Two cycles: the classic
# SEAL + UNSEAL pair (two round trips), and SEAL with SEALFS_SEAL_REPLACE (one: each call
# releases the previous seal).
for r in $(seq "$REPS"); do
    n1=$("$HELPER" noop_ioctl "$S/seal.dat" "$SEAL_N")
    out=$("$HELPER" seal_unseal "$S/seal.dat" "$SEAL_N")
    rpl=$("$HELPER" seal_replace "$S/seal.dat" "$SEAL_N")
    n2=$("$HELPER" noop_ioctl "$S/seal.dat" "$SEAL_N")
    noop=$(awk -v a="$(kv median_us "$n1")" -v b="$(kv median_us "$n2")" 'BEGIN{printf "%.3f", (a+b)/2}')
    record noop_ioctl_us sealfs "$noop"
    record noop_ioctl_p99_us sealfs "$(awk -v a="$(kv p99_us "$n1")" -v b="$(kv p99_us "$n2")" 'BEGIN{printf "%.3f", (a+b)/2}')"
    record seal_unseal_us sealfs "$(kv median_us "$out")"
    record seal_unseal_p99_us sealfs "$(kv p99_us "$out")"
    record seal_replace_us sealfs "$(kv median_us "$rpl")"
    record seal_replace_p99_us sealfs "$(kv p99_us "$rpl")"
    # goal: a cycle <= 1.2 x one no-op round trip; ratio = 1.2 x noop / cycle (> 1 = met)
    record seal_unseal_vs_noop_ioctl sealfs "$(awk -v n="$noop" -v c="$(kv median_us "$out")" 'BEGIN{printf "%.3f", 1.2*n/c}')"
    record seal_replace_vs_noop_ioctl sealfs "$(awk -v n="$noop" -v c="$(kv median_us "$rpl")" 'BEGIN{printf "%.3f", 1.2*n/c}')"
    log "  seal rep $r: seal_unseal $out; seal_replace $rpl; noop_ioctl before $n1; after $n2"
done
for r in $(seq "$REPS"); do
    out=$("$HELPER" holder_death "$S/death.dat" "$DEATH_N")
    record holder_death_us sealfs "$(kv median_us "$out")"
    log "  holder_death rep $r: $out"
done
: >"$S/sealed-other.dat"
seal_holder_start() { # a temporary seal on another file, held by a background `sealfs seal --hold`
    "$SEALFS" seal --hold "$S/sealed-other.dat" >/dev/null 2>&1 &
    HOLDER=$!
    local i
    for i in $(seq 100); do
        "$SEALFS" seals "$S/sealed-other.dat" 2>/dev/null | grep -q "$HOLDER" && return 0
        sleep 0.05
    done
    die "the seal holder did not seal"
}
seal_holder_stop() { kill "$HOLDER"; wait "$HOLDER" 2>/dev/null || true; }
for r in $(seq "$REPS"); do
    # the same helper both ways, in ABBA order so drift does not favour one side
    a1=$("$HELPER" wloop "$S/wloop.dat" "$WLOOP_N")
    seal_holder_start
    b1=$("$HELPER" wloop "$S/wloop.dat" "$WLOOP_N")
    b2=$("$HELPER" wloop "$S/wloop.dat" "$WLOOP_N")
    seal_holder_stop
    a2=$("$HELPER" wloop "$S/wloop.dat" "$WLOOP_N")
    a=$(awk -v x="$(kv ops_per_s "$a1")" -v y="$(kv ops_per_s "$a2")" 'BEGIN{printf "%.1f", 2/(1/x+1/y)}')
    b=$(awk -v x="$(kv ops_per_s "$b1")" -v y="$(kv ops_per_s "$b2")" 'BEGIN{printf "%.1f", 2/(1/x+1/y)}')
    record wloop_unsealed sealfs "$a"
    record wloop_sealed_other sealfs "$b"
    record seal_check_cost sealfs "$(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.3f", b/a}')"
done
rm -f "$S/wloop.dat" "$S/sealed-other.dat" "$S/seal.dat" "$S/death.dat"
for r in $(seq "$REPS"); do
    out=$("$SEALFS" map --bench --size "$MAP_SIZE" "$S/window.dat")
    printf '%s\n' "$out" | sed 's/^/  map --bench: /' >>"$LOG"
    record window_vs_memcpy sealfs "$(printf '%s\n' "$out" | sed -n 's/^window_vs_memcpy=//p')"
    record window_vs_fuse_read sealfs "$(printf '%s\n' "$out" | sed -n 's/^window_vs_fuse_read=//p')"
    record window_read_GBps sealfs "$(printf '%s\n' "$out" | awk '/^window read/{print $3}')"
    record memcpy_GBps sealfs "$(printf '%s\n' "$out" | awk '/^memcpy/{print $2}')"
    record fuse_read_GBps sealfs "$(printf '%s\n' "$out" | awk '/^read\(2\)/{print $2}')"
    record setupmapping_us sealfs "$(printf '%s\n' "$out" | sed -n 's/^setupmapping_us=//p')"
    record slot_cycle_per_s sealfs "$(printf '%s\n' "$out" | sed -n 's/^slot_cycle_per_s=//p')"
done
rm -f "$S/window.dat"
# The same on an image in a tmpfs without huge pages: each 2 MiB slot is 512 page faults
# (the 4 KiB-page case of the window_vs_memcpy goal).
if [ "$HUGE" != never ]; then
    step "sealfs: windows on 4 KiB pages"
    P4K="$W/p4k"
    mkdir -p "$P4K"
    mount -t tmpfs -o size=2G,mode=0755,huge=never sealfs-bench-4k "$P4K"
    MOUNTS=("$P4K/mnt" "$P4K" "${MOUNTS[@]}")
    mkdir -p "$P4K/mnt"
    "$SEALFS" mkfs --size 1G "$P4K/sealfs.img" >/dev/null
    "$SEALFS" mount -o threads=$THREADS "$P4K/sealfs.img" "$P4K/mnt"
    for r in $(seq "$REPS"); do
        out=$("$SEALFS" map --bench --size 256M "$P4K/mnt/window.dat")
        printf '%s\n' "$out" | sed 's/^/  map --bench (4 KiB pages): /' >>"$LOG"
        record window_vs_memcpy_4k sealfs "$(printf '%s\n' "$out" | sed -n 's/^window_vs_memcpy=//p')"
    done
    umount "$P4K/mnt"
    sleep 0.2
    umount "$P4K" 2>/dev/null || umount -l "$P4K"
fi

# ---- mount time, daemon memory and fsck on an image with SCALE_N files
daemon_pid() { # the mount daemon of mountpoint $1 (its command line names it)
    local p c
    for p in /proc/[0-9]*; do
        c=$( { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) || continue
        case "$c" in "$SEALFS "*"$1"*) echo "${p#/proc/}"; return 0 ;; esac
    done
    return 1
}
rss_anon() { awk '/^RssAnon:/{print $2 * 1024}' "/proc/$1/status"; }
mount_measure() { # mount_measure IMG -> "seconds rss_bytes"; leaves it unmounted
    local img=$1 t0 t1 pid rss
    t0=$(t_now)
    "$SEALFS" mount -o threads=$THREADS "$img" "$W/scale-mnt"
    t1=$(t_now)
    pid=$(daemon_pid "$W/scale-mnt") || die "no daemon for $W/scale-mnt"
    ls "$W/scale-mnt" >/dev/null
    rss=$(rss_anon "$pid")
    umount "$W/scale-mnt"
    while [ -d "/proc/$pid" ]; do sleep 0.05; done
    echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.4f", b-a}') $rss"
}
step "sealfs: scale image with $SCALE_N files (scale_probe)"
rm -f "$W/scale.img"
"$PROBE" "$W/scale.img" "$SCALE_N" | sed 's/^/  scale_probe: /' | tee -a "$LOG"
# As mkfs leaves an image: root's mounts (allow_other) refuse one other users may read.
chmod 600 "$W/scale.img"
"$SEALFS" mkfs --size 8G "$W/empty.img" >/dev/null
for r in $(seq "$REPS"); do
    read -r te re < <(mount_measure "$W/empty.img")
    read -r tn rn < <(mount_measure "$W/scale.img")
    record mount_empty_s sealfs "$te"
    record mount_full_s sealfs "$tn"
    record mount_s_per_million sealfs "$(awk -v a="$te" -v b="$tn" -v n="$SCALE_N" 'BEGIN{d=b-a; if (d<0) d=0; printf "%.3f", d*1e6/n}')"
    record daemon_bytes_per_file sealfs "$(awk -v a="$re" -v b="$rn" -v n="$SCALE_N" 'BEGIN{printf "%.1f", (b-a)/n}')"
    log "  mount rep $r: empty ${te}s RssAnon ${re}B; $SCALE_N files ${tn}s RssAnon ${rn}B"
    t0=$(t_now)
    "$SEALFS" fsck "$W/scale.img" >>"$LOG" 2>&1 || die "fsck of the scale image failed"
    t1=$(t_now)
    record fsck_s sealfs "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}')"
    record fsck_s_per_million sealfs "$(awk -v a="$t0" -v b="$t1" -v n="$SCALE_N" 'BEGIN{printf "%.3f", (b-a)*1e6/n}')"
done
rm -f "$W/scale.img" "$W/empty.img"

# ---------------------------------------------------------------- report
median() { # median WORKLOAD FS
    awk -F'\t' -v w="$1" -v f="$2" '$1==w && $2==f {print $3}' "$RAW" | sort -g |
        awk '{v[NR]=$1} END{if (NR==0) print "nan"; else if (NR%2) print v[(NR+1)/2]; else printf "%.6g\n", (v[NR/2]+v[NR/2+1])/2}'
}
samples() { awk -F'\t' -v w="$1" -v f="$2" '$1==w && $2==f {printf "%s%s", s, $3; s=" "}' "$RAW"; }

# workload unit better(hi|lo) goal_vs_peer goal_vs_tmpfs
ROWS=(
    "seq_read_1m MB/s hi 1.5 0.7"
    "seq_write_1m MB/s hi 1.5 0.5"
    "rand_read_4k IOPS hi 2 -"
    "rand_write_4k IOPS hi 2 -"
    "create_unlink ops/s hi 2 -"
    "readdir_100k entries/s hi 2 -"
    "stat us/op lo 1.5 -"
    "stat_cached us/op lo - -"
    "parallel_write MB/s hi 1.5 -"
    "fsync_small ops/s hi - -"
)
CSV="$OUT/results.csv"
RCSV="$OUT/ratios.csv"
echo "workload,fs,unit,higher_is_better,median,samples" >"$CSV"
echo "name,ratio,goal,status" >"$RCSV"
below=()
ratio_line() { # ratio_line NAME RATIO GOAL
    local st=""
    if [ "$3" != "-" ]; then
        if awk -v r="$2" -v g="$3" 'BEGIN{exit !(r>=g)}'; then st="met"; else st="BELOW"; below+=("$1"); fi
        log "$(printf '%-28s ratio=%-8s goal>=%s %s' "$1" "$2" "$3" "$st")"
    else
        log "$(printf '%-28s ratio=%s' "$1" "$2")"
    fi
    echo "$1,$2,$3,$st" >>"$RCSV"
}

log ""
log "== per-filesystem workloads (median of $REPS; $MODE: seq ${SEQ_MB} MiB, files $NFILES, rand ${RAND_S} s)"
log "$(printf '%-16s %-10s %12s %12s %12s %12s' workload unit sealfs tmpfs bindfs mergerfs)"
for row in "${ROWS[@]}"; do
    read -r wl unit better gp gt <<<"$row"
    declare -A med=()
    for fs in "${FSES[@]}"; do
        med[$fs]=$(median "$wl" "$fs")
        echo "$wl,$fs,$unit,$([ "$better" = hi ] && echo 1 || echo 0),${med[$fs]},$(samples "$wl" "$fs")" >>"$CSV"
    done
    log "$(printf '%-16s %-10s %12s %12s %12s %12s' "$wl" "$unit" "${med[sealfs]}" "${med[tmpfs]}" "${med[bindfs]}" "${med[mergerfs]}")"
done
log ""
log "== ratios (sealfs vs the best FUSE peer of bindfs/mergerfs, and vs tmpfs; > 1 = sealfs better)"
for row in "${ROWS[@]}"; do
    read -r wl unit better gp gt <<<"$row"
    s=$(median "$wl" sealfs); t=$(median "$wl" tmpfs); b=$(median "$wl" bindfs); m=$(median "$wl" mergerfs)
    if [ "$better" = hi ]; then
        ratio_line "$wl" "$(awk -v s="$s" -v b="$b" -v m="$m" 'BEGIN{p=(b>m?b:m); printf "%.3f", s/p}')" "$gp"
        ratio_line "${wl}_vs_tmpfs" "$(awk -v s="$s" -v t="$t" 'BEGIN{printf "%.3f", s/t}')" "$gt"
    else
        ratio_line "$wl" "$(awk -v s="$s" -v b="$b" -v m="$m" 'BEGIN{p=(b<m?b:m); printf "%.3f", p/s}')" "$gp"
        ratio_line "${wl}_vs_tmpfs" "$(awk -v s="$s" -v t="$t" 'BEGIN{printf "%.3f", t/s}')" "$gt"
    fi
done
log ""
log "== sealfs-only rows (median of $REPS)"
SROWS=(
    "seal_unseal_us us lo -"
    "seal_unseal_p99_us us lo -"
    "seal_replace_us us lo -"
    "seal_replace_p99_us us lo -"
    "noop_ioctl_us us lo -"
    "noop_ioctl_p99_us us lo -"
    "holder_death_us us lo 1000"
    "seal_check_cost with/without hi 0.95"
    "window_vs_memcpy ratio hi 0.9"
    "window_vs_memcpy_4k ratio hi 0.9"
    "window_vs_fuse_read ratio hi -"
    "window_read_GBps GB/s hi -"
    "memcpy_GBps GB/s hi -"
    "fuse_read_GBps GB/s hi -"
    "setupmapping_us us lo -"
    "slot_cycle_per_s cycles/s hi -"
    "mount_empty_s s lo -"
    "mount_full_s s lo -"
    "mount_s_per_million s/1M lo 0.5"
    "daemon_bytes_per_file B/file lo 200"
    "fsck_s s lo -"
    "fsck_s_per_million s/1M lo -"
    "wloop_unsealed ops/s hi -"
    "wloop_sealed_other ops/s hi -"
)
for row in "${SROWS[@]}"; do
    read -r wl unit better goal <<<"$row"
    v=$(median "$wl" sealfs)
    echo "$wl,sealfs,$unit,$([ "$better" = hi ] && echo 1 || echo 0),$v,$(samples "$wl" sealfs)" >>"$CSV"
    g=""; [ "$goal" != "-" ] && g="goal $([ "$better" = hi ] && echo '>=' || echo '<=') $goal"
    log "$(printf '%-22s %12s %-10s %s   [%s]' "$wl" "$v" "$unit" "$g" "$(samples "$wl" sealfs)")"
done
log ""
# seal cycle / no-op ioctl round trip of the same repetition, as 1.2 x noop / cycle
# (goal: a cycle <= 1.2 round trips; the classic pair is two round trips)
ratio_line seal_unseal_vs_noop_ioctl "$(median seal_unseal_vs_noop_ioctl sealfs)" 1
ratio_line seal_replace_vs_noop_ioctl "$(median seal_replace_vs_noop_ioctl sealfs)" 1
ratio_line seal_check_cost "$(median seal_check_cost sealfs)" 0.95
ratio_line window_vs_memcpy "$(median window_vs_memcpy sealfs)" 0.9
if [ "$HUGE" != never ]; then
    ratio_line window_vs_memcpy_4k "$(median window_vs_memcpy_4k sealfs)" 0.9
fi
ratio_line window_vs_fuse_read "$(median window_vs_fuse_read sealfs)" -
# absolute goals as ratios: goal / value (> 1 = goal met)
for row in "holder_death_us 1000" "mount_s_per_million 0.5" "daemon_bytes_per_file 200"; do
    read -r wl goal <<<"$row"
    ratio_line "${wl%_us}_vs_goal" "$(awk -v v="$(median "$wl" sealfs)" -v g="$goal" 'BEGIN{printf "%.3f", (v>0 ? g/v : 999)}')" 1
done
log ""
if [ ${#below[@]} -gt 0 ]; then log "below goal: ${below[*]}"; else log "all goals met"; fi

# ---------------------------------------------------------------- plots
"$SEALFS_ROOT/scripts/bench/plots.sh" "$CSV" "$RCSV" "$OUT" "sealfs bench ($MODE, $(date -u +%Y-%m-%d), $(nproc) CPUs)"
cp "$RAW" "$OUT/raw.tsv"
step "done; wrote $CSV, $RCSV, $OUT/throughput.svg, $OUT/ratios.svg, $LOG"
