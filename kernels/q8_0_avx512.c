/*
 * q8_0_avx512.c - AVX-512 kernels for q8_0 (F/BW/VL + VNNI): dequantize, the
 * activation quantizer (from_float) and the q8_0 . q8_0 dot product, all
 * bit-identical to kernels/q8_0.c.
 *
 * vec_dot works on groups of 8 blocks. Each block's integer sum
 * sum_j x_j * y_j is formed exactly with vpdpbusd on (x + 128) as unsigned
 * bytes, minus 128 * sum_j y_j (a second vpdpbusd), so every int8 value is
 * handled, -128 included. The 8 block sums are gathered into one vector, the
 * per-block terms (float)sumi * (fp16(x.d) * fp16(y.d)) are formed in vector
 * lanes and then added to the running sum one at a time in block order, as
 * the scalar reference does. The fp16 scales of 8 blocks come out of the
 * block bytes with word permutes (vpermt2w), never reading past the 8 blocks.
 *
 * from_float follows quantize_row_q8_0_ref step by step (amax, d = amax/127,
 * id = 1/d, roundf(x*id) with ties away from zero, emulated exactly as
 * trunc plus a +-1 correction); a block whose values or inverse scale are not
 * finite takes the scalar path, so every input gives the reference's bytes.
 */
#include <float.h>
#include <immintrin.h>
#include <math.h>

#include "kernels/fp16.h"
#include "kernels/kernels.h"

/* ---- helpers --------------------------------------------------------------- */

/* lane k of the result = sum of the 8 int32 lanes of v_k */
static inline __m256i sum_lanes_8x8(__m256i v0, __m256i v1, __m256i v2, __m256i v3, __m256i v4,
                                    __m256i v5, __m256i v6, __m256i v7)
{
    /* pairs: per 128-bit half [a0+a2, b0+b2, a1+a3, b1+b3] */
    const __m256i t01 = _mm256_add_epi32(_mm256_unpacklo_epi32(v0, v1), _mm256_unpackhi_epi32(v0, v1));
    const __m256i t23 = _mm256_add_epi32(_mm256_unpacklo_epi32(v2, v3), _mm256_unpackhi_epi32(v2, v3));
    const __m256i t45 = _mm256_add_epi32(_mm256_unpacklo_epi32(v4, v5), _mm256_unpackhi_epi32(v4, v5));
    const __m256i t67 = _mm256_add_epi32(_mm256_unpacklo_epi32(v6, v7), _mm256_unpackhi_epi32(v6, v7));
    /* quads: per 128-bit half [s0, s1, s2, s3] (half-sums of each vector) */
    const __m256i q0 = _mm256_add_epi32(_mm256_unpacklo_epi64(t01, t23), _mm256_unpackhi_epi64(t01, t23));
    const __m256i q1 = _mm256_add_epi32(_mm256_unpacklo_epi64(t45, t67), _mm256_unpackhi_epi64(t45, t67));
    /* add the two halves of each vector */
    return _mm256_add_epi32(_mm256_permute2x128_si256(q0, q1, 0x20),
                            _mm256_permute2x128_si256(q0, q1, 0x31));
}

static inline int32_t sum_lanes_8(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

/* sum + t[0] + t[1] + ... + t[7], added one lane at a time in lane order
 * (the running sum lives in lane 0 of sum) */
static inline __m128 add_lanes_in_order(__m128 sum, __m256 t)
{
    const __m128 lo = _mm256_castps256_ps128(t);
    const __m128 hi = _mm256_extractf128_ps(t, 1);
    sum = _mm_add_ss(sum, lo);
    sum = _mm_add_ss(sum, _mm_movehdup_ps(lo));
    sum = _mm_add_ss(sum, _mm_movehl_ps(lo, lo));
    sum = _mm_add_ss(sum, _mm_shuffle_ps(lo, lo, _MM_SHUFFLE(3, 3, 3, 3)));
    sum = _mm_add_ss(sum, hi);
    sum = _mm_add_ss(sum, _mm_movehdup_ps(hi));
    sum = _mm_add_ss(sum, _mm_movehl_ps(hi, hi));
    return _mm_add_ss(sum, _mm_shuffle_ps(hi, hi, _MM_SHUFFLE(3, 3, 3, 3)));
}

/* d of q8_0 blocks b[0..7] as floats. Block k's d is word 17k of the 272
 * bytes: k < 4 from bytes [0, 128), k >= 4 from bytes [128, 192) and
 * [176, 240) (words 64..95 and 88..119). */
static inline __m256 q8_0_scales_8(const block_q8_0 *b)
{
    const uint8_t *p = (const uint8_t *)b;
    const __m512i idx_lo = _mm512_zextsi128_si512(_mm_setr_epi16(0, 17, 34, 51, 0, 0, 0, 0));
    const __m512i idx_hi = _mm512_zextsi128_si512(_mm_setr_epi16(0, 0, 0, 0, 68 - 64, 85 - 64,
                                                                 32 + 102 - 88, 32 + 119 - 88));
    const __m512i lo = _mm512_permutex2var_epi16(_mm512_loadu_si512(p), idx_lo,
                                                 _mm512_loadu_si512(p + 64));
    const __m512i hi = _mm512_permutex2var_epi16(_mm512_loadu_si512(p + 128), idx_hi,
                                                 _mm512_loadu_si512(p + 176));
    return _mm256_cvtph_ps(_mm_blend_epi32(_mm512_castsi512_si128(lo), _mm512_castsi512_si128(hi), 0xC));
}

/* sum_j x_j * y_j of block x with activation block y, as 8 int32 partial
 * sums, exact for all int8 values: (x + 128) * y summed by vpdpbusd, minus
 * 128 * y. */
static inline __m256i block_dot(const block_q8_0 *x, const block_q8_0 *y)
{
    const __m256i bias = _mm256_set1_epi8((char)0x80);
    const __m256i qx = _mm256_loadu_si256((const __m256i *)x->qs);
    const __m256i qy = _mm256_loadu_si256((const __m256i *)y->qs);
    const __m256i biased = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_xor_si256(qx, bias), qy);
    return _mm256_sub_epi32(biased, _mm256_dpbusd_epi32(_mm256_setzero_si256(), bias, qy));
}

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

