#!/usr/bin/env bash
# Measures FUSE over io_uring against the classic /dev/fuse loop with a small C prototype
# (scripts/bench/fuse_uring_proto.c: one in-memory filesystem, the same request handlers
# behind both transports). Workloads: create+unlink, uncached stat, 4 KiB random pread and
# pwrite (direct I/O: every operation is a FUSE request). See docs/performance.md, "FUSE over
# io_uring: the prototype".
#
#   scripts/bench/uring.sh [--reps R] [--batches B] [--files N] [--ios N] [--jobs P]
#                          [--no-nice] [--base T] [--test T] [--out DIR]
#
# --jobs P runs each timed batch in P processes at once, sharing its N items (then µs per
# operation is the batch's wall time over all its operations: inverse throughput).
#
# --base and --test name the two transports compared (default: devfuse and uring; the
# prototype also has uring-unpinned, io_uring without pinning its queue threads to their
# CPUs; the ratio lines are then named TEST_vs_BASE).
#
# Each of the R repetitions (default 3) mounts the prototype twice at once, once per
# transport, and runs per workload B (default 10) short timed batches on each mount, the two
# transports alternating batch by batch: a pair of batches is a fraction of a second apart,
# so the ratio of a pair is a same-run ratio even on a noisy shared machine. Server and
# clients run at nice -19 (unless --no-nice), both transports alike.
#
# Needs root (mount(2) of a FUSE filesystem, the fuse module's enable_uring parameter, which
# is set to Y for the run and restored on exit). Skips with a message (status 0) when not
# root or when the kernel has no FUSE over io_uring; fails with the kernel's answer when the
# kernel refuses it. Prints per workload the medians and minima of µs per operation (wall
# time) and of CPU µs per operation (server + client), requests per operation, and
#   fuse_uring_vs_devfuse ratio=X workload=W       median over the pairs of devfuse/uring
#                                                  wall time per operation (> 1: io_uring faster)
#   fuse_uring_vs_devfuse_cpu ratio=X workload=W   the same for the CPU time per operation
# Writes DIR/raw.tsv (pair, transport, workload, us/op, requests/op, server and client CPU
# us/op, their sum) and DIR/uring.log (default DIR: bench-out/uring in the repository).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"

BASE=devfuse TEST=uring JOBS=1 REPS=3 BATCHES=10 NFILES=1000 NIOS=10000 FILE_MIB=16 NICE=(nice -n -19)
OUT="$SEALFS_ROOT/bench-out/uring"
while [ $# -gt 0 ]; do
    case "$1" in
        --reps) REPS=${2:?--reps wants a number}; shift ;;
        --batches) BATCHES=${2:?--batches wants a number}; shift ;;
        --files) NFILES=${2:?--files wants a number}; shift ;;
        --ios) NIOS=${2:?--ios wants a number}; shift ;;
        --no-nice) NICE=() ;;
        --jobs) JOBS=${2:?--jobs wants a number}; shift ;;
        --base) BASE=${2:?--base wants a transport}; shift ;;
        --test) TEST=${2:?--test wants a transport}; shift ;;
        --out) OUT=${2:?--out wants a directory}; shift ;;
        -h|--help) sed -n '2,33p' "$0"; exit 0 ;;
        *) die "unknown argument $1 (usage: scripts/bench/uring.sh [--reps R] [--batches B] [--files N] [--ios N] [--jobs P] [--no-nice] [--base T] [--test T] [--out DIR])" ;;
    esac
    shift
done

skip() { printf 'uring.sh: skipped: %s\n' "$*"; exit 0; }
[ "$(id -u)" -eq 0 ] || skip "needs root (mount(2) of a FUSE filesystem, /sys/module/fuse/parameters/enable_uring)"
[ -c /dev/fuse ] || skip "/dev/fuse is missing"
PARAM=/sys/module/fuse/parameters/enable_uring
[ -e "$PARAM" ] || modprobe fuse 2>/dev/null || true
[ -e "$PARAM" ] || skip "kernel $(uname -r) has no FUSE over io_uring ($PARAM is missing: needs Linux >= 6.14 built with CONFIG_FUSE_IO_URING)"
if [ -r /proc/sys/kernel/io_uring_disabled ] && [ "$(cat /proc/sys/kernel/io_uring_disabled)" != 0 ]; then
    skip "io_uring is disabled (kernel.io_uring_disabled=$(cat /proc/sys/kernel/io_uring_disabled))"
