/*
 * gate.h - the benchmark regression gate: a fixed set of small, deterministic
 * workloads whose instruction counts (valgrind --tool=callgrind) are compared
 * with a committed baseline (results/gate-baseline.json) by `make bench-gate`.
 *
 * Why instruction counts: on a shared 2-core VM wall-clock figures swing by
 * tens of percent from one minute to the next, while callgrind counts the
 * same instructions on every run of the same binary on the same input. A
 * count is not a time (a cache miss costs nothing in it), but an extra pass
 * over the data, a lost vectorisation or a worse loop shows up in it at once.
 *
 * Workloads (one per process, so adding one never shifts another's count):
 *   matvec_T       Y = X . W^T through quarry_matmul with one activation row
 *                  (a decoding step), W = GATE_MATVEC_N x GATE_MATVEC_K of
 *                  type T, single thread; T = every type with a vec_dot
 *   dequantize_T   to_float over GATE_DEQUANT_ELEMS values of type T
 *   flash_attn     one decode query against GATE_ATTN_DEPTH cached keys, F16
 *                  cache, TinyLlama's heads (32 query, 4 KV, 64 wide)
 *   model_stories260K  tests/data/stories260K.gguf: the prompt "Once upon a
 *                  time" (BOS added) in one forward pass, then 16 greedy
 *                  decode steps, single thread
 * Inputs come from fixed seeds; kernels are the process table's, so the ISA
 * level is whatever QUARRY_ISA chose (the gate runs with QUARRY_ISA=avx2:
 * valgrind 3.19 does not run AVX-512).
 *
 * Only the call of quarry_gate_measured() is counted (callgrind
 * --toggle-collect=quarry_gate_measured --collect-atstart=no): set-up (random
 * inputs, quantization, model loading) and tear-down are not.
 *
 * The planted slowdown: with QUARRY_GATE_PLANT_SLOWDOWN=1 in the environment
 * (read once, when the workload is made), matvec_q4_K makes an extra pass
 * over the first eighth of its weight rows after the product - about 12%
 * more work in the measured path. It exists to prove that the gate catches a
 * regression (tools/bench-gate-selftest.sh); unset, it costs one branch on a
 * flag outside any loop.
 *
 * Comparison: quarry_gate_compare() classifies each workload against the
 * baseline: "regressed" when the count grew by more than the threshold (3%),
 * "improved" when it shrank by more, "same" otherwise, "new" / "missing"
 * when only one side has it.
 */
#ifndef QUARRY_HARNESS_GATE_H
#define QUARRY_HARNESS_GATE_H

#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "engine/error.h"

#define QUARRY_GATE_MEASURED_SYMBOL "quarry_gate_measured"
#define QUARRY_GATE_PLANT_ENV "QUARRY_GATE_PLANT_SLOWDOWN"
#define QUARRY_GATE_PLANTED_WORKLOAD "matvec_q4_K"
#define QUARRY_GATE_THRESHOLD 0.03

/* ---- workloads ------------------------------------------------------------ */

/* Number of workloads and the name of the i-th (stable order). */
size_t quarry_gate_workload_count(void);
const char *quarry_gate_workload_name(size_t i);

typedef struct quarry_gate_workload quarry_gate_workload;

/* Prepares a workload (inputs, model, scratch); reads QUARRY_GATE_PLANT_ENV.
 * Returns 0, QUARRY_ENOTFOUND (unknown name), QUARRY_EUNSUPPORTED (the
 * process table lacks the kernel), QUARRY_ENOMEM or the model loader's code. */
int quarry_gate_workload_new(const char *name, quarry_gate_workload **out, quarry_error *err);
void quarry_gate_workload_free(quarry_gate_workload *w);

/* Runs the workload once, uncounted, so that scratch buffers reach their
 * size before the counted call (a first-time allocation's instruction count
 * depends on the heap's history). Same as quarry_gate_measured otherwise. */
int quarry_gate_warmup(quarry_gate_workload *w, quarry_error *err);

/* Runs the workload once: the only part the gate counts. Not inlined, so
 * callgrind can toggle collection on it by name. Returns 0 or an error code. */
int quarry_gate_measured(quarry_gate_workload *w, quarry_error *err);

/* A number summarising the workload's output (sum of the results, or of the
 * generated token ids), to show it did the same work each time. */
double quarry_gate_checksum(const quarry_gate_workload *w);

/* Whether the planted slowdown is active in this workload. */
int quarry_gate_planted(const quarry_gate_workload *w);

/* ---- counts and baselines ---------------------------------------------------- */

struct quarry_gate_count {
    char name[64];
    uint64_t instructions;
};

enum quarry_gate_verdict {
    QUARRY_GATE_SAME,
    QUARRY_GATE_REGRESSED,
    QUARRY_GATE_IMPROVED,
    QUARRY_GATE_NEW,      /* measured now, not in the baseline */
    QUARRY_GATE_MISSING,  /* in the baseline, not measured now */
};

const char *quarry_gate_verdict_name(enum quarry_gate_verdict v);

struct quarry_gate_row {
    char name[64];
    uint64_t base, now;   /* 0 when that side lacks the workload */
    double change;        /* now / base - 1 (0 when either side is missing) */
    enum quarry_gate_verdict verdict;
};

/* Compares measured counts with a baseline document's "workloads" object
 * ({"name": {"instructions": N}, ...}). rows gets one entry per workload of
 * either side (baseline order, then new ones), at most max_rows; *n_rows is
 * set. Returns 0, QUARRY_EFORMAT (baseline malformed) or QUARRY_ERANGE (too
 * many rows). */
int quarry_gate_compare(const cJSON *baseline, const struct quarry_gate_count *now, size_t n_now,
                        double threshold, struct quarry_gate_row *rows, size_t max_rows,
                        size_t *n_rows, quarry_error *err);

/* Reads the counts file the gate script writes: one line per workload,
 * "NAME<TAB>ISA<TAB>INSTRUCTIONS". Fills counts (at most max), *n and the
 * ISA the workloads reported (isa must hold 16 bytes; all lines must agree).
 * Returns 0, QUARRY_EIO, QUARRY_EFORMAT or QUARRY_ERANGE. */
int quarry_gate_read_counts(const char *path, struct quarry_gate_count *counts, size_t max,
                            size_t *n, char *isa, quarry_error *err);

/* A baseline document: schema "quarry-gate/1", the ISA level, compiler,
 * tool, threshold, creation time, git_sha (may be NULL) and the counts.
 * NULL when out of memory. */
cJSON *quarry_gate_baseline_new(const struct quarry_gate_count *counts, size_t n,
                                const char *isa, const char *tool, const char *git_sha);

#endif
