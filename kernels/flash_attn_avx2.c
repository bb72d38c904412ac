/*
 * flash_attn_avx2.c - the flash attention tile kernel with AVX2 + FMA
 * (see flash_attn.h for its contract, flash_attn.c for the scalar original).
 *
 * Same plan as the AVX-512 version with 8-lane registers: 64 scores in eight
 * ymm accumulators fed from the transposed key tile, a vector exp, lanes past
 * the visible keys masked with blends, and o updated 32 values per pass with
 * masked loads/stores for head sizes that are not a multiple of 32.
 */
#include "kernels/flash_attn.h"

#include <immintrin.h>
#include <math.h>

/* Integer lane mask: lane i set when i < c. */
static inline __m256i lane_mask(int c)
{
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(c), idx);
}

/* exp(x) for x <= 0, relative error ~1e-7 (Cephes' expf method): x = n ln2 + r
 * with |r| <= ln2/2, exp(r) from a degree-6 polynomial, times 2^n built in the
 * exponent field. Inputs below -87.3 are clamped (result ~1e-38, n >= -126 so
 * 2^n stays normal); callers zero lanes that must be 0. */
static inline __m256 exp_ps(__m256 x)
{
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.3f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    const __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

static inline float hmax(__m256 v)
{
    __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_max_ps(x, _mm_movehl_ps(x, x));
    x = _mm_max_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

static inline float hsum(__m256 v)
{
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

void quarry_fa_tile_avx2(const float *q, const float *kt, const float *v, int n, int hd,
                         float scale, float *scores, float *m, float *l, float *o)
{
    enum { T = QUARRY_FA_KV_TILE };
    _Static_assert(T == 64, "the AVX2 tile kernel holds 64 scores in 8 registers");

    __m256 s[8];
    for (int i = 0; i < 8; i++)
        s[i] = _mm256_setzero_ps();
    for (int d = 0; d < hd; d++) {
        const __m256 qd = _mm256_set1_ps(q[d]);
        const float *row = kt + (size_t)d * T;
        for (int i = 0; i < 8; i++)
            s[i] = _mm256_fmadd_ps(qd, _mm256_loadu_ps(row + 8 * i), s[i]);
    }
    const __m256 vscale = _mm256_set1_ps(scale), ninf = _mm256_set1_ps(-INFINITY);
    __m256 valid[8];
    __m256 vmax = ninf;
    for (int i = 0; i < 8; i++) {
        valid[i] = _mm256_castsi256_ps(lane_mask(n - 8 * i));
        s[i] = _mm256_blendv_ps(ninf, _mm256_mul_ps(s[i], vscale), valid[i]);
        vmax = _mm256_max_ps(vmax, s[i]);
    }
    const float tile_max = hmax(vmax);

    if (tile_max > *m) { /* new maximum: rescale the accumulated o and l */
        const float c = expf(*m - tile_max);
        *l *= c;
        const __m256 vc = _mm256_set1_ps(c);
        for (int d = 0; d < hd; d += 8) {
            const __m256i dm = lane_mask(hd - d);
            _mm256_maskstore_ps(o + d, dm, _mm256_mul_ps(_mm256_maskload_ps(o + d, dm), vc));
        }
        *m = tile_max;
    }

    const __m256 vm = _mm256_set1_ps(*m), zero = _mm256_setzero_ps();
    __m256 psum = zero;
    for (int i = 0; i < 8; i++) {
        const __m256 p = _mm256_blendv_ps(zero, exp_ps(_mm256_sub_ps(s[i], vm)), valid[i]);
        _mm256_storeu_ps(scores + 8 * i, p);
        psum = _mm256_add_ps(psum, p);
    }
    *l += hsum(psum);

    /* o += sum_j p_j v_j, 32 output values per pass */
    for (int d0 = 0; d0 < hd; d0 += 32) {
        __m256i dm[4];
        __m256 acc[4];
        for (int i = 0; i < 4; i++) {
            dm[i] = lane_mask(hd - d0 - 8 * i);
            acc[i] = _mm256_maskload_ps(o + d0 + 8 * i, dm[i]);
        }
        for (int j = 0; j < n; j++) {
            const __m256 p = _mm256_set1_ps(scores[j]);
            const float *vj = v + (size_t)j * hd + d0;
            for (int i = 0; i < 4; i++)
                acc[i] = _mm256_fmadd_ps(p, _mm256_maskload_ps(vj + 8 * i, dm[i]), acc[i]);
        }
        for (int i = 0; i < 4; i++)
            _mm256_maskstore_ps(o + d0 + 8 * i, dm[i], acc[i]);
    }
}
