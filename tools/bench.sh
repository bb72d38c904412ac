#!/usr/bin/env bash
# bench.sh - `make bench`: the whole benchmark suite on synthetic TinyLlama-1.1B
# models, one table on stdout, one result file results/bench-<date>-<sha>.json.
#
# usage: tools/bench.sh BUILD_DIR
# environment (all optional):
#   BENCH_TYPES    file types to measure (default: F16 and every quantized type
#                  and mixture quarry synth makes; BF16 included, F32 not)
#   BENCH_SHAPE    synth shape (default tinyllama-1.1b; stories260K for a smoke run)
#   BENCH_VOCAB    GGUF whose tokenizer the models get (default: llama's 32000-token
#                  SPM vocabulary, from tests/data/llama-2-tiny-random.gguf, whose
#                  scores are intact (the copy in tests/data/vocab is damaged, see its
#                  README); stories260K's own for that shape)
#   BENCH_CACHE    where generated models are kept (default .bench-cache, ignored by git)
#   BENCH_THREADS  threads (default: one per physical core)
#   BENCH_QUICK=1  short runs everywhere: checks the machinery, not figures to quote
#   BENCH_ARGS     more arguments for `quarry bench all` (e.g. --no-kernels)
# Models are generated once with `quarry synth` (fixed seed, so every machine
# measures the same weights) and reused; the first run takes a while per type.
set -euo pipefail

build=${1:?usage: tools/bench.sh BUILD_DIR}
quarry=$build/quarry
cache=${BENCH_CACHE:-.bench-cache}
shape=${BENCH_SHAPE:-tinyllama-1.1b}
types=${BENCH_TYPES:-F16 BF16 Q8_0 Q6_K Q5_K_M Q5_K_S Q5_1 Q5_0 Q4_K_M Q4_K_S Q4_1 Q4_0 Q3_K_L Q3_K_M Q3_K_S Q2_K}
# the tokenizer to copy: the shape's own vocabulary size must match it
if [ "$shape" = stories260K ]; then
    vocab=${BENCH_VOCAB:-tests/data/stories260K.gguf}
else
    vocab=${BENCH_VOCAB:-tests/data/llama-2-tiny-random.gguf}
fi
[ -x "$quarry" ] || { echo "bench: $quarry is not built" >&2; exit 1; }
mkdir -p "$cache" results

# synth prints one line per tensor on stderr: keep one updating line on a
# terminal, every 25th line otherwise (CI logs)
progress() {
    local tty=0
    [ -t 1 ] && tty=1
    awk -v tty=$tty '{ if (tty) { printf "\r    %-100.100s", $0 } else if (NR % 25 == 1 || /wrote/) { print "    " $0 } fflush() }
                     END { if (tty) printf "\n" }'
}

models=()
n=$(echo $types | wc -w)
i=0
for t in $types; do
    i=$((i + 1))
    f=$cache/$shape-$t.gguf
    if [ ! -s "$f" ]; then
        echo "bench: [$i/$n] generating $f with quarry synth (once; kept in $cache)"
        t0=$(date +%s)
        if ! "$quarry" synth --shape "$shape" --type "$t" --vocab-from "$vocab" --seed 1 \
            -o "$f.part" 2>&1 | progress; then
            echo "bench: quarry synth failed for $t" >&2
            rm -f "$f.part"
            exit 1
        fi
        mv "$f.part" "$f"
        echo "bench: [$i/$n] $t ready in $(( $(date +%s) - t0 )) s"
    fi
    models+=(-m "$f")
done

sha=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
dirty=0
if [ "$sha" != unknown ] && [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    dirty=1
fi
# the flags build.mk compiles with (plus the per-file SIMD flags)
cflags=$(make --no-print-directory -s -f build.mk BUILD="$build" \
    --eval 'quarry-print-cflags: ; @echo $(CFLAGS) [*_avx2.c: $(AVX2_FLAGS)] [*_avx512.c: $(AVX512_FLAGS)]' \
    quarry-print-cflags 2>/dev/null || echo unknown)
out=results/bench-$(date -u +%Y%m%d-%H%M%S)-$sha.json

args=(--json "$out" --git-sha "$sha" --git-dirty "$dirty" --cflags "$cflags")
[ -n "${BENCH_QUICK:-}" ] && [ "${BENCH_QUICK}" != 0 ] && args+=(--quick)
[ -n "${BENCH_THREADS:-}" ] && args+=(-t "$BENCH_THREADS")
echo "bench: $n model(s), results to $out; the machine's load changes figures: see the load averages"
# shellcheck disable=SC2086
"$quarry" bench all "${models[@]}" "${args[@]}" ${BENCH_ARGS:-}
