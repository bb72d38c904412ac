/*
 * swiglu_avx512.c - SwiGLU gate with AVX-512 (see swiglu.h): 16 values per
 * step, masked for the tail. exp(-x) by Cephes' expf method: -x clamped to
 * [-87.3, 88.3] (beyond, exp under- or overflows and silu is 0 or x to float
 * precision), -x = n ln2 + r with |r| <= ln2/2, exp(r) from a degree-6
 * polynomial, scaled by 2^n with vscalefps. NaN inputs stay NaN (the division
 * by x passes them through); gates below -88 give 0.
 */
#include <immintrin.h>

#include "kernels/swiglu.h"

static inline __m512 exp_ps(__m512 x)
{
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.3f));
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

/* silu(g) * up; below g = -88, exp(-g) overflows float and silu(g) is 0 to
 * float precision, which the clamped exp would not give (g / 2^127.4 is not
 * 0 for g = -1e30), so those lanes are set to 0. */
static inline __m512 swiglu16(__m512 g, __m512 up)
{
    const __m512 e = exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), g));
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
