#!/usr/bin/env bash
# Measures FUSE over io_uring against the classic /dev/fuse loop with a small C prototype
# (scripts/bench/fuse_uring_proto.c: one in-memory filesystem, the same request handlers
# behind both transports). Workloads: create+unlink, uncached stat, 4 KiB random pread and
# pwrite (direct I/O: every operation is a FUSE request). The two transports alternate over
# the repetitions; only same-run ratios count. See docs/performance.md, "FUSE over io_uring:
# the prototype".
#
#   scripts/bench/uring.sh [--reps R] [--files N] [--ios N] [--out DIR]
#
# Needs root (mount(2) of a FUSE filesystem, the fuse module's enable_uring parameter, which
# is set to Y for the run and restored on exit). Skips with a message (status 0) when not
# root or when the kernel has no FUSE over io_uring. Prints per workload the medians
# (µs per operation and per request) and `fuse_uring_vs_devfuse ratio=X workload=W`
# (median of the per-repetition ratios devfuse/uring of the wall time per operation; > 1 =
# io_uring faster), and `fuse_uring_vs_devfuse_cpu ratio=X workload=W` (the same for the CPU
# time, server + client, per operation); writes DIR/raw.tsv (rep, transport, workload,
# us/op, requests/op, server and client CPU us/op, their sum) and DIR/uring.log (default
# DIR: bench-out/uring in the repository).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"

REPS=7 NFILES=2000 NIOS=20000 FILE_MIB=16
OUT="$SEALFS_ROOT/bench-out/uring"
while [ $# -gt 0 ]; do
    case "$1" in
        --reps) REPS=${2:?--reps wants a number}; shift ;;
        --files) NFILES=${2:?--files wants a number}; shift ;;
        --ios) NIOS=${2:?--ios wants a number}; shift ;;
        --out) OUT=${2:?--out wants a directory}; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) die "unknown argument $1 (usage: scripts/bench/uring.sh [--reps R] [--files N] [--ios N] [--out DIR])" ;;
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
MNT="" PID=""
cleanup() {
    if [ -n "$MNT" ] && mountpoint -q "$MNT"; then umount "$MNT" 2>/dev/null || umount -l "$MNT" || true; fi
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    echo "$ORIG" >"$PARAM" 2>/dev/null || printf 'uring.sh: could not restore %s to %s\n' "$PARAM" "$ORIG" >&2
    rm -rf "$W"
}
trap cleanup EXIT
echo Y >"$PARAM" 2>/dev/null || skip "cannot set $PARAM to Y (it stays $ORIG)"

kv() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n1; }

# run_one TRANSPORT REP: one mount, every workload, one unmount.
run_one() {
    local t=$1 rep=$2 slog="$W/server.$1.$2.log" stats="$W/stats.$1.$2" i out
    MNT="$W/mnt.$t.$rep"
    mkdir "$MNT"
    "$BIN" serve "$MNT" "$t" "$stats" 2 >"$slog" 2>&1 &
    PID=$!
    for i in $(seq 100); do
        grep -q '^ready\|^uring_error' "$slog" && break
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$slog" >>"$LOG"
    if grep -q '^uring_error' "$slog"; then
        log "FUSE over io_uring refused by the kernel ($(uname -r)): $(sed -n 's/^uring_error=//p' "$slog")"
        wait "$PID" 2>/dev/null || true
        PID=""
        exit 1
    fi
    grep -q '^ready' "$slog" || die "the $t server did not start: $(cat "$slog")"
    measure() { # measure WORKLOAD ARGS...
        local w=$1 us reqs ring dev scpu ccpu
        shift
        out=$("$BIN" "$@") || die "$t $w: $out"
        us=$(kv us_per_op "$out") ring=$(kv ring_reqs "$out") dev=$(kv dev_reqs "$out")
        scpu=$(kv server_cpu_us_per_op "$out") ccpu=$(kv client_cpu_us_per_op "$out")
        # the transport under test must have carried every request of the timed loop
        if [ "$t" = uring ] && [ "$dev" != 0 ]; then die "uring $w: $dev requests went over /dev/fuse ($out)"; fi
        if [ "$t" = devfuse ] && [ "$ring" != 0 ]; then die "devfuse $w: $ring requests went over a ring ($out)"; fi
        reqs=$(awk -v r=$((ring + dev)) -v n="$(kv ops "$out")" 'BEGIN{printf "%.2f", r/n}')
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rep" "$t" "$w" "$us" "$reqs" "$scpu" "$ccpu" >>"$RAW"
        printf '  rep %s %-7s %-10s %8.2f us/op  %s req/op  cpu us/op: server %6.2f client %6.2f\n' \
            "$rep" "$t" "$w" "$us" "$reqs" "$scpu" "$ccpu" | tee -a "$LOG"
    }
    measure create create "$MNT" "$NFILES" "$stats"
    "$BIN" mkfiles "$MNT" "$NFILES"
    measure stat stat "$MNT" "$NFILES" "$stats"
    "$BIN" fill "$MNT/data" "$FILE_MIB"
    measure randread randread "$MNT/data" "$NIOS" "$stats"
    measure randwrite randwrite "$MNT/data" "$NIOS" "$stats"
    umount "$MNT"
    wait "$PID" || die "the $t server failed: $(cat "$slog")"
    PID=""
    tail -n1 "$slog" >>"$LOG"
    rmdir "$MNT"
    MNT=""
}

