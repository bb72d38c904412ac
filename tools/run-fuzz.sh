#!/usr/bin/env bash
# run-fuzz.sh BUILD SECONDS - runs every libFuzzer target in BUILD/fuzz for
# SECONDS each, seeded from tests/fuzz/corpus/<target>/ (read-only seeds) into
# a scratch corpus in BUILD/fuzz-corpus. Crashes are saved in BUILD/fuzz-crashes.
set -euo pipefail
build=$1
secs=$2
mkdir -p "$build/fuzz-crashes"
status=0
for bin in "$build"/fuzz/fuzz_*; do
    [ -x "$bin" ] || continue
    name=$(basename "$bin")
    work=$build/fuzz-corpus/$name
    mkdir -p "$work"
    seeds=tests/fuzz/corpus/$name
    args=("$work")
    [ -d "$seeds" ] && args+=("$seeds")
    echo "fuzz: $name for ${secs}s"
    if ! "$bin" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 \
        -artifact_prefix="$build/fuzz-crashes/$name-" -print_final_stats=1 "${args[@]}" \
        >"$build/fuzz-$name.log" 2>&1; then
        echo "fuzz: $name FAILED (see $build/fuzz-$name.log, artifacts in $build/fuzz-crashes)"
        tail -30 "$build/fuzz-$name.log"
        status=1
    else
        grep -E 'stat::number_of_executed_units|stat::new_units_added' "$build/fuzz-$name.log" | sed "s/^/    /"
    fi
done
exit $status
