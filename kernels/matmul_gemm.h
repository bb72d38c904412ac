/*
 * matmul_gemm.h - quarry's own single-precision GEMM for float weights (F32,
 * F16, BF16), the "gemm" path of matmul.c (internal to kernels/matmul*.c; the
 * engine calls quarry_matmul()). It replaces OpenBLAS for prompt processing
 * on CPUs with AVX-512: OpenBLAS 0.3.21 may run its AVX2 kernels there (it
 * does whenever OPENBLAS_CORETYPE says Haswell), at half the FMA rate.
 *
 *   Y[m][n] = X[m][k] . W[n][k]^T      X, W k-contiguous, Y row-major (ld n)
 *
 * Data layout (everything float, 64-byte aligned):
 *   Xp  X packed once per product, in panels of QUARRY_GEMM_MR = 12 rows:
 *       panel p holds, for every c < k, X[12p + r][c] at Xp[p][c][r]
 *       (r < 12; rows past m are zero). k x 12 floats per panel.
 *   Wp  a chunk of W rows, one K block [k0, k0 + kc) at a time, in strips of
 *       QUARRY_GEMM_NR = 32 rows: strip s holds W[j0 + 32s + r][k0 + c] at
 *       Wp[s][c][r] (converted to float; rows past the chunk are zero).
 * Micro-kernel (12 X rows x 32 W rows, 24 zmm accumulators): per c, two
 * 16-float loads of the W strip and 12 broadcasts from the X panel, 24 FMAs
 * (vfmadd231ps). Accumulator lanes run along W rows, that is along a Y row,
 * so a tile goes to Y with plain (masked) stores, no transpose.
 *
 * Every pool thread runs quarry_gemm_thread: X panels are packed on demand
 * by whichever thread first needs one (a shared counter and a ready flag per
 * panel: no barrier and no second fork/join, and one thread's packing
 * overlaps the other's arithmetic), and chunks of W rows are taken from a
 * shared counter, each converted into a per-thread panel buffer.
 * Sums: float FMAs in k order within a K block, the blocks' sums added to Y
 * in order. Not BLAS's bits, but within rounding of the exact product (the
 * matmul tests hold it to an NMSE of 1e-10 against double precision).
 *
 * AVX-512F only (kernels/matmul_gemm_avx512.c): callers check the ISA level
 * (quarry_isa_detected() >= QUARRY_ISA_AVX512) before calling anything here.
 */
#ifndef QUARRY_MATMUL_GEMM_H
#define QUARRY_MATMUL_GEMM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/types.h"

#define QUARRY_GEMM_MR 12 /* X rows per panel (micro-tile height) */
#define QUARRY_GEMM_NR 32 /* W rows per strip (micro-tile width: 2 zmm) */

/* Whether the gemm converts weights of type t (F32, F16, BF16). Inline:
 * callers ask before they know the CPU runs matmul_gemm_avx512.c. */
static inline int quarry_gemm_supported(enum quarry_type t)
{
    return t == QUARRY_TYPE_F32 || t == QUARRY_TYPE_F16 || t == QUARRY_TYPE_BF16;
}

/* Number of X panels of an m-row product. */
static inline int64_t quarry_gemm_x_panels(int64_t m)
{
    return (m + QUARRY_GEMM_MR - 1) / QUARRY_GEMM_MR;
}

struct quarry_gemm_args {
    enum quarry_type wtype; /* F32, F16 or BF16 */
    const uint8_t *w;       /* n rows of w_row_bytes */
    size_t w_row_bytes;
    int64_t n, k, m;
    const float *x;         /* m rows of k floats */
    float *xp;              /* X packed: quarry_gemm_x_panels(m) * k * 12 floats */
    atomic_uchar *ready;    /* per X panel: packed yet (all 0 at the start) */
    atomic_int_fast64_t *next_panel; /* the next X panel to pack (0 at the start) */
    float *y;               /* m rows of n floats */
    int64_t kc;             /* weights per K block (1 <= kc; the packed chunk is rows x kc) */
};

/* One thread's share: takes chunks of chunk_rows W rows (a multiple of 32)
 * from *next_chunk (shared by the threads, starting at 0) until all n rows
 * are taken, and writes Y[0..m)[chunk's rows]. A chunk is claimed when the
 * previous one starts its last K block (its weights are prefetched from
 * then on). panel: scratch of chunk_rows * min(kc, k) floats, 64-byte
 * aligned. */
void quarry_gemm_thread(const struct quarry_gemm_args *a, atomic_int_fast64_t *next_chunk,
                        int64_t chunk_rows, float *panel);

#endif
