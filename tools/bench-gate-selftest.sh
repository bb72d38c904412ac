#!/usr/bin/env bash
# bench-gate-selftest.sh - proves that the regression gate works (make
# bench-gate-selftest; .ci/run runs it). On three workloads, with a baseline
# of its own in a temporary folder:
#   1. records the baseline (tools/bench-gate.sh --update)
#   2. checks again: the counts must be identical and the gate must pass
#   3. checks with QUARRY_GATE_PLANT_SLOWDOWN=1 (an extra pass over an eighth
#      of matvec_q4_K's weights): the gate must fail, naming matvec_q4_K as
#      regressed and the other workloads as unchanged
#   4. recording a baseline with the slowdown planted must be refused
#   5. a baseline from another ISA level must make the gate skip, not fail
# usage: tools/bench-gate-selftest.sh QUARRY_BINARY
set -uo pipefail
quarry=${1:?usage: tools/bench-gate-selftest.sh QUARRY_BINARY}
work=$(mktemp -d "${TMPDIR:-/tmp}/quarry-gate-selftest.XXXXXX")
trap 'rm -rf "$work"' EXIT
base=$work/baseline.json
only="matvec_q4_K matvec_q4_0 dequantize_q4_K"
failures=0
start=$(date +%s)

check() { # check DESCRIPTION CONDITION...
    local what=$1
    shift
    if "$@"; then
        echo "ok   $what"
    else
        echo "FAIL $what"
        failures=$((failures + 1))
    fi
}

gate() { # gate LOG [extra args...]: runs the gate on the selftest workloads
    local log=$1
    shift
    tools/bench-gate.sh "$quarry" --baseline "$base" --only "$only" "$@" >"$log" 2>&1
}

unset QUARRY_GATE_PLANT_SLOWDOWN
gate "$work/update.log" --update
check "records a baseline" [ $? -eq 0 -a -s "$base" ]

gate "$work/same.log"
rc=$?
check "passes against its own baseline (exit $rc)" [ $rc -eq 0 ]
check "counts are identical on a second run" grep -q "0 regressed.*0 improved.*3 same" "$work/same.log"

QUARRY_GATE_PLANT_SLOWDOWN=1 gate "$work/planted.log"
rc=$?
check "fails with the slowdown planted (exit $rc)" [ $rc -eq 1 ]
check "names matvec_q4_K as regressed" grep -qE "^matvec_q4_K .*REGRESSED" "$work/planted.log"
check "leaves the other workloads unchanged" grep -q "1 regressed.*2 same" "$work/planted.log"
grep -E "^(workload|matvec_q4_K|matvec_q4_0|dequantize_q4_K) " "$work/planted.log" | sed 's/^/    /'

QUARRY_GATE_PLANT_SLOWDOWN=1 gate "$work/refused.log" --update
rc=$?
check "refuses to record a planted baseline (exit $rc)" [ $rc -ne 0 ]

sed 's/"isa":[^,]*/"isa":\t"avx512"/' "$base" >"$work/other-isa.json"
tools/bench-gate.sh "$quarry" --baseline "$work/other-isa.json" --only "matvec_q4_0" \
    >"$work/skip.log" 2>&1
rc=$?
check "skips (exit $rc) when the baseline has another ISA level" \
    grep -q "SKIPPED" "$work/skip.log"
[ $rc -eq 0 ] || { echo "FAIL skip exit status $rc"; failures=$((failures + 1)); }

if [ $failures -gt 0 ]; then
    echo "bench-gate-selftest: $failures check(s) failed; logs:"
    for f in "$work"/*.log; do echo "--- $f"; tail -n 40 "$f"; done
    exit 1
fi
echo "bench-gate-selftest: passed in $(( $(date +%s) - start )) s"
