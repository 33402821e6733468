#!/usr/bin/env bash
# fsx-style stress of sealfs through a real FUSE mount, and the SIGKILL loop.
#
#   scripts/stress.sh [--short] [--ops N] [--seed N] [--procs P] [--cache MODE]
#                     [--enospc] [--kill-loop N] [--core-secs S]
#
# First, the multithreaded core run (fs/tests/concurrency.rs): 6 threads of creates,
# writes, truncates, renames, links, xattrs, seals, window mappings and unlinks race 2
# threads of checkpoints for S seconds (--core-secs; default 300, 10 with --short, 0 skips
# it); a stall of 20 s or a lock taken out of order fails it, and the image must then be
# clean and remount to the same tree.
#
# Builds sealfs and sealfs-stress (release), makes a sparse 1 GiB image on /dev/shm, mounts
# it with 4 FUSE threads and runs sealfs-stress (--short: 20000 ops; default 1000000), then
# unmounts and runs `sealfs fsck`, which must find the image clean. --cache both (default)
# runs half of the ops on a cache=direct mount and half on a cache=page mount (a fresh
# image each); --cache direct or --cache page runs all of them on one. --enospc uses a
# 48 MiB image and files of up to 16 MiB, so the filesystem keeps running full (ENOSPC is
# then an allowed outcome, checked against what the filesystem reports it did).
#
# --kill-loop N: N times: run sealfs-stress with durability tracking (--durable-log, fsync
# after every 1-8 ops), SIGKILL the daemon at a random moment, detach the mount, kill the
# stress processes, run fsck on the unmounted image (must be clean), remount and check that
# every fsynced byte is there (sealfs-stress --verify-durable). See docs/testing.md.
#
# Skips (exit 0) when not root or without /dev/fuse. Installs fuse3 when it is missing.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$SEALFS_ROOT"

usage() {
    sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

ops=1000000
seed=$(( (RANDOM << 15 | RANDOM) % 1000000000 ))
procs=4
kill_loop=0
core_secs=
cache=both
img_size=1G
stress_extra=()
while [ $# -gt 0 ]; do
    case $1 in
    --short) ops=20000 ;;
    --cache) cache=${2:?--cache direct|page|both}; shift ;;
    --enospc) img_size=48M; stress_extra=(--enospc --max-size 16M) ;;
    --ops) ops=${2:?--ops N}; shift ;;
    --seed) seed=${2:?--seed N}; shift ;;
    --procs) procs=${2:?--procs P}; shift ;;
    --kill-loop) kill_loop=${2:?--kill-loop N}; shift ;;
    --core-secs) core_secs=${2:?--core-secs S}; shift ;;
    -h|--help) usage 0 ;;
    *) echo "stress.sh: unknown argument: $1" >&2; usage 1 ;;
    esac
    shift
done
case $cache in direct|page|both) ;; *) echo "stress.sh: --cache direct|page|both" >&2; exit 1 ;; esac

ensure_cargo
if [ -z "$core_secs" ]; then
    if [ "$kill_loop" -gt 0 ]; then core_secs=0
    elif [ "$ops" -le 20000 ]; then core_secs=10
    else core_secs=300; fi
fi
if [ "$core_secs" -gt 0 ]; then
    say "core run: 6 threads of operations against 2 of checkpoints for $core_secs s"
    SEALFS_CONCURRENCY_SECS=$core_secs cargo test --release -q -p sealfs --features strict-locks \
        --test concurrency -- --nocapture 2>&1 | grep -v '^$' || die "the multithreaded core run failed"
fi

if ! can_mount; then
    echo "stress.sh: skipped: mounting needs root and /dev/fuse"
    exit 0
fi
ensure_cmds fusermount3:fuse3

say "building sealfs and sealfs-stress (release)"
cargo build --release -q -p sealfs --bin sealfs -p sealfs-tests --bin sealfs-stress
SEALFS=$SEALFS_ROOT/target/release/sealfs
STRESS=$SEALFS_ROOT/target/release/sealfs-stress

work=$(mktemp -d /dev/shm/sealfs-stress.XXXXXX)
img=$work/fs.img
mnt=$work/mnt
dur=$work/durable
mkdir -p "$mnt"
stress_pid=
keep_work=0

