/*
 * exp_avx512.h - exp of 16 floats at once (Cephes' expf method, relative
 * error about 1e-7), shared by the AVX-512 kernels that need it (flash
 * attention's softmax, the SwiGLU gate). x is clamped to [-87.3, 88.3], where
 * exp stays a normal float; x = n ln2 + r with |r| <= ln2/2, exp(r) from a
 * degree-6 polynomial, scaled by 2^n with vscalefps. Callers handle inputs
 * beyond the clamp (zeroing lanes that must be 0). Only for ..._avx512.c files.
 */
#ifndef QUARRY_EXP_AVX512_H
#define QUARRY_EXP_AVX512_H

#include <immintrin.h>

static inline __m512 avx512_exp_ps(__m512 x)
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

#endif
