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

/* Lanes 0..c-1 set (c clamped to 0..16). */
static inline __mmask16 lane_mask(int c)
{
    return c >= 16 ? (__mmask16)0xFFFF : c <= 0 ? (__mmask16)0 : (__mmask16)((1u << c) - 1);
}

/* exp(x) for x <= 0, relative error ~1e-7 (Cephes' expf method): x = n ln2 + r
 * with |r| <= ln2/2, exp(r) from a degree-6 polynomial, times 2^n. Inputs
 * below -87.3 are clamped (result ~1e-38); callers zero lanes that must be 0. */
static inline __m512 exp_ps(__m512 x)
{
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x); /* ln2 in two parts */
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    const __m512 y = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(y, n);
}

void quarry_fa_tile_avx512(const float *q, const float *kt, const float *v, int n, int hd,
                           float scale, float *scores, float *m, float *l, float *o)
{
    enum { T = QUARRY_FA_KV_TILE };
    _Static_assert(T == 64, "the AVX-512 tile kernel holds 64 scores in 4 registers");

    /* scores of all 64 columns (those past n are garbage, masked below) */
    __m512 s[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                   _mm512_setzero_ps()};
    for (int d = 0; d < hd; d++) {
        const __m512 qd = _mm512_set1_ps(q[d]);
        const float *row = kt + (size_t)d * T;
        for (int i = 0; i < 4; i++)
            s[i] = _mm512_fmadd_ps(qd, _mm512_loadu_ps(row + 16 * i), s[i]);
    }
    const __m512 vscale = _mm512_set1_ps(scale), ninf = _mm512_set1_ps(-INFINITY);
    __mmask16 valid[4];
    __m512 vmax = ninf;
    for (int i = 0; i < 4; i++) {
        valid[i] = lane_mask(n - 16 * i);
        s[i] = _mm512_mask_mov_ps(ninf, valid[i], _mm512_mul_ps(s[i], vscale));
        vmax = _mm512_max_ps(vmax, s[i]);
    }
    const float tile_max = _mm512_reduce_max_ps(vmax);

    if (tile_max > *m) { /* new maximum: rescale the accumulated o and l */
        const float c = expf(*m - tile_max);
        *l *= c;
        const __m512 vc = _mm512_set1_ps(c);
        for (int d = 0; d < hd; d += 16) {
            const __mmask16 dm = lane_mask(hd - d);
            _mm512_mask_storeu_ps(o + d, dm, _mm512_mul_ps(_mm512_maskz_loadu_ps(dm, o + d), vc));
        }
        *m = tile_max;
    }

    const __m512 vm = _mm512_set1_ps(*m);
    __m512 psum = _mm512_setzero_ps();
    for (int i = 0; i < 4; i++) {
        const __m512 p = _mm512_maskz_mov_ps(valid[i], exp_ps(_mm512_sub_ps(s[i], vm)));
        _mm512_storeu_ps(scores + 16 * i, p);
        psum = _mm512_add_ps(psum, p);
    }
    *l += _mm512_reduce_add_ps(psum);

    /* o += sum_j p_j v_j, 64 output values per pass */
    for (int d0 = 0; d0 < hd; d0 += 64) {
        __mmask16 dm[4];
        __m512 acc[4];
        for (int i = 0; i < 4; i++) {
            dm[i] = lane_mask(hd - d0 - 16 * i);
            acc[i] = _mm512_maskz_loadu_ps(dm[i], o + d0 + 16 * i);
        }
        for (int j = 0; j < n; j++) {
            const __m512 p = _mm512_set1_ps(scores[j]);
            const float *vj = v + (size_t)j * hd + d0;
            for (int i = 0; i < 4; i++)
                acc[i] = _mm512_fmadd_ps(p, _mm512_maskz_loadu_ps(dm[i], vj + 16 * i), acc[i]);
        }
        for (int i = 0; i < 4; i++)
            _mm512_mask_storeu_ps(o + d0 + 16 * i, dm[i], acc[i]);
    }
}

/* Four query rows against the same tile (the query heads of one KV head at
 * one token): each K and V vector is loaded once for the four rows instead of
 * once per row, which halves the loads per multiply-add. Each row goes
 * through exactly the operations of quarry_fa_tile_avx512 in the same order,
 * so the results are the single-row kernel's bit for bit. */
void quarry_fa_tile4_avx512(const float *q, size_t q_stride, const float *kt, const float *v, int n,
                            int hd, float scale, float *scores, float *m, float *l, float *o,
                            size_t o_stride)
{
    enum { T = QUARRY_FA_KV_TILE, R = 4 };
    __m512 s[R][4];
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
            const __m512 p = _mm512_maskz_mov_ps(valid[i], exp_ps(_mm512_sub_ps(sr[i], vm)));
            _mm512_storeu_ps(scores + (size_t)r * T + 16 * i, p);
            psum = _mm512_add_ps(psum, p);
        }
        l[r] += _mm512_reduce_add_ps(psum);
    }

    /* o_r += sum_j p_rj v_j, 16 output values of the four rows per pass: each
     * v_j vector is loaded once for four multiply-adds */
    for (int d = 0; d < hd; d += 16) {
        const __mmask16 dm = lane_mask(hd - d);
        __m512 acc[R];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
            acc[r] = _mm512_maskz_loadu_ps(dm, o + (size_t)r * o_stride + d);
        for (int j = 0; j < n; j++) {
            const __m512 vj = _mm512_maskz_loadu_ps(dm, v + (size_t)j * hd + d);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++)
                acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(scores[(size_t)r * T + j]), vj, acc[r]);
        }
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
            _mm512_mask_storeu_ps(o + (size_t)r * o_stride + d, dm, acc[r]);
    }
}
