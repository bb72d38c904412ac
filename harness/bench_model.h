/*
 * bench_model.h - whole-model speed, measured the way llama.cpp's llama-bench
 * measures it, behind `quarry bench model`.
 *
 * Two kinds of test, run separately, for every model, thread count and size
 * asked for:
 *   ppN  prompt processing: N tokens through the model in forward passes of
 *        n_batch tokens (one pass for N <= n_batch), logits of the last only;
 *   tgN  text generation: N forward passes of one token each.
 * Token ids are not text: the first is BOS when the model adds one, the rest
 * drawn at random from the vocabulary (a fixed seed), so neither the tokenizer
 * nor the sampler is measured, exactly as llama-bench does. Each test: one
 * warm-up run (the whole prompt for pp, one token for tg), then reps measured
 * runs, each starting from an empty KV cache; a sample is the run's wall time,
 * its speed n_tokens / time. Reported: mean and sample standard deviation of
 * the speeds (avg_ts, stddev_ts) and of the times (avg_ns, stddev_ns), with
 * every sample - the fields of llama-bench's JSON output - plus the 1-minute
 * load average before and after the test (on a shared machine, figures mean
 * little without it) and, for orientation, pp's GFLOP/s (2 x matrix weights x
 * tokens) and tg's effective weight bandwidth (model bytes x tokens/s).
 *
 * Rows are appended to a JSON array and handed to a callback as each test
 * finishes (the CLI prints a markdown table like llama-bench's); this file
 * never prints.
 */
#ifndef QUARRY_HARNESS_BENCH_MODEL_H
#define QUARRY_HARNESS_BENCH_MODEL_H

#include <stdint.h>

#include <cJSON.h>

#include "engine/error.h"
#include "harness/timing.h"
#include "kernels/types.h"

#define QUARRY_BENCH_MODEL_MAX_LIST 16   /* entries per list option */
#define QUARRY_BENCH_MODEL_MAX_REPS 100

struct quarry_bench_model_opts {
    const char *models[QUARRY_BENCH_MODEL_MAX_LIST];
    int n_models;
    int32_t n_prompt[QUARRY_BENCH_MODEL_MAX_LIST];  /* pp sizes; 0 entries are skipped */
    int n_n_prompt;
    int32_t n_gen[QUARRY_BENCH_MODEL_MAX_LIST];     /* tg sizes; 0 entries are skipped */
    int n_n_gen;
    int threads[QUARRY_BENCH_MODEL_MAX_LIST];
    int n_threads;
    int reps;                /* measured runs per test (1..QUARRY_BENCH_MODEL_MAX_REPS) */
    int32_t n_batch;         /* prompt tokens per forward pass (>= 1) */
    enum quarry_type kv_type;/* F16, Q8_0 or F32 */
    uint64_t seed;           /* for the random token ids */
};

/* llama-bench's defaults: -p 512, -n 128, -r 5, threads = physical cores,
 * F16 KV cache; n_batch 512 = llama-bench's n_ubatch, the number of tokens
 * its forward pass computes at once (its n_batch of 2048 is only how many
 * tokens one llama_decode call is given). No model. */
void quarry_bench_model_opts_default(struct quarry_bench_model_opts *o);

/* One finished test. Strings and arrays live until the callback returns. */
struct quarry_bench_model_row {
    const char *model_filename;
    const char *model_type;      /* "llama 1B Q4_K - Medium" (llama.cpp's description) */
    uint64_t model_size;         /* bytes of all tensors */
    uint64_t n_params;           /* elements of all tensors */
    int n_threads;
    int32_t n_prompt, n_gen, n_batch;
    const char *type_kv;         /* "f16" */
    const char *test;            /* "pp512", "tg128" */
    const double *samples_ns;    /* [n_samples] */
    const double *samples_ts;    /* [n_samples] tokens per second */
    int n_samples;
    struct quarry_stats ns, ts;  /* over the samples */
    double load_before, load_after; /* 1-minute load average (< 0: unknown) */
    double gflops;               /* pp: 2 x matrix weights x tokens / time, else 0 */
    double weight_gbps;          /* tg: model_size x tokens/s / 1e9, else 0 */
    const char *test_time;       /* UTC, ISO 8601 */
};

typedef void (*quarry_bench_model_row_fn)(const struct quarry_bench_model_row *row, void *ud);

/* Runs every test. rows (may be NULL) receives a JSON object per test;
 * on_row (may be NULL) is called after each. Stops at the first error (a model
 * that does not load, out of memory, ...). */
int quarry_bench_model(const struct quarry_bench_model_opts *o, cJSON *rows,
                       quarry_bench_model_row_fn on_row, void *ud, quarry_error *err);

/* The run's settings as a JSON object (for the results document's "config"). */
cJSON *quarry_bench_model_config_json(const struct quarry_bench_model_opts *o);

/* llama.cpp's name for a GGUF general.file_type ("Q4_K - Medium"), or NULL. */
const char *quarry_bench_ftype_desc(uint32_t ftype);

#endif
