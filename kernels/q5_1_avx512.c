/*
 * q5_1_avx512.c - AVX-512 kernels for q5_1 (F/BW/VL + VNNI): dequantize and
 * the dot product against q8_1 activations, bit-identical to kernels/q5_1.c.
 *
 * The fifth bits (qh, one per weight) are loaded into a 32-bit mask register
 * that adds 16 to the 4-bit codes of the weights that have it. vec_dot works
 * on groups of 8 blocks. Each block's integer sum sum_j c_j * y_j is formed
 * exactly with one vpdpbusd (codes as unsigned bytes), the 8 block sums are gathered into one vector by a transposing
 * reduction, and the per-block terms
 *     t = (float)sumi * (fp16(x.d) * fp16(y.d)) + fp16(x.m) * fp16(y.s)
 * are formed in vector lanes with the scalar's roundings. Those terms are
 * then added to the running sum one at a time in block order, exactly as the
 * scalar reference does; that chain of float adds (one add latency per
 * block) is what bounds the speed once the integer work is cheap enough to
 * overlap with it. The fp16 pairs (d, m) and (d, s) of 8 blocks are pulled
 * out of the block bytes with word permutes (vpermt2w), never reading past
 * the 8 blocks.
 */
#include <immintrin.h>
#include <string.h>

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

/* The two fp16 fields at the start of 8 blocks, as floats: first[k] and
 * second[k] for block k (d and m of q5_1, d and s of q8_1). */
struct fp16_pairs {
    __m256 first, second;
};

static inline struct fp16_pairs widen_pairs(__m256i words)
{
    const __m512 f = _mm512_cvtph_ps(words);
    return (struct fp16_pairs){_mm512_castps512_ps256(f), _mm512_extractf32x8_ps(f, 1)};
}

/* (d, m) of q5_1 blocks x[0..7]: words 12k and 12k+1 of the 192 bytes;
 * k < 6 from bytes [0, 128), k = 6, 7 from bytes [128, 192). Output words
 * 0..7 are the d's, 8..15 the m's. */
static inline struct fp16_pairs q5_1_scales_8(const block_q5_1 *x)
{
    const uint8_t *p = (const uint8_t *)x;
    const __m512i idx_lo = _mm512_zextsi256_si512(_mm256_setr_epi16(
        0, 12, 24, 36, 48, 60, 0, 0, 1, 13, 25, 37, 49, 61, 0, 0));
    const __m512i idx_hi = _mm512_zextsi256_si512(_mm256_setr_epi16(
        0, 0, 0, 0, 0, 0, 72 - 64, 84 - 64, 0, 0, 0, 0, 0, 0, 73 - 64, 85 - 64));
    const __m512i lo = _mm512_permutex2var_epi16(_mm512_loadu_si512(p), idx_lo,
                                                 _mm512_loadu_si512(p + 64));
    const __m512i hi = _mm512_permutexvar_epi16(idx_hi, _mm512_loadu_si512(p + 128));
    return widen_pairs(_mm256_mask_blend_epi16((__mmask16)0xC0C0, _mm512_castsi512_si256(lo),
                                               _mm512_castsi512_si256(hi)));
}

/* (d, s) of q8_1 blocks y[0..7]: words 18k and 18k+1 of the 288 bytes;
 * k < 4 from bytes [0, 128), k >= 4 from bytes [128, 256). */
static inline struct fp16_pairs q8_1_scales_8(const block_q8_1 *y)
{
    const uint8_t *p = (const uint8_t *)y;
    const __m512i idx_lo = _mm512_zextsi256_si512(_mm256_setr_epi16(
        0, 18, 36, 54, 0, 0, 0, 0, 1, 19, 37, 55, 0, 0, 0, 0));
    const __m512i idx_hi = _mm512_zextsi256_si512(_mm256_setr_epi16(
        0, 0, 0, 0, 72 - 64, 90 - 64, 108 - 64, 126 - 64, 0, 0, 0, 0, 73 - 64, 91 - 64, 109 - 64,
        127 - 64));
    const __m512i lo = _mm512_permutex2var_epi16(_mm512_loadu_si512(p), idx_lo,
                                                 _mm512_loadu_si512(p + 64));
    const __m512i hi = _mm512_permutex2var_epi16(_mm512_loadu_si512(p + 128), idx_hi,
                                                 _mm512_loadu_si512(p + 192));
    return widen_pairs(_mm256_mask_blend_epi16((__mmask16)0xF0F0, _mm512_castsi512_si256(lo),
                                               _mm512_castsi512_si256(hi)));
}

