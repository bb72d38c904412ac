/*
 * f32_avx512.c - AVX-512 f32 x f32 dot product (vec_dot), within the float
 * dot tolerance of kernels/f32.c (KERNELS.md: 1e-6 * sum |x_i*y_i|).
 *
 * Like the scalar code, each product x[i]*y[i] is rounded to float before it
 * is added (no FMA), so a product that overflows becomes +-inf exactly where
 * the scalar one does. Four 16-lane accumulators run for 256 elements, are
 * added together and widened into double accumulators, so no float lane adds
 * up more than 4 products and 2 partial sums: the error stays below about
 * 8 * 2^-24 of sum |x_i*y_i| whatever n is. A masked tail takes the last
 * n % 64 elements. Which lane an element lands in depends only on its index,
 * never on the address, so equal rows give equal results wherever they are.
 */
#include <immintrin.h>

#include "kernels/kernels.h"
#include "kernels/simd_avx512.h"

/* acc + x[k]*y[k] for the lanes in m (the products rounded to float) */
static inline __m512 add_products(__m512 acc, __mmask16 m, const float *x, const float *y)
{
    return _mm512_add_ps(acc, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x), _mm512_maskz_loadu_ps(m, y)));
}

static void vec_dot_f32_avx512(int n, float *s, const void *vx, const void *vy)
{
    const float *x = vx;
    const float *y = vy;
    __m512d total_lo = _mm512_setzero_pd(), total_hi = _mm512_setzero_pd();
    int i = 0;
    while (i + 64 <= n) {
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        __m512 a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
        const int chunk_end = n - i >= 256 ? i + 256 : n;
        for (; i + 64 <= chunk_end; i += 64) {
            a0 = _mm512_add_ps(a0, _mm512_mul_ps(_mm512_loadu_ps(x + i + 0), _mm512_loadu_ps(y + i + 0)));
            a1 = _mm512_add_ps(a1, _mm512_mul_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16)));
            a2 = _mm512_add_ps(a2, _mm512_mul_ps(_mm512_loadu_ps(x + i + 32), _mm512_loadu_ps(y + i + 32)));
            a3 = _mm512_add_ps(a3, _mm512_mul_ps(_mm512_loadu_ps(x + i + 48), _mm512_loadu_ps(y + i + 48)));
        }
        avx512_widen_into(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)), &total_lo, &total_hi);
    }
    if (i < n) {
        __m512 a = _mm512_setzero_ps();
        for (; i < n; i += 16)
            a = add_products(a, avx512_tail_mask16(n - i), x + i, y + i);
        avx512_widen_into(a, &total_lo, &total_hi);
    }
    *s = (float)_mm512_reduce_add_pd(_mm512_add_pd(total_lo, total_hi));
}

void quarry_kernels_f32_avx512(struct quarry_type_traits *table)
{
    table[QUARRY_TYPE_F32].vec_dot = vec_dot_f32_avx512;
}
