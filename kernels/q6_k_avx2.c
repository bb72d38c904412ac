/*
 * q6_k_avx2.c - q6_K kernels for AVX2 (+FMA, F16C): dequantize a row and the
 * dot product of a q6_K row with a q8_K activation row.
 *
 * A q6_K super-block holds 256 weights in 16 sub-blocks of 16, each with a
 * signed 8-bit scale: w = d*sc*(q - 32), q in 0..63. In each half h (128
 * weights) the 32-weight groups g = 0..3 take their low 4 bits from
 * ql[64h + 32*(g&1) + l] (low nibble for g < 2, high nibble otherwise) and
 * their top 2 bits from bits 2g..2g+1 of qh[32h + l]. Sub-block = weight / 16.
 *
 * Dot product, exact as the contract in q6_k.c requires: maddubs/madd give
 * sum_k sc_k * sum q*y in int32 lanes with the unsigned q (63*128*2 < 2^15),
 * and the -32 bias is taken back through the activation's bsums:
 * isum = that - 32 * sum_k sc_k*bsums[k] (bsums are the exact 16-value sums of
 * y.qs that every q8_K block carries). Four super-blocks are reduced together
 * and folded in order as in the scalar: sumf = sumf + d*(float)isum,
 * d = y.d * fp16(x.d), the products in vector lanes (same rounding).
 * Dequantization repeats the scalar's (d * sc) * q lane by lane.
 */
#include <immintrin.h>

#include "kernels/kernels.h"
#include "kernels/types.h"

/* The four 32-weight groups of half h of a block as bytes q in 0..63. */
static inline void unpack_q6_half(const uint8_t *ql, const uint8_t *qh, __m256i q[4])
{
    const __m256i m4 = _mm256_set1_epi8(0x0F), top = _mm256_set1_epi8(0x30);
    const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
    const __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
    const __m256i h = _mm256_loadu_si256((const __m256i *)qh);
    /* bits 2g..2g+1 of qh to bits 4..5 (16-bit shifts; stray bits fall outside 0x30) */
    q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(h, 4), top));
    q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(h, 2), top));
    q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(h, top));
    q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                           _mm256_and_si256(_mm256_srli_epi16(h, 2), top));
}

/* 16 signed bytes from q -> 16 floats d*q at y. */
static inline void store_scaled_i8x16(__m128i q, __m256 d, float *y)
{
    const __m256 f0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
    const __m256 f1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q, 8)));
    _mm256_storeu_ps(y, _mm256_mul_ps(d, f0));
    _mm256_storeu_ps(y + 8, _mm256_mul_ps(d, f1));
}

static void dequantize_row_q6_K_avx2(const void *vx, float *y, int64_t n)
{
    const block_q6_K *x = vx;
    const int64_t nb = n / QK_K;
    const __m256i m32 = _mm256_set1_epi8(32);
    for (int64_t i = 0; i < nb; i++) {
        const float d = _cvtsh_ss(x[i].d);
        const int8_t *sc = x[i].scales;
        for (int h = 0; h < 2; h++) {
            __m256i q[4];
            unpack_q6_half(x[i].ql + 64 * h, x[i].qh + 32 * h, q);
            for (int g = 0; g < 4; g++) {
                const __m256i v = _mm256_sub_epi8(q[g], m32);
                const int k = 8 * h + 2 * g;
                const float d0 = d * (float)sc[k], d1 = d * (float)sc[k + 1];
                store_scaled_i8x16(_mm256_castsi256_si128(v), _mm256_set1_ps(d0), y);
                store_scaled_i8x16(_mm256_extracti128_si256(v, 1), _mm256_set1_ps(d1), y + 16);
                y += 32;
            }
        }
    }
}

/* vpshufb controls: row g broadcasts 16-bit scale 2g (of 8 in each 128-bit
 * lane) over the low lane and 2g+1 over the high lane. */
static _Alignas(32) const uint8_t scale_pair_bcast[4][32] = {
#define ROW(j) {4*j, 4*j+1, 4*j, 4*j+1, 4*j, 4*j+1, 4*j, 4*j+1, 4*j, 4*j+1, 4*j, 4*j+1, \
    4*j, 4*j+1, 4*j, 4*j+1, 4*j+2, 4*j+3, 4*j+2, 4*j+3, 4*j+2, 4*j+3, 4*j+2, 4*j+3, \
    4*j+2, 4*j+3, 4*j+2, 4*j+3, 4*j+2, 4*j+3, 4*j+2, 4*j+3}
    ROW(0), ROW(1), ROW(2), ROW(3)
#undef ROW
};

/* One super-block: int32 lanes summing to isum = sum_k sc_k * sum (q-32)*y. */
static inline __m256i superblock_sums(const block_q6_K *x, const block_q8_K *y)
{
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x->scales));
    /* scales 8h..8h+7 as 16-bit values in both 128-bit lanes, for half h */
    const __m256i sc_half0 = _mm256_permute4x64_epi64(sc16, 0x44), sc_half1 = _mm256_permute4x64_epi64(sc16, 0xEE);
    /* 32 * sum_k sc_k * bsums[k] over 8 lanes: the bias of the unsigned q */
    const __m256i bias = _mm256_slli_epi32(_mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)y->bsums)), 5);
    const __m256i ctl0 = _mm256_load_si256((const __m256i *)scale_pair_bcast[0]);
    const __m256i ctl1 = _mm256_load_si256((const __m256i *)scale_pair_bcast[1]);
    const __m256i ctl2 = _mm256_load_si256((const __m256i *)scale_pair_bcast[2]);
    const __m256i ctl3 = _mm256_load_si256((const __m256i *)scale_pair_bcast[3]);
    const int8_t *q8 = y->qs;