fi
ensure_cmds gcc:gcc

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
LOG="$OUT/uring.log" RAW="$OUT/raw.tsv"
: >"$LOG"
: >"$RAW"
log() { printf '%s\n' "$*" | tee -a "$LOG"; }

W=$(mktemp -d /dev/shm/fuse-uring.XXXXXX)
BIN="$W/fuse_uring_proto"
gcc -O2 -Wall -Wextra -o "$BIN" "$SEALFS_ROOT/scripts/bench/fuse_uring_proto.c" -lpthread

ORIG=$(cat "$PARAM")
declare -A MNT=() PID=()
cleanup() {
    local t
    for t in "${!MNT[@]}"; do
        if mountpoint -q "${MNT[$t]}"; then umount "${MNT[$t]}" 2>/dev/null || umount -l "${MNT[$t]}" || true; fi
    done
    for t in "${!PID[@]}"; do kill "${PID[$t]}" 2>/dev/null || true; wait "${PID[$t]}" 2>/dev/null || true; done
    echo "$ORIG" >"$PARAM" 2>/dev/null || printf 'uring.sh: could not restore %s to %s\n' "$PARAM" "$ORIG" >&2
    rm -rf "$W"
}
trap cleanup EXIT
echo Y >"$PARAM" 2>/dev/null || skip "cannot set $PARAM to Y (it stays $ORIG)"

kv() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n1; }

# start TRANSPORT REP: mount a fresh filesystem served over TRANSPORT on $W/mnt.TRANSPORT.REP
start() {
    local t=$1 rep=$2 slog="$W/server.$1.$2.log" i
    MNT[$t]="$W/mnt.$t.$rep"
    mkdir "${MNT[$t]}"
    : >"$slog"
    "${NICE[@]}" "$BIN" serve "${MNT[$t]}" "$t" "$W/stats.$t" 2 >"$slog" 2>&1 &
    PID[$t]=$!
    for i in $(seq 100); do
        grep -q '^ready\|^uring_error' "$slog" && break
        kill -0 "${PID[$t]}" 2>/dev/null || break
        sleep 0.1
    done
    cat "$slog" >>"$LOG"
    if grep -q '^uring_error' "$slog"; then
        log "FUSE over io_uring refused by the kernel ($(uname -r)): $(sed -n 's/^uring_error=//p' "$slog")"
        wait "${PID[$t]}" 2>/dev/null || true
        unset "PID[$t]"
        exit 1
    fi
    grep -q '^ready' "$slog" || die "the $t server did not start: $(cat "$slog")"
}

stop() { # stop TRANSPORT REP
    local t=$1
    umount "${MNT[$t]}"
    wait "${PID[$t]}" || die "the $t server failed: $(cat "$W/server.$t.$2.log")"
    tail -n1 "$W/server.$t.$2.log" >>"$LOG"
    rmdir "${MNT[$t]}"
    unset "PID[$t]" "MNT[$t]"
}

# measure SAMPLE TRANSPORT WORKLOAD CLIENT-COMMAND PATH N: one timed batch, one row of raw.tsv
measure() {
    local sample=$1 t=$2 w=$3 cmd=$4 path=$5 n=$6 out us reqs ring dev scpu ccpu
    out=$(PROTO_JOBS=$JOBS "${NICE[@]}" "$BIN" "$cmd" "$path" "$n" "$W/stats.$t") || die "$t $w: $out"
    us=$(kv us_per_op "$out") ring=$(kv ring_reqs "$out") dev=$(kv dev_reqs "$out")
    scpu=$(kv server_cpu_us_per_op "$out") ccpu=$(kv client_cpu_us_per_op "$out")
    # the transport under test must have carried every request of the timed loop
    if [ "$t" != devfuse ] && [ "$dev" != 0 ]; then die "$t $w: $dev requests went over /dev/fuse ($out)"; fi
    if [ "$t" = devfuse ] && [ "$ring" != 0 ]; then die "devfuse $w: $ring requests went over a ring ($out)"; fi
    reqs=$(awk -v r=$((ring + dev)) -v n="$(kv ops "$out")" 'BEGIN{printf "%.2f", r/n}')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$sample" "$t" "$w" "$us" "$reqs" "$scpu" "$ccpu" >>"$RAW"
    printf '  %-6s %-7s %-10s %8.2f us/op  %s req/op  cpu us/op: server %6.2f client %6.2f\n' \
        "$sample" "$t" "$w" "$us" "$reqs" "$scpu" "$ccpu" >>"$LOG"
}

