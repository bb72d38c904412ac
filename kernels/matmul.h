/*
 * matmul.h - the engine's matrix product: Y = X . W^T with W in any tensor
 * type of the traits table and X, Y in float.
 *
 * Shapes (row-major):
 *   W  n rows of k weights of type wtype, row stride quarry_row_size(wtype, k)
 *   X  m rows of k floats (stride k)          - the activations, one row per token
 *   Y  m rows of n floats (stride n)          - Y[i][j] = dot(X[i], W[j])
 *
 * Two paths:
 *   vec_dot  the activations are quantized once to the weight type's
 *            vec_dot_type (Q8_0, Q8_1, Q8_K, F16, ...), then chunks of W rows
 *            are handed out to the pool's threads (first chunk per thread
 *            fixed, the rest through an atomic counter, so a slow thread does
 *            less). Within a chunk, each weight row is dotted with a tile of
 *            activation rows while it sits in L1, and the chunk is reused from
 *            L2 across tiles. m = 1 (decoding) streams W exactly once.
 *   BLAS     F32, F16 and BF16 weights with m, n, k >= QUARRY_MATMUL_BLAS_MIN
 *            (prompt processing) go through OpenBLAS cblas_sgemm; F16/BF16
 *            rows are converted to float in panels first. OpenBLAS's thread
 *            count is set to the pool's size before each call
 *            (openblas_set_num_threads, a process-wide setting).
 * Results of the two paths differ by rounding (BLAS sums in another order and
 * does not round the activations to F16/BF16); both are checked against a
 * double-precision reference in tests/test_matmul.c.
 */
#ifndef QUARRY_MATMUL_H
#define QUARRY_MATMUL_H

#include <stdint.h>

#include "engine/error.h"
#include "engine/threadpool.h"
#include "kernels/kernels.h"

/* Reusable scratch (quantized activations, converted weight panels). It grows
 * to the largest size asked and is kept; one matmul at a time may use it. */
typedef struct quarry_matmul_ws quarry_matmul_ws;
quarry_matmul_ws *quarry_matmul_ws_new(void);   /* NULL when out of memory */
void quarry_matmul_ws_free(quarry_matmul_ws *ws);

/* The BLAS path is taken automatically when m, n and k are all at least this. */
#define QUARRY_MATMUL_BLAS_MIN 32

/* Y[m x n] = X[m x k] . W[n x k]^T with the process traits table.
 * ws may be NULL (scratch is then allocated for this call). pool may be NULL.
 * Returns 0, QUARRY_EINVAL (bad shapes / NULL data / k not a multiple of the
 * block size), QUARRY_EUNSUPPORTED (no kernels for wtype) or QUARRY_ENOMEM. */
int quarry_matmul(quarry_threadpool *pool, quarry_matmul_ws *ws, enum quarry_type wtype,
                  const void *w, int64_t n, int64_t k, const float *x, int64_t m, float *y,
                  quarry_error *err);

/* ---- the same with knobs (benchmarks and tests) --------------------------- */

enum quarry_matmul_blas {
    QUARRY_MATMUL_BLAS_AUTO = 0, /* when the type allows it and the product is large enough */
    QUARRY_MATMUL_BLAS_NEVER,    /* always the vec_dot path */
    QUARRY_MATMUL_BLAS_ALWAYS,   /* whenever the type allows it (F32, F16, BF16), any m */
};

struct quarry_matmul_opts {
    /* QUARRY_TYPE_COUNT entries as filled by quarry_traits_build(); NULL: the
     * process table (quarry_traits()). */
    const struct quarry_type_traits *table;
    enum quarry_matmul_blas blas;
    int64_t rows_per_chunk; /* W rows per unit of work; 0 = automatic */
    int64_t cols_per_tile;  /* activation rows per cache tile; 0 = automatic */
};

int quarry_matmul_ex(const struct quarry_matmul_opts *opts, quarry_threadpool *pool,
                     quarry_matmul_ws *ws, enum quarry_type wtype, const void *w, int64_t n,
                     int64_t k, const float *x, int64_t m, float *y, quarry_error *err);

/* Whether a product of this type and shape would take the BLAS path under opts
 * (NULL opts: defaults). For reporting which path a benchmark measured. */
int quarry_matmul_uses_blas(const struct quarry_matmul_opts *opts, enum quarry_type wtype,
                            int64_t n, int64_t k, int64_t m);

#endif
