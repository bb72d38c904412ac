/*
 * bench_kernels.h - the kernel microbenchmark behind `quarry bench kernels`.
 *
 * For every selected weight type and ISA level (tables from
 * quarry_traits_build, so all levels run in one process), it measures:
 *   quantize    from_float over 64Ki floats in L2          MB/s of float input
 *   dequantize  to_float over the same                     GB/s of float output
 *   vec_dot     one thread, weight rows hot in L2          GB/s of weight bytes
 *   matvec      quarry_matmul with m = 1 at the shapes of a 1.1B llama
 *               (n x k = 2048x2048, 2048x5632, 5632x2048, 32000x2048),
 *               cold weights (rotating copies over >= 256 MiB)
 *                                                          GB/s of weight bytes,
 *               and as a fraction of the read bandwidth measured at the start
 *               of the run (best over runs with the same or fewer threads;
 *               membw is measured again at the end to show drift: on a
 *               shared machine a fraction above 1 means the machine got
 *               quieter, not that the kernel beat memory)
 *   matmul      quarry_matmul with m = 512 activation rows GFLOP/s (2 m n k)
 * plus membw_read (harness/membw.h) for each thread count. matvec and matmul
 * run at every selected thread count; the others on one thread. A level that
 * adds no kernel for a type (nor for its activation type) is skipped: its
 * figures would repeat the level below.
 *
 * Rows are appended to a JSON array and handed to a callback as they are
 * measured (the CLI prints them); this file never prints.
 */
#ifndef QUARRY_HARNESS_BENCH_KERNELS_H
#define QUARRY_HARNESS_BENCH_KERNELS_H

#include <cJSON.h>

#include "engine/error.h"
#include "harness/timing.h"
#include "kernels/types.h"

enum quarry_bench_op {
    QUARRY_BENCH_MEMBW = 1 << 0,
    QUARRY_BENCH_QUANTIZE = 1 << 1,
    QUARRY_BENCH_DEQUANTIZE = 1 << 2,
    QUARRY_BENCH_VEC_DOT = 1 << 3,
    QUARRY_BENCH_MATVEC = 1 << 4,
    QUARRY_BENCH_MATMUL = 1 << 5,
    QUARRY_BENCH_ALL_OPS = (1 << 6) - 1,
};

/* Name of one op bit ("matvec"), or NULL. Parses with quarry_bench_op_from_name. */
const char *quarry_bench_op_name(enum quarry_bench_op op);
int quarry_bench_op_from_name(const char *name);   /* -1 when unknown */

#define QUARRY_BENCH_MAX_THREAD_COUNTS 8

struct quarry_bench_kernels_opts {
    unsigned char types[QUARRY_TYPE_COUNT]; /* non-zero: measure this type; all zero: every type */
    unsigned isa_mask;     /* bit per enum quarry_isa; 0: every level this CPU runs */
    unsigned ops;          /* enum quarry_bench_op bits; 0: all */
    int threads[QUARRY_BENCH_MAX_THREAD_COUNTS]; /* thread counts for membw/matvec/matmul */
    int n_threads;         /* 0: {1, physical cores} */
    int quick;             /* short runs, smaller matmul, smaller membw buffer */
};

/* One measurement, as handed to the callback (strings live until it returns). */
struct quarry_bench_row {
    const char *op;        /* "matvec", ... */
    const char *type;      /* "q4_K", "-" for membw */
    const char *isa;       /* "avx2", "-" for membw */
    const char *path;      /* matmul/matvec: "vec_dot" or "blas"; membw: "start"/"end"; else NULL */
    int64_t n, k, m;       /* shape: n x k weights, m activation rows (0 when n/a) */
    int64_t elements;      /* quantize/dequantize/vec_dot: elements per call (else 0) */
    int threads;
    const char *unit;      /* "MB/s", "GB/s", "GFLOP/s" */
    struct quarry_stats value;  /* per run */
    double seconds_per_call;    /* mean */
    double fraction_of_membw;   /* matvec: mean / best membw at the same thread count; else < 0 */
};

struct quarry_bench_callbacks {
    void (*on_row)(const struct quarry_bench_row *row, void *ud);
    void (*on_note)(const char *note, void *ud);   /* skipped levels/types, etc. */
    void *ud;
};

/* Runs the benchmark; rows go to `rows` (a cJSON array; may be NULL) and the
 * callbacks (may be NULL). Returns 0 or a QUARRY_E* code (rows measured so far
 * stay in the array). */
int quarry_bench_kernels(const struct quarry_bench_kernels_opts *opts, cJSON *rows,
                         const struct quarry_bench_callbacks *cb, quarry_error *err);

/* Describes opts (resolved defaults) as a JSON object for the "config" section. */
cJSON *quarry_bench_kernels_config_json(const struct quarry_bench_kernels_opts *opts);

#endif
