/*
 * q3_k_avx2.c - q3_K kernels for AVX2 (+FMA, F16C): dequantize a row and the
 * dot product of a q3_K row with a q8_K activation row.
 *
 * A q3_K super-block holds 256 weights in 16 sub-blocks of 16, each with a
 * signed 6-bit scale (stored +32 in 12 packed bytes): w = d*sc*q with q in
 * -4..3. Weight 128h + 32j + l has its low 2 bits at bits 2j..2j+1 of
 * qs[32h + l] and its high bit at bit 4h + j of hmask[l]; a clear high bit
 * means "subtract 4". Sub-block 8h + 2j + l/16.
 *
 * Dot product, exact as the contract in q3_k.c requires: with u = q + 4 in
 * 0..7 (low bits plus 4 * high bit) maddubs/madd give sum_k sc_k * sum u*y in
 * int32 lanes, and the bias is taken back through the activation's bsums:
 * isum = that - 4 * sum_k sc_k*bsums[k] (bsums are the exact 16-value sums of
 * y.qs that every q8_K block carries). Four super-blocks are reduced together
 * and folded in order as in the scalar: sumf = sumf + d*(float)isum,
 * d = y.d * fp16(x.d), the products in vector lanes (same rounding).
 * Dequantization repeats the scalar's dl = d * sc, then dl * q, lane by lane.
 */
#include <immintrin.h>

#include "kernels/kernels.h"
#include "kernels/types.h"

/* The 16 scales (-32..31) of a block as bytes, from the 12 packed bytes:
 * scale k has its low 4 bits in byte k%8 (low nibble for k < 8) and its top
 * 2 bits at bit 2*(k/4) of byte 8 + k%4; stored with a bias of 32. */
static inline __m128i unpack_q3_scales(const uint8_t *packed)
{
    /* v: the 12 bytes (two loads, so nothing past the block is read) */
    const __m128i v = _mm_unpacklo_epi64(_mm_loadu_si64(packed), _mm_loadu_si32(packed + 8));
    const __m128i m4 = _mm_set1_epi8(0x0F);
    /* low 4 bits: scale k < 8 from the low nibble of byte k, k >= 8 from the high nibble of byte k-8 */
    const __m128i low = _mm_unpacklo_epi64(_mm_and_si128(v, m4), _mm_and_si128(_mm_srli_epi16(v, 4), m4));
    /* top 2 bits: byte 8 + k%4 shifted right by 2*(k/4) (one shift count per dword) */
    const __m128i w = _mm_shuffle_epi8(v, _mm_setr_epi8(8, 9, 10, 11, 8, 9, 10, 11, 8, 9, 10, 11, 8, 9, 10, 11));
    const __m128i top = _mm_and_si128(_mm_slli_epi16(_mm_srlv_epi32(w, _mm_setr_epi32(0, 2, 4, 6)), 4),
                                      _mm_set1_epi8(0x30));
    return _mm_sub_epi8(_mm_or_si128(low, top), _mm_set1_epi8(32));
}

/* 16 signed bytes from q -> 16 floats d*q at y. */
static inline void store_scaled_i8x16(__m128i q, __m256 d, float *y)
{
    const __m256 f0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
    const __m256 f1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q, 8)));
    _mm256_storeu_ps(y, _mm256_mul_ps(d, f0));
    _mm256_storeu_ps(y + 8, _mm256_mul_ps(d, f1));
}

static void dequantize_row_q3_K_avx2(const void *vx, float *y, int64_t n)
{
    const block_q3_K *x = vx;
    const int64_t nb = n / QK_K;
    const __m256i m3 = _mm256_set1_epi8(3), four = _mm256_set1_epi8(4);
    for (int64_t i = 0; i < nb; i++) {
        const float d = _cvtsh_ss(x[i].d);
        int8_t sc[16];
        _mm_storeu_si128((__m128i *)sc, unpack_q3_scales(x[i].scales));
        const __m256i hm = _mm256_loadu_si256((const __m256i *)x[i].hmask);
        for (int h = 0; h < 2; h++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * h));
            for (int j = 0; j < 4; j++) {
                const __m256i bit = _mm256_set1_epi8((char)(1 << (4 * h + j)));
                const __m256i high = _mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), bit);
                const __m256i v = _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m3),
                                                  _mm256_andnot_si256(high, four));
                const int k = 8 * h + 2 * j;
                const float dl0 = d * (float)sc[k], dl1 = d * (float)sc[k + 1];
                store_scaled_i8x16(_mm256_castsi256_si128(v), _mm256_set1_ps(dl0), y);
                store_scaled_i8x16(_mm256_extracti128_si256(v, 1), _mm256_set1_ps(dl1), y + 16);
                y += 32;
            }
        }
    }
}

/* vpshufb controls: row j broadcasts 16-bit scale 2j (of 8 in each 128-bit
 * lane) over the low lane and 2j+1 over the high lane (sub-blocks of the low
 * and high 16 weights of a 32-weight vector). */
