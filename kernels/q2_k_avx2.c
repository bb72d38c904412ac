/*
 * q2_k_avx2.c - q2_K kernels for AVX2 (+FMA, F16C): dequantize a row and the
 * dot product of a q2_K row with a q8_K activation row.
 *
 * A q2_K super-block holds 256 weights in 16 sub-blocks of 16; byte
 * scales[k] has the 4-bit scale (low nibble) and 4-bit min (high nibble) of
 * sub-block k: w = d*sc*q - dmin*m, q in 0..3. Weight 128h + 32j + l is
 * bits 2j..2j+1 of qs[32h + l], sub-block 8h + 2j + l/16.
 *
 * Dot product, exact as the contract in q2_k.c requires: per super-block the
 * int32 sums isum = sum_k sc_k * sum_{l in k} q_l*y_l and
 * isum_m = sum_k m_k * bsums[k] come from maddubs/madd (2-bit times 8-bit
 * products cannot saturate). Four super-blocks are reduced together and
 * folded in order with the scalar's float operations:
 * sumf = sumf + (d*(float)isum - dmin*(float)isum_m), d = y.d*fp16(x.d),
 * dmin = y.d*fp16(x.dmin), the products in vector lanes (same rounding).
 * Dequantization repeats the scalar's d*sc, dmin*m, dl*q - ml lane by lane.
 */
#include <immintrin.h>

#include "kernels/kernels.h"
#include "kernels/types.h"

/* 16 bytes (0..255) -> 16 floats d*q - m at y. */
static inline void store_scaled_u8x16(__m128i q, __m256 d, __m256 m, float *y)
{
    const __m256 f0 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(q));
    const __m256 f1 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(q, 8)));
    _mm256_storeu_ps(y, _mm256_sub_ps(_mm256_mul_ps(d, f0), m));
    _mm256_storeu_ps(y + 8, _mm256_sub_ps(_mm256_mul_ps(d, f1), m));
}

static void dequantize_row_q2_K_avx2(const void *vx, float *y, int64_t n)
{
    const block_q2_K *x = vx;
    const int64_t nb = n / QK_K;
    const __m256i m3 = _mm256_set1_epi8(3);
    for (int64_t i = 0; i < nb; i++) {
        const float d = _cvtsh_ss(x[i].d), dmin = _cvtsh_ss(x[i].dmin);
        const uint8_t *sc = x[i].scales;
        for (int h = 0; h < 2; h++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * h));
            for (int j = 0; j < 4; j++) {
                const __m256i v = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m3);
                const int k = 8 * h + 2 * j;
                const float dl0 = d * (float)(sc[k] & 0xF), ml0 = dmin * (float)(sc[k] >> 4);
                const float dl1 = d * (float)(sc[k + 1] & 0xF), ml1 = dmin * (float)(sc[k + 1] >> 4);
                store_scaled_u8x16(_mm256_castsi256_si128(v), _mm256_set1_ps(dl0), _mm256_set1_ps(ml0), y);
                store_scaled_u8x16(_mm256_extracti128_si256(v, 1), _mm256_set1_ps(dl1), _mm256_set1_ps(ml1),
                                   y + 16);
                y += 32;
            }
        }
    }
}

/* vpshufb controls: row j picks scale bytes 2j (low 128-bit lane) and 2j+1
 * (high lane) of the 8 held in each lane, zero-extended to every 16-bit slot:
 * a 32-weight vector's low and high 16 weights are sub-blocks 2j and 2j+1. */
static _Alignas(32) const uint8_t scale_pair_bcast[4][32] = {
#define ROW(j) {2*j, 0x80, 2*j, 0x80, 2*j, 0x80, 2*j, 0x80, 2*j, 0x80, 2*j, 0x80, 2*j, 0x80, 2*j, 0x80, \
    2*j+1, 0x80, 2*j+1, 0x80, 2*j+1, 0x80, 2*j+1, 0x80, 2*j+1, 0x80, 2*j+1, 0x80, 2*j+1, 0x80, 2*j+1, 0x80}
    ROW(0), ROW(1), ROW(2), ROW(3)
#undef ROW
};

/* One super-block: int32 lanes summing to isum (returned) and to isum_m (*mins). */
static inline __m256i superblock_sums(const block_q2_K *x, const block_q8_K *y, __m128i *mins)
{
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m128i m4 = _mm_set1_epi8(0x0F);
    const __m128i packed = _mm_loadu_si128((const __m128i *)x->scales);
    const __m128i sc8 = _mm_and_si128(packed, m4);
    const __m256i mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), m4));
    const __m256i mprod = _mm256_madd_epi16(mn16, _mm256_loadu_si256((const __m256i *)y->bsums));
    *mins = _mm_add_epi32(_mm256_castsi256_si128(mprod), _mm256_extracti128_si256(mprod, 1));
    /* scale bytes 8h..8h+7 in both 128-bit lanes, for half h */
    const __m256i sc_half0 = _mm256_broadcastsi128_si256(sc8);
    const __m256i sc_half1 = _mm256_broadcastsi128_si256(_mm_srli_si128(sc8, 8));
    const int8_t *q8 = y->qs;
