#!/usr/bin/env bash
# load-matrix.sh - the standard set of load runs against an OpenAI-compatible
# server on 127.0.0.1, one JSON result per run (quarry-load --output) plus a
# summary table:
#   closed-N     closed loop at 1, 4, 16 and 64 clients
#   open-X       open loop (Poisson) at fractions of the saturation rate
#                measured by closed-64: below (0.5x, 0.8x) and above (1.2x,
#                2x) it, capped at 256 requests in flight so the overload
#                shows up as client-side queue time rather than unbounded
#                connections
#   exhaust      connection exhaustion: many more simultaneous connections
#                (EXHAUST_CONNS, default 1024) than the server will take,
#                short requests: how many are refused, time out or are served
# Every run samples the server's resident memory (--server-pid) and scrapes
# /metrics before and after.
#
# Usage:
#   tools/load-matrix.sh MODEL.gguf     start `quarry serve` (SERVER_CMD), run, stop it
#   tools/load-matrix.sh --url URL --pid PID
#                                       use a server that is already running
#   tools/load-matrix.sh --fake         a quick dry run against the test suite's fake server
# Env: BUILD (build), PORT (8080), DURATION seconds per run (30; --fake: 2),
#   PROMPT_TOKENS (128), MAX_TOKENS (64), EXHAUST_CONNS (1024), OUTDIR
#   (results/load/<UTC time>), SERVER_CMD (default
#   "$BUILD/quarry serve -m MODEL --host 127.0.0.1 --port PORT --parallel 4
#   --queue 64"), EXTRA (more quarry-load options for every run).
# After the runs, every run's result is gathered into one file,
# results/load-<date>-<sha>.json (COMBINED to choose another path).
# Exit status: 0 when every run completed (failed requests are data, not
# failures), 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
PORT=${PORT:-8080}
PROMPT_TOKENS=${PROMPT_TOKENS:-128}
MAX_TOKENS=${MAX_TOKENS:-64}
EXHAUST_CONNS=${EXHAUST_CONNS:-1024}
EXTRA=${EXTRA:-}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

mode=serve
url=
server_pid=
model=
case "${1:-}" in
--fake) mode=fake ;;
--url)
    mode=external
    url=${2:?--url needs a URL}
    [ "${3:-}" = --pid ] && server_pid=${4:?--pid needs a PID}
    ;;
"" | -h | --help)
    sed -n '2,30p' "$0"
    exit 1
    ;;
*) model=$1 ;;
esac
if [ "$mode" = fake ]; then
    DURATION=${DURATION:-2}
    MAX_TOKENS=${MAX_TOKENS_FAKE:-16}
    EXHAUST_CONNS=${EXHAUST_CONNS_FAKE:-256}
else
    DURATION=${DURATION:-30}
fi
OUTDIR=${OUTDIR:-results/load/$(date -u +%Y%m%dT%H%M%SZ)}

tools/deps.sh
targets=("$BUILD/quarry-load")
[ "$mode" = fake ] && targets+=("$BUILD/tests/test_loadgen_e2e")
[ "$mode" = serve ] && targets+=("$BUILD/quarry")
make --no-print-directory -f build.mk BUILD="$BUILD" "${targets[@]}" >/dev/null
mkdir -p "$OUTDIR"

started=
cleanup() {
    if [ -n "$started" ]; then
        kill "$started" 2>/dev/null || true
        wait "$started" 2>/dev/null || true
    fi
}
trap cleanup EXIT

wait_healthy() {
    for _ in $(seq 600); do
        if "$BUILD/quarry-load" --url "$url" --endpoint /health --requests 1 --timeout 1 \
            --metrics-path none --quiet --fail-if 'errors>0' >/dev/null 2>&1; then
            return 0
        fi
        if [ -n "$started" ] && ! kill -0 "$started" 2>/dev/null; then
            echo "load-matrix: the server exited; its log: $OUTDIR/server.log" >&2
            tail -20 "$OUTDIR/server.log" >&2
            exit 1
        fi
        sleep 0.5
    done
    echo "load-matrix: $url/health did not answer within 5 minutes" >&2
    exit 1
}

case $mode in
fake)
    # 20 ms to the first token, then one every 10 ms, max_tokens chunks
    "$BUILD/tests/test_loadgen_e2e" --serve 20 10 0 >"$OUTDIR/port" 2>"$OUTDIR/server.log" &
    started=$!
    for _ in $(seq 100); do
        [ -s "$OUTDIR/port" ] && break
        sleep 0.05
    done
    url="http://127.0.0.1:$(head -1 "$OUTDIR/port")"
    server_pid=$started
    ;;
serve)
    [ -f "$model" ] || { echo "load-matrix: no model file '$model'" >&2; exit 1; }
    cmd=${SERVER_CMD:-"$BUILD/quarry serve -m $model --host 127.0.0.1 --port $PORT --parallel 4 --queue 64 --no-log"}
    echo "load-matrix: starting: $cmd"
    # shellcheck disable=SC2086
    $cmd >"$OUTDIR/server.log" 2>&1 &
    started=$!
    server_pid=$started
    url="http://127.0.0.1:$PORT"
    ;;