static _Alignas(32) const uint8_t scale_pair_bcast[4][32] = {
#define ROW(j) {4*j, 4*j+1, 4*j, 4*j+1, 4*j, 4*j+1, 4*j, 4*j+1, 4*j, 4*j+1, 4*j, 4*j+1, \
    4*j, 4*j+1, 4*j, 4*j+1, 4*j+2, 4*j+3, 4*j+2, 4*j+3, 4*j+2, 4*j+3, 4*j+2, 4*j+3, \
    4*j+2, 4*j+3, 4*j+2, 4*j+3, 4*j+2, 4*j+3, 4*j+2, 4*j+3}
    ROW(0), ROW(1), ROW(2), ROW(3)
#undef ROW
};

/* One super-block: int32 lanes summing to isum = sum_k sc_k * sum q*y. */
static inline __m256i superblock_sums(const block_q3_K *x, const block_q8_K *y)
{
    const __m256i m3 = _mm256_set1_epi8(3), m4 = _mm256_set1_epi8(4);
    const __m256i sc16 = _mm256_cvtepi8_epi16(unpack_q3_scales(x->scales));
    /* scales 8h..8h+7 as 16-bit values in both 128-bit lanes, for half h */
    const __m256i sc_half0 = _mm256_permute4x64_epi64(sc16, 0x44), sc_half1 = _mm256_permute4x64_epi64(sc16, 0xEE);
    /* 4 * sum_k sc_k * bsums[k] over 8 lanes: the bias of u = q + 4 */
    const __m256i bias = _mm256_slli_epi32(_mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)y->bsums)), 2);
    const __m256i hm = _mm256_loadu_si256((const __m256i *)x->hmask);
    const __m256i ctl0 = _mm256_load_si256((const __m256i *)scale_pair_bcast[0]);
    const __m256i ctl1 = _mm256_load_si256((const __m256i *)scale_pair_bcast[1]);
    const __m256i ctl2 = _mm256_load_si256((const __m256i *)scale_pair_bcast[2]);
    const __m256i ctl3 = _mm256_load_si256((const __m256i *)scale_pair_bcast[3]);
    const int8_t *q8 = y->qs;
    /* u = low 2 bits | high bit << 2, with hb holding bit 4h+j of hmask at bit 2+j */
#define HALF(h, hb, sc, acc)                                                                                  \
    {                                                                                                         \
        const __m256i q = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * (h)));                            \
        const __m256i u0 = _mm256_or_si256(_mm256_and_si256(q, m3), _mm256_and_si256(hb, m4));               \
        const __m256i u1 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 2), m3),                    \
                                           _mm256_and_si256(_mm256_srli_epi16(hb, 1), m4));                   \
        const __m256i u2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m3),                    \
                                           _mm256_and_si256(_mm256_srli_epi16(hb, 2), m4));                   \
        const __m256i u3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 6), m3),                    \
                                           _mm256_and_si256(_mm256_srli_epi16(hb, 3), m4));                   \
        const int8_t *y8 = q8 + 128 * (h);                                                                    \
        const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(u0, _mm256_loadu_si256((const __m256i *)y8)), \
                                             _mm256_shuffle_epi8(sc, ctl0));                                  \
        const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(u1, _mm256_loadu_si256((const __m256i *)(y8 + 32))), \
                                             _mm256_shuffle_epi8(sc, ctl1));                                  \
        const __m256i p2 = _mm256_madd_epi16(_mm256_maddubs_epi16(u2, _mm256_loadu_si256((const __m256i *)(y8 + 64))), \
                                             _mm256_shuffle_epi8(sc, ctl2));                                  \
        const __m256i p3 = _mm256_madd_epi16(_mm256_maddubs_epi16(u3, _mm256_loadu_si256((const __m256i *)(y8 + 96))), \
                                             _mm256_shuffle_epi8(sc, ctl3));                                  \
        acc = _mm256_add_epi32(_mm256_add_epi32(p0, p1), _mm256_add_epi32(p2, p3));                          \
    }
    __m256i acc0, acc1;
    HALF(0, _mm256_slli_epi16(hm, 2), sc_half0, acc0)
    HALF(1, _mm256_srli_epi16(hm, 2), sc_half1, acc1)
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
static inline __m128 super_scales4(const block_q3_K *x, const block_q8_K *y, int count)
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

static void vec_dot_q3_K_q8_K_avx2(int n, float *s, const void *vx, const void *vy)
{
    const block_q3_K *x = vx;
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

void quarry_kernels_q3_K_avx2(struct quarry_type_traits *table)
{
    table[QUARRY_TYPE_Q3_K].to_float = dequantize_row_q3_K_avx2;
    table[QUARRY_TYPE_Q3_K].vec_dot = vec_dot_q3_K_q8_K_avx2;
}
