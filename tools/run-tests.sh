#!/usr/bin/env bash
# run-tests.sh BUILD - runs every cmocka suite in BUILD/tests from the repo
# root, prints each suite's result and ends with one line "N passed, N failed"
# over all suites. A suite that crashes or exits non-zero without reporting
# counts its failure. Skipped tests are reported, never counted as passed. Exit status is non-zero on any failure.
set -uo pipefail
build=${1:-build}
passed=0
failed=0
skipped=0
crashed=()
logdir=$build/test-logs
mkdir -p "$logdir"
for bin in "$build"/tests/test_*; do
    [ -x "$bin" ] || continue
    name=$(basename "$bin")
    log=$logdir/$name.log
    "$bin" >"$log" 2>&1
    rc=$?
    p=$(grep -oE '^\[  PASSED  \] [0-9]+' "$log" | awk '{s+=$NF} END {print s+0}')
    f=$(grep -oE '^\[  FAILED  \] [0-9]+ test' "$log" | awk '{s+=$(NF-1)} END {print s+0}')
    k=$(grep -oE '^\[  SKIPPED \] [0-9]+ test' "$log" | awk '{s+=$(NF-1)} END {print s+0}')
    skipped=$((skipped + k))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        crashed+=("$name (exit $rc)")
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$f" -gt 0 ]; then
        echo "FAIL $name: $p passed, $f failed (log: $log)"
        grep -E '^\[  (FAILED|ERROR) \]|error:|ERROR|Sanitizer|runtime error' "$log" | head -20 | sed 's/^/    /'
    else
        echo "ok   $name: $p passed$([ "$k" -gt 0 ] && echo ", $k skipped")"
    fi
done
for c in "${crashed[@]}"; do echo "crashed: $c"; done
# skipped tests are not counted as passed
if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
