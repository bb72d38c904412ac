# quarry - top-level targets. Each one first runs `make deps` (installs missing
# Debian packages; a quick no-op when everything is there), then builds with
# build.mk, where the real rules live. `make help` lists the targets.

BUILD ?= build
FUZZ_SECONDS ?= 60
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
SUB := $(MAKE) --no-print-directory -f build.mk

.PHONY: all deps quarry test asan fuzz clean help check-clang demo

all: deps
	+@$(SUB) BUILD=$(BUILD) all

deps:
	@tools/deps.sh

quarry: all

test: deps
	+@$(SUB) BUILD=$(BUILD) test

# The whole test suite under AddressSanitizer + UndefinedBehaviorSanitizer.
asan: deps
	+@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  $(SUB) BUILD=build-asan SAN="$(SAN_FLAGS)" test

# libFuzzer targets (clang), each run for FUZZ_SECONDS seconds on its seed corpus.
fuzz: deps
	+@$(SUB) BUILD=build-fuzz CC=clang FUZZ_SECONDS=$(FUZZ_SECONDS) \
	  SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer" fuzz

# Builds everything with clang as well (the tree must be warning-free under both).
check-clang: deps
	+@$(SUB) BUILD=build-clang CC=clang all tests

# Builds quarry, then generates 64 tokens greedily from the tiny stories260K
# test model (one thread: for a 260K-parameter model waking a second costs
# more than it saves).
demo: all
	@$(BUILD)/quarry run -m tests/data/stories260K.gguf -p "Once upon a time" -n 64 --temp 0 -t 1

# ---- benchmarks, regression gate and report (README.md, "Benchmarks") ----
# make bench             the whole suite on synthetic TinyLlama-1.1B models (generated once
#                        into BENCH_CACHE); one table, results/bench-<date>-<sha>.json.
#                        BENCH_TYPES, BENCH_QUICK=1, BENCH_THREADS, BENCH_SHAPE: see tools/bench.sh
# make bench-compare     newest result against BASE (default: the one before it)
# make bench-gate        instruction counts (callgrind) of fixed workloads against
#                        results/gate-baseline.json; fails on a workload > 3% above it
# make bench-gate-update records a new baseline (commit it with the change that earned it)
# make bench-gate-selftest  proves the gate fails on a planted slowdown and passes without
# make report            runs notebooks/*.ipynb headless into REPORT_OUT (HTML and PNG)
#                        over RESULTS (default results/; CI uses results/samples)
BENCH_CACHE ?= .bench-cache
BASE ?=
RESULTS ?= results
REPORT_OUT ?= results/report
.PHONY: bench bench-compare bench-gate bench-gate-update bench-gate-selftest report

bench: all
	@BENCH_CACHE=$(BENCH_CACHE) tools/bench.sh $(BUILD)

bench-compare: all
	@tools/bench-compare.sh $(BUILD)/quarry "$(BASE)"

bench-gate: all
	@tools/bench-gate.sh $(BUILD)/quarry

bench-gate-update: all
	@tools/bench-gate.sh $(BUILD)/quarry --update

bench-gate-selftest: all
	@tools/bench-gate-selftest.sh $(BUILD)/quarry

report:
	@tools/deps.sh --notebooks
	@tools/report.sh "$(RESULTS)" "$(REPORT_OUT)"

# ---- load test (README.md, "Load testing") ----
# make load [MODEL=file.gguf] [DURATION=s]: starts `quarry serve` on 127.0.0.1, runs the
# scenario matrix with quarry-load (closed loop 1/4/16/64 clients, open loop below and
# above saturation, connection exhaustion, recovery), prints one table and writes
# results/load-<date>-<sha>.json; stops the server.
MODEL ?= tests/data/stories260K.gguf
.PHONY: load
load: all
	@BUILD=$(BUILD) tools/load-matrix.sh $(MODEL)

clean:
	rm -rf build build-asan build-fuzz build-clang quarry quarry-load

help:
	@echo "quarry make targets:"
	@echo "  make              build ./quarry and build/libquarry.a (installs missing packages first)"
	@echo "  make deps         install missing Debian packages (no-op when all are present)"
	@echo "  make test         build and run every test suite; ends with 'N passed, N failed'"
	@echo "  make asan         the test suites under AddressSanitizer + UBSan (build-asan/)"
	@echo "  make fuzz         build libFuzzer targets with clang, run each FUZZ_SECONDS (default 60)"
	@echo "  make check-clang  build everything with clang -Werror (build-clang/)"
	@echo "  make demo         build, then generate 64 tokens from tests/data/stories260K.gguf"
	@echo "  make bench        whole benchmark suite -> results/bench-<date>-<sha>.json (long)"
	@echo "  make bench-compare  newest bench result vs BASE=results/X.json (default: previous)"
	@echo "  make bench-gate   callgrind instruction counts vs results/gate-baseline.json (CI gate)"
	@echo "  make bench-gate-update   re-record the gate baseline"
	@echo "  make bench-gate-selftest prove the gate catches a planted slowdown"
	@echo "  make report       execute notebooks/ over RESULTS into REPORT_OUT (HTML, PNG)"
	@echo "  make load         serve MODEL (default stories260K) and run the load matrix -> results/load-*.json"
	@echo "  make clean        remove build outputs"
	@echo "Variables: BUILD=dir (default build), CC=gcc|clang, FUZZ_SECONDS=n"
