/*
 * bench_suite.h - the whole benchmark suite behind `quarry bench all` and
 * `make bench`: memory bandwidth, the kernel microbenchmarks, the attention
 * benchmark and the model benchmarks (llama-bench's pp/tg) in one run, one
 * table and one result document.
 *
 * Order and contents:
 *   membw      read bandwidth (harness/membw.h) at 1 thread and at the suite's
 *              thread count, measured first: the ceiling decode figures are
 *              divided by ("fraction_of_membw")
 *   kernels    quantize, dequantize, vec_dot and matvec at every ISA level
 *              this CPU runs (1 thread and the suite's thread count for
 *              matvec); matmul at the chosen level only, at the suite's
 *              thread count (harness/bench_kernels.h)
 *   attention  flash vs reference at depths 512, 2048, 8192, F16 cache
 *              (harness/bench_attention.h)
 *   model      for every model file: pp512 and tg128, 5 repetitions, the
 *              suite's thread count (harness/bench_model.h); each tg figure
 *              also as a fraction of the measured bandwidth (weight bytes a
 *              decoding step reads x tokens/s / best read GB/s; the weight
 *              bytes are every tensor but the token embedding, of which one
 *              row is read - all of it when the output is tied to it; the
 *              small KV cache of a tg128 run is left out) and with hardware
 *              counters per token
 *              (harness/counters.h) from a separate 1-thread decode of 32
 *              tokens - or null fields when the machine has no counters
 * quick: every part in its short form (--quick of each benchmark, pp64/tg16,
 * 2 repetitions): a smoke test of the machinery, not figures to quote.
 *
 * The document (quarry_results_new("suite")) gets: build.git_sha,
 * build.git_dirty, build.cflags (given by the caller: the Makefile knows
 * them), machine.cpu_flags, "config", "membw", "counters", "raw" (each
 * benchmark's rows in its own format) and "results": the flat figure list of
 * figures.h that compare, import and the notebooks read.
 */
#ifndef QUARRY_HARNESS_BENCH_SUITE_H
#define QUARRY_HARNESS_BENCH_SUITE_H

#include <cJSON.h>

#include "engine/error.h"
#include "harness/bench_model.h"
#include "harness/figures.h"

struct quarry_bench_suite_opts {
    const char *models[QUARRY_BENCH_MODEL_MAX_LIST];
    int n_models;
    int threads;            /* 0: one per physical core */
    int n_prompt, n_gen;    /* model tests ppN and tgN; 0: 512 and 128 (quick: 64 and 16) */
    int reps;               /* model repetitions; 0: 5 (quick: 2) */
    int quick;
    int run_kernels, run_attention, run_model;  /* which parts run */
    const char *git_sha;    /* NULL: unknown */
    int git_dirty;          /* 1, 0, or -1 unknown */
    const char *cflags;     /* NULL: unknown */
};

/* Every part on, thread count and build facts unknown, no models. */
void quarry_bench_suite_opts_default(struct quarry_bench_suite_opts *o);

struct quarry_bench_suite_callbacks {
    void (*on_figure)(const struct quarry_figure *f, void *ud); /* as each is measured */
    void (*on_note)(const char *text, void *ud);                /* one-line remarks */
    void *ud;
};

/* Runs the suite into doc (made by quarry_results_new("suite")). Figures
 * measured before an error stay in the document. Returns 0 or a QUARRY_E*
 * code. */
int quarry_bench_suite(const struct quarry_bench_suite_opts *o, cJSON *doc,
                       const struct quarry_bench_suite_callbacks *cb, quarry_error *err);

/* The CPU's feature flags from /proc/cpuinfo ("fpu vme ... avx512f ..."),
 * into buf; "" when unknown. */
void quarry_cpu_flags(char *buf, size_t size);

#endif
