/*
 * f16_avx512.c - AVX-512 kernels for f16 (IEEE binary16): conversion to float
 * (vcvtph2ps) and from float (vcvtps2ph, round to nearest even, with NaN
 * rewritten to kernels/fp16.h's canonical quiet NaN), both bit-identical to
 * kernels/f16.c, and the f16 x f16 dot product (vec_dot) within the float
 * dot tolerance (KERNELS.md: 1e-6 * sum |x_i*y_i|).
 *
 * Dot: the halves are widened with vcvtph2ps (exact), so the products are
 * exact as in the scalar code.
 * Four 16-lane accumulators take fused multiply-adds (exact products, one
 * rounding per add). After every 256 elements the four are added together
 * and the result is widened into double accumulators, so no float lane ever
 * sums more than 4 products plus 2 partial sums: the float error stays below
 * about 7 * 2^-24 of the magnitude sum whatever n is, and the double part
 * adds almost nothing. The last n % 64 elements go through masked loads.
 */
#include <immintrin.h>

#include "kernels/kernels.h"
#include "kernels/simd_avx512.h"

/* ---- dot product ------------------------------------------------------------ */

/* 16 halves at p (masked: only the lanes in m are read) as floats */
static inline __m512 load_f16(const uint16_t *p)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}

static inline __m512 load_f16_masked(__mmask16 m, const uint16_t *p)
{
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}

static void vec_dot_f16_avx512(int n, float *s, const void *vx, const void *vy)
{
    const uint16_t *x = vx;
    const uint16_t *y = vy;
    __m512d total_lo = _mm512_setzero_pd(), total_hi = _mm512_setzero_pd();
    int i = 0;
    while (i + 64 <= n) {
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        __m512 a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
        const int chunk_end = n - i >= 256 ? i + 256 : n;
        for (; i + 64 <= chunk_end; i += 64) {
            a0 = _mm512_fmadd_ps(load_f16(x + i + 0), load_f16(y + i + 0), a0);
            a1 = _mm512_fmadd_ps(load_f16(x + i + 16), load_f16(y + i + 16), a1);
            a2 = _mm512_fmadd_ps(load_f16(x + i + 32), load_f16(y + i + 32), a2);
            a3 = _mm512_fmadd_ps(load_f16(x + i + 48), load_f16(y + i + 48), a3);
        }
        avx512_widen_into(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)), &total_lo, &total_hi);
    }
    if (i < n) {
        __m512 a = _mm512_setzero_ps();
        for (; i < n; i += 16) {
            const __mmask16 m = avx512_tail_mask16(n - i);
            a = _mm512_fmadd_ps(load_f16_masked(m, x + i), load_f16_masked(m, y + i), a);
        }
        avx512_widen_into(a, &total_lo, &total_hi);
    }
    *s = (float)_mm512_reduce_add_pd(_mm512_add_pd(total_lo, total_hi));
}

/* ---- conversions ------------------------------------------------------------ */

static void f16_to_float_avx512(const void *vx, float *y, int64_t n)
{
    const uint16_t *x = vx;
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = avx512_tail_mask16(n - i);
        _mm512_mask_storeu_ps(y + i, m, load_f16_masked(m, x + i));
    }
}

/* Round to nearest even like quarry_fp32_to_fp16; a NaN becomes sign | 0x7E00
 * (vcvtps2ph would keep part of the payload). */
static inline __m256i to_f16(__m512 v)
{
    const __m256i h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    const __m512i sign = _mm512_and_si512(_mm512_srli_epi32(_mm512_castps_si512(v), 16),
                                          _mm512_set1_epi32(0x8000));
    const __m256i canonical = _mm512_cvtepi32_epi16(_mm512_or_si512(sign, _mm512_set1_epi32(0x7E00)));
    return _mm256_mask_blend_epi16(nan, h, canonical);
}

static void f16_from_float_avx512(const float *x, void *vy, int64_t n)
{
    uint16_t *y = vy;
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = avx512_tail_mask16(n - i);
        _mm256_mask_storeu_epi16(y + i, m, to_f16(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

void quarry_kernels_f16_avx512(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_F16];
    t->to_float = f16_to_float_avx512;
    t->from_float = f16_from_float_avx512;
    t->vec_dot = vec_dot_f16_avx512;
}
