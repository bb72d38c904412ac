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
#include <stddef.h>

#include "kernels/kernels.h"
#include "kernels/simd_avx512.h"
#include "kernels/types.h"

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
                avx512_kq_store_u8x16(_mm256_castsi256_si128(v), _mm512_set1_ps(dl0), _mm512_set1_ps(ml0), y);
                avx512_kq_store_u8x16(_mm256_extracti128_si256(v, 1), _mm512_set1_ps(dl1), _mm512_set1_ps(ml1),
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
static inline __m512i superblock_sums(const void *vx, const block_q8_K *y, const void *consts, __m128i *mins)
{
    const block_q2_K *x = vx;
    const struct q2k_consts *c = consts;
    const __m128i low4 = _mm_set1_epi8(0x0F);
    const __m128i packed = _mm_loadu_si128((const __m128i *)x->scales);
    const __m512i scales = _mm512_broadcast_i32x4(_mm_and_si128(packed, low4));
    *mins = avx2_kq_q2_mins(packed, y);

    const __m512i b0 = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)x->qs));
    const __m512i b1 = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(x->qs + 32)));
    const __m512i q0 = _mm512_and_si512(_mm512_srlv_epi16(b0, c->shift01), c->three);
    const __m512i q1 = _mm512_and_si512(_mm512_srlv_epi16(b0, c->shift23), c->three);
    const __m512i q2 = _mm512_and_si512(_mm512_srlv_epi16(b1, c->shift01), c->three);
    const __m512i q3 = _mm512_and_si512(_mm512_srlv_epi16(b1, c->shift23), c->three);
    return avx512_kq_dot_4x64(q0, q1, q2, q3, y->qs, scales, c->ctl, false);
}

static void vec_dot_q2_K_q8_K_avx512(int n, float *s, const void *vx, const void *vy)
{
    const struct q2k_consts c = q2k_consts_make();
    *s = avx512_kq_vec_dot_min(n / QK_K, vx, sizeof(block_q2_K), offsetof(block_q2_K, d), vy, &c, superblock_sums);
}

void quarry_kernels_q2_K_avx512(struct quarry_type_traits *table)
{
    table[QUARRY_TYPE_Q2_K].to_float = dequantize_row_q2_K_avx512;
    table[QUARRY_TYPE_Q2_K].vec_dot = vec_dot_q2_K_q8_K_avx512;
}
