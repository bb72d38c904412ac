/*
 * f32_avx2.c - AVX2 f32 x f32 dot product (vec_dot), within the float dot
 * tolerance of kernels/f32.c (KERNELS.md: 1e-6 * sum |x_i*y_i|).
 *
 * Like the scalar code, each product x[i]*y[i] is rounded to float before it
 * is added (no FMA), so a product that overflows becomes +-inf exactly where
 * the scalar one does. Four 8-lane accumulators run for 128 elements, are
 * added together and widened into double accumulators, so no float lane adds
 * up more than 4 products and 2 partial sums: the error stays below about
 * 8 * 2^-24 of sum |x_i*y_i| whatever n is. The last n % 32 elements are
 * summed in double like the scalar code.
 */
#include <immintrin.h>

#include "kernels/kernels.h"
#include "kernels/simd_avx2.h"

static void vec_dot_f32_avx2(int n, float *s, const void *vx, const void *vy)
{
    const float *x = vx;
    const float *y = vy;
    __m256d total_lo = _mm256_setzero_pd(), total_hi = _mm256_setzero_pd();
    int i = 0;
    while (i + 32 <= n) {
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        const int chunk_end = n - i >= 128 ? i + 128 : n;
        for (; i + 32 <= chunk_end; i += 32) {
            a0 = _mm256_add_ps(a0, _mm256_mul_ps(_mm256_loadu_ps(x + i + 0), _mm256_loadu_ps(y + i + 0)));
            a1 = _mm256_add_ps(a1, _mm256_mul_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8)));
            a2 = _mm256_add_ps(a2, _mm256_mul_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16)));
            a3 = _mm256_add_ps(a3, _mm256_mul_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24)));
        }
        avx2_widen_into(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)), &total_lo, &total_hi);
    }
    double sum = avx2_sum_widened(total_lo, total_hi);
    for (; i < n; i++)
        sum += (double)(x[i] * y[i]);
    *s = (float)sum;
}

void quarry_kernels_f32_avx2(struct quarry_type_traits *table)
{
    table[QUARRY_TYPE_F32].vec_dot = vec_dot_f32_avx2;
}
