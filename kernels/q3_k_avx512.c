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
#include <stddef.h>

#include "kernels/kernels.h"
#include "kernels/simd_avx512.h"
#include "kernels/types.h"

static void dequantize_row_q3_K_avx512(const void *vx, float *y, int64_t n)
{
    const block_q3_K *x = vx;
    const int64_t nb = n / QK_K;
    const __m256i m3 = _mm256_set1_epi8(3), four = _mm256_set1_epi8(4);
    for (int64_t i = 0; i < nb; i++) {
        const float d = _cvtsh_ss(x[i].d);
        int8_t sc[16];
        _mm_storeu_si128((__m128i *)sc, avx2_kq_q3_scales(x[i].scales));
        const __m256i hm = _mm256_loadu_si256((const __m256i *)x[i].hmask);
        for (int h = 0; h < 2; h++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * h));
            for (int j = 0; j < 4; j++) {
                const __mmask32 high = _mm256_test_epi8_mask(hm, _mm256_set1_epi8((char)(1 << (4 * h + j))));
                const __m256i low = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m3);
                const __m256i v = _mm256_mask_sub_epi8(low, ~high, low, four);
                const int k = 8 * h + 2 * j;
                const float dl0 = d * (float)sc[k], dl1 = d * (float)sc[k + 1];
                avx512_kq_store_i8x16(_mm256_castsi256_si128(v), _mm512_set1_ps(dl0), y);
                avx512_kq_store_i8x16(_mm256_extracti128_si256(v, 1), _mm512_set1_ps(dl1), y + 16);
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
        c.idx[m] = avx512_kq_scale_idx(m);
    }
    return c;
}

/* One super-block: int32 lanes summing to isum = sum_k sc_k * sum q*y. */
static inline __m512i superblock_sums(const void *vx, const block_q8_K *y, const void *consts)
{
    const block_q3_K *x = vx;
    const struct q3k_consts *c = consts;
    const __m256i sc16 = _mm256_cvtepi8_epi16(avx2_kq_q3_scales(x->scales));
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

    /* u = q + 4, bias 4 */
    return avx512_kq_signed_sums(u0, u1, u2, u3, sc16, y, c->idx, 2);
}

static void vec_dot_q3_K_q8_K_avx512(int n, float *s, const void *vx, const void *vy)
{
    const struct q3k_consts c = q3k_consts_make();
    *s = avx512_kq_vec_dot(n / QK_K, vx, sizeof(block_q3_K), offsetof(block_q3_K, d), vy, &c, superblock_sums);
}

void quarry_kernels_q3_K_avx512(struct quarry_type_traits *table)
{
    table[QUARRY_TYPE_Q3_K].to_float = dequantize_row_q3_K_avx512;
    table[QUARRY_TYPE_Q3_K].vec_dot = vec_dot_q3_K_q8_K_avx512;
}
