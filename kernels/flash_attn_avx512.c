/*
 * flash_attn_avx512.c - the flash attention tile kernel with AVX-512
 * (see flash_attn.h for its contract, flash_attn.c for the scalar original).
 *
 * Scores: the tile's keys are stored transposed (kt[d][j]), so 64 scores are
 * four zmm accumulators updated with one broadcast of q[d] per d; no
 * horizontal sums. Softmax: a vector exp over the four score vectors, lanes
 * past the tile's visible keys masked to zero. Output: o is updated 64 values
 * at a time (four zmm kept in registers across the tile's keys), with masks
 * for head sizes that are not a multiple of 64.
 */
#include "kernels/flash_attn.h"

#include <immintrin.h>
#include <math.h>

#include "kernels/exp_avx512.h"

/* Lanes 0..c-1 set (c clamped to 0..16). */
static inline __mmask16 lane_mask(int c)
{
    return c >= 16 ? (__mmask16)0xFFFF : c <= 0 ? (__mmask16)0 : (__mmask16)((1u << c) - 1);
}

/* R query rows (1 or 4) at q + r * q_stride against one tile of keys and
 * values, their state in m[r], l[r], o + r * o_stride, scores [R][64]. Every
 * row goes through the same operations in the same order whatever R is, so
 * the four-row instance gives each row the single-row one's bits; what R
 * changes is how often K and V are loaded: once per R rows. The output pass
 * covers A = 4 / R vectors of 16 values per row, so R = 1 keeps four
 * accumulators (64 outputs per pass) and R = 4 sixteen. */
static inline __attribute__((always_inline)) void fold_rows(const int R, const float *q, size_t q_stride,
                                                            const float *kt, const float *v, int n, int hd,
                                                            float scale, float *scores, float *m, float *l,
                                                            float *o, size_t o_stride)
{
    enum { T = QUARRY_FA_KV_TILE };
    _Static_assert(T == 64, "the AVX-512 tile kernel holds 64 scores in 4 registers per row");
    const int A = 4 / R;

    /* scores of all 64 columns (those past n are garbage, masked below) */
    __m512 s[4][4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++)
            s[r][i] = _mm512_setzero_ps();
    for (int d = 0; d < hd; d++) {
        const float *row = kt + (size_t)d * T;
        const __m512 k0 = _mm512_loadu_ps(row), k1 = _mm512_loadu_ps(row + 16);
        const __m512 k2 = _mm512_loadu_ps(row + 32), k3 = _mm512_loadu_ps(row + 48);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const __m512 qd = _mm512_set1_ps(q[(size_t)r * q_stride + d]);
            s[r][0] = _mm512_fmadd_ps(qd, k0, s[r][0]);
            s[r][1] = _mm512_fmadd_ps(qd, k1, s[r][1]);
            s[r][2] = _mm512_fmadd_ps(qd, k2, s[r][2]);
            s[r][3] = _mm512_fmadd_ps(qd, k3, s[r][3]);
        }
    }

    /* per row: scale and mask, the running maximum, exp, the running sum */
    const __m512 vscale = _mm512_set1_ps(scale), ninf = _mm512_set1_ps(-INFINITY);
    __mmask16 valid[4];
    for (int i = 0; i < 4; i++)
        valid[i] = lane_mask(n - 16 * i);
    for (int r = 0; r < R; r++) {
        float *orow = o + (size_t)r * o_stride;
        __m512 vmax = ninf;
        __m512 sr[4];
        for (int i = 0; i < 4; i++) {
            sr[i] = _mm512_mask_mov_ps(ninf, valid[i], _mm512_mul_ps(s[r][i], vscale));
            vmax = _mm512_max_ps(vmax, sr[i]);
        }
        const float tile_max = _mm512_reduce_max_ps(vmax);
        if (tile_max > m[r]) { /* new maximum: rescale the accumulated o and l */
            const float c = expf(m[r] - tile_max);
            l[r] *= c;
            const __m512 vc = _mm512_set1_ps(c);
            for (int d = 0; d < hd; d += 16) {
                const __mmask16 dm = lane_mask(hd - d);
                _mm512_mask_storeu_ps(orow + d, dm, _mm512_mul_ps(_mm512_maskz_loadu_ps(dm, orow + d), vc));
            }
            m[r] = tile_max;
        }
        const __m512 vm = _mm512_set1_ps(m[r]);
        __m512 psum = _mm512_setzero_ps();
        for (int i = 0; i < 4; i++) {
            const __m512 p = _mm512_maskz_mov_ps(valid[i], avx512_exp_ps(_mm512_sub_ps(sr[i], vm)));
            _mm512_storeu_ps(scores + (size_t)r * T + 16 * i, p);
            psum = _mm512_add_ps(psum, p);
        }
        l[r] += _mm512_reduce_add_ps(psum);
    }

    /* o_r += sum_j p_rj v_j, 16 * A output values of the R rows per pass:
     * each v_j vector is loaded once for R multiply-adds */
    for (int d0 = 0; d0 < hd; d0 += 16 * A) {
        __mmask16 dm[4];
        __m512 acc[4][4];
#pragma GCC unroll 4
        for (int a = 0; a < A; a++)
            dm[a] = lane_mask(hd - d0 - 16 * a);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
#pragma GCC unroll 4
            for (int a = 0; a < A; a++)
                acc[r][a] = _mm512_maskz_loadu_ps(dm[a], o + (size_t)r * o_stride + d0 + 16 * a);
        for (int j = 0; j < n; j++) {
#pragma GCC unroll 4
            for (int a = 0; a < A; a++) {
                const __m512 vj = _mm512_maskz_loadu_ps(dm[a], v + (size_t)j * hd + d0 + 16 * a);
#pragma GCC unroll 4
                for (int r = 0; r < R; r++)
                    acc[r][a] = _mm512_fmadd_ps(_mm512_set1_ps(scores[(size_t)r * T + j]), vj, acc[r][a]);
            }
        }
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
#pragma GCC unroll 4
            for (int a = 0; a < A; a++)
                _mm512_mask_storeu_ps(o + (size_t)r * o_stride + d0 + 16 * a, dm[a], acc[r][a]);
    }
}

void quarry_fa_tile_avx512(const float *q, const float *kt, const float *v, int n, int hd,
                           float scale, float *scores, float *m, float *l, float *o)
{
    fold_rows(1, q, 0, kt, v, n, hd, scale, scores, m, l, o, 0);
}

/* Four query rows against the same tile (the query heads of one KV head at
 * one token): each K and V vector is loaded once for the four rows instead of
 * once per row, which halves the loads per multiply-add. */
void quarry_fa_tile4_avx512(const float *q, size_t q_stride, const float *kt, const float *v, int n,
                            int hd, float scale, float *scores, float *m, float *l, float *o,
                            size_t o_stride)
{
    fold_rows(4, q, q_stride, kt, v, n, hd, scale, scores, m, l, o, o_stride);
}
