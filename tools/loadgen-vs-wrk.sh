#!/usr/bin/env bash
# loadgen-vs-wrk.sh - checks quarry-load's measurements against wrk's: both
# drive the same plain endpoint (GET /health of the fake OpenAI server from
# tests/, on an ephemeral 127.0.0.1 port) with the same number of keep-alive
# connections from the same number of threads (wrk -t N, quarry-load
# --threads N) for the same time, alternating which goes first for ROUNDS
# rounds in one run, and the medians over the rounds of requests/s and of
# the median latency must agree within TOL (default 10%).
#
# Two scenarios, each with its own verdict:
#   plain - /health answered at once: the server is driven as hard as the
#           client can, so on a machine with few, busy cores requests/s also
#           measures how much CPU each client spends per request. Each
#           round also prints both clients' CPU time per request (user +
#           system, from getrusage) and the server's, to show which side
#           bounds the rate.
#   paced - /health answered after PACED_US microseconds (default 2000): the
#           server's delay, not the clients' CPU, sets the rate, so this
#           compares only what the two tools measure.
#
# What is compared: wrk's "Requests/sec" (completed requests / run time)
# with quarry-load's requests_per_s (ok requests / time to the last one),
# and wrk's printed median latency with quarry-load's e2e p50. Both time a
# request from writing it to reading the last byte of its response. wrk 4.1
# then "corrects" its histogram for coordinated omission (for every latency
# of at least twice the mean per-connection cycle it adds synthetic samples
# at that latency minus multiples of the cycle); those samples all lie above
# the cycle time, so they can only raise wrk's median, never lower it.
# quarry-load reports what it measured.
#
# Usage: tools/loadgen-vs-wrk.sh   (env: BUILD=build CONNS=16 THREADS=1
#        SECS=2 ROUNDS=9 TOL=0.10 PACED_US=2000 SCENARIOS="plain paced"
#        OUT=prefix to keep the figures in prefix-<scenario>.json)
# Installs wrk (Debian package) when missing. Exit status 0 when every
# scenario agrees, 1 when one does not (or something failed). Only ever
# talks to 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
CONNS=${CONNS:-16}
THREADS=${THREADS:-1}
SECS=${SECS:-2}
ROUNDS=${ROUNDS:-9}
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

# runs a command with stdout to a file; prints the CPU seconds (user +
# system) it used, from getrusage
timed='
import resource, subprocess, sys
with open(sys.argv[1], "w") as out:
    rc = subprocess.run(sys.argv[2:], stdout=out).returncode
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print("%.4f" % (u.ru_utime + u.ru_stime))
sys.exit(rc)
'
# wrk prints "Requests/sec: N", "N requests in" and, with --latency, "50%  1.23ms"
parse_wrk='
import re, sys
text = open(sys.argv[1]).read()
rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", text).group(1))
n = int(re.search(r"^\s*(\d+) requests in", text, re.M).group(1))
m = re.search(r"^\s*50%\s+([0-9.]+)(us|ms|s)\s*$", text, re.M)
p50_ms = float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
if errors:
    sys.exit("wrk saw %s error responses" % errors.group(1))
print(rps, p50_ms, n)
'
parse_qload='
import json, sys
s = json.load(open(sys.argv[1]))["results"][0]
if s["requests"]["errors"]:
    sys.exit("quarry-load saw %d errors" % s["requests"]["errors"])
print(s["requests_per_s"], s["latency_ms"]["e2e"]["p50"], s["requests"]["sent"])
'
verdict='
import json, statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
tol, conns, threads, secs, name, delay, out = (float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]),
                                              float(sys.argv[5]), sys.argv[6], int(sys.argv[7]), sys.argv[8])
med = lambda i: statistics.median(r[i] for r in rows)
wrk_rps, wrk_p50, q_rps, q_p50 = med(1), med(2), med(3), med(4)
cpu = [med(i) for i in range(5, 9)]
rps_diff = q_rps / wrk_rps - 1
p50_diff = q_p50 / wrk_p50 - 1
ok = abs(rps_diff) <= tol and abs(p50_diff) <= tol
print(f"  {name}: median of {len(rows)} rounds: requests/s wrk {wrk_rps:.0f}, quarry-load {q_rps:.0f} "
      f"({rps_diff:+.1%}); p50 latency wrk {wrk_p50:.3f} ms, quarry-load {q_p50:.3f} ms ({p50_diff:+.1%})")
