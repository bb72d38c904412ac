/*
 * q5_0_avx2.c - AVX2 kernels for q5_0: dequantize and the dot product
 * against q8_0 activations, bit-identical to kernels/q5_0.c.
 *
 * The fifth bits (qh, one per weight) are spread to bytes with a byte
 * shuffle and compare. vec_dot works on groups of 8 blocks. Each block's
 * integer sum sum_j (c_j - 16) * y_j = sum_j n_j*y_j - 16 * sum_{fifth bit
 * clear} y_j (n_j the low 4 bits) is formed exactly with two vpmaddubsw (the
 * 16-bit pair sums stay below 2^14) and vpmaddwd, the 8 block sums are gathered
 * into one vector by a transposing reduction, and the per-block terms
 * (float)sumi * (fp16(x.d) * fp16(y.d)) are formed in vector lanes. Those
 * terms are then added to the running sum one at a time in block order,
 * exactly as the scalar reference does.
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

static inline uint32_t load_u32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* 0xFF in byte j where bit j of the block's qh is set, 0 elsewhere */
static inline __m256i fifth_bits(const block_q5_0 *x)
{
    const __m256i spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32((int)load_u32(x->qh)),
        _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101, 0x0202020202020202,
                           0x0303030303030303));
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    return _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
}

/* The low 4 bits of the 32 codes in weight order: low nibbles of qs are
 * weights 0..15, high nibbles 16..31. */
static inline __m256i low_nibbles(const block_q5_0 *x)
{
    const __m128i qs = _mm_loadu_si128((const __m128i *)x->qs);
    return _mm256_and_si256(
        _mm256_inserti128_si256(_mm256_castsi128_si256(qs), _mm_srli_epi16(qs, 4), 1),
        _mm256_set1_epi8(0x0F));
}

/* sum_j (c_j - 16) * y_j of block x with activation block y, as 8 int32
 * partial sums: sum_j n_j*y_j - 16 * sum_{j: fifth bit clear} y_j. The
 * 16-bit pair sums (|.| <= 2*15*128 + 2*16*128) cannot saturate. */
static inline __m256i block_dot(const block_q5_0 *x, const block_q8_0 *y)
{
    const __m256i sixteen_where_clear = _mm256_andnot_si256(fifth_bits(x), _mm256_set1_epi8(16));
    const __m256i qy = _mm256_loadu_si256((const __m256i *)y->qs);
    const __m256i pairs = _mm256_sub_epi16(_mm256_maddubs_epi16(low_nibbles(x), qy),
                                           _mm256_maddubs_epi16(sixteen_where_clear, qy));
    return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

/* ---- kernels --------------------------------------------------------------- */

static void dequantize_row_q5_0_avx2(const void *vx, float *y, int64_t n)
{
    const block_q5_0 *x = vx;
    const int64_t nb = n / QK5_0;
    for (int64_t i = 0; i < nb; i++) {
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(x[i].d));
        /* c - 16 = n - 16 where the fifth bit is clear, n where it is set */
        const __m256i w = _mm256_sub_epi8(low_nibbles(&x[i]),
                                          _mm256_andnot_si256(fifth_bits(&x[i]), _mm256_set1_epi8(16)));
        const __m128i lo = _mm256_castsi256_si128(w), hi = _mm256_extracti128_si256(w, 1);
        float *yb = y + i * QK5_0;
        _mm256_storeu_ps(yb + 0, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), d));
        _mm256_storeu_ps(yb + 8, _mm256_mul_ps(
            _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(lo, lo))), d));
        _mm256_storeu_ps(yb + 16, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), d));
        _mm256_storeu_ps(yb + 24, _mm256_mul_ps(
            _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(hi, hi))), d));
    }
}

static void vec_dot_q5_0_q8_0_avx2(int n, float *s, const void *vx, const void *vy)
{
    const block_q5_0 *x = vx;
    const block_q8_0 *y = vy;
    const int nb = n / QK5_0;
    __m128 sumf = _mm_setzero_ps(); /* lane 0: the running sum */
    int i = 0;
    for (; i + 8 <= nb; i += 8) {
        const __m256i sumi = sum_lanes_8x8(
            block_dot(x + i + 0, y + i + 0), block_dot(x + i + 1, y + i + 1),
            block_dot(x + i + 2, y + i + 2), block_dot(x + i + 3, y + i + 3),
            block_dot(x + i + 4, y + i + 4), block_dot(x + i + 5, y + i + 5),
            block_dot(x + i + 6, y + i + 6), block_dot(x + i + 7, y + i + 7));
        const __m256 d = _mm256_mul_ps(fp16_8_strided((const uint8_t *)&x[i].d, sizeof(block_q5_0)),
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

void quarry_kernels_q5_0_avx2(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_Q5_0];
    t->to_float = dequantize_row_q5_0_avx2;
    t->vec_dot = vec_dot_q5_0_q8_0_avx2;
}
