#!/usr/bin/env bash
# report.sh - `make report`: executes the notebooks headless over a results
# folder and writes each as HTML, plus the PNGs the notebooks save, into OUT.
# A notebook whose cell fails makes this fail (CI runs it on results/samples).
#
# usage: tools/report.sh RESULTS_DIR OUT_DIR
# environment: QUARRY_REQUIRE_DATA=1 makes a notebook without input files fail
#              (set automatically when RESULTS_DIR is results/samples)
set -euo pipefail
results=${1:?usage: tools/report.sh RESULTS_DIR OUT_DIR}
out=${2:?usage: tools/report.sh RESULTS_DIR OUT_DIR}
[ -d "$results" ] || { echo "report: no folder $results" >&2; exit 1; }
mkdir -p "$out"
results=$(cd "$results" && pwd)
out=$(cd "$out" && pwd)
require=${QUARRY_REQUIRE_DATA:-0}
case $results in */results/samples) require=1 ;; esac

# Debian's Python and its packages (tools/deps.sh --notebooks); the kernel
# spec "python3" runs the same interpreter
py=/usr/bin/python3
start=$(date +%s)
for nb in notebooks/kernels.ipynb notebooks/model.ipynb notebooks/load.ipynb; do
    echo "report: executing $nb over $results"
    html=$out/$(basename "$nb" .ipynb).html
    log=$out/$(basename "$nb" .ipynb).log
    rm -f "$html"
    if ! QUARRY_RESULTS=$results QUARRY_REPORT_OUT=$out QUARRY_REQUIRE_DATA=$require MPLBACKEND=Agg PYTHONDONTWRITEBYTECODE=1 \
        "$py" -m nbconvert --to html --execute --ExecutePreprocessor.timeout=600 \
        --output-dir "$out" "$nb" >"$log" 2>&1; then
        echo "report: $nb failed:" >&2
        tail -n 40 "$log" >&2
        exit 1
    fi
    [ -s "$html" ] || { echo "report: $nb produced no HTML" >&2; exit 1; }
    rm -f "$log"
done
echo "report: $(ls "$out"/*.html | wc -l) HTML and $(ls "$out"/*.png 2>/dev/null | wc -l) PNG files in $out ($(( $(date +%s) - start )) s)"
