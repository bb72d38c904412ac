/*
 * bench_attention.h - the attention benchmark behind `quarry bench attention`:
 * CPU flash attention (kernels/flash_attn.h, each ISA level) against the plain
 * reference (kernels/attn_ref.h) at several context depths.
 *
 * One call = the attention of n_q query tokens (1: a decode step; more: a
 * prompt chunk ending at the given depth, causal) against `depth` cached keys
 * and values of a KV cache type, on one thread. Units:
 *   GFLOP/s   4 * n_head * head_dim * (keys each query sees), summed: the
 *             multiply-adds of q.k and of p.v
 *   GB/s      K and V bytes of the cache read per call (depth rows of both)
 * plus the flash result's NMSE against the reference at the same depth
 * (test-backend-ops' bound for flash attention is 5e-4).
 *
 * Rows go to a JSON array and to a callback as they are measured; this file
 * never prints.
 */
#ifndef QUARRY_HARNESS_BENCH_ATTENTION_H
#define QUARRY_HARNESS_BENCH_ATTENTION_H

#include <cJSON.h>

#include "engine/error.h"
#include "harness/timing.h"
#include "kernels/types.h"

#define QUARRY_BENCH_ATTN_MAX_DEPTHS 8

struct quarry_bench_attention_opts {
    int depths[QUARRY_BENCH_ATTN_MAX_DEPTHS]; /* KV lengths; n_depths 0: 512, 2048, 8192 */
    int n_depths;
    int n_q;                 /* query tokens per call; 0: 1 (decode) */
    int n_head, n_head_kv, head_dim; /* 0: 32, 4, 64 (TinyLlama-1.1B) */
    enum quarry_type kv_type;        /* F16, Q8_0 or F32 (0 is F32; the CLI defaults to F16) */
    unsigned isa_mask;       /* bit per enum quarry_isa; 0: every level this CPU runs */
    int skip_reference;      /* non-zero: flash only (no timing, no NMSE of the reference) */
    int quick;               /* short runs */
};

/* Fills in the defaults of unset fields. */
void quarry_bench_attention_defaults(struct quarry_bench_attention_opts *opts);

struct quarry_bench_attention_row {
    const char *impl;        /* "flash" or "reference" */
    const char *isa;         /* flash: "scalar"/"avx2"/"avx512"; reference: "-" */
    const char *kv_type;
    int depth, n_q, n_head, n_head_kv, head_dim;
    struct quarry_stats gflops;  /* per run */
    double seconds_per_call;     /* mean */
    double kv_gbytes_per_s;      /* K+V bytes per call / mean seconds */
    double nmse;                 /* flash vs reference; < 0 when not computed */
};

typedef void (*quarry_bench_attention_row_fn)(const struct quarry_bench_attention_row *row,
                                              void *ud);

/* Runs the benchmark. rows (a cJSON array) and on_row may be NULL. Returns 0
 * or a QUARRY_E* code (rows measured so far stay in the array). */
int quarry_bench_attention(const struct quarry_bench_attention_opts *opts, cJSON *rows,
                           quarry_bench_attention_row_fn on_row, void *ud, quarry_error *err);

/* opts (defaults resolved) as a JSON object for the results' "config". */
cJSON *quarry_bench_attention_config_json(const struct quarry_bench_attention_opts *opts);

#endif
