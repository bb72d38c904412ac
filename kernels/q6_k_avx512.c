/*
 * q6_k_avx512.c - q6_K kernels for AVX-512 (F/BW/VL/DQ/VNNI): dequantize a row
 * and the dot product of a q6_K row with a q8_K activation row.
 *
 * Layout (see q6_k.c): 16 sub-blocks of 16 weights with signed 8-bit
 * scales, w = d*sc*(q - 32), q in 0..63. In half h (weights 128h..) the 64
 * bytes ql[64h..64h+63] give the low 4 bits of weights 0..63 (low nibbles)
 * and 64..127 (high nibbles), in order; the top 2 bits of weight 32g + l are
 * bits 2g..2g+1 of qh[32h + l]. So a zmm of 64 consecutive weights is one
 * 64-byte ql load (masked or shifted) or'ed with the 32 qh bytes broadcast to
 * both halves and shifted per half. Its four 128-bit lanes are sub-blocks
 * 4m..4m+3 for zmm m.
 *
 * Dot product, exact as the contract in q6_k.c requires: maddubs
 * (63*128*2 < 2^15) and vpdpwssd give sum_k sc_k * sum q*y in int32 lanes with
 * the unsigned q; the -32 bias comes back through the activation's bsums (the
 * exact 16-value sums of y.qs every q8_K block carries):
 * isum = that - 32 * sum_k sc_k*bsums[k]. Four super-blocks are reduced
 * together; their totals are folded in order as in the scalar:
 * sumf = sumf + d*(float)isum, d = y.d * fp16(x.d) (products in vector lanes
 * round exactly as the scalar ones). Dequantization repeats (d * sc) * q.
 */
#include <immintrin.h>

#include "kernels/kernels.h"
#include "kernels/types.h"

/* Half h of a block (ql = x.ql + 64h, qh = x.qh + 32h) as two zmm of bytes q
 * in 0..63: *lo = weights 128h..128h+63, *hi = 128h+64..128h+127. */
static inline void unpack_q6_half(const uint8_t *ql, const uint8_t *qh, __m512i *lo, __m512i *hi)
{
    const __m512i m4 = _mm512_set1_epi8(0x0F), top = _mm512_set1_epi8(0x30);
    /* qh bits 0-1 / 2-3 to bits 4-5 by 16-bit left shifts 4 / 2 (lower / upper
     * 32 bytes); bits 4-5 / 6-7 by right shifts 0 / 2. Stray bits fall outside 0x30. */
    const __m512i shl = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i shr = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    const __m512i l = _mm512_loadu_si512(ql);
    const __m512i h = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)qh));
    const __m512i h_lo = _mm512_and_si512(_mm512_sllv_epi16(h, shl), top);
    const __m512i h_hi = _mm512_and_si512(_mm512_srlv_epi16(h, shr), top);
    /* (a & m4) | b: ternary-logic truth table 0xEC over (a, b, m4) */
    *lo = _mm512_ternarylogic_epi32(l, h_lo, m4, 0xEC);
    *hi = _mm512_ternarylogic_epi32(_mm512_srli_epi16(l, 4), h_hi, m4, 0xEC);
}

/* 16 signed bytes -> 16 floats d*q at y. */
static inline void store_scaled_i8x16(__m128i q, __m512 d, float *y)
{
    _mm512_storeu_ps(y, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q))));
}

static void dequantize_row_q6_K_avx512(const void *vx, float *y, int64_t n)
{
    const block_q6_K *x = vx;
    const int64_t nb = n / QK_K;
    const __m512i m32 = _mm512_set1_epi8(32);
    for (int64_t i = 0; i < nb; i++) {
        const float d = _cvtsh_ss(x[i].d);
        const int8_t *sc = x[i].scales;
        for (int h = 0; h < 2; h++) {
            __m512i q[2];
            unpack_q6_half(x[i].ql + 64 * h, x[i].qh + 32 * h, &q[0], &q[1]);
            for (int t = 0; t < 2; t++) {
                const __m512i v = _mm512_sub_epi8(q[t], m32);
                /* each 128-bit lane is one sub-block */
                const float d0 = d * (float)sc[8 * h + 4 * t + 0], d1 = d * (float)sc[8 * h + 4 * t + 1];
                const float d2 = d * (float)sc[8 * h + 4 * t + 2], d3 = d * (float)sc[8 * h + 4 * t + 3];
                store_scaled_i8x16(_mm512_castsi512_si128(v), _mm512_set1_ps(d0), y);
                store_scaled_i8x16(_mm512_extracti32x4_epi32(v, 1), _mm512_set1_ps(d1), y + 16);
                store_scaled_i8x16(_mm512_extracti32x4_epi32(v, 2), _mm512_set1_ps(d2), y + 32);
                store_scaled_i8x16(_mm512_extracti32x4_epi32(v, 3), _mm512_set1_ps(d3), y + 48);
                y += 64;
            }
        }
    }
}

/* Constants of the dot product: vpermw indices giving 16-bit lane w of zmm m
 * the scale of sub-block 4m + w/8. */