#define HALF(h, sc, acc)                                                                                      \
    {                                                                                                         \
        __m256i q[4];                                                                                         \
        unpack_q6_half(x->ql + 64 * (h), x->qh + 32 * (h), q);                                                \
        const int8_t *y8 = q8 + 128 * (h);                                                                    \
        const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(q[0], _mm256_loadu_si256((const __m256i *)y8)), \
                                             _mm256_shuffle_epi8(sc, ctl0));                                  \
        const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(q[1], _mm256_loadu_si256((const __m256i *)(y8 + 32))), \
                                             _mm256_shuffle_epi8(sc, ctl1));                                  \
        const __m256i p2 = _mm256_madd_epi16(_mm256_maddubs_epi16(q[2], _mm256_loadu_si256((const __m256i *)(y8 + 64))), \
                                             _mm256_shuffle_epi8(sc, ctl2));                                  \
        const __m256i p3 = _mm256_madd_epi16(_mm256_maddubs_epi16(q[3], _mm256_loadu_si256((const __m256i *)(y8 + 96))), \
                                             _mm256_shuffle_epi8(sc, ctl3));                                  \
        acc = _mm256_add_epi32(_mm256_add_epi32(p0, p1), _mm256_add_epi32(p2, p3));                          \
    }
    __m256i acc0, acc1;
    HALF(0, sc_half0, acc0)
    HALF(1, sc_half1, acc1)
#undef HALF
    return _mm256_sub_epi32(_mm256_add_epi32(acc0, acc1), bias);
}

/* Integer totals of four super-blocks {isum0, .., isum3}: each sums the 8
 * int32 lanes of its accumulator. */
static inline __m128i reduce4(__m256i a0, __m256i a1, __m256i a2, __m256i a3)
{
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

/* d = y.d * fp16(x.d) for the first count (1..4) super-blocks; later lanes
 * repeat block 0. */
static inline __m128 super_scales4(const block_q6_K *x, const block_q8_K *y, int count)
{
    const int k1 = count > 1 ? 1 : 0, k2 = count > 2 ? 2 : 0, k3 = count > 3 ? 3 : 0;
    const __m128i h01 = _mm_unpacklo_epi16(_mm_loadu_si16(&x[0].d), _mm_loadu_si16(&x[k1].d));
    const __m128i h23 = _mm_unpacklo_epi16(_mm_loadu_si16(&x[k2].d), _mm_loadu_si16(&x[k3].d));
    const __m128 xd = _mm_cvtph_ps(_mm_unpacklo_epi32(h01, h23));
    const __m128 y01 = _mm_unpacklo_ps(_mm_load_ss(&y[0].d), _mm_load_ss(&y[k1].d));
    const __m128 y23 = _mm_unpacklo_ps(_mm_load_ss(&y[k2].d), _mm_load_ss(&y[k3].d));
    return _mm_mul_ps(_mm_movelh_ps(y01, y23), xd);
}

/* sumf + d_k*isum_k for k = 0..count-1, in order. */
static inline float fold4(float sumf, __m128i totals, __m128 d, int count)
{
    const __m128 p = _mm_mul_ps(_mm_cvtepi32_ps(totals), d);
    sumf += _mm_cvtss_f32(p);
    if (count > 1)
        sumf += _mm_cvtss_f32(_mm_movehdup_ps(p));
    if (count > 2)
        sumf += _mm_cvtss_f32(_mm_movehl_ps(p, p));
    if (count > 3)
        sumf += _mm_cvtss_f32(_mm_shuffle_ps(p, p, 3));
    return sumf;
}

static void vec_dot_q6_K_q8_K_avx2(int n, float *s, const void *vx, const void *vy)
{
    const block_q6_K *x = vx;
    const block_q8_K *y = vy;
    const int nb = n / QK_K;
    float sumf = 0.0f;
    for (int i = 0; i < nb; i += 4) {
        const int count = nb - i < 4 ? nb - i : 4;
        const __m256i zero = _mm256_setzero_si256();
        const __m256i a0 = superblock_sums(x + i, y + i);
        const __m256i a1 = count > 1 ? superblock_sums(x + i + 1, y + i + 1) : zero;
        const __m256i a2 = count > 2 ? superblock_sums(x + i + 2, y + i + 2) : zero;
        const __m256i a3 = count > 3 ? superblock_sums(x + i + 3, y + i + 3) : zero;
        sumf = fold4(sumf, reduce4(a0, a1, a2, a3), super_scales4(x + i, y + i, count), count);
    }
    *s = sumf;
}

void quarry_kernels_q6_K_avx2(struct quarry_type_traits *table)
{
    table[QUARRY_TYPE_Q6_K].to_float = dequantize_row_q6_K_avx2;
    table[QUARRY_TYPE_Q6_K].vec_dot = vec_dot_q6_K_q8_K_avx2;
}
