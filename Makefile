# quarry - top-level targets. Each one first runs `make deps` (installs missing
# Debian packages; a quick no-op when everything is there), then builds with
# build.mk, where the real rules live. `make help` lists the targets.

BUILD ?= build
FUZZ_SECONDS ?= 60
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
SUB := $(MAKE) --no-print-directory -f build.mk

.PHONY: all deps quarry test asan fuzz clean help check-clang demo

all: deps
	@$(SUB) BUILD=$(BUILD) all

deps:
	@tools/deps.sh

quarry: all

test: deps
	@$(SUB) BUILD=$(BUILD) test

# The whole test suite under AddressSanitizer + UndefinedBehaviorSanitizer.
asan: deps
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  $(SUB) BUILD=build-asan SAN="$(SAN_FLAGS)" test

# libFuzzer targets (clang), each run for FUZZ_SECONDS seconds on its seed corpus.
fuzz: deps
	@$(SUB) BUILD=build-fuzz CC=clang FUZZ_SECONDS=$(FUZZ_SECONDS) \
	  SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer" fuzz

# Builds everything with clang as well (the tree must be warning-free under both).
check-clang: deps
	@$(SUB) BUILD=build-clang CC=clang all tests

clean:
	rm -rf build build-asan build-fuzz build-clang quarry

help:
	@echo "quarry make targets:"
	@echo "  make              build ./quarry and build/libquarry.a (installs missing packages first)"
	@echo "  make deps         install missing Debian packages (no-op when all are present)"
	@echo "  make test         build and run every test suite; ends with 'N passed, N failed'"
	@echo "  make asan         the test suites under AddressSanitizer + UBSan (build-asan/)"
	@echo "  make fuzz         build libFuzzer targets with clang, run each FUZZ_SECONDS (default 60)"
	@echo "  make check-clang  build everything with clang -Werror (build-clang/)"
	@echo "  make clean        remove build outputs"
	@echo "Variables: BUILD=dir (default build), CC=gcc|clang, FUZZ_SECONDS=n"