struct q6k_consts {
    __m512i idx[4];
};

static inline struct q6k_consts q6k_consts_make(void)
{
    struct q6k_consts c;
    for (int m = 0; m < 4; m++) {
        const __m128i l0 = _mm_set1_epi16((short)(4 * m)), l1 = _mm_set1_epi16((short)(4 * m + 1));
        const __m128i l2 = _mm_set1_epi16((short)(4 * m + 2)), l3 = _mm_set1_epi16((short)(4 * m + 3));
        c.idx[m] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set_m128i(l1, l0)), _mm256_set_m128i(l3, l2), 1);
    }
    return c;
}

/* One super-block: int32 lanes summing to isum = sum_k sc_k * sum (q-32)*y. */
static inline __m512i superblock_sums(const block_q6_K *x, const block_q8_K *y, const struct q6k_consts *c)
{
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x->scales));
    const __m512i scales = _mm512_castsi256_si512(sc16); /* vpermw reads only the low 16 words */
    /* 32 * sum_k sc_k * bsums[k] over 8 lanes: the bias of the unsigned q */
    const __m256i bias = _mm256_slli_epi32(_mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)y->bsums)), 5);
    __m512i q0, q1, q2, q3;
    unpack_q6_half(x->ql, x->qh, &q0, &q1);
    unpack_q6_half(x->ql + 64, x->qh + 32, &q2, &q3);
    const int8_t *q8 = y->qs;
    __m512i acc0 = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_maddubs_epi16(q0, _mm512_loadu_si512(q8)),
                                       _mm512_permutexvar_epi16(c->idx[0], scales));
    __m512i acc1 = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_maddubs_epi16(q1, _mm512_loadu_si512(q8 + 64)),
                                       _mm512_permutexvar_epi16(c->idx[1], scales));
    acc0 = _mm512_dpwssd_epi32(acc0, _mm512_maddubs_epi16(q2, _mm512_loadu_si512(q8 + 128)),
                               _mm512_permutexvar_epi16(c->idx[2], scales));
    acc1 = _mm512_dpwssd_epi32(acc1, _mm512_maddubs_epi16(q3, _mm512_loadu_si512(q8 + 192)),
                               _mm512_permutexvar_epi16(c->idx[3], scales));
    return _mm512_sub_epi32(_mm512_add_epi32(acc0, acc1), _mm512_zextsi256_si512(bias));
}

/* Integer totals of four super-blocks {isum0, .., isum3}: each sums the 16
 * int32 lanes of its accumulator. */
static inline __m128i reduce4(__m512i a0, __m512i a1, __m512i a2, __m512i a3)
{
    /* halve each accumulator, then quarter: t = {a0: 4 lanes, a1: 4, a2: 4, a3: 4} */
    const __m512i s01 = _mm512_add_epi32(_mm512_shuffle_i64x2(a0, a1, 0x44), _mm512_shuffle_i64x2(a0, a1, 0xEE));
    const __m512i s23 = _mm512_add_epi32(_mm512_shuffle_i64x2(a2, a3, 0x44), _mm512_shuffle_i64x2(a2, a3, 0xEE));
    const __m512i t = _mm512_add_epi32(_mm512_shuffle_i64x2(s01, s23, 0x88), _mm512_shuffle_i64x2(s01, s23, 0xDD));
    const __m512i u = _mm512_add_epi32(t, _mm512_shuffle_epi32(t, _MM_PERM_BADC));
    const __m512i v = _mm512_add_epi32(u, _mm512_shuffle_epi32(u, _MM_PERM_CDAB));
    return _mm512_castsi512_si128(
        _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), v));
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

static void vec_dot_q6_K_q8_K_avx512(int n, float *s, const void *vx, const void *vy)
{
    const block_q6_K *x = vx;
    const block_q8_K *y = vy;
    const int nb = n / QK_K;
    const struct q6k_consts c = q6k_consts_make();
    float sumf = 0.0f;
    for (int i = 0; i < nb; i += 4) {
        const int count = nb - i < 4 ? nb - i : 4;
        const __m512i zero = _mm512_setzero_si512();
        const __m512i a0 = superblock_sums(x + i, y + i, &c);
        const __m512i a1 = count > 1 ? superblock_sums(x + i + 1, y + i + 1, &c) : zero;
        const __m512i a2 = count > 2 ? superblock_sums(x + i + 2, y + i + 2, &c) : zero;
        const __m512i a3 = count > 3 ? superblock_sums(x + i + 3, y + i + 3, &c) : zero;
        sumf = fold4(sumf, reduce4(a0, a1, a2, a3), super_scales4(x + i, y + i, count), count);
    }
    *s = sumf;
}

void quarry_kernels_q6_K_avx512(struct quarry_type_traits *table)
{
    table[QUARRY_TYPE_Q6_K].to_float = dequantize_row_q6_K_avx512;
    table[QUARRY_TYPE_Q6_K].vec_dot = vec_dot_q6_K_q8_K_avx512;
}
