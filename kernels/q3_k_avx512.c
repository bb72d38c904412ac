/*
 * q3_k_avx512.c - q3_K kernels for AVX-512 (F/BW/VL/DQ/VNNI): dequantize a row
 * and the dot product of a q3_K row with a q8_K activation row.
 *
 * Layout (see q3_k.c): 16 sub-blocks of 16 weights with signed 6-bit
 * scales; weight 128h + 32j + l has its low 2 bits at bits 2j..2j+1 of
 * qs[32h + l] and its high bit (clear = subtract 4) at bit 4h + j of
 * hmask[l]. A zmm of 64 consecutive weights 64m.. (m = 2h + t) is qs[32h..]
 * broadcast to both halves and shifted by 4t / 4t+2, plus 4 where a byte test
 * of the broadcast hmask against bit 4h+2t / 4h+2t+1 is set; its four 128-bit
 * lanes are sub-blocks 4m..4m+3.
 *
 * Dot product, exact as the contract in q3_k.c requires: with u = q + 4
 * (0..7), maddubs and vpdpwssd give sum_k sc_k * sum u*y in int32 lanes, and
 * the bias comes back through the activation's bsums (the exact 16-value sums
 * of y.qs every q8_K block carries): isum = that - 4 * sum_k sc_k*bsums[k].
 * Four super-blocks are reduced together; their totals are folded in order as
 * in the scalar: sumf = sumf + d*(float)isum, d = y.d * fp16(x.d) (products
 * in vector lanes round exactly as the scalar ones). Dequantization repeats
 * dl = d * sc, dl * q lane by lane.
 */
#include <immintrin.h>

#include "kernels/kernels.h"
#include "kernels/types.h"

/* The 16 scales (-32..31) of a block as bytes, from the 12 packed bytes. */
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

/* 16 signed bytes -> 16 floats d*q at y. */
static inline void store_scaled_i8x16(__m128i q, __m512 d, float *y)
{
    _mm512_storeu_ps(y, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q))));
}

static void dequantize_row_q3_K_avx512(const void *vx, float *y, int64_t n)
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
                const __mmask32 high = _mm256_test_epi8_mask(hm, _mm256_set1_epi8((char)(1 << (4 * h + j))));
                const __m256i low = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m3);
                const __m256i v = _mm256_mask_sub_epi8(low, ~high, low, four);
                const int k = 8 * h + 2 * j;
                const float dl0 = d * (float)sc[k], dl1 = d * (float)sc[k + 1];
                store_scaled_i8x16(_mm256_castsi256_si128(v), _mm512_set1_ps(dl0), y);
                store_scaled_i8x16(_mm256_extracti128_si256(v, 1), _mm512_set1_ps(dl1), y + 16);
                y += 32;
            }
        }
    }
}

/* Constants of the dot product: shift counts and hmask bit selectors for the
 * four zmm of a block (zmm m = 2h + t covers weights 64m..64m+63), and the
 * vpermw indices giving 16-bit lane w of zmm m the scale of sub-block 4m + w/8. */
struct q3k_consts {
    __m512i three, four, shift01, shift23;
    __m512i bitsel[4];
    __m512i idx[4];
};

static inline struct q3k_consts q3k_consts_make(void)
{
    struct q3k_consts c;
    c.three = _mm512_set1_epi8(3);
    c.four = _mm512_set1_epi8(4);
    c.shift01 = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    c.shift23 = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(6), 1);
    for (int m = 0; m < 4; m++) {
        const int b = 4 * (m / 2) + 2 * (m % 2); /* hmask bit of the lower 32 weights */
        c.bitsel[m] = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << b)), _mm256_set1_epi8((char)(1 << (b + 1))), 1);
        const __m128i l0 = _mm_set1_epi16((short)(4 * m)), l1 = _mm_set1_epi16((short)(4 * m + 1));
        const __m128i l2 = _mm_set1_epi16((short)(4 * m + 2)), l3 = _mm_set1_epi16((short)(4 * m + 3));
        c.idx[m] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set_m128i(l1, l0)), _mm256_set_m128i(l3, l2), 1);
    }
    return c;
}

/* One super-block: int32 lanes summing to isum = sum_k sc_k * sum q*y. */
static inline __m512i superblock_sums(const block_q3_K *x, const block_q8_K *y, const struct q3k_consts *c)
{
    const __m256i sc16 = _mm256_cvtepi8_epi16(unpack_q3_scales(x->scales));
    const __m512i scales = _mm512_castsi256_si512(sc16); /* vpermw reads only the low 16 words */
    /* 4 * sum_k sc_k * bsums[k] over 8 lanes: the bias of u = q + 4 */
    const __m256i bias = _mm256_slli_epi32(_mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)y->bsums)), 2);

    const __m512i hm = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)x->hmask));
    const __m512i b0 = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)x->qs));
    const __m512i b1 = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(x->qs + 32)));
    __m512i u0 = _mm512_and_si512(_mm512_srlv_epi16(b0, c->shift01), c->three);
    __m512i u1 = _mm512_and_si512(_mm512_srlv_epi16(b0, c->shift23), c->three);
    __m512i u2 = _mm512_and_si512(_mm512_srlv_epi16(b1, c->shift01), c->three);
    __m512i u3 = _mm512_and_si512(_mm512_srlv_epi16(b1, c->shift23), c->three);
    u0 = _mm512_mask_add_epi8(u0, _mm512_test_epi8_mask(hm, c->bitsel[0]), u0, c->four);
    u1 = _mm512_mask_add_epi8(u1, _mm512_test_epi8_mask(hm, c->bitsel[1]), u1, c->four);
    u2 = _mm512_mask_add_epi8(u2, _mm512_test_epi8_mask(hm, c->bitsel[2]), u2, c->four);
    u3 = _mm512_mask_add_epi8(u3, _mm512_test_epi8_mask(hm, c->bitsel[3]), u3, c->four);

    const int8_t *q8 = y->qs;
    __m512i acc0 = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_maddubs_epi16(u0, _mm512_loadu_si512(q8)),
                                       _mm512_permutexvar_epi16(c->idx[0], scales));
    __m512i acc1 = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_maddubs_epi16(u1, _mm512_loadu_si512(q8 + 64)),
                                       _mm512_permutexvar_epi16(c->idx[1], scales));
    acc0 = _mm512_dpwssd_epi32(acc0, _mm512_maddubs_epi16(u2, _mm512_loadu_si512(q8 + 128)),
                               _mm512_permutexvar_epi16(c->idx[2], scales));
    acc1 = _mm512_dpwssd_epi32(acc1, _mm512_maddubs_epi16(u3, _mm512_loadu_si512(q8 + 192)),
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

static void vec_dot_q3_K_q8_K_avx512(int n, float *s, const void *vx, const void *vy)
{
    const block_q3_K *x = vx;
    const block_q8_K *y = vy;
    const int nb = n / QK_K;
    const struct q3k_consts c = q3k_consts_make();
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

void quarry_kernels_q3_K_avx512(struct quarry_type_traits *table)
{
    table[QUARRY_TYPE_Q3_K].to_float = dequantize_row_q3_K_avx512;
    table[QUARRY_TYPE_Q3_K].vec_dot = vec_dot_q3_K_q8_K_avx512;
}
