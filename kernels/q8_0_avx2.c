/*
 * q8_0_avx2.c - AVX2 kernels for q8_0: dequantize, the activation quantizer
 * (from_float) and the q8_0 . q8_0 dot product, all bit-identical to
 * kernels/q8_0.c.
 *
 * vec_dot works on groups of 8 blocks. Each block's integer sum
 * sum_j x_j * y_j is formed with vpmaddubsw on |x| and y carrying x's sign,
 * then vpmaddwd. That is exact when the activation y has no -128 (whose
 * negation wraps): the q8_0 quantizer never writes -128 (|x/d| <= 127), and
 * the weights x may hold any int8 value. The 8 block sums are gathered into
 * one vector, the per-block terms (float)sumi * (fp16(x.d) * fp16(y.d)) are
 * formed in vector lanes and then added to the running sum one at a time in
 * block order, as the scalar reference does.
 *
 * from_float follows quantize_row_q8_0_ref step by step (amax, d = amax/127,
 * id = 1/d, roundf(x*id) with ties away from zero, emulated exactly as
 * trunc plus a +-1 correction); a block whose values or inverse scale are not
 * finite takes the scalar path, so every input gives the reference's bytes.
 */
#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>

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

static inline int load_u16(const void *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* 8 fp16 values, the k-th at p + k*stride, as floats */
static inline __m256 fp16_8_strided(const uint8_t *p, size_t stride)
{
    __m128i h = _mm_cvtsi32_si128(load_u16(p));
    h = _mm_insert_epi16(h, load_u16(p + 1 * stride), 1);
    h = _mm_insert_epi16(h, load_u16(p + 2 * stride), 2);
    h = _mm_insert_epi16(h, load_u16(p + 3 * stride), 3);
    h = _mm_insert_epi16(h, load_u16(p + 4 * stride), 4);
    h = _mm_insert_epi16(h, load_u16(p + 5 * stride), 5);
    h = _mm_insert_epi16(h, load_u16(p + 6 * stride), 6);
    h = _mm_insert_epi16(h, load_u16(p + 7 * stride), 7);
    return _mm256_cvtph_ps(h);
}

/* sum_j x_j * y_j of block x with activation block y, as 8 int32 partial
 * sums. |x| <= 128 and |y| <= 127 keep the 16-bit pair sums of vpmaddubsw
 * below 2^15. */
static inline __m256i block_dot(const block_q8_0 *x, const block_q8_0 *y)
{
    const __m256i qx = _mm256_loadu_si256((const __m256i *)x->qs);
    const __m256i qy = _mm256_loadu_si256((const __m256i *)y->qs);
    const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(qx, qx), _mm256_sign_epi8(qy, qx));
    return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

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

static void quantize_row_q8_0_avx2(const float *x, void *vy, int64_t n)
{
    block_q8_0 *y = vy;
    const int64_t nb = n / QK8_0;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 finite_max = _mm256_set1_ps(FLT_MAX);
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * QK8_0;
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
            quantize_block_q8_0_scalar(xb, &y[i]);
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
        _mm256_storeu_si256((__m256i *)y[i].qs,
                            _mm256_permutevar8x32_epi32(w, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    }
}

static void dequantize_row_q8_0_avx2(const void *vx, float *y, int64_t n)
{
    const block_q8_0 *x = vx;
    const int64_t nb = n / QK8_0;
    for (int64_t i = 0; i < nb; i++) {
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(x[i].d));
        for (int k = 0; k < 4; k++) {
            const __m128i q = _mm_loadl_epi64((const __m128i *)(x[i].qs + 8 * k));
            _mm256_storeu_ps(y + i * QK8_0 + 8 * k,
                             _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), d));
        }
    }
}

static void vec_dot_q8_0_q8_0_avx2(int n, float *s, const void *vx, const void *vy)
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
        const __m256 d = _mm256_mul_ps(fp16_8_strided((const uint8_t *)&x[i].d, sizeof(block_q8_0)),
                                       fp16_8_strided((const uint8_t *)&y[i].d, sizeof(block_q8_0)));
        sumf = add_lanes_in_order(sumf, _mm256_mul_ps(_mm256_cvtepi32_ps(sumi), d));
    }
    for (; i < nb; i++) {
        const int32_t sumi = sum_lanes_8(block_dot(x + i, y + i));
        const float d = _cvtsh_ss(x[i].d) * _cvtsh_ss(y[i].d);
        sumf = _mm_add_ss(sumf, _mm_set_ss((float)sumi * d));
    }
    *s = _mm_cvtss_f32(sumf);
}

void quarry_kernels_q8_0_avx2(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_Q8_0];
    t->to_float = dequantize_row_q8_0_avx2;
    t->from_float = quantize_row_q8_0_avx2;
    t->vec_dot = vec_dot_q8_0_q8_0_avx2;
}