/* ---- scalar fallback (a copy of kernels/q8_0.c's reference block) --------- */

static inline int8_t round_to_i8(float v)
{
    const float r = roundf(v);
    if (r >= 127.0f)
        return 127;
    if (r <= -128.0f)
        return -128;
    return r == r ? (int8_t)r : 0;
}

static void quantize_block_q8_0_scalar(const float *x, block_q8_0 *y)
{
    float amax = 0.0f;
    for (int j = 0; j < QK8_0; j++) {
        const float a = fabsf(x[j]);
        amax = amax > a ? amax : a;
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y->d = quarry_fp32_to_fp16(d);
    for (int j = 0; j < QK8_0; j++)
        y->qs[j] = round_to_i8(x[j] * id);
}

/* ---- kernels --------------------------------------------------------------- */

static void quantize_row_q8_0_avx512(const float *x, void *vy, int64_t n)
{
    block_q8_0 *y = vy;
    const int64_t nb = n / QK8_0;
    const __m512 finite_max = _mm512_set1_ps(FLT_MAX);
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * QK8_0;
        const __m512 v0 = _mm512_loadu_ps(xb), v1 = _mm512_loadu_ps(xb + 16);
        const __m512 a0 = _mm512_abs_ps(v0), a1 = _mm512_abs_ps(v1);
        const __mmask16 ok0 = _mm512_cmp_ps_mask(a0, finite_max, _CMP_LE_OQ);
        const __mmask16 ok1 = _mm512_cmp_ps_mask(a1, finite_max, _CMP_LE_OQ);
        const float amax = _mm512_reduce_max_ps(_mm512_max_ps(a0, a1));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        if ((ok0 & ok1) != 0xFFFF || !(id <= FLT_MAX)) {
            quantize_block_q8_0_scalar(xb, &y[i]);
            continue;
        }
        y[i].d = quarry_fp32_to_fp16(d);
        /* |x * id| <= 127 (+ rounding), so the int32 -> int8 narrowing never saturates */
        const __m512 vid = _mm512_set1_ps(id);
        const __m512i q0 = _mm512_cvtps_epi32(round_half_away(_mm512_mul_ps(v0, vid)));
        const __m512i q1 = _mm512_cvtps_epi32(round_half_away(_mm512_mul_ps(v1, vid)));
        _mm_storeu_si128((__m128i *)y[i].qs, _mm512_cvtsepi32_epi8(q0));
        _mm_storeu_si128((__m128i *)(y[i].qs + 16), _mm512_cvtsepi32_epi8(q1));
    }
}

static void dequantize_row_q8_0_avx512(const void *vx, float *y, int64_t n)
{
    const block_q8_0 *x = vx;
    const int64_t nb = n / QK8_0;
    for (int64_t i = 0; i < nb; i++) {
        const __m512 d = _mm512_set1_ps(_cvtsh_ss(x[i].d));
        const __m128i q0 = _mm_loadu_si128((const __m128i *)x[i].qs);
        const __m128i q1 = _mm_loadu_si128((const __m128i *)(x[i].qs + 16));
        _mm512_storeu_ps(y + i * QK8_0, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q0)), d));
        _mm512_storeu_ps(y + i * QK8_0 + 16,
                         _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q1)), d));
    }
}

static void vec_dot_q8_0_q8_0_avx512(int n, float *s, const void *vx, const void *vy)
{
    const block_q8_0 *x = vx;
    const block_q8_0 *y = vy;
    const int nb = n / QK8_0;
    __m128 sumf = _mm_setzero_ps(); /* lane 0: the running sum */
    int i = 0;
    for (; i + 8 <= nb; i += 8) {
        const __m256i sumi = sum_lanes_8x8(
            block_dot(x + i + 0, y + i + 0), block_dot(x + i + 1, y + i + 1),
            block_dot(x + i + 2, y + i + 2), block_dot(x + i + 3, y + i + 3),
            block_dot(x + i + 4, y + i + 4), block_dot(x + i + 5, y + i + 5),
            block_dot(x + i + 6, y + i + 6), block_dot(x + i + 7, y + i + 7));
        const __m256 d = _mm256_mul_ps(q8_0_scales_8(x + i), q8_0_scales_8(y + i));
        sumf = add_lanes_in_order(sumf, _mm256_mul_ps(_mm256_cvtepi32_ps(sumi), d));
    }
    for (; i < nb; i++) {
        const int32_t sumi = sum_lanes_8(block_dot(x + i, y + i));
        const float d = _cvtsh_ss(x[i].d) * _cvtsh_ss(y[i].d);
        sumf = _mm_add_ss(sumf, _mm_set_ss((float)sumi * d));
    }
    *s = _mm_cvtss_f32(sumf);
}

void quarry_kernels_q8_0_avx512(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_Q8_0];
    t->to_float = dequantize_row_q8_0_avx512;
    t->from_float = quantize_row_q8_0_avx512;
    t->vec_dot = vec_dot_q8_0_q8_0_avx512;
}
