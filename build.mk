# build.mk - the build rules behind the top-level Makefile (run it through
# `make`, which installs dependencies first). Sources are found by wildcard:
#   engine/*.c engine/server/*.c kernels/*.c harness/*.c -> $(BUILD)/libquarry.a
#     (engine/main.c and engine/cli_*.c are the command-line front end)
#   *_avx2.c / *_avx512.c get their own -m flags; nothing else is built with
#     -march, so the binary runs on any x86-64 and picks kernels at run time
#   tests/test_*.c       -> one cmocka suite binary each (+ tests/testutil.c)
#   tests/fuzz/fuzz_*.c  -> libFuzzer targets (make fuzz)

BUILD ?= build
CC ?= cc
SAN ?=
OPT ?= -O2
FUZZ_SECONDS ?= 60

PKGS := openblas hwloc libcjson papi libcurl libmicrohttpd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) cmocka)
# OpenBLAS is not linked: kernels/blas.c loads it with dlopen (only its
# headers are needed at build time)
PKG_LIBS := $(shell pkg-config --libs $(filter-out openblas,$(PKGS))) -ldl
CMOCKA_LIBS := $(shell pkg-config --libs cmocka)

# -ffp-contract=off: no silent FMA contraction, so scalar and SIMD kernels can
# be made to round identically (and gcc and clang agree).
CFLAGS := -std=c11 $(OPT) -g -Wall -Wextra -Werror -D_GNU_SOURCE -I. -pthread -ffp-contract=off \
          -MMD -MP $(PKG_CFLAGS) $(SAN) $(EXTRA_CFLAGS)
LDFLAGS := -pthread $(SAN)
LDLIBS := $(PKG_LIBS) -lm

AVX2_FLAGS := -mavx2 -mfma -mf16c
AVX512_FLAGS := $(AVX2_FLAGS) -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx512bf16

CLI_SRCS := engine/main.c $(wildcard engine/cli_*.c)
LOADGEN_MAIN := loadgen/main.c
LIB_SRCS := $(filter-out $(CLI_SRCS) $(LOADGEN_MAIN), $(wildcard engine/*.c engine/server/*.c kernels/*.c harness/*.c loadgen/*.c))
TEST_SRCS := $(wildcard tests/test_*.c)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)

OBJ = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
LIB := $(BUILD)/libquarry.a
# every tests/*.c that is not a suite is a helper linked into each suite
TEST_UTIL := $(call OBJ,$(filter-out $(TEST_SRCS),$(wildcard tests/*.c)))
TEST_BINS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRCS))
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))

.PHONY: all tests test fuzz
all: $(BUILD)/quarry quarry $(BUILD)/quarry-load quarry-load

# ./quarry at the top is a copy of the default build's binary.
quarry: $(BUILD)/quarry
	@if [ "$(BUILD)" = build ]; then cp $< $@; fi

$(BUILD)/quarry: $(call OBJ,$(CLI_SRCS)) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# the load generator (loadgen/main.c; the rest of loadgen/ is in the library)
quarry-load: $(BUILD)/quarry-load
	@if [ "$(BUILD)" = build ]; then cp $< $@; fi

$(BUILD)/quarry-load: $(call OBJ,$(LOADGEN_MAIN)) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# the end-to-end load test runs the quarry-load binary next to it
$(BUILD)/tests/test_loadgen_e2e: | $(BUILD)/quarry-load
$(BUILD)/tests/test_server_e2e: | $(BUILD)/quarry-load

$(LIB): $(call OBJ,$(LIB_SRCS))
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/obj/%_avx2.o: SIMD_FLAGS = $(AVX2_FLAGS)
$(BUILD)/obj/%_avx512.o: SIMD_FLAGS = $(AVX512_FLAGS)
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SIMD_FLAGS) -c -o $@ $<

tests: $(TEST_BINS) $(BUILD)/quarry

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TEST_UTIL) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(LDLIBS)

test: tests
	@tools/run-tests.sh $(BUILD)

# Fuzz targets: the library built with -fsanitize=fuzzer-no-link, linked with libFuzzer.
$(BUILD)/fuzz/%: $(BUILD)/obj/tests/fuzz/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

fuzz: $(FUZZ_BINS)
	@tools/run-fuzz.sh $(BUILD) $(FUZZ_SECONDS)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# keep intermediate objects (fuzz and test objects are otherwise deleted by make)
.SECONDARY:
