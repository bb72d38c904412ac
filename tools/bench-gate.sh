#!/usr/bin/env bash
# bench-gate.sh - the benchmark regression gate (make bench-gate, make
# bench-gate-update). Runs every workload of `quarry bench gate-workload
# --list` once under valgrind --tool=callgrind, counting only the instructions
# executed inside quarry_gate_measured() (harness/gate.h), then lets
# `quarry bench gate-check` compare the counts with the baseline (a workload
# more than 3% above it fails the gate) or record them as the new baseline.
#
# usage: tools/bench-gate.sh QUARRY_BINARY [--update] [--baseline FILE]
#                            [--only "NAME NAME..."] [--keep DIR]
# environment: GATE_JOBS (parallel valgrind processes, default 2),
#              QUARRY_GATE_PLANT_SLOWDOWN=1 (the planted slowdown, for the selftest)
#
# The workloads run with QUARRY_ISA set to the baseline's ISA level (avx2 when
# there is no baseline): valgrind 3.19 does not run AVX-512 code, and counts of
# different code paths are not comparable. On a CPU without that level the
# check reports it and skips.
set -euo pipefail

quarry=${1:?usage: tools/bench-gate.sh QUARRY_BINARY [--update] [--baseline FILE] [--only NAMES] [--keep DIR]}
shift
baseline=results/gate-baseline.json
mode=check
only=
keep=
while [ $# -gt 0 ]; do
    case $1 in
        --update) mode=update ;;
        --baseline) baseline=$2; shift ;;
        --only) only=$2; shift ;;
        --keep) keep=$2; shift ;;
        *) echo "bench-gate: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

if ! command -v valgrind >/dev/null 2>&1; then
    echo "bench-gate: valgrind is not installed (make deps installs it)" >&2
    exit 1
fi
[ -x "$quarry" ] || { echo "bench-gate: $quarry is not built" >&2; exit 1; }

isa=avx2
if [ "$mode" = check ] && [ -f "$baseline" ]; then
    recorded=$(sed -n 's/^ *"isa": *"\([a-z0-9]*\)".*/\1/p' "$baseline" | head -n1)
    [ -n "$recorded" ] && isa=$recorded
fi

if [ -n "$keep" ]; then
    work=$keep
    mkdir -p "$work"
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/quarry-gate.XXXXXX")
    trap 'rm -rf "$work"' EXIT
fi

if [ -n "$only" ]; then
    names=$only
else
    names=$("$quarry" bench gate-workload --list)
fi

start=$(date +%s)
plant=${QUARRY_GATE_PLANT_SLOWDOWN:-}
echo "bench-gate: $(echo $names | wc -w) workloads under callgrind, QUARRY_ISA=$isa, $(valgrind --version)${plant:+, planted slowdown $plant}"

# one workload: callgrind counts only quarry_gate_measured(); the workload
# prints the ISA level it actually ran (after QUARRY_ISA and the CPU's say)
run_one() {
    local name=$1 out=$work/$1
    if ! QUARRY_ISA=$isa OPENBLAS_NUM_THREADS=1 valgrind --tool=callgrind --collect-atstart=no \
        --toggle-collect=quarry_gate_measured --callgrind-out-file="$out.callgrind" \
        "$quarry" bench gate-workload "$name" >"$out.log" 2>&1; then
        echo "bench-gate: workload $name failed:" >&2
        sed 's/^/    /' "$out.log" | grep -v '^    ==' >&2 || true
        return 1
    fi
    local ran total
    ran=$(sed -n 's/^isa: //p' "$out.log")
    total=$(sed -n 's/^totals: //p' "$out.callgrind")
    if [ -z "$ran" ] || [ -z "$total" ]; then
        echo "bench-gate: workload $name: no count (log: $out.log)" >&2
        return 1
    fi
    printf '%s\t%s\t%s\n' "$name" "$ran" "$total" >"$out.count"
}
export -f run_one
export work isa quarry

# shellcheck disable=SC2086
printf '%s\n' $names | xargs -P "${GATE_JOBS:-2}" -I{} bash -c 'run_one "$@"' _ {}

counts=$work/counts.tsv
: >"$counts"
for name in $names; do
    cat "$work/$name.count" >>"$counts"
done
echo "bench-gate: counted in $(( $(date +%s) - start )) s"

sha=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [ "$mode" = update ]; then
    if [ -n "$only" ] && [ "$baseline" = results/gate-baseline.json ]; then
        echo "bench-gate: the committed baseline needs every workload (no --only)" >&2
        exit 2
    fi
    "$quarry" bench gate-check --counts "$counts" --baseline "$baseline" --update --git-sha "$sha"
else
    "$quarry" bench gate-check --counts "$counts" --baseline "$baseline"
fi