external) ;;
esac
case $url in
http://127.0.0.1:* | http://localhost:*) ;;
*)
    echo "load-matrix: only 127.0.0.1 targets are allowed (got $url)" >&2
    exit 1
    ;;
esac
wait_healthy

# the served model's id and context length (/v1/models); requests name that
# model and keep prompt + output inside its context
model_id=quarry
if [ "$mode" != fake ]; then
    read -r model_id ctx < <(curl -s --max-time 5 "$url/v1/models" | $PY -c '
import json, sys
m = json.load(sys.stdin)["data"][0]
print(m["id"], m.get("context_length", 0))')
    if [ "${ctx:-0}" -gt 0 ]; then
        # a word is one to three tokens: keep the prompt words under ctx/8
        [ "$PROMPT_TOKENS" -gt $((ctx / 8)) ] && PROMPT_TOKENS=$((ctx / 8))
        [ "$MAX_TOKENS" -gt $((ctx / 4)) ] && MAX_TOKENS=$((ctx / 4))
    fi
fi
echo "load-matrix: $url, model $model_id, ${DURATION}s per run, ~$PROMPT_TOKENS prompt words," \
    "$MAX_TOKENS output tokens, results in $OUTDIR"

common=(--url "$url" --model "$model_id" --duration "$DURATION" --prompt-tokens "$PROMPT_TOKENS"
    --max-tokens "$MAX_TOKENS" --ignore-eos --quiet)
[ -n "$server_pid" ] && common+=(--server-pid "$server_pid")
# shellcheck disable=SC2206
[ -n "$EXTRA" ] && common+=($EXTRA)

summary='
import json, sys
s = json.load(open(sys.argv[1]))["results"][0]
r, l = s["requests"], s["latency_ms"]
v = lambda m, k: l[m][k] or 0.0
print("%7.0f sent %7.0f ok %6.0f err %9.2f req/s %9.1f tok/s  ttft p50 %8.1f p99 %8.1f ms  "
      "itl p50 %6.1f ms  queue p99 %8.1f ms" % (r["sent"], r["ok"], r["errors"], s["requests_per_s"],
      s["output_tokens_per_s"], v("ttft", "p50"), v("ttft", "p99"), v("itl", "p50"), v("queue", "p99")))
'
status=0
run() { # run NAME quarry-load-options...
    local name=$1
    shift
    printf 'load-matrix: %-12s ' "$name"
    if "$BUILD/quarry-load" "${common[@]}" "$@" --output "$OUTDIR/$name.json" >"$OUTDIR/$name.log" 2>&1; then
        $PY -c "$summary" "$OUTDIR/$name.json"
    else
        echo "FAILED (see $OUTDIR/$name.log)"
        status=1
    fi
}

for c in 1 4 16 64; do
    run "closed-$c" --concurrency "$c"
done

# saturation: the best request rate the closed loops reached
sat=$($PY -c '
import json, sys
best = 0.0
for c in (1, 4, 16, 64):
    try:
        best = max(best, json.load(open(f"{sys.argv[1]}/closed-{c}.json"))["results"][0]["requests_per_s"])
    except (OSError, KeyError, ValueError):
        pass
print(f"{best:.6g}")
' "$OUTDIR")
echo "load-matrix: saturation estimate $sat req/s (best closed loop)"
if $PY -c 'import sys; sys.exit(0 if float(sys.argv[1]) > 0 else 1)' "$sat"; then
    for f in 0.5 0.8 1.2 2.0; do
        rate=$($PY -c 'import sys; print(f"{float(sys.argv[1]) * float(sys.argv[2]):.6g}")' "$sat" "$f")
        run "open-${f}x" --rate "$rate" --arrival poisson --max-concurrency 256
    done
else
    echo "load-matrix: no successful closed-loop run; skipping the open-loop runs"
    status=1
fi

# connection exhaustion: far more simultaneous clients than the server serves,
# short outputs, a short timeout so refused or starved requests show as errors
run exhaust --concurrency "$EXHAUST_CONNS" --max-tokens 4 --timeout 10 --connect-timeout 5 --drain 10

# the server must have recovered: a plain request is served again
run recovered --concurrency 1 --requests 4 --duration 30

sha=$(git rev-parse --short HEAD 2>/dev/null || echo nogit)
git diff --quiet HEAD 2>/dev/null || sha="$sha-dirty"
COMBINED=${COMBINED:-results/load-$(date -u +%Y%m%d)-$sha.json}
$PY - "$OUTDIR" "$COMBINED" "$mode" "${model:-}" "$DURATION" <<'PYEOF'
import glob, json, os, sys
outdir, combined, mode, model, duration = sys.argv[1:6]
runs = {}
for path in sorted(glob.glob(os.path.join(outdir, "*.json"))):
    name = os.path.basename(path)[:-5]
    try:
        runs[name] = json.load(open(path))
    except ValueError:
        continue
json.dump({"kind": "quarry-load matrix", "mode": mode, "model": model,
           "duration_s_per_run": float(duration), "runs": runs},
          open(combined, "w"), indent=1)
print(f"load-matrix: {len(runs)} runs gathered into {combined}")
PYEOF
echo "load-matrix: done; per-run JSON and logs in $OUTDIR"
exit $status