#define HALF(h, sc, acc)                                                                                      \
    {                                                                                                         \
        const __m256i q = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * (h)));                            \
        const __m256i q0 = _mm256_and_si256(q, m3);                                                           \
        const __m256i q1 = _mm256_and_si256(_mm256_srli_epi16(q, 2), m3);                                    \
        const __m256i q2 = _mm256_and_si256(_mm256_srli_epi16(q, 4), m3);                                    \
        const __m256i q3 = _mm256_and_si256(_mm256_srli_epi16(q, 6), m3);                                    \
        const int8_t *y8 = q8 + 128 * (h);                                                                    \
        const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(q0, _mm256_loadu_si256((const __m256i *)y8)), \
            _mm256_shuffle_epi8(sc, _mm256_load_si256((const __m256i *)scale_pair_bcast[0])));                \
        const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(q1, _mm256_loadu_si256((const __m256i *)(y8 + 32))), \
            _mm256_shuffle_epi8(sc, _mm256_load_si256((const __m256i *)scale_pair_bcast[1])));                \
        const __m256i p2 = _mm256_madd_epi16(_mm256_maddubs_epi16(q2, _mm256_loadu_si256((const __m256i *)(y8 + 64))), \
            _mm256_shuffle_epi8(sc, _mm256_load_si256((const __m256i *)scale_pair_bcast[2])));                \
        const __m256i p3 = _mm256_madd_epi16(_mm256_maddubs_epi16(q3, _mm256_loadu_si256((const __m256i *)(y8 + 96))), \
            _mm256_shuffle_epi8(sc, _mm256_load_si256((const __m256i *)scale_pair_bcast[3])));                \
        acc = _mm256_add_epi32(_mm256_add_epi32(p0, p1), _mm256_add_epi32(p2, p3));                          \
    }
    __m256i acc0, acc1;
    HALF(0, sc_half0, acc0)
    HALF(1, sc_half1, acc1)
#undef HALF
    return _mm256_add_epi32(acc0, acc1);
}

/* Integer totals of four super-blocks, {isum0, isum_m0, isum1, isum_m1, ...}:
 * isum_k sums the 8 lanes of a_k, isum_m_k the 4 lanes of m_k. */
static inline __m256i reduce4(__m256i a0, __m256i a1, __m256i a2, __m256i a3, __m128i m0, __m128i m1,
                              __m128i m2, __m128i m3)
{
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
    const __m128i isum = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    const __m128i isum_m = _mm_hadd_epi32(_mm_hadd_epi32(m0, m1), _mm_hadd_epi32(m2, m3));
    return _mm256_set_m128i(_mm_unpackhi_epi32(isum, isum_m), _mm_unpacklo_epi32(isum, isum_m));
}

/* {d0, dmin0, d1, dmin1, ..} with d = y.d * fp16(x.d), dmin = y.d * fp16(x.dmin)
 * for the first count (1..4) super-blocks; later lanes repeat block 0. */
static inline __m256 super_scales4(const block_q2_K *x, const block_q8_K *y, int count)
{
    const int k1 = count > 1 ? 1 : 0, k2 = count > 2 ? 2 : 0, k3 = count > 3 ? 3 : 0;
    const __m128i h01 = _mm_unpacklo_epi32(_mm_loadu_si32(&x[0].d), _mm_loadu_si32(&x[k1].d));
    const __m128i h23 = _mm_unpacklo_epi32(_mm_loadu_si32(&x[k2].d), _mm_loadu_si32(&x[k3].d));
    const __m256 xd = _mm256_cvtph_ps(_mm_unpacklo_epi64(h01, h23));
    const __m128 y01 = _mm_unpacklo_ps(_mm_load_ss(&y[0].d), _mm_load_ss(&y[k1].d));
    const __m128 y23 = _mm_unpacklo_ps(_mm_load_ss(&y[k2].d), _mm_load_ss(&y[k3].d));
    const __m256 yd = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_movelh_ps(y01, y23)),
                                               _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
    return _mm256_mul_ps(yd, xd);
}

/* sumf + (d_k*isum_k - dmin_k*isum_m_k) for k = 0..count-1, in order. */
static inline float fold4(float sumf, __m256i totals, __m256 dd, int count)
{
    const __m256 p = _mm256_mul_ps(_mm256_cvtepi32_ps(totals), dd);
    const __m256 t = _mm256_sub_ps(p, _mm256_movehdup_ps(p)); /* term k in lane 2k */
    const __m128 lo = _mm256_castps256_ps128(t), hi = _mm256_extractf128_ps(t, 1);
    sumf += _mm_cvtss_f32(lo);
    if (count > 1)
        sumf += _mm_cvtss_f32(_mm_movehl_ps(lo, lo));
    if (count > 2)
        sumf += _mm_cvtss_f32(hi);
    if (count > 3)
        sumf += _mm_cvtss_f32(_mm_movehl_ps(hi, hi));
    return sumf;
}

static void vec_dot_q2_K_q8_K_avx2(int n, float *s, const void *vx, const void *vy)
{
    const block_q2_K *x = vx;
    const block_q8_K *y = vy;
    const int nb = n / QK_K;
    float sumf = 0.0f;
    for (int i = 0; i < nb; i += 4) {
        const int count = nb - i < 4 ? nb - i : 4;
        const __m256i zero = _mm256_setzero_si256();
        __m128i m0, m1 = _mm_setzero_si128(), m2 = _mm_setzero_si128(), m3 = _mm_setzero_si128();
        const __m256i a0 = superblock_sums(x + i, y + i, &m0);
        const __m256i a1 = count > 1 ? superblock_sums(x + i + 1, y + i + 1, &m1) : zero;
        const __m256i a2 = count > 2 ? superblock_sums(x + i + 2, y + i + 2, &m2) : zero;
        const __m256i a3 = count > 3 ? superblock_sums(x + i + 3, y + i + 3, &m3) : zero;
        sumf = fold4(sumf, reduce4(a0, a1, a2, a3, m0, m1, m2, m3), super_scales4(x + i, y + i, count), count);
    }
    *s = sumf;
}

void quarry_kernels_q2_K_avx2(struct quarry_type_traits *table)
{
    table[QUARRY_TYPE_Q2_K].to_float = dequantize_row_q2_K_avx2;
    table[QUARRY_TYPE_Q2_K].vec_dot = vec_dot_q2_K_q8_K_avx2;
}
