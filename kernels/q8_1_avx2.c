/*
 * q8_1_avx2.c - AVX2 kernels for q8_1: the activation quantizer (from_float)
 * and to_float, bit-identical to kernels/q8_1.c. q8_1 is the activation
 * type of q4_1 and q5_1; it has no vec_dot of its own.
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
static inline __m256 round_half_away(__m256 v)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 frac = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
    const __m256 up = _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    const __m256 one = _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(v, sign));
    return _mm256_add_ps(t, _mm256_and_ps(up, one));
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

static void quantize_row_q8_1_avx2(const float *x, void *vy, int64_t n)
{
    block_q8_1 *y = vy;
    const int64_t nb = n / QK8_1;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 finite_max = _mm256_set1_ps(FLT_MAX);
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * QK8_1;
        __m256 v[4], amax8 = _mm256_setzero_ps(), ok = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(xb + 8 * k);
            const __m256 a = _mm256_andnot_ps(sign, v[k]);
            ok = _mm256_and_ps(ok, _mm256_cmp_ps(a, finite_max, _CMP_LE_OQ));
            amax8 = _mm256_max_ps(amax8, a);
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax8), _mm256_extractf128_ps(amax8, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        if (_mm256_movemask_ps(ok) != 0xFF || !(id <= FLT_MAX)) {
            quantize_block_q8_1_scalar(xb, &y[i]);
            continue;
        }
        y[i].d = quarry_fp32_to_fp16(d);
        /* |x * id| <= 127 (+ rounding), so the narrowing packs never saturate */
        const __m256 vid = _mm256_set1_ps(id);
        __m256i q[4];
        for (int k = 0; k < 4; k++)
            q[k] = _mm256_cvtps_epi32(round_half_away(_mm256_mul_ps(v[k], vid)));
        /* packs work per 128-bit half: bytes come out as 4-byte groups
         * 0 2 4 6 1 3 5 7, put back in order by a dword permute */
        const __m256i w = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        const __m256i q4 = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(q4), _mm256_extracti128_si256(q4, 1));
        s4 = _mm_add_epi32(s4, _mm_unpackhi_epi64(s4, s4));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(2, 3, 0, 1)));
        y[i].s = quarry_fp32_to_fp16((float)_mm_cvtsi128_si32(s4) * d);
        _mm256_storeu_si256((__m256i *)y[i].qs,
                            _mm256_permutevar8x32_epi32(w, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    }
}

static void dequantize_row_q8_1_avx2(const void *vx, float *y, int64_t n)
{
    const block_q8_1 *x = vx;
    const int64_t nb = n / QK8_1;
    for (int64_t i = 0; i < nb; i++) {
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(x[i].d));
        for (int k = 0; k < 4; k++) {
            const __m128i q = _mm_loadl_epi64((const __m128i *)(x[i].qs + 8 * k));
            _mm256_storeu_ps(y + i * QK8_1 + 8 * k,
                             _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), d));
        }
    }
}

void quarry_kernels_q8_1_avx2(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_Q8_1];
    t->to_float = dequantize_row_q8_1_avx2;
    t->from_float = quantize_row_q8_1_avx2;
}
