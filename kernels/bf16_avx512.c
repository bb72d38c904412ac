/*
 * bf16_avx512.c - AVX-512 kernels for bf16 (bfloat16): conversion to float
 * (a 16-bit shift) and from float (round to nearest even on the integer
 * bits, NaN kept quiet), both bit-identical to kernels/bf16.c, and the
 * bf16 x bf16 dot product (vec_dot) within the float dot tolerance
 * (KERNELS.md: 1e-6 * sum |x_i*y_i|).
 *
 * Dot: a 32-bit lane holding bf16 elements 2k and 2k+1 gives element 2k as
 * a float by a left shift of 16 and element 2k+1 by masking the low half
 * (exact). Like the scalar code, each product is rounded to float before it
 * is added (no FMA), so products that overflow become +-inf exactly where the
 * scalar ones do. Four accumulators run for 256 elements, are added together
 * and widened into double accumulators, so no float lane adds up more than 4
 * products and 2 partial sums. A masked tail takes the last n % 128
 * elements. Which lane an element lands in depends only on its index, never
 * on the address, so equal rows give equal results wherever they are.
 *
 * vdpbf16ps (AVX-512 BF16) is not used: it forms each lane's two products
 * without overflow and treats subnormals as zero, so on extreme inputs it
 * returns +inf where the scalar code returns NaN (a +inf and a -inf product),
 * or drops subnormal terms; it would be about 1.5x faster on cache-resident
 * rows and no faster on rows streamed from memory.
 *
 * from_float does not use vcvtneps2bf16, which flushes subnormal inputs to
 * zero: the rounding is done on the bits, u + 0x7FFF + (bit 16 of u), as
 * quarry_fp32_to_bf16 does.
 */
#include <immintrin.h>

#include "kernels/kernels.h"
#include "kernels/simd_avx512.h"

/* ---- dot product ------------------------------------------------------------ */

/* bf16 elements 0, 2, 4, ... (even) and 1, 3, 5, ... (odd) of w as floats */
static inline __m512 even_elements(__m512i w)
{
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
}

static inline __m512 odd_elements(__m512i w)
{
    return _mm512_castsi512_ps(_mm512_and_si512(w, _mm512_set1_epi32((int)0xFFFF0000u)));
}

/* acc + the 32 products of xw and yw, each rounded to float first (even
 * and odd elements land in the same lane) */
static inline __m512 add_products(__m512 acc, __m512i xw, __m512i yw)
{
    acc = _mm512_add_ps(acc, _mm512_mul_ps(even_elements(xw), even_elements(yw)));
    return _mm512_add_ps(acc, _mm512_mul_ps(odd_elements(xw), odd_elements(yw)));
}

static inline __m512 add_products_masked(__m512 acc, __mmask32 m, const uint16_t *x, const uint16_t *y)
{
    return add_products(acc, _mm512_maskz_loadu_epi16(m, x), _mm512_maskz_loadu_epi16(m, y));
}

static void vec_dot_bf16_avx512(int n, float *s, const void *vx, const void *vy)
{
    const uint16_t *x = vx;
    const uint16_t *y = vy;
    __m512d total_lo = _mm512_setzero_pd(), total_hi = _mm512_setzero_pd();
    int i = 0;
    while (i + 128 <= n) {
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        __m512 a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
        const int chunk_end = n - i >= 256 ? i + 256 : n;
        for (; i + 128 <= chunk_end; i += 128) {
            a0 = add_products(a0, _mm512_loadu_si512(x + i + 0), _mm512_loadu_si512(y + i + 0));
            a1 = add_products(a1, _mm512_loadu_si512(x + i + 32), _mm512_loadu_si512(y + i + 32));
            a2 = add_products(a2, _mm512_loadu_si512(x + i + 64), _mm512_loadu_si512(y + i + 64));
            a3 = add_products(a3, _mm512_loadu_si512(x + i + 96), _mm512_loadu_si512(y + i + 96));
        }
        avx512_widen_into(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)), &total_lo, &total_hi);
    }
    if (i < n) {
        __m512 a = _mm512_setzero_ps();
        for (; i < n; i += 32)
            a = add_products_masked(a, avx512_tail_mask32(n - i), x + i, y + i);
        avx512_widen_into(a, &total_lo, &total_hi);
    }
    *s = (float)_mm512_reduce_add_pd(_mm512_add_pd(total_lo, total_hi));
}

/* ---- conversions ------------------------------------------------------------ */

static void bf16_to_float_avx512(const void *vx, float *y, int64_t n)
{
    const uint16_t *x = vx;
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = avx512_tail_mask16(n - i);
        const __m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, x + i));
        _mm512_mask_storeu_ps(y + i, m, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
    }
}

/* quarry_fp32_to_bf16 on 16 lanes: NaN -> (u >> 16) | 64, else round the top
 * 16 bits to nearest even */
static inline __m256i to_bf16(__m512i u)
{
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    const __m512i rounded = _mm512_srli_epi32(
        _mm512_add_epi32(u, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7FFF))), 16);
    const __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7FFFFFFF)),
                                                  _mm512_set1_epi32(0x7F800000));
    const __m512i quiet = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(64));
    return _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(nan, rounded, quiet));
}

static void bf16_from_float_avx512(const float *x, void *vy, int64_t n)
{
    uint16_t *y = vy;
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = avx512_tail_mask16(n - i);
        const __m512i u = _mm512_castps_si512(_mm512_maskz_loadu_ps(m, x + i));
        _mm256_mask_storeu_epi16(y + i, m, to_bf16(u));
    }
}

void quarry_kernels_bf16_avx512(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_BF16];
    t->to_float = bf16_to_float_avx512;
    t->from_float = bf16_from_float_avx512;
    t->vec_dot = vec_dot_bf16_avx512;
}
