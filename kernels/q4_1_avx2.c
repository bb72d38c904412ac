/*
 * q4_1_avx2.c - AVX2 kernels for q4_1: dequantize and the dot product
 * against q8_1 activations, bit-identical to kernels/q4_1.c.
 *
 * vec_dot works on groups of 8 blocks. Each block's integer sum
 * sum_j c_j * y_j is formed exactly with vpmaddubsw (codes as unsigned
 * bytes; the 16-bit pair sums stay below 2^12) and vpmaddwd, the 8 block
 * sums are gathered into one vector by a transposing reduction, and the
 * per-block terms
 *     t = (float)sumi * (fp16(x.d) * fp16(y.d)) + fp16(x.m) * fp16(y.s)
 * are formed in vector lanes with the scalar's roundings. Those terms are
 * then added to the running sum one at a time in block order, exactly as the
 * scalar reference does.
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

static inline int load_i32(const void *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* 4 dwords, the k-th at p + k*stride */
static inline __m128i dwords_4(const uint8_t *p, size_t stride)
{
    __m128i v = _mm_cvtsi32_si128(load_i32(p));
    v = _mm_insert_epi32(v, load_i32(p + stride), 1);
    v = _mm_insert_epi32(v, load_i32(p + 2 * stride), 2);
    return _mm_insert_epi32(v, load_i32(p + 3 * stride), 3);
}

/* The two fp16 fields at the start of 8 blocks, as floats: first[k] and
 * second[k] for block k (d and m of q4_1, d and s of q8_1). */
struct fp16_pairs {
    __m256 first, second;
};

/* the pairs of 8 blocks starting at p, `stride` bytes apart */
static inline struct fp16_pairs fp16_pairs_8(const uint8_t *p, size_t stride)
{
    const __m256i pairs = _mm256_inserti128_si256(_mm256_castsi128_si256(dwords_4(p, stride)),
                                                  dwords_4(p + 4 * stride, stride), 1);
    const __m256i first = _mm256_and_si256(pairs, _mm256_set1_epi32(0xFFFF));
    const __m256i second = _mm256_srli_epi32(pairs, 16);
    /* per 128-bit half [f0..f3 s0..s3 | f4..f7 s4..s7] -> [f0..f7 | s0..s7] */
    const __m256i words = _mm256_permute4x64_epi64(_mm256_packus_epi32(first, second),
                                                   _MM_SHUFFLE(3, 1, 2, 0));
    return (struct fp16_pairs){_mm256_cvtph_ps(_mm256_castsi256_si128(words)),
                               _mm256_cvtph_ps(_mm256_extracti128_si256(words, 1))};
}

/* The 32 codes of a block (0..15) in weight order: low nibbles of qs are
 * weights 0..15, high nibbles 16..31. */
static inline __m256i q4_1_codes(const block_q4_1 *x)
{
    const __m128i qs = _mm_loadu_si128((const __m128i *)x->qs);
    return _mm256_and_si256(
        _mm256_inserti128_si256(_mm256_castsi128_si256(qs), _mm_srli_epi16(qs, 4), 1),
        _mm256_set1_epi8(0x0F));
}

/* sum_j c_j * y_j of block x with activation block y, as 8 int32 partial
 * sums (exact) */
static inline __m256i block_dot(const block_q4_1 *x, const block_q8_1 *y)
{
    const __m256i qy = _mm256_loadu_si256((const __m256i *)y->qs);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(q4_1_codes(x), qy), _mm256_set1_epi16(1));
}

/* the low 8 bytes of c (codes, unsigned) as floats */
static inline __m256 codes_8(__m128i c)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(c));
}

/* ---- kernels --------------------------------------------------------------- */

static void dequantize_row_q4_1_avx2(const void *vx, float *y, int64_t n)
{
    const block_q4_1 *x = vx;
    const int64_t nb = n / QK4_1;
    for (int64_t i = 0; i < nb; i++) {
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(x[i].d));
        const __m256 m = _mm256_set1_ps(_cvtsh_ss(x[i].m));
        const __m256i c = q4_1_codes(&x[i]);
        const __m128i lo = _mm256_castsi256_si128(c), hi = _mm256_extracti128_si256(c, 1);
        float *yb = y + i * QK4_1;
        _mm256_storeu_ps(yb + 0, _mm256_add_ps(_mm256_mul_ps(codes_8(lo), d), m));
        _mm256_storeu_ps(yb + 8, _mm256_add_ps(_mm256_mul_ps(codes_8(_mm_unpackhi_epi64(lo, lo)), d), m));
        _mm256_storeu_ps(yb + 16, _mm256_add_ps(_mm256_mul_ps(codes_8(hi), d), m));
        _mm256_storeu_ps(yb + 24, _mm256_add_ps(_mm256_mul_ps(codes_8(_mm_unpackhi_epi64(hi, hi)), d), m));
    }
}

static void vec_dot_q4_1_q8_1_avx2(int n, float *s, const void *vx, const void *vy)
{
    const block_q4_1 *x = vx;
    const block_q8_1 *y = vy;
    const int nb = n / QK4_1;
    __m128 sumf = _mm_setzero_ps(); /* lane 0: the running sum */
    int i = 0;
    for (; i + 8 <= nb; i += 8) {
        const __m256i sumi = sum_lanes_8x8(
            block_dot(x + i + 0, y + i + 0), block_dot(x + i + 1, y + i + 1),
            block_dot(x + i + 2, y + i + 2), block_dot(x + i + 3, y + i + 3),
            block_dot(x + i + 4, y + i + 4), block_dot(x + i + 5, y + i + 5),
            block_dot(x + i + 6, y + i + 6), block_dot(x + i + 7, y + i + 7));
        const struct fp16_pairs dm = fp16_pairs_8((const uint8_t *)(x + i), sizeof(block_q4_1));
        const struct fp16_pairs ds = fp16_pairs_8((const uint8_t *)(y + i), sizeof(block_q8_1));
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

void quarry_kernels_q4_1_avx2(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_Q4_1];
    t->to_float = dequantize_row_q4_1_avx2;
    t->vec_dot = vec_dot_q4_1_q8_1_avx2;
}
