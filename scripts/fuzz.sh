#!/usr/bin/env bash
# Fuzzes the image parser (superblock, log records, checkpoint), fsck and mount on damaged
# images, and the ioctl argument decoders.
#
# With a nightly toolchain (`rustup toolchain list`) and cargo-fuzz (installed with
# `cargo install cargo-fuzz` when missing), each libFuzzer target of fuzz/ runs for N
# seconds and its executions are reported. Without them, the same targets run as the
# seeded mutation loops of fs/tests/fuzz_loops.rs (stable) for the same time, and the
# script says so. A crash or hang fails the run and prints the input's path and how to
# reproduce it.
#
# Usage: scripts/fuzz.sh [--short] [--seconds N] [--target NAME]... [--stable]
#                        [--sanitizer none|address]
#   --short      20 s per target (scripts/test.sh uses this)
#   --seconds N  N s per target (default 300)
#   --target     only these targets (superblock log_record checkpoint image ioctl_args)
#   --stable     run the stable loops even when nightly and cargo-fuzz are there
#   --sanitizer  cargo-fuzz sanitizer (default none: the fuzzed code is safe Rust, and
#                AddressSanitizer halves the executions)
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$SEALFS_ROOT"

all_targets=(superblock log_record checkpoint image ioctl_args)
seconds=300
targets=()
mode=auto
sanitizer=none
forced=0
while [ $# -gt 0 ]; do
    case $1 in
        --short) seconds=20 ;;
        --seconds) seconds=${2:?--seconds needs a value}; shift ;;
        --target) targets+=("${2:?--target needs a name}"); shift ;;
        --stable) mode=stable; forced=1 ;;
        --sanitizer) sanitizer=${2:?--sanitizer needs a value}; shift ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done
case $seconds in ''|*[!0-9]*) die "--seconds wants a whole number" ;; esac
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
    [[ " ${all_targets[*]} " == *" $t "* ]] || die "unknown target $t (${all_targets[*]})"
done

ensure_cargo

have_nightly() {
    command -v rustup >/dev/null 2>&1 && rustup toolchain list 2>/dev/null | grep -q '^nightly'
}

if [ "$mode" = auto ]; then
    mode=stable
    if have_nightly; then
        if ! cargo fuzz --version >/dev/null 2>&1; then
            say "cargo-fuzz is missing: cargo install cargo-fuzz --locked"
            cargo install cargo-fuzz --locked >&2 || say "could not install cargo-fuzz"
        fi
        cargo fuzz --version >/dev/null 2>&1 && mode=libfuzzer
    fi
fi

logdir=target/fuzz-logs
mkdir -p "$logdir"
declare -A execs rate result
failed=0

if [ "$mode" = libfuzzer ]; then
    say "libFuzzer ($(cargo fuzz --version)), ${seconds} s per target, sanitizer $sanitizer"
    # Build every target first, so that the build is not counted against the time.
    for t in "${targets[@]}"; do
        cargo +nightly fuzz build -s "$sanitizer" "$t" >&2
    done
    for t in "${targets[@]}"; do
        # New inputs go to a scratch corpus (the first directory); fuzz/corpus stays as
        # committed and is read as seeds.
        work=fuzz/target/corpus/$t
        mkdir -p "$work" "fuzz/corpus/$t" "fuzz/artifacts/$t"
        log=$logdir/$t.log
        say "fuzzing $t for ${seconds} s"
        set +e
        cargo +nightly fuzz run -s "$sanitizer" "$t" "$work" "fuzz/corpus/$t" -- \
            -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
            -print_final_stats=1 >"$log" 2>&1
        rc=$?
        set -e
        # The final status line: "#123456  DONE   cov: ... exec/s: 6172 rss: 60Mb".
        done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
        if [ -n "$done_line" ]; then
            execs[$t]=$(sed -E 's/^#([0-9]+).*/\1/' <<<"$done_line")
            rate[$t]=$(sed -nE 's/.*exec\/s: ([0-9]+).*/\1/p' <<<"$done_line")
        else
            execs[$t]=$(sed -nE 's/^stat::number_of_executed_units: ([0-9]+)/\1/p' "$log" | tail -1)
            rate[$t]=$(sed -nE 's/^stat::average_exec_per_sec: ([0-9]+)/\1/p' "$log" | tail -1)
        fi
        if [ $rc -eq 0 ]; then
            result[$t]=ok
        else
            failed=1
            artifact=$(sed -nE "s/.*Test unit written to (.*)$/\1/p" "$log" | tail -1)
            result[$t]="FAILED (exit $rc)"
            grep -E 'panicked at|ERROR: libFuzzer|^SUMMARY|timeout after' "$log" | head -5 >&2 || true
            if [ -n "$artifact" ]; then
                result[$t]="FAILED: $artifact"
                echo "crash input: $artifact" >&2
                echo "reproduce:   cargo +nightly fuzz run -s $sanitizer $t $artifact" >&2
                echo "   or        SEALFS_FUZZ_REPRO=$t:@$PWD/$artifact RUST_BACKTRACE=1 cargo test --release -p sealfs --test fuzz_loops repro -- --nocapture" >&2
            fi
            echo "full log: $log" >&2
        fi
    done
else
    if [ "$forced" = 1 ]; then
        say "--stable: running the stable loops of fs/tests/fuzz_loops.rs"
    elif have_nightly; then
        say "nightly is there but cargo-fuzz is not: running the stable loops instead of libFuzzer"
    else
        say "no nightly toolchain: running the stable loops of fs/tests/fuzz_loops.rs instead of libFuzzer"
    fi
    say "stable mutation loops, ${seconds} s per target"
    for t in "${targets[@]}"; do
        log=$logdir/$t.stable.log
        set +e
        SEALFS_FUZZ_SECONDS=$seconds SEALFS_FUZZ_ITERS=1000000000000 \
            cargo test --release -q -p sealfs --test fuzz_loops -- --exact "$t" \
            --nocapture --test-threads=1 >"$log" 2>&1
        rc=$?
        set -e
        line=$(grep -E "^fuzz_loops: $t: " "$log" | tail -1 || true)
        execs[$t]=$(sed -nE 's/.*: ([0-9]+) execs in.*/\1/p' <<<"$line")
        rate[$t]=$(sed -nE 's/.*\(([0-9]+)\/s\).*/\1/p' <<<"$line")
        if [ $rc -eq 0 ]; then
            result[$t]=ok
        else
            failed=1
            result[$t]="FAILED"
            grep -E 'panicked|^input:|^reproduce:|hang' "$log" >&2 || tail -20 "$log" >&2
            echo "full log: $log" >&2
        fi
    done
fi

echo
printf '%-12s %14s %10s  %s\n' target executions exec/s result
total=0
for t in "${targets[@]}"; do
    printf '%-12s %14s %10s  %s\n' "$t" "${execs[$t]:-?}" "${rate[$t]:-?}" "${result[$t]}"
    total=$((total + ${execs[$t]:-0}))
done
echo "fuzz ($mode): ${#targets[@]} targets, ${seconds} s each, $total executions, $([ $failed -eq 0 ] && echo 'no crashes or hangs' || echo 'FAILURES')"
exit $failed
