/*
 * swiglu_avx512.c - SwiGLU gate with AVX-512 (see swiglu.h): 16 values per
 * step, masked for the tail, exp(-x) by avx512_exp_ps (kernels/exp_avx512.h).
 * NaN inputs stay NaN (the division by x passes them through); gates below
 * -88 give 0.
 */
#include <immintrin.h>

#include "kernels/exp_avx512.h"
#include "kernels/swiglu.h"

/* silu(g) * up; below g = -88, exp(-g) overflows float and silu(g) is 0 to
 * float precision, which the clamped exp would not give (g / 2^127.4 is not
 * 0 for g = -1e30), so those lanes are set to 0. */
static inline __m512 swiglu16(__m512 g, __m512 up)
{
    const __m512 e = avx512_exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), g));
    const __m512 y = _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0f), e)), up);
    const __mmask16 underflow = _mm512_cmp_ps_mask(g, _mm512_set1_ps(-88.0f), _CMP_LT_OQ);
    return _mm512_mask_mov_ps(y, underflow, _mm512_setzero_ps());
}

void quarry_swiglu_avx512(float *g, const float *up, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(g + i, swiglu16(_mm512_loadu_ps(g + i), _mm512_loadu_ps(up + i)));
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(g + i, m, swiglu16(_mm512_maskz_loadu_ps(m, g + i), _mm512_maskz_loadu_ps(m, up + i)));
    }
}
