/*
 * q2_k_avx512.c - q2_K kernels for AVX-512 (F/BW/VL/DQ/VNNI): dequantize a row
 * and the dot product of a q2_K row with a q8_K activation row.
 *
 * Layout (see q2_k.c): 16 sub-blocks of 16 weights; weight
 * 128h + 32j + l is bits 2j..2j+1 of qs[32h + l]. A zmm of 64 consecutive
 * weights 64m.. (m = 2h + t) is the 32 bytes qs[32h..] broadcast to both
 * halves and shifted right by 4t (lower half) and 4t+2 (upper half); its four
 * 128-bit lanes are sub-blocks 4m..4m+3.
 *
 * Dot product, exact as the contract in q2_k.c requires: maddubs gives 16-bit
 * pair sums of q*y, vpdpwssd multiplies them by the sub-block scale into int32
 * lanes, and the mins meet the activation's bsums in a madd. Four
 * super-blocks are reduced together to their integer totals isum/isum_m,
 * which are then folded in super-block order with the scalar's float
 * operations: sumf = sumf + (d*(float)isum - dmin*(float)isum_m), the
 * products computed in vector lanes (same rounding), the sums sequential.
 * Dequantization does the scalar's float operations (d*sc, dmin*m,
 * dl*q - ml) lane by lane.
 */
#include <immintrin.h>

#include "kernels/kernels.h"
#include "kernels/types.h"

/* 16 bytes (0..255) -> 16 floats d*q - m at y. */
static inline void store_scaled_u8x16(__m128i q, __m512 d, __m512 m, float *y)
{
    const __m512 f = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(q));
    _mm512_storeu_ps(y, _mm512_sub_ps(_mm512_mul_ps(d, f), m));
}

static void dequantize_row_q2_K_avx512(const void *vx, float *y, int64_t n)
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
                store_scaled_u8x16(_mm256_castsi256_si128(v), _mm512_set1_ps(dl0), _mm512_set1_ps(ml0), y);
                store_scaled_u8x16(_mm256_extracti128_si256(v, 1), _mm512_set1_ps(dl1), _mm512_set1_ps(ml1),
                                   y + 16);
                y += 32;
            }
        }
    }
}

/* Constants of the dot product. ctl[m]: vpshufb control giving 128-bit lane L
 * of zmm m the 4-bit scale of sub-block 4m+L (byte 4m+L of the 16 scale bytes
 * held in every lane), zero-extended to 16 bits. */
struct q2k_consts {
    __m512i three, shift01, shift23;
    __m512i ctl[4];
};

static inline struct q2k_consts q2k_consts_make(void)
{
    struct q2k_consts c;
    c.three = _mm512_set1_epi8(3);
    /* 16-bit shift counts: 0 / 2 and 4 / 6 for the lower / upper 32 bytes */
    c.shift01 = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    c.shift23 = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(6), 1);
    for (int m = 0; m < 4; m++) {
        const __m128i l0 = _mm_set1_epi16((short)(0xFF00 | (4 * m))), l1 = _mm_set1_epi16((short)(0xFF00 | (4 * m + 1)));
        const __m128i l2 = _mm_set1_epi16((short)(0xFF00 | (4 * m + 2))), l3 = _mm_set1_epi16((short)(0xFF00 | (4 * m + 3)));
        c.ctl[m] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set_m128i(l1, l0)), _mm256_set_m128i(l3, l2), 1);
    }
    return c;
}

/* One super-block: int32 lanes summing to isum (returned) and to isum_m (*mins). */
static inline __m512i superblock_sums(const block_q2_K *x, const block_q8_K *y, const struct q2k_consts *c,
                                      __m128i *mins)
{
    const __m128i low4 = _mm_set1_epi8(0x0F);
    const __m128i packed = _mm_loadu_si128((const __m128i *)x->scales);
    const __m512i scales = _mm512_broadcast_i32x4(_mm_and_si128(packed, low4));
    const __m256i mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), low4));
    const __m256i mprod = _mm256_madd_epi16(mn16, _mm256_loadu_si256((const __m256i *)y->bsums));
    *mins = _mm_add_epi32(_mm256_castsi256_si128(mprod), _mm256_extracti128_si256(mprod, 1));

    const __m512i b0 = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)x->qs));
    const __m512i b1 = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(x->qs + 32)));
    const __m512i q0 = _mm512_and_si512(_mm512_srlv_epi16(b0, c->shift01), c->three);
    const __m512i q1 = _mm512_and_si512(_mm512_srlv_epi16(b0, c->shift23), c->three);
    const __m512i q2 = _mm512_and_si512(_mm512_srlv_epi16(b1, c->shift01), c->three);
    const __m512i q3 = _mm512_and_si512(_mm512_srlv_epi16(b1, c->shift23), c->three);
    const int8_t *q8 = y->qs;
    __m512i acc0 = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_maddubs_epi16(q0, _mm512_loadu_si512(q8)),
                                       _mm512_shuffle_epi8(scales, c->ctl[0]));
    __m512i acc1 = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_maddubs_epi16(q1, _mm512_loadu_si512(q8 + 64)),
                                       _mm512_shuffle_epi8(scales, c->ctl[1]));
    acc0 = _mm512_dpwssd_epi32(acc0, _mm512_maddubs_epi16(q2, _mm512_loadu_si512(q8 + 128)),
                               _mm512_shuffle_epi8(scales, c->ctl[2]));
    acc1 = _mm512_dpwssd_epi32(acc1, _mm512_maddubs_epi16(q3, _mm512_loadu_si512(q8 + 192)),
                               _mm512_shuffle_epi8(scales, c->ctl[3]));
    return _mm512_add_epi32(acc0, acc1);
}

