/*
 * matmul.h - the engine's matrix product: Y = X . W^T with W in any tensor
 * type of the traits table and X, Y in float.
 *
 * Shapes (row-major):
 *   W  n rows of k weights of type wtype, row stride quarry_row_size(wtype, k)
 *   X  m rows of k floats (stride k)          - the activations, one row per token
 *   Y  m rows of n floats (stride n)          - Y[i][j] = dot(X[i], W[j])
 *
 * Four paths:
 *   vec_dot  the activations are quantized once to the weight type's
 *            vec_dot_type (Q8_0, Q8_1, Q8_K, F16, ...), then chunks of W rows
 *            are handed out to the pool's threads through an atomic counter
 *            (a late or slow thread simply takes fewer). Within a chunk, each
 *            weight row is dotted with a tile of activation rows while it sits
 *            in L1, and the chunk is reused from L2 across tiles. m = 1
 *            (decoding) streams W exactly once, with quantized rows
 *            prefetched 4 KiB ahead; where the type has vec_dot_prepared
 *            (kernels.h: the legacy types on AVX-512), the quantized rows are
 *            prepared once and that kernel is called instead (same bits).
 *            quarry_matmul_shared_ex runs several products of one X this way
 *            as one piece of work.
 *   qgemm    quantized weights (q4_0 .. q8_0, q2_K .. q6_K) with m at least
 *            quarry_matmul_qgemm_min_m() on a CPU with AVX-512 VNNI: the same
 *            quantized activations, but W unpacked once per product into
 *            strips of 16 rows and multiplied with VPDPBUSD
 *            (kernels/matmul_qgemm.h). Bit-identical to the vec_dot path.
 *   gemm     F32, F16 and BF16 weights with m, n, k >= QUARRY_MATMUL_GEMM_MIN
 *            on a CPU with AVX-512 (prompt processing): quarry's own float
 *            GEMM (kernels/matmul_gemm.h). X is packed once into panels of 12
 *            rows, each pool thread converts chunks of W rows, a K block at
 *            a time, into strips of 32 rows (F16/BF16 widened to float) and
 *            runs a 12 x 32 AVX-512 micro-kernel over them. About twice
 *            OpenBLAS 0.3.21's speed where OpenBLAS picks its AVX2 kernels.
 *   BLAS     without AVX-512 (or with the gemm switched off), F32, F16 and
 *            BF16 weights with m, n, k >= QUARRY_MATMUL_BLAS_MIN
 *            (prompt processing) go through OpenBLAS cblas_sgemm: each pool
 *            thread takes panels of up to 512 W rows (F16/BF16 converted to
 *            float in its own buffer) and calls a single-threaded sgemm on
 *            them, so only quarry's pool runs threads (OpenBLAS is set to one
 *            thread, a process-wide setting). OpenBLAS is loaded with
 *            dlopen at start-up (kernels/blas.c, which also says how its
 *            kernel set is chosen).
 * Results of the gemm, BLAS and vec_dot differ by rounding (the gemm and BLAS
 * sum in other orders and do not round the activations to F16/BF16); all are
 * checked against a double-precision reference in tests/test_matmul.c.
 *
 * Products too small to pay for waking the pool (QUARRY_MATMUL_SERIAL_BYTES)
 * run on the calling thread alone.
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

/* The gemm path is taken automatically (AVX-512 CPUs, float weights) when m,
 * n and k are all at least this. Measured crossover against vec_dot (F16,
 * 2048 x 2048, one thread, weights cold): a tie at m = 8 (2.08 vs 1.94 ms),
 * the gemm ahead from 12 (2.17 vs 2.61 ms), 1.4x at 16, 2x at 32. Below it
 * the activations keep vec_dot's rounding to the weight type. */
#define QUARRY_MATMUL_GEMM_MIN 16

/* The BLAS path is taken automatically when m, n and k are all at least this.
 * Measured crossovers against vec_dot (2048 x 2048, one thread): f16 between
 * 16 (a tie) and 32, bf16 16, f32 8; kept at 32 for all three, so that small
 * batches keep vec_dot's rounding (activations rounded to the weight type,
 * as ggml does). */
#define QUARRY_MATMUL_BLAS_MIN 32

/* A product whose weight bytes times activation rows are below this runs on
 * the calling thread only. Measured (2 threads vs 1, m = 1): with the worker
 * spinning, a fork/join costs 2-3 us, so 2 threads gain nothing below about
 * 40-64 KB and at most a third at 150-250 KB (5.4 vs 8.4 us for 147 KB of
 * q4_0); on this shared machine the worker is often descheduled and any
 * fork/join then costs 100-200 us (the median of every pooled product below
 * 1 MB was 100-200 us, against 4-40 us alone). 256 KB keeps stories260K's
 * products (16-128 KB) on one thread and every TinyLlama product (the
 * smallest, 256 x 2048 q4_K, is 295 KB) on the pool. */
#define QUARRY_MATMUL_SERIAL_BYTES (256 * 1024)

/* Y[m x n] = X[m x k] . W[n x k]^T with the process traits table.
 * ws may be NULL (scratch is then allocated for this call). pool may be NULL.
 * Returns 0, QUARRY_EINVAL (bad shapes / NULL data / k not a multiple of the
 * block size), QUARRY_EUNSUPPORTED (no kernels for wtype) or QUARRY_ENOMEM. */
int quarry_matmul(quarry_threadpool *pool, quarry_matmul_ws *ws, enum quarry_type wtype,
                  const void *w, int64_t n, int64_t k, const float *x, int64_t m, float *y,
                  quarry_error *err);