print(f"  {name}: CPU per request: wrk {cpu[0]:.1f} us (server {cpu[2]:.1f} us), "
      f"quarry-load {cpu[1]:.1f} us (server {cpu[3]:.1f} us)")
print("  {}: agreement within {:.0%}: {}".format(name, tol, "yes" if ok else "NO"))
if out:
    keys = ["wrk_rps", "wrk_p50_ms", "qload_rps", "qload_p50_ms", "wrk_cpu_us_per_req",
            "qload_cpu_us_per_req", "server_cpu_us_per_req_wrk", "server_cpu_us_per_req_qload"]
    json.dump({"scenario": name, "health_delay_us": delay, "connections": conns, "threads": threads,
               "seconds": secs, "tolerance": tol,
               "load_average": open("/proc/loadavg").read().split()[:3],
               "rounds": [dict(zip(keys, r[1:])) for r in rows],
               "median": dict(zip(keys, [wrk_rps, wrk_p50, q_rps, q_p50] + cpu)),
               "rps_diff": rps_diff, "p50_diff": p50_diff, "agree": ok}, open(out, "w"), indent=2)
sys.exit(0 if ok else 1)
'

server_cpu_s() { # CPU seconds the fake server has used so far
    awk '{ printf "%.2f\n", ($14 + $15) / 100 }' "/proc/$server_pid/stat"
}

# run_wrk / run_qload print: req/s, p50 ms, client CPU us/request, server CPU us/request
run_wrk() {
    local cpu s0 s1 rps p50 n
    s0=$(server_cpu_s)
    cpu=$($PY -c "$timed" "$work/wrk.txt" wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency "$url")
    s1=$(server_cpu_s)
    read -r rps p50 n < <($PY -c "$parse_wrk" "$work/wrk.txt")
    $PY -c "import sys; a = sys.argv; n = int(a[3]); print(a[1], a[2], float(a[4]) / n * 1e6, (float(a[6]) - float(a[5])) / n * 1e6)" \
        "$rps" "$p50" "$n" "$cpu" "$s0" "$s1"
}

run_qload() {
    local cpu s0 s1 rps p50 n
    s0=$(server_cpu_s)
    cpu=$($PY -c "$timed" /dev/null "$BUILD/quarry-load" --url "http://127.0.0.1:$port" --endpoint /health \
        --concurrency "$CONNS" --threads "$THREADS" --duration "$SECS" --metrics-path none --quiet \
        --output "$work/qload.json")
    s1=$(server_cpu_s)
    read -r rps p50 n < <($PY -c "$parse_qload" "$work/qload.json")
    $PY -c "import sys; a = sys.argv; n = int(a[3]); print(a[1], a[2], float(a[4]) / n * 1e6, (float(a[6]) - float(a[5])) / n * 1e6)" \
        "$rps" "$p50" "$n" "$cpu" "$s0" "$s1"
}

scenario() { # scenario NAME HEALTH_DELAY_US
    local name=$1 delay=$2 w q r out= w_rps w_p50 w_cpu w_srv q_rps q_p50 q_cpu q_srv
    start_server "$delay"
    echo "loadgen-vs-wrk: $name: GET $url (answered after $delay us), $CONNS connections," \
        "$THREADS thread(s), ${SECS}s x $ROUNDS rounds each"
    wrk -t"$THREADS" -c"$CONNS" -d1s "$url" >/dev/null # warm-up
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
        read -r w_rps w_p50 w_cpu w_srv <<<"$w"
        read -r q_rps q_p50 q_cpu q_srv <<<"$q"
        echo "$r $w_rps $w_p50 $q_rps $q_p50 $w_cpu $q_cpu $w_srv $q_srv" >>"$work/rounds"
        printf '  round %d: wrk %7.0f req/s p50 %.3f ms cpu %4.1f us/req | quarry-load %7.0f req/s p50 %.3f ms cpu %4.1f us/req | load %s\n' \
            "$r" "$w_rps" "$w_p50" "$w_cpu" "$q_rps" "$q_p50" "$q_cpu" "$(cut -d' ' -f1 /proc/loadavg)"
    done
    stop_server
    [ -n "$OUT" ] && out="$OUT-$name.json"
    $PY -c "$verdict" "$work/rounds" "$TOL" "$CONNS" "$THREADS" "$SECS" "$name" "$delay" "$out"
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
