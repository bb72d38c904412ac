#!/usr/bin/env bash
# loadgen-vs-wrk.sh - checks quarry-load's measurements against wrk's: both
# drive the same plain endpoint (GET /health of the fake OpenAI server from
# tests/, on an ephemeral 127.0.0.1 port) with the same number of keep-alive
# connections from one thread for the same time, alternating for ROUNDS
# rounds in one run, and the medians over the rounds of requests/s and of
# the median latency must agree within TOL (default 10%).
#
# Two scenarios, each with its own verdict:
#   plain - /health answered at once: the server is driven as hard as the
#           client can. Requests/s then also measures how much CPU each
#           client spends per request (libcurl spends more than wrk), which
#           shows on a machine with few, busy cores.
#   paced - /health answered after PACED_US microseconds (default 2000): the
#           server's delay, not the client's CPU, sets the rate, so this
#           compares only what the two tools measure.
#
# Usage: tools/loadgen-vs-wrk.sh   (env: BUILD=build CONNS=16 SECS=5 ROUNDS=3
#        TOL=0.10 PACED_US=2000 SCENARIOS="plain paced" OUT=prefix to keep
#        the figures in prefix-<scenario>.json)
# Installs wrk (Debian package) when missing. Exit status 0 when every
# scenario agrees, 1 when one does not (or something failed). Only ever
# talks to 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
CONNS=${CONNS:-16}
SECS=${SECS:-5}
ROUNDS=${ROUNDS:-3}
TOL=${TOL:-0.10}
PACED_US=${PACED_US:-2000}
SCENARIOS=${SCENARIOS:-plain paced}
OUT=${OUT:-}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

if ! command -v wrk >/dev/null 2>&1; then
    echo "loadgen-vs-wrk: installing wrk" >&2
    SUDO=
    [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi

tools/deps.sh
make --no-print-directory -f build.mk BUILD="$BUILD" "$BUILD/quarry-load" "$BUILD/tests/test_loadgen_e2e" >/dev/null

work=$(mktemp -d /tmp/loadgen-vs-wrk.XXXXXX)
server_pid=
stop_server() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=
    fi
}
cleanup() {
    stop_server
    rm -rf "$work"
}
trap cleanup EXIT

# the fake server (the e2e suite's --serve mode): prints its port, serves until SIGTERM
start_server() { # start_server HEALTH_DELAY_US
    : >"$work/port"
    "$BUILD/tests/test_loadgen_e2e" --serve 0 0 0 "$1" >"$work/port" 2>"$work/server.log" &
    server_pid=$!
    for _ in $(seq 100); do
        [ -s "$work/port" ] && break
        sleep 0.05
    done
    port=$(head -1 "$work/port")
    [ -n "$port" ] || { echo "loadgen-vs-wrk: the fake server did not start" >&2; exit 1; }
    url="http://127.0.0.1:$port/health"
}

# wrk prints "Requests/sec: N" and, with --latency, "50%  1.23ms"
parse_wrk='
import re, sys
text = open(sys.argv[1]).read()
rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", text).group(1))
m = re.search(r"^\s*50%\s+([0-9.]+)(us|ms|s)\s*$", text, re.M)
p50_ms = float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
if errors:
    sys.exit("wrk saw %s error responses" % errors.group(1))
print(rps, p50_ms)
'
parse_qload='
import json, sys
s = json.load(open(sys.argv[1]))["results"][0]
if s["requests"]["errors"]:
    sys.exit("quarry-load saw %d errors" % s["requests"]["errors"])
print(s["requests_per_s"], s["latency_ms"]["e2e"]["p50"])
'
verdict='
import json, statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
tol, conns, secs, name, delay, out = (float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]),
                                     sys.argv[5], int(sys.argv[6]), sys.argv[7])
med = lambda i: statistics.median(r[i] for r in rows)
wrk_rps, wrk_p50, q_rps, q_p50 = med(1), med(2), med(3), med(4)
rps_diff = q_rps / wrk_rps - 1
p50_diff = q_p50 / wrk_p50 - 1
ok = abs(rps_diff) <= tol and abs(p50_diff) <= tol
print(f"  {name}: median of {len(rows)} rounds: requests/s wrk {wrk_rps:.0f}, quarry-load {q_rps:.0f} "
      f"({rps_diff:+.1%}); p50 latency wrk {wrk_p50:.3f} ms, quarry-load {q_p50:.3f} ms ({p50_diff:+.1%})")
print("  {}: agreement within {:.0%}: {}".format(name, tol, "yes" if ok else "NO"))
if out:
    json.dump({"scenario": name, "health_delay_us": delay, "connections": conns, "seconds": secs,
               "tolerance": tol,
               "rounds": [{"wrk_rps": r[1], "wrk_p50_ms": r[2], "qload_rps": r[3], "qload_p50_ms": r[4]}
                          for r in rows],
               "median": {"wrk_rps": wrk_rps, "wrk_p50_ms": wrk_p50, "qload_rps": q_rps, "qload_p50_ms": q_p50},
               "rps_diff": rps_diff, "p50_diff": p50_diff, "agree": ok}, open(out, "w"), indent=2)
sys.exit(0 if ok else 1)
'

run_wrk() {
    wrk -t1 -c"$CONNS" -d"${SECS}s" --latency "$url" >"$work/wrk.txt"
    $PY -c "$parse_wrk" "$work/wrk.txt"
}

run_qload() {
    "$BUILD/quarry-load" --url "http://127.0.0.1:$port" --endpoint /health --concurrency "$CONNS" \
        --duration "$SECS" --metrics-path none --quiet --output "$work/qload.json"
    $PY -c "$parse_qload" "$work/qload.json"
}

scenario() { # scenario NAME HEALTH_DELAY_US
    local name=$1 delay=$2 w q r out=
    start_server "$delay"
    echo "loadgen-vs-wrk: $name: GET $url (answered after $delay us), $CONNS connections," \
        "1 thread, ${SECS}s x $ROUNDS rounds each"
    wrk -t1 -c"$CONNS" -d1s "$url" >/dev/null # warm-up
    : >"$work/rounds"
    for r in $(seq "$ROUNDS"); do
        # alternate the order so a drift in machine load hits both alike
        if [ $((r % 2)) -eq 1 ]; then
            w=$(run_wrk)
            q=$(run_qload)
        else
            q=$(run_qload)
            w=$(run_wrk)
        fi
        echo "$r $w $q" >>"$work/rounds"
        # shellcheck disable=SC2086
        printf '  round %d: wrk %9.0f req/s p50 %.3f ms | quarry-load %9.0f req/s p50 %.3f ms\n' "$r" $w $q
    done
    stop_server
    [ -n "$OUT" ] && out="$OUT-$name.json"
    $PY -c "$verdict" "$work/rounds" "$TOL" "$CONNS" "$SECS" "$name" "$delay" "$out"
}

echo "loadgen-vs-wrk: load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
status=0
for sc in $SCENARIOS; do
    case $sc in
    plain) scenario plain 0 || status=1 ;;
    paced) scenario paced "$PACED_US" || status=1 ;;
    *)
        echo "loadgen-vs-wrk: unknown scenario $sc" >&2
        exit 1
        ;;
    esac
done
exit $status
