/*
 * bf16_avx2.c - AVX2 kernels for bf16 (bfloat16): conversion to float (a
 * 16-bit shift) and from float (round to nearest even on the integer bits,
 * NaN kept quiet), both bit-identical to kernels/bf16.c, and the
 * bf16 x bf16 dot product (vec_dot) within the float dot tolerance
 * (KERNELS.md: 1e-6 * sum |x_i*y_i|).
 *
 * Dot: a 32-bit lane holding bf16 elements 2k and 2k+1 gives element 2k as
 * a float by a left shift of 16 and element 2k+1 by masking the low half, so
 * 16 elements become two float vectors with two integer ops (exact). Like
 * the scalar code, each product is rounded to float before it is added (no
 * FMA), so products that overflow become +-inf exactly where the scalar ones
 * do. Four 8-lane accumulators run for 128 elements, are added together and
 * widened into double accumulators, so no float lane adds up more than 4
 * products and 2 partial sums. The last n % 32 elements are summed in double
 * like the scalar code.
 */
#include <immintrin.h>

#include "kernels/fp16.h"
#include "kernels/kernels.h"
#include "kernels/simd_avx2.h"

/* ---- dot product ------------------------------------------------------------ */

/* bf16 elements 0, 2, 4, ... (even) and 1, 3, 5, ... (odd) of w as floats */
static inline __m256 even_elements(__m256i w)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

static inline __m256 odd_elements(__m256i w)
{
    return _mm256_castsi256_ps(_mm256_and_si256(w, _mm256_set1_epi32((int)0xFFFF0000u)));
}

static void vec_dot_bf16_avx2(int n, float *s, const void *vx, const void *vy)
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
            const __m256i x0 = _mm256_loadu_si256((const __m256i *)(x + i));
            const __m256i y0 = _mm256_loadu_si256((const __m256i *)(y + i));
            const __m256i x1 = _mm256_loadu_si256((const __m256i *)(x + i + 16));
            const __m256i y1 = _mm256_loadu_si256((const __m256i *)(y + i + 16));
            a0 = _mm256_add_ps(a0, _mm256_mul_ps(even_elements(x0), even_elements(y0)));
            a1 = _mm256_add_ps(a1, _mm256_mul_ps(odd_elements(x0), odd_elements(y0)));
            a2 = _mm256_add_ps(a2, _mm256_mul_ps(even_elements(x1), even_elements(y1)));
            a3 = _mm256_add_ps(a3, _mm256_mul_ps(odd_elements(x1), odd_elements(y1)));
        }
        avx2_widen_into(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)), &total_lo, &total_hi);
    }
    double sum = avx2_sum_widened(total_lo, total_hi);
    for (; i < n; i++)
        sum += (double)(quarry_bf16_to_fp32(x[i]) * quarry_bf16_to_fp32(y[i]));
    *s = (float)sum;
}

/* ---- conversions ------------------------------------------------------------ */

static void bf16_to_float_avx2(const void *vx, float *y, int64_t n)
{
    const uint16_t *x = vx;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(x + i)));
        _mm256_storeu_ps(y + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
    }
    for (; i < n; i++)
        y[i] = quarry_bf16_to_fp32(x[i]);
}

/* quarry_fp32_to_bf16 on 8 lanes (as 32-bit results): NaN -> (u >> 16) | 64,
 * else round the top 16 bits to nearest even */
static inline __m256i to_bf16(__m256i u)
{
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    const __m256i rounded = _mm256_srli_epi32(
        _mm256_add_epi32(u, _mm256_add_epi32(odd, _mm256_set1_epi32(0x7FFF))), 16);
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7FFFFFFF)),
                                           _mm256_set1_epi32(0x7F800000));
    const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(64));
    return _mm256_blendv_epi8(rounded, quiet, nan);
}

static void bf16_from_float_avx2(const float *x, void *vy, int64_t n)
{
    uint16_t *y = vy;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256i lo = to_bf16(_mm256_castps_si256(_mm256_loadu_ps(x + i)));
        const __m256i hi = to_bf16(_mm256_castps_si256(_mm256_loadu_ps(x + i + 8)));
        /* the packs work per 128-bit half; a qword permute restores the order */
        _mm256_storeu_si256((__m256i *)(y + i),
                            _mm256_permute4x64_epi64(_mm256_packus_epi32(lo, hi), _MM_SHUFFLE(3, 1, 2, 0)));
    }
    for (; i < n; i++)
        y[i] = quarry_fp32_to_bf16(x[i]);
}

void quarry_kernels_bf16_avx2(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_BF16];
    t->to_float = bf16_to_float_avx2;
    t->from_float = bf16_from_float_avx2;
    t->vec_dot = vec_dot_bf16_avx2;
}
