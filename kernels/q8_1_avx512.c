/*
 * q8_1_avx512.c - AVX-512 kernels for q8_1 (F/BW/VL): the activation
 * quantizer (from_float) and to_float, bit-identical to kernels/q8_1.c.
 * q8_1 is the activation type of q4_1 and q5_1; it has no vec_dot of its own.
 *
 * from_float follows quantize_row_q8_1_ref step by step (amax, d = amax/127,
 * id = 1/d, roundf(x*id) with ties away from zero, emulated exactly as
 * trunc plus a +-1 correction, s = fp16((float)sum(q) * d)); a block whose
 * values or inverse scale are not finite takes the scalar path, so every
 * input gives the reference's bytes.
 */
#include <float.h>
#include <immintrin.h>
#include <math.h>

#include "kernels/fp16.h"
#include "kernels/kernels.h"

/* ---- helpers --------------------------------------------------------------- */

/* roundf(v) for finite v (ties away from zero): truncate, then step one away
 * from zero when the dropped fraction (exact) is at least one half. */
static inline __m512 round_half_away(__m512 v)
{
    const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m512 frac = _mm512_abs_ps(_mm512_sub_ps(v, t));
    const __mmask16 up = _mm512_cmp_ps_mask(frac, _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    const __m512 one = _mm512_or_ps(_mm512_set1_ps(1.0f),
                                    _mm512_and_ps(v, _mm512_set1_ps(-0.0f)));
    return _mm512_mask_add_ps(t, up, t, one);
}

/* ---- scalar fallback (a copy of kernels/q8_1.c's reference block) --------- */

static inline int8_t round_to_i8(float v)
{
    const float r = roundf(v);
    if (r >= 127.0f)
        return 127;
    if (r <= -128.0f)
        return -128;
    return r == r ? (int8_t)r : 0;
}

static void quantize_block_q8_1_scalar(const float *x, block_q8_1 *y)
{
    float amax = 0.0f;
    for (int j = 0; j < QK8_1; j++) {
        const float a = fabsf(x[j]);
        amax = amax > a ? amax : a;
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y->d = quarry_fp32_to_fp16(d);
    int sum = 0;
    for (int j = 0; j < QK8_1; j++) {
        y->qs[j] = round_to_i8(x[j] * id);
        sum += y->qs[j];
    }
    y->s = quarry_fp32_to_fp16((float)sum * d);
}

/* ---- kernels --------------------------------------------------------------- */

static void quantize_row_q8_1_avx512(const float *x, void *vy, int64_t n)
{
    block_q8_1 *y = vy;
    const int64_t nb = n / QK8_1;
    const __m512 finite_max = _mm512_set1_ps(FLT_MAX);
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * QK8_1;
        const __m512 v0 = _mm512_loadu_ps(xb), v1 = _mm512_loadu_ps(xb + 16);
        const __m512 a0 = _mm512_abs_ps(v0), a1 = _mm512_abs_ps(v1);
        const __mmask16 ok0 = _mm512_cmp_ps_mask(a0, finite_max, _CMP_LE_OQ);
        const __mmask16 ok1 = _mm512_cmp_ps_mask(a1, finite_max, _CMP_LE_OQ);
        const float amax = _mm512_reduce_max_ps(_mm512_max_ps(a0, a1));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        if ((ok0 & ok1) != 0xFFFF || !(id <= FLT_MAX)) {
            quantize_block_q8_1_scalar(xb, &y[i]);
            continue;
        }
        y[i].d = quarry_fp32_to_fp16(d);
        /* |x * id| <= 127 (+ rounding), so the int32 -> int8 narrowing never saturates */
        const __m512 vid = _mm512_set1_ps(id);
        const __m512i q0 = _mm512_cvtps_epi32(round_half_away(_mm512_mul_ps(v0, vid)));
        const __m512i q1 = _mm512_cvtps_epi32(round_half_away(_mm512_mul_ps(v1, vid)));
        _mm_storeu_si128((__m128i *)y[i].qs, _mm512_cvtsepi32_epi8(q0));
        _mm_storeu_si128((__m128i *)(y[i].qs + 16), _mm512_cvtsepi32_epi8(q1));
        const int sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
        y[i].s = quarry_fp32_to_fp16((float)sum * d);
    }
}

static void dequantize_row_q8_1_avx512(const void *vx, float *y, int64_t n)
{
    const block_q8_1 *x = vx;
    const int64_t nb = n / QK8_1;
    for (int64_t i = 0; i < nb; i++) {
        const __m512 d = _mm512_set1_ps(_cvtsh_ss(x[i].d));
        const __m128i q0 = _mm_loadu_si128((const __m128i *)x[i].qs);
        const __m128i q1 = _mm_loadu_si128((const __m128i *)(x[i].qs + 16));
        _mm512_storeu_ps(y + i * QK8_1, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q0)), d));
        _mm512_storeu_ps(y + i * QK8_1 + 16,
                         _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q1)), d));
    }
}

void quarry_kernels_q8_1_avx512(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_Q8_1];
    t->to_float = dequantize_row_q8_1_avx512;
    t->from_float = quantize_row_q8_1_avx512;
}
