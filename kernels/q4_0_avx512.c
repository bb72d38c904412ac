/*
 * q4_0_avx512.c - AVX-512 kernels for q4_0 (F/BW/VL + VNNI): dequantize and
 * the dot product against q8_0 activations, bit-identical to kernels/q4_0.c.
 *
 * vec_dot works on groups of 8 blocks. Each block's integer sum
 * sum_j (c_j - 8) * y_j is formed exactly with vpdpbusd (codes as unsigned
 * bytes times activations, minus 8 * sum_j y_j, also by vpdpbusd), the 8
 * block sums are gathered into one vector by a transposing reduction, and the
 * per-block terms (float)sumi * (fp16(x.d) * fp16(y.d)) are formed in vector
 * lanes. Those terms are then added to the running sum one at a time in block
 * order, exactly as the scalar reference does; that chain of float adds (one
 * add latency per block) is what bounds the speed once the integer work is
 * cheap enough to overlap with it. The fp16 scales of 8 blocks are picked
 * out of 64-byte loads of the block bytes with word permutes (vpermt2w),
 * never reading past the 8 blocks.
 */
#include <immintrin.h>

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

/* d of blocks x[0..7] as floats. Block k's d is 16-bit word 9k of the 144
 * bytes, so all 8 lie in the first 128 bytes. */
static inline __m256 q4_0_scales_8(const block_q4_0 *x)
{
    const uint8_t *p = (const uint8_t *)x;
    const __m512i idx = _mm512_zextsi128_si512(_mm_setr_epi16(0, 9, 18, 27, 36, 45, 54, 63));
    const __m512i w = _mm512_permutex2var_epi16(_mm512_loadu_si512(p), idx, _mm512_loadu_si512(p + 64));
    return _mm256_cvtph_ps(_mm512_castsi512_si128(w));
}

/* d of q8_0 blocks y[0..7] as floats. Block k's d is word 17k of the 272
 * bytes: k < 4 from bytes [0, 128), k >= 4 from bytes [128, 192) and
 * [176, 240) (words 64..95 and 88..119). */
static inline __m256 q8_0_scales_8(const block_q8_0 *y)
{
    const uint8_t *p = (const uint8_t *)y;
    const __m512i idx_lo = _mm512_zextsi128_si512(_mm_setr_epi16(0, 17, 34, 51, 0, 0, 0, 0));
    const __m512i idx_hi = _mm512_zextsi128_si512(_mm_setr_epi16(0, 0, 0, 0, 68 - 64, 85 - 64,
                                                                 32 + 102 - 88, 32 + 119 - 88));
    const __m512i lo = _mm512_permutex2var_epi16(_mm512_loadu_si512(p), idx_lo,
                                                 _mm512_loadu_si512(p + 64));
    const __m512i hi = _mm512_permutex2var_epi16(_mm512_loadu_si512(p + 128), idx_hi,
                                                 _mm512_loadu_si512(p + 176));
    return _mm256_cvtph_ps(_mm_blend_epi32(_mm512_castsi512_si128(lo), _mm512_castsi512_si128(hi), 0xC));
}

/* The 32 codes of a block (0..15) in weight order: low nibbles of qs are
 * weights 0..15, high nibbles 16..31. */
static inline __m256i q4_0_codes(const block_q4_0 *x)
{
    __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)x->qs));
    q = _mm256_mask_srli_epi16(q, (__mmask16)0xFF00, q, 4);
    return _mm256_and_si256(q, _mm256_set1_epi8(0x0F));
}

/* sum_j (c_j - 8) * y_j of block x with activation block y, as 8 int32
 * partial sums (exact: codes <= 15 and |y| <= 128 keep every vpdpbusd lane
 * far from overflow). */
static inline __m256i block_dot(const block_q4_0 *x, const block_q8_0 *y)
{
    const __m256i qy = _mm256_loadu_si256((const __m256i *)y->qs);
    const __m256i cy = _mm256_dpbusd_epi32(_mm256_setzero_si256(), q4_0_codes(x), qy);
    const __m256i y8 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(8), qy);
    return _mm256_sub_epi32(cy, y8);
}

/* ---- kernels --------------------------------------------------------------- */

static void dequantize_row_q4_0_avx512(const void *vx, float *y, int64_t n)
{
    const block_q4_0 *x = vx;
    const int64_t nb = n / QK4_0;
    const __m128i low4 = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
    for (int64_t i = 0; i < nb; i++) {
        const __m512 d = _mm512_set1_ps(_cvtsh_ss(x[i].d));
        const __m128i qs = _mm_loadu_si128((const __m128i *)x[i].qs);
        const __m128i lo = _mm_sub_epi8(_mm_and_si128(qs, low4), eight);
        const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(qs, 4), low4), eight);
        _mm512_storeu_ps(y + i * QK4_0, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(lo)), d));
        _mm512_storeu_ps(y + i * QK4_0 + 16,
                         _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(hi)), d));
    }
}

static void vec_dot_q4_0_q8_0_avx512(int n, float *s, const void *vx, const void *vy)
{
    const block_q4_0 *x = vx;
    const block_q8_0 *y = vy;
    const int nb = n / QK4_0;
    __m128 sumf = _mm_setzero_ps(); /* lane 0: the running sum */
    int i = 0;
    for (; i + 8 <= nb; i += 8) {
        const __m256i sumi = sum_lanes_8x8(
            block_dot(x + i + 0, y + i + 0), block_dot(x + i + 1, y + i + 1),
            block_dot(x + i + 2, y + i + 2), block_dot(x + i + 3, y + i + 3),
            block_dot(x + i + 4, y + i + 4), block_dot(x + i + 5, y + i + 5),
            block_dot(x + i + 6, y + i + 6), block_dot(x + i + 7, y + i + 7));
        const __m256 d = _mm256_mul_ps(q4_0_scales_8(x + i), q8_0_scales_8(y + i));
        sumf = add_lanes_in_order(sumf, _mm256_mul_ps(_mm256_cvtepi32_ps(sumi), d));
    }
    for (; i < nb; i++) {
        const int32_t sumi = sum_lanes_8(block_dot(x + i, y + i));
        const float d = _cvtsh_ss(x[i].d) * _cvtsh_ss(y[i].d);
        sumf = _mm_add_ss(sumf, _mm_set_ss((float)sumi * d));
    }
    *s = _mm_cvtss_f32(sumf);
}

void quarry_kernels_q4_0_avx512(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_Q4_0];
    t->to_float = dequantize_row_q4_0_avx512;
    t->vec_dot = vec_dot_q4_0_q8_0_avx512;
}
