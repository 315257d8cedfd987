#!/usr/bin/env bash
# Builds the fuzz targets once (`cargo fuzz build -O`), then runs every target (or the ones
# named) for N seconds each, one after another, seeded from fuzz/seeds/<target>, and prints one
# summary line per target.
#
#   fuzz/run-all.sh [SECONDS] [TARGET...]      SECONDS defaults to 60
#
# New corpus entries go to fuzz/corpus/<target>, crashes to fuzz/artifacts/<target>/, the full
# libFuzzer output to fuzz/logs/<target>.log. FUZZ_FRESH=1 empties fuzz/corpus/<target> first
# (so numbers are comparable between runs). Before fuzzing a target, each file under
# fuzz/regressions/<target>/ is run once; one that still fails is reported (stderr) and counts
# as a finding. Exits 1 if any target found a crash, a failed property, a leak, a timeout or an
# out-of-memory, or has a failing regression input; 2 on a build error or bad usage.
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`); on a stable toolchain
# RUSTC_BOOTSTRAP=1 is set here so cargo-fuzz can use its nightly-only flags.
set -uo pipefail

cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1

secs=${1:-60}
if ! [[ $secs =~ ^[0-9]+$ ]] || [ "$secs" -lt 1 ]; then
    echo "usage: $0 [SECONDS] [TARGET...]" >&2
    exit 2
fi
shift $(( $# > 0 ? 1 : 0 ))
if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

mkdir -p logs corpus artifacts
if ! cargo fuzz build -O >logs/build.log 2>&1; then
    tail -40 logs/build.log >&2
    echo "build failed (fuzz/logs/build.log)" >&2
    exit 2
fi
bindir="target/$(rustc -vV | sed -n 's/^host: //p')/release"
# What `cargo fuzz run` adds for the address sanitizer.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_odr_violation=0"

status=0
for t in "${targets[@]}"; do
    if [ ! -f "fuzz_targets/$t.rs" ]; then
        echo "$t: no such target" >&2
        status=2
        continue
    fi
    # Known findings first: every file under regressions/<target>/ must pass.
    regress=""
    if [ -d "regressions/$t" ]; then
        total=0 failed=0
        for f in "regressions/$t"/*; do
            [ -f "$f" ] || continue
            total=$((total + 1))
            if ! "$bindir/$t" -artifact_prefix="logs/$t.regression-" "$f" \
                >"logs/$t.regression.log" 2>&1; then
                failed=$((failed + 1))
                echo "$t: regression input fails: $f" >&2
                status=1
            fi
        done
        regress="regressions=$((total - failed))/$total"
        rm -f "logs/$t.regression.log"
    fi
    [ "${FUZZ_FRESH:-0}" = 1 ] && rm -rf "corpus/$t"
    mkdir -p "corpus/$t" "seeds/$t" "artifacts/$t"
    log="logs/$t.log"
    before=$(find "artifacts/$t" -type f | wc -l)
    start=$(date +%s)
    # The binary `cargo fuzz run -O` would run, run directly: every target then tests the
    # same build even while src/ changes underneath.
    "$bindir/$t" -artifact_prefix="artifacts/$t/" -max_total_time="$secs" -rss_limit_mb=2048 \
        -print_final_stats=1 "corpus/$t" "seeds/$t" >"$log" 2>&1
    rc=$?
    took=$(( $(date +%s) - start ))
    after=$(find "artifacts/$t" -type f | wc -l)

    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")
    if [ -z "$runs" ]; then runs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last"); fi

    if [ "$rc" -eq 0 ] && [ "$after" -eq "$before" ]; then
        result=ok
    else
        result="FINDING (exit $rc; see $log"
        art=$(sed -n 's/.*Test unit written to //p' "$log" | tail -1)
        [ -n "$art" ] && result+="; input $art"
        result+=")"
        status=1
    fi
    printf '%-17s secs=%-4s runs=%-10s exec/s=%-7s cov=%-5s ft=%-6s corpus=%-5s %s%s\n' \
        "$t" "$took" "${runs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" \
        "${regress:+$regress }" "$result"
done
exit "$status"