# pairs SAMPLE-PREFIX WORKLOAD CLIENT-COMMAND PATH-IN-MOUNT N: BATCHES timed batches on each
# transport, the two alternating (and which goes first alternating too)
pairs() {
    local rep=$1 w=$2 cmd=$3 rel=$4 n=$5 b order t
    for b in $(seq "$BATCHES"); do
        if [ $(((rep + b) % 2)) -eq 0 ]; then order="$BASE $TEST"; else order="$TEST $BASE"; fi
        for t in $order; do measure "$rep.$b" "$t" "$w" "$cmd" "${MNT[$t]}$rel" "$n"; done
    done
}

log "FUSE over io_uring prototype, $TEST against $BASE: $(date -u +%Y-%m-%dT%H:%M:%SZ), kernel $(uname -r), $(nproc) CPUs; $REPS mounts x $BATCHES batches per workload: create+unlink $NFILES files, stat $NFILES files, $NIOS x 4 KiB random I/O on a $FILE_MIB MiB file; $JOBS job(s) per batch; ${NICE[*]:-no nice}"
for rep in $(seq "$REPS"); do
    for t in $BASE $TEST; do start "$t" "$rep"; done
    pairs "$rep" create create "" "$NFILES"
    for t in $BASE $TEST; do "${NICE[@]}" "$BIN" mkfiles "${MNT[$t]}" "$NFILES"; done
    pairs "$rep" stat stat "" "$NFILES"
    for t in $BASE $TEST; do "${NICE[@]}" "$BIN" fill "${MNT[$t]}/data" "$FILE_MIB"; done
    pairs "$rep" randread randread /data "$NIOS"
    pairs "$rep" randwrite randwrite /data "$NIOS"
    for t in $BASE $TEST; do stop "$t" "$rep"; done
    say "mount pair $rep of $REPS done"
done

# ---------------------------------------------------------------- report
median() { sort -g | awk '{v[NR]=$1} END{if (NR==0) print "nan"; else if (NR%2) print v[(NR+1)/2]; else printf "%.6g\n", (v[NR/2]+v[NR/2+1])/2}'; }
col() { awk -F'\t' -v w="$1" -v t="$2" -v c="$3" '$3==w && $2==t {print $c}' "$RAW"; }
# column 8: server + client CPU time per operation
awk -F'\t' -v OFS='\t' '{print $0, $6 + $7}' "$RAW" >"$RAW.tmp" && mv "$RAW.tmp" "$RAW"
minimum() { sort -g | head -n1; }
log ""
log "$(printf '%-10s %7s | %-23s | %-23s' '' '' 'wall us/op: median (min)' 'cpu us/op: median (min)')"
log "$(printf '%-10s %7s | %-11s %-11s | %-11s %-11s' workload req/op "$BASE" "$TEST" "$BASE" "$TEST")"
for w in create stat randread randwrite; do
    line=$(printf '%-10s %7.2f |' "$w" "$(col "$w" "$BASE" 5 | median)")
    for c in 4 8; do
        for t in $BASE $TEST; do
            line+=$(printf ' %5.1f (%4.1f)' "$(col "$w" "$t" "$c" | median)" "$(col "$w" "$t" "$c" | minimum)")
        done
        [ "$c" = 4 ] && line+=" |"
    done
    log "$line"
done
log ""
# ratio NAME COLUMN: per pair of batches devfuse over uring (same run), the median and range
ratio() {
    local name=$1 c=$2 w ratios m lo hi
    for w in create stat randread randwrite; do
        ratios=$(awk -F'\t' -v w="$w" -v c="$c" -v a="$BASE" -v b="$TEST" '$3==w {v[$1 "," $2]=$c; reps[$1]=1}
            END{for (r in reps) if (v[r "," b] > 0) printf "%.4f\n", v[r "," a]/v[r "," b]}' "$RAW")
        m=$(printf '%s\n' "$ratios" | median)
        lo=$(printf '%s\n' "$ratios" | sort -g | head -n1) hi=$(printf '%s\n' "$ratios" | sort -g | tail -n1)
        log "$name ratio=$(printf '%.2f' "$m") workload=$w (pairs: $(printf '%s\n' "$ratios" | wc -l), $(printf '%.2f' "$lo")..$(printf '%.2f' "$hi"))"
    done
}
if [ "$BASE/$TEST" = devfuse/uring ]; then NAME=fuse_uring_vs_devfuse; else NAME="${TEST//-/_}_vs_${BASE//-/_}"; fi
ratio "$NAME" 4
ratio "${NAME}_cpu" 8
