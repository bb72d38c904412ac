/*
 * f16_avx2.c - AVX2 (+F16C) kernels for f16 (IEEE binary16): conversion to
 * float (vcvtph2ps) and from float (vcvtps2ph, round to nearest even, with
 * NaN rewritten to kernels/fp16.h's canonical quiet NaN), both bit-identical
 * to kernels/f16.c, and the f16 x f16 dot product (vec_dot) within the float
 * dot tolerance (KERNELS.md: 1e-6 * sum |x_i*y_i|).
 *
 * Dot: the halves are widened with vcvtph2ps (exact), so the products are
 * exact as in the scalar code. Four 8-lane accumulators take fused
 * multiply-adds (one rounding per add). After every 128 elements the four are
 * added together and widened into double accumulators, so no float lane ever
 * sums more than 4 products plus 2 partial sums: the float error stays below
 * about 7 * 2^-24 of the magnitude sum whatever n is. The last n % 32
 * elements are summed in double like the scalar code.
 */
#include <immintrin.h>

#include "kernels/fp16.h"
#include "kernels/kernels.h"
#include "kernels/simd_avx2.h"

/* ---- dot product ------------------------------------------------------------ */

/* 8 halves at p as floats */
static inline __m256 load_f16(const uint16_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

static void vec_dot_f16_avx2(int n, float *s, const void *vx, const void *vy)
{
    const uint16_t *x = vx;
    const uint16_t *y = vy;
    __m256d total_lo = _mm256_setzero_pd(), total_hi = _mm256_setzero_pd();
    int i = 0;
    while (i + 32 <= n) {
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        const int chunk_end = n - i >= 128 ? i + 128 : n;
        for (; i + 32 <= chunk_end; i += 32) {
            a0 = _mm256_fmadd_ps(load_f16(x + i + 0), load_f16(y + i + 0), a0);
            a1 = _mm256_fmadd_ps(load_f16(x + i + 8), load_f16(y + i + 8), a1);
            a2 = _mm256_fmadd_ps(load_f16(x + i + 16), load_f16(y + i + 16), a2);
            a3 = _mm256_fmadd_ps(load_f16(x + i + 24), load_f16(y + i + 24), a3);
        }
        avx2_widen_into(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)), &total_lo, &total_hi);
    }
    double sum = avx2_sum_widened(total_lo, total_hi);
    for (; i < n; i++)
        sum += (double)(_cvtsh_ss(x[i]) * _cvtsh_ss(y[i]));
    *s = (float)sum;
}

/* ---- conversions ------------------------------------------------------------ */

static void f16_to_float_avx2(const void *vx, float *y, int64_t n)
{
    const uint16_t *x = vx;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, load_f16(x + i));
    for (; i < n; i++)
        y[i] = _cvtsh_ss(x[i]);
}

static void f16_from_float_avx2(const float *x, void *vy, int64_t n)
{
    uint16_t *y = vy;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const int nan = _mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        if (nan) {
            /* rare: rewrite NaNs as sign | 0x7E00 like quarry_fp32_to_fp16
             * (vcvtps2ph would keep part of the payload) */
            uint16_t tmp[8];
            _mm_storeu_si128((__m128i *)tmp, h);
            for (int k = 0; k < 8; k++)
                if (nan >> k & 1)
                    tmp[k] = quarry_fp32_to_fp16(x[i + k]);
            h = _mm_loadu_si128((const __m128i *)tmp);
        }
        _mm_storeu_si128((__m128i *)(y + i), h);
    }
    for (; i < n; i++)
        y[i] = quarry_fp32_to_fp16(x[i]);
}

void quarry_kernels_f16_avx2(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_F16];
    t->to_float = f16_to_float_avx2;
    t->from_float = f16_from_float_avx2;
    t->vec_dot = vec_dot_f16_avx2;
}