/* ---- the same with knobs (benchmarks and tests) --------------------------- */

enum quarry_matmul_blas {
    QUARRY_MATMUL_BLAS_AUTO = 0, /* when the type allows it, the product is large enough
                                    and the gemm is not taken */
    QUARRY_MATMUL_BLAS_NEVER,    /* the vec_dot path (neither BLAS nor, unless forced,
                                    the gemm) */
    QUARRY_MATMUL_BLAS_ALWAYS,   /* whenever the type allows it (F32, F16, BF16), any m
                                    (over the gemm unless that is forced) */
};

enum quarry_matmul_qgemm {
    QUARRY_MATMUL_QGEMM_AUTO = 0, /* quantized weights with m >= quarry_matmul_qgemm_min_m() */
    QUARRY_MATMUL_QGEMM_NEVER,    /* the vec_dot path instead */
    QUARRY_MATMUL_QGEMM_ALWAYS,   /* whenever the type and CPU allow it, any m */
};

/* The gemm needs a CPU with AVX-512 and a table at that level (a table built
 * for a lower level, as in QUARRY_ISA=avx2, keeps to BLAS and vec_dot). */
enum quarry_matmul_gemm {
    QUARRY_MATMUL_GEMM_AUTO = 0, /* float weights, m, n, k >= QUARRY_MATMUL_GEMM_MIN,
                                    unless blas is NEVER or ALWAYS */
    QUARRY_MATMUL_GEMM_NEVER,    /* BLAS (or vec_dot) as without AVX-512 */
    QUARRY_MATMUL_GEMM_ALWAYS,   /* whenever the type and CPU allow it, any size,
                                    whatever the blas setting */
};

struct quarry_matmul_opts {
    /* QUARRY_TYPE_COUNT entries as filled by quarry_traits_build(); NULL: the
     * process table (quarry_traits()). */
    const struct quarry_type_traits *table;
    enum quarry_matmul_blas blas;
    int64_t rows_per_chunk; /* W rows per unit of work (qgemm: rounded up to
                               whole strips of 16; gemm: of 32; BLAS: rows per
                               sgemm call); 0 = automatic */
    int64_t cols_per_tile;  /* activation rows per cache tile (vec_dot, qgemm);
                               0 = automatic */
    enum quarry_matmul_qgemm qgemm;
    int serial;             /* 1: the calling thread only, whatever the size;
                               0: automatic (QUARRY_MATMUL_SERIAL_BYTES) */
    enum quarry_matmul_gemm gemm;
    int64_t k_block;        /* gemm: weights per K block; 0 = automatic */
    int unprepared;         /* vec_dot path: 1 calls vec_dot on the quantized
                               activations even where the type has
                               vec_dot_prepared (same bits; for benches) */
};

int quarry_matmul_ex(const struct quarry_matmul_opts *opts, quarry_threadpool *pool,
                     quarry_matmul_ws *ws, enum quarry_type wtype, const void *w, int64_t n,
                     int64_t k, const float *x, int64_t m, float *y, quarry_error *err);

/* One of several products that share their activations X: Y = X . W^T with
 * W of type `type`, n rows of k, and Y m rows of n. */
struct quarry_matmul_part {
    enum quarry_type type;
    const void *w;
    int64_t n;
    float *y;
};
#define QUARRY_MATMUL_MAX_PARTS 4

/* Several products of the same X (m x k) in one call, as attention's Wq, Wk,
 * Wv and the feed-forward's gate and up. Where every part has the same weight
 * type and takes the vec_dot path (decoding), X is quantized and prepared
 * once and the rows of all parts are handed out as one piece of work, so the
 * pool is woken once and the threads run out of work together; otherwise
 * each part is an ordinary quarry_matmul_ex. The results are those of
 * separate calls, bit for bit. 1 <= n_parts <= QUARRY_MATMUL_MAX_PARTS;
 * opts as for quarry_matmul_ex (NULL: defaults); errors as quarry_matmul. */
int quarry_matmul_shared_ex(const struct quarry_matmul_opts *opts, quarry_threadpool *pool,
                            quarry_matmul_ws *ws, const struct quarry_matmul_part *parts,
                            int n_parts, int64_t k, const float *x, int64_t m, quarry_error *err);

enum quarry_matmul_path {
    QUARRY_MATMUL_PATH_VEC_DOT = 0,
    QUARRY_MATMUL_PATH_QGEMM,
    QUARRY_MATMUL_PATH_BLAS,
    QUARRY_MATMUL_PATH_GEMM,
};

/* The path a product of this type and shape takes under opts (NULL opts:
 * defaults); "vec_dot", "qgemm", "blas" or "gemm" from quarry_matmul_path_name(). */
enum quarry_matmul_path quarry_matmul_path(const struct quarry_matmul_opts *opts,
                                           enum quarry_type wtype, int64_t n, int64_t k,
                                           int64_t m);
const char *quarry_matmul_path_name(enum quarry_matmul_path path);

/* Whether the product would take the BLAS path (quarry_matmul_path == BLAS). */
int quarry_matmul_uses_blas(const struct quarry_matmul_opts *opts, enum quarry_type wtype,
                            int64_t n, int64_t k, int64_t m);

/* The smallest m for which the qgemm path is taken automatically for weights
 * of this type (measured crossover against the vec_dot path; INT64_MAX when
 * the type has no qgemm kernels). Independent of the CPU check. */
int64_t quarry_matmul_qgemm_min_m(enum quarry_type wtype);

#endif