log "FUSE over io_uring prototype: $(date -u +%Y-%m-%dT%H:%M:%SZ), kernel $(uname -r), $(nproc) CPUs, $REPS repetitions, $NFILES files, $NIOS I/Os of 4 KiB on a $FILE_MIB MiB file"
for rep in $(seq "$REPS"); do
    if [ $((rep % 2)) -eq 1 ]; then order="devfuse uring"; else order="uring devfuse"; fi
    for t in $order; do run_one "$t" "$rep"; done
done

# ---------------------------------------------------------------- report
median() { sort -g | awk '{v[NR]=$1} END{if (NR==0) print "nan"; else if (NR%2) print v[(NR+1)/2]; else printf "%.6g\n", (v[NR/2]+v[NR/2+1])/2}'; }
col() { awk -F'\t' -v w="$1" -v t="$2" -v c="$3" '$3==w && $2==t {print $c}' "$RAW"; }
# column 8: server + client CPU time per operation
awk -F'\t' -v OFS='\t' '{print $0, $6 + $7}' "$RAW" >"$RAW.tmp" && mv "$RAW.tmp" "$RAW"
log ""
log "$(printf '%-10s %9s %9s %7s %9s %9s %9s %9s' workload dev_us/op uring_us/op req/op dev_us/req uring_us/req dev_cpu/op uring_cpu/op)"
for w in create stat randread randwrite; do
    d=$(col "$w" devfuse 4 | median) u=$(col "$w" uring 4 | median) rq=$(col "$w" devfuse 5 | median)
    dc=$(col "$w" devfuse 8 | median) uc=$(col "$w" uring 8 | median)
    log "$(awk -v w="$w" -v d="$d" -v u="$u" -v r="$rq" -v dc="$dc" -v uc="$uc" \
        'BEGIN{printf "%-10s %9.2f %11.2f %7.2f %10.2f %12.2f %10.2f %12.2f", w, d, u, r, d/r, u/r, dc, uc}')"
done
log "(us: wall time per operation; cpu: CPU time of server + client per operation, µs; medians)"
log ""
# ratio NAME COLUMN: per repetition devfuse over uring (same run), then the median and range
ratio() {
    local name=$1 c=$2 w ratios m lo hi
    for w in create stat randread randwrite; do
        ratios=$(awk -F'\t' -v w="$w" -v c="$c" '$3==w {v[$1 "," $2]=$c; reps[$1]=1}
            END{for (r in reps) if (v[r ",uring"] > 0) printf "%.4f\n", v[r ",devfuse"]/v[r ",uring"]}' "$RAW")
        m=$(printf '%s\n' "$ratios" | median)
        lo=$(printf '%s\n' "$ratios" | sort -g | head -n1) hi=$(printf '%s\n' "$ratios" | sort -g | tail -n1)
        log "$name ratio=$(printf '%.2f' "$m") workload=$w (repetitions: $(printf '%.2f' "$lo")..$(printf '%.2f' "$hi"))"
    done
}
ratio fuse_uring_vs_devfuse 4
ratio fuse_uring_vs_devfuse_cpu 8