static inline uint32_t load_u32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* The 32 codes of a block (0..31) in weight order: low nibbles of qs are
 * weights 0..15, high nibbles 16..31, and bit j of qh adds 16 to weight j. */
static inline __m256i q5_1_codes(const block_q5_1 *x)
{
    __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)x->qs));
    q = _mm256_mask_srli_epi16(q, (__mmask16)0xFF00, q, 4);
    q = _mm256_and_si256(q, _mm256_set1_epi8(0x0F));
    return _mm256_mask_add_epi8(q, (__mmask32)load_u32(x->qh), q, _mm256_set1_epi8(16));
}

/* sum_j c_j * y_j of block x with activation block y, as 8 int32 partial
 * sums (exact) */
static inline __m256i block_dot(const block_q5_1 *x, const block_q8_1 *y)
{
    const __m256i qy = _mm256_loadu_si256((const __m256i *)y->qs);
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), q5_1_codes(x), qy);
}

/* ---- kernels --------------------------------------------------------------- */

static void dequantize_row_q5_1_avx512(const void *vx, float *y, int64_t n)
{
    const block_q5_1 *x = vx;
    const int64_t nb = n / QK5_1;
    for (int64_t i = 0; i < nb; i++) {
        const __m512 d = _mm512_set1_ps(_cvtsh_ss(x[i].d));
        const __m512 m = _mm512_set1_ps(_cvtsh_ss(x[i].m));
        const __m256i c = q5_1_codes(&x[i]);
        const __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_castsi256_si128(c)));
        const __m512 hi = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_extracti128_si256(c, 1)));
        _mm512_storeu_ps(y + i * QK5_1, _mm512_add_ps(_mm512_mul_ps(lo, d), m));
        _mm512_storeu_ps(y + i * QK5_1 + 16, _mm512_add_ps(_mm512_mul_ps(hi, d), m));
    }
}

static void vec_dot_q5_1_q8_1_avx512(int n, float *s, const void *vx, const void *vy)
{
    const block_q5_1 *x = vx;
    const block_q8_1 *y = vy;
    const int nb = n / QK5_1;
    __m128 sumf = _mm_setzero_ps(); /* lane 0: the running sum */
    int i = 0;
    for (; i + 8 <= nb; i += 8) {
        const __m256i sumi = sum_lanes_8x8(
            block_dot(x + i + 0, y + i + 0), block_dot(x + i + 1, y + i + 1),
            block_dot(x + i + 2, y + i + 2), block_dot(x + i + 3, y + i + 3),
            block_dot(x + i + 4, y + i + 4), block_dot(x + i + 5, y + i + 5),
            block_dot(x + i + 6, y + i + 6), block_dot(x + i + 7, y + i + 7));
        const struct fp16_pairs dm = q5_1_scales_8(x + i), ds = q8_1_scales_8(y + i);
        const __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(sumi), _mm256_mul_ps(dm.first, ds.first));
        sumf = add_lanes_in_order(sumf, _mm256_add_ps(t, _mm256_mul_ps(dm.second, ds.second)));
    }
    for (; i < nb; i++) {
        const int32_t sumi = sum_lanes_8(block_dot(x + i, y + i));
        const float d = _cvtsh_ss(x[i].d) * _cvtsh_ss(y[i].d);
        float t = (float)sumi * d;
        t = t + _cvtsh_ss(x[i].m) * _cvtsh_ss(y[i].s);
        sumf = _mm_add_ss(sumf, _mm_set_ss(t));
    }
    *s = _mm_cvtss_f32(sumf);
}

void quarry_kernels_q5_1_avx512(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_Q5_1];
    t->to_float = dequantize_row_q5_1_avx512;
    t->vec_dot = vec_dot_q5_1_q8_1_avx512;
}