/* Integer totals of four super-blocks, {isum0, isum_m0, isum1, isum_m1, ...}:
 * isum_k sums the 16 lanes of a_k, isum_m_k the 4 lanes of m_k. */
static inline __m256i reduce4(__m512i a0, __m512i a1, __m512i a2, __m512i a3, __m128i m0, __m128i m1,
                              __m128i m2, __m128i m3)
{
    /* halve each accumulator, then quarter: t = {a0: 4 lanes, a1: 4, a2: 4, a3: 4} */
    const __m512i s01 = _mm512_add_epi32(_mm512_shuffle_i64x2(a0, a1, 0x44), _mm512_shuffle_i64x2(a0, a1, 0xEE));
    const __m512i s23 = _mm512_add_epi32(_mm512_shuffle_i64x2(a2, a3, 0x44), _mm512_shuffle_i64x2(a2, a3, 0xEE));
    const __m512i t = _mm512_add_epi32(_mm512_shuffle_i64x2(s01, s23, 0x88), _mm512_shuffle_i64x2(s01, s23, 0xDD));
    const __m512i m = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set_m128i(m1, m0)), _mm256_set_m128i(m3, m2), 1);
    /* per 128-bit lane k: {t0+t2, m0+m2, t1+t3, m1+m3}, then {isum_k, isum_m_k, ..} */
    const __m512i u = _mm512_add_epi32(_mm512_unpacklo_epi32(t, m), _mm512_unpackhi_epi32(t, m));
    const __m512i v = _mm512_add_epi32(u, _mm512_shuffle_epi32(u, _MM_PERM_BADC));
    return _mm512_castsi512_si256(
        _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 1, 4, 5, 8, 9, 12, 13, 0, 0, 0, 0, 0, 0, 0, 0), v));
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
    const __m256 yd = _mm256_permutexvar_ps(_mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3),
                                            _mm256_castps128_ps256(_mm_movelh_ps(y01, y23)));
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

static void vec_dot_q2_K_q8_K_avx512(int n, float *s, const void *vx, const void *vy)
{
    const block_q2_K *x = vx;
    const block_q8_K *y = vy;
    const int nb = n / QK_K;
    const struct q2k_consts c = q2k_consts_make();
    float sumf = 0.0f;
    for (int i = 0; i < nb; i += 4) {
        const int count = nb - i < 4 ? nb - i : 4;
        const __m512i zero = _mm512_setzero_si512();
        __m128i m0, m1 = _mm_setzero_si128(), m2 = _mm_setzero_si128(), m3 = _mm_setzero_si128();
        const __m512i a0 = superblock_sums(x + i, y + i, &c, &m0);
        const __m512i a1 = count > 1 ? superblock_sums(x + i + 1, y + i + 1, &c, &m1) : zero;
        const __m512i a2 = count > 2 ? superblock_sums(x + i + 2, y + i + 2, &c, &m2) : zero;
        const __m512i a3 = count > 3 ? superblock_sums(x + i + 3, y + i + 3, &c, &m3) : zero;
        sumf = fold4(sumf, reduce4(a0, a1, a2, a3, m0, m1, m2, m3), super_scales4(x + i, y + i, count), count);
    }
    *s = sumf;
}

void quarry_kernels_q2_K_avx512(struct quarry_type_traits *table)
{
    table[QUARRY_TYPE_Q2_K].to_float = dequantize_row_q2_K_avx512;
    table[QUARRY_TYPE_Q2_K].vec_dot = vec_dot_q2_K_q8_K_avx512;
}
