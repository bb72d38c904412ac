#!/usr/bin/env bash
# bench-compare.sh - `make bench-compare [BASE=results/X.json]`: compares the
# newest results/bench-*.json with BASE (default: the result before it).
# usage: tools/bench-compare.sh QUARRY_BINARY [BASE] [more quarry bench compare options]
set -euo pipefail
quarry=${1:?usage: tools/bench-compare.sh QUARRY_BINARY [BASE]}
base=${2:-}
shift $(( $# >= 2 ? 2 : 1 ))
mapfile -t results < <(ls -1 results/bench-*.json 2>/dev/null | sort)
if [ ${#results[@]} -eq 0 ]; then
    echo "bench-compare: no results/bench-*.json yet: run make bench" >&2
    exit 1
fi
new=${results[${#results[@]}-1]}
if [ -z "$base" ]; then
    if [ ${#results[@]} -lt 2 ]; then
        echo "bench-compare: only one result ($new); give BASE=results/X.json" >&2
        exit 1
    fi
    base=${results[${#results[@]}-2]}
fi
[ -f "$base" ] || { echo "bench-compare: no such file: $base" >&2; exit 1; }
if [ "$base" = "$new" ]; then
    echo "bench-compare: BASE is the newest result itself ($new)" >&2
    exit 1
fi
exec "$quarry" bench compare "$base" "$new" "$@"