# The sealfs daemon serving $mnt: the process whose arguments include the mount point.
daemon_pid() {
    local p args a
    for p in /proc/[0-9]*; do
        [ -r "$p/cmdline" ] || continue
        mapfile -d '' args < "$p/cmdline" 2>/dev/null || continue
        [ ${#args[@]} -gt 0 ] || continue
        case ${args[0]} in *sealfs) ;; *) continue ;; esac
        for a in "${args[@]:1}"; do
            if [ "$a" = "$mnt" ]; then
                echo "${p#/proc/}"
                return 0
            fi
        done
    done
    return 1
}

# From the mount table, not stat(2): a mount whose daemon died answers ENOTCONN.
is_mounted() {
    awk -v m="$mnt" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo
}

detach() {
    if is_mounted; then
        umount -l "$mnt" 2>/dev/null || fusermount3 -u -z "$mnt" 2>/dev/null || true
    fi
    ! is_mounted || die "could not detach $mnt"
}

cleanup() {
    if [ -n "$stress_pid" ]; then kill -KILL -- "-$stress_pid" 2>/dev/null || true; fi
    if is_mounted; then
        umount "$mnt" 2>/dev/null || detach
    fi
    if [ "$keep_work" = 1 ]; then
        echo "stress.sh: kept $work (image, logs) for inspection"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

do_mount() { # cache mode
    "$SEALFS" mount -o "threads=4,cache=$1" "$img" "$mnt" || die "sealfs mount (cache=$1) failed"
}

do_fsck() { # label
    if ! "$SEALFS" fsck "$img" > "$work/fsck.out" 2>&1; then
        echo "stress.sh: fsck NOT clean ($1):"
        sed 's/^/    /' "$work/fsck.out" | tail -40
        return 1
    fi
}

# Prints where the stress processes and the daemon's threads are stuck.
dump_stacks() {
    local p t
    for p in $(pgrep -g "$stress_pid" 2>/dev/null) $(daemon_pid || true); do
        for t in /proc/"$p"/task/*; do
            echo "--- $t ($(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | cut -c1-80))"
            cat "$t/stack" 2>/dev/null | head -12
        done
    done
}

# Notes the op kinds the workers skipped (e.g. seals before the ioctls exist).
skipped_note() { # stress output file
    local s
    s=$(sed -n 's/^worker [0-9]*: .* skipped: //p' "$1" | tr ' ' '\n' | sort -u | tr '\n' ' ')
    [ -z "$s" ] || echo "stress.sh: note: op kinds not exercised (unsupported or turned off): $s"
}

if [ "$kill_loop" -eq 0 ]; then
    # ------------------------------------------------------------------ one long run
    if [ "$cache" = both ]; then modes=(direct page); else modes=("$cache"); fi
    total_start=$(date +%s)
    part=0
    for mode in "${modes[@]}"; do
        n=$(( ops / ${#modes[@]} + (part < ops % ${#modes[@]} ? 1 : 0) ))
        mseed=$((seed + part))
        part=$((part + 1))
        "$SEALFS" mkfs --force --size "$img_size" "$img" >/dev/null
        do_mount "$mode"
        say "sealfs-stress: $n ops, $procs procs, seed $mseed, cache=$mode, on $mnt"
        limit=$(( 600 + n / 200 ))   # a generous watchdog: hangs are failures too
        setsid "$STRESS" --dir "$mnt/stress" --seed "$mseed" --ops "$n" --procs "$procs" \
            "${stress_extra[@]}" --log "$work/stress-fail.log" > >(tee "$work/stress.out") 2>&1 &
        stress_pid=$!
        deadline=$(( $(date +%s) + limit ))
        while kill -0 "$stress_pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do
            sleep 1
        done
        if kill -0 "$stress_pid" 2>/dev/null; then
            echo "stress.sh: sealfs-stress (cache=$mode) still running after ${limit} s: HANG; stacks:"
            dump_stacks
            kill -KILL -- "-$stress_pid" 2>/dev/null || true
            wait "$stress_pid" 2>/dev/null || true
            stress_pid=
            keep_work=1
            exit 1
        fi
        rc=0
        wait "$stress_pid" || rc=$?
        stress_pid=
        sleep 0.2   # let tee finish
        umount "$mnt" || { sleep 1; umount "$mnt"; }
        fsck_ok=1
        do_fsck "after the stress run, cache=$mode" || fsck_ok=0
        if [ "$rc" -ne 0 ] || [ "$fsck_ok" -ne 1 ]; then
            [ -f "$work/stress-fail.log" ] && cp "$work/stress-fail.log" "/tmp/sealfs-stress-seed$mseed.log" &&
                echo "stress.sh: op log copied to /tmp/sealfs-stress-seed$mseed.log"
            echo "stress.sh: FAILED, cache=$mode, seed $mseed (sealfs-stress exit $rc, fsck $([ $fsck_ok = 1 ] && echo clean || echo NOT clean))"
            keep_work=1
            exit 1
        fi
        skipped_note "$work/stress.out"
        echo "stress.sh: cache=$mode: $n ops, seed $mseed, 0 miscompares, fsck clean"
    done
    echo "stress.sh: passed: $ops ops (cache=$cache), 0 miscompares, fsck clean, $(( $(date +%s) - total_start )) s"
    exit 0
fi

# ---------------------------------------------------------------------- the kill loop
[ ${#stress_extra[@]} -eq 0 ] || die "--enospc is for the stress run, not the kill loop"
say "kill loop: $kill_loop iterations, $procs procs, seed $seed, cache=$cache"
"$SEALFS" mkfs --force --size 1G "$img" >/dev/null
mode_of() { # iteration: both alternates direct and page
    if [ "$cache" = both ]; then
        if [ $(($1 % 2)) -eq 1 ]; then echo direct; else echo page; fi
    else
        echo "$cache"
    fi
}
do_mount "$(mode_of 1)"
failures=0
for ((i = 1; i <= kill_loop; i++)); do
    iseed=$((seed + i))
    mode=$(mode_of "$i")
    every=$((1 << (RANDOM % 4)))            # fsync after every 1, 2, 4 or 8 ops
    rm -rf "$dur"
    setsid "$STRESS" --dir "$mnt/stress" --durable-log "$dur" --seed "$iseed" \
        --ops 1000000000 --procs "$procs" --max-size 256K --fsync-every "$every" \
        --log "$work/stress-fail.log" > "$work/stress.out" 2>&1 &
    stress_pid=$!
    nap=$((RANDOM % 3)).$((RANDOM % 10))$((RANDOM % 10))
    sleep "$nap"
    pid=$(daemon_pid) || die "iteration $i: no sealfs daemon serving $mnt"
    kill -KILL "$pid"
    detach
    # The workers see ENOTCONN (exit 3); give them a moment, then kill what is left.
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$stress_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$stress_pid" 2>/dev/null || true
    rc=0
    wait "$stress_pid" 2>/dev/null || rc=$?
    stress_pid=
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    bad=
    # 0: finished, 3: filesystem gone, 137: killed by us. 1, 2, 4: a failure before the kill.
    case $rc in 0|3|137) ;; *) bad="sealfs-stress exit $rc before the kill" ;; esac
    do_fsck "iteration $i" || bad="${bad:+$bad; }fsck not clean"
    do_mount "$(mode_of $((i + 1)))"
    if ! "$STRESS" --dir "$mnt/stress" --verify-durable "$dur" > "$work/verify.out" 2>&1; then
        bad="${bad:+$bad; }fsynced data missing"
    fi
    if [ -n "$bad" ]; then
        failures=$((failures + 1))
        echo "kill-loop iteration $i (seed $iseed, cache=$mode, fsync every $every): FAILED: $bad"
        sed 's/^/    /' "$work/stress.out" | grep -v '^    worker .*ops=' | tail -60
        sed 's/^/    /' "$work/verify.out" | tail -20
        mkdir -p "$work/failed-$i" && cp -r "$dur" "$work/stress.out" "$work/verify.out" "$work/failed-$i/" 2>/dev/null || true
        keep_work=1
    else
        printf 'kill-loop %d/%d: seed %d, cache=%s, fsync every %d, killed after %s s, stress exit %d: %s\n' \
            "$i" "$kill_loop" "$iseed" "$mode" "$every" "$nap" "$rc" "$(sed -n 's/^verify-durable: //p' "$work/verify.out")"
    fi
done
umount "$mnt"
do_fsck "after the kill loop" || failures=$((failures + 1))
echo "kill-loop: $kill_loop iterations, $failures failures"
[ "$failures" -eq 0 ]
