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
#include <stddef.h>

#include "kernels/kernels.h"
#include "kernels/simd_avx512.h"
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
                avx512_kq_store_i8x16(_mm512_castsi512_si128(v), _mm512_set1_ps(d0), y);
                avx512_kq_store_i8x16(_mm512_extracti32x4_epi32(v, 1), _mm512_set1_ps(d1), y + 16);
                avx512_kq_store_i8x16(_mm512_extracti32x4_epi32(v, 2), _mm512_set1_ps(d2), y + 32);
                avx512_kq_store_i8x16(_mm512_extracti32x4_epi32(v, 3), _mm512_set1_ps(d3), y + 48);
                y += 64;
            }
        }
    }
}

/* Constants of the dot product: the vpermw indices of the four zmm
 * (avx512_kq_scale_idx). */
struct q6k_consts {
    __m512i idx[4];
};

static inline struct q6k_consts q6k_consts_make(void)
{
    struct q6k_consts c;
    for (int m = 0; m < 4; m++)
        c.idx[m] = avx512_kq_scale_idx(m);
    return c;
}

/* One super-block: int32 lanes summing to isum = sum_k sc_k * sum (q-32)*y. */
static inline __m512i superblock_sums(const void *vx, const block_q8_K *y, const void *consts)
{
    const block_q6_K *x = vx;
    const struct q6k_consts *c = consts;
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x->scales));
    __m512i q0, q1, q2, q3;
    unpack_q6_half(x->ql, x->qh, &q0, &q1);
    unpack_q6_half(x->ql + 64, x->qh + 32, &q2, &q3);
    return avx512_kq_signed_sums(q0, q1, q2, q3, sc16, y, c->idx, 5);
}

static void vec_dot_q6_K_q8_K_avx512(int n, float *s, const void *vx, const void *vy)
{
    const struct q6k_consts c = q6k_consts_make();
    *s = avx512_kq_vec_dot(n / QK_K, vx, sizeof(block_q6_K), offsetof(block_q6_K, d), vy, &c, superblock_sums);
}

void quarry_kernels_q6_K_avx512(struct quarry_type_traits *table)
{
    table[QUARRY_TYPE_Q6_K].to_float = dequantize_row_q6_K_avx512;
    table[QUARRY_TYPE_Q6_K].vec_dot = vec_dot_q6_K_q8_K_avx512;
}
