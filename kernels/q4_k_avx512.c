/*
 * q4_k_avx512.c - q4_K kernels for AVX-512 (F/BW/VL/DQ/VNNI): dequantize a row
 * and the dot product of a q4_K row with a q8_K activation row.
 *
 * Layout (see q4_k.c): 8 sub-blocks of 32 weights with 6-bit scales and mins;
 * qs[32j..32j+31] hold sub-block 2j in the low and 2j+1 in the high nibbles,
 * so one 32-byte load broadcast to both halves of a zmm, its upper half
 * shifted right by 4, lines up with 64 consecutive activations.
 *
 * Dot product, exact as the contract in q4_k.c requires: per super-block
 * maddubs forms 16-bit pair sums of q*y (15*128*2 < 2^15, no saturation),
 * vpdpwssd multiplies them by the sub-block scale into int32 lanes, and the
 * mins meet the activation's bsums in a madd. Four super-blocks are reduced
 * together to their integer totals isum/isum_m, which are then folded in
 * super-block order with the scalar's float operations:
 *     sumf = sumf + (d*(float)isum - dmin*(float)isum_m)
 * (the products d*isum and dmin*isum_m are computed in vector lanes, which
 * rounds exactly as the scalar multiplies; the sums stay sequential).
 * Dequantization repeats the scalar's d*sc, dmin*m and d1*q - m1 per lane.
 */
#include <immintrin.h>
#include <stddef.h>

#include "kernels/kernels.h"
#include "kernels/simd_avx512.h"
#include "kernels/types.h"

static void dequantize_row_q4_K_avx512(const void *vx, float *y, int64_t n)
{
    const block_q4_K *x = vx;
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int64_t i = 0; i < nb; i++) {
        const float d = _cvtsh_ss(x[i].d), dmin = _cvtsh_ss(x[i].dmin);
        uint32_t sm[4];
        kq_scales_mins_k4(x[i].scales, sm);
        const uint8_t *sc = (const uint8_t *)&sm[0], *mn = (const uint8_t *)&sm[2];
        for (int j = 0; j < QK_K / 64; j++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * j));
            const float d1 = d * (float)sc[2 * j], m1 = dmin * (float)mn[2 * j];
            const float d2 = d * (float)sc[2 * j + 1], m2 = dmin * (float)mn[2 * j + 1];
            avx512_kq_store_u8x32(_mm256_and_si256(q, m4), _mm512_set1_ps(d1), _mm512_set1_ps(m1), y);
            avx512_kq_store_u8x32(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), _mm512_set1_ps(d2),
                                  _mm512_set1_ps(m2), y + 32);
            y += 64;
        }
    }
}

/* Constants of the dot product: ctl[m], the vpshufb control giving zmm m
 * the 16-bit scales of sub-blocks 2m and 2m+1 (avx512_kq_k4_scale_ctl). */
struct q4k_consts {
    __m512i low4;
    __m512i ctl[4];
};

static inline struct q4k_consts q4k_consts_make(void)
{
    struct q4k_consts c;
    c.low4 = _mm512_set1_epi8(0x0F);
    for (int m = 0; m < 4; m++)
        c.ctl[m] = avx512_kq_k4_scale_ctl(m);
    return c;
}

/* One super-block: int32 lanes summing to isum (returned) and to isum_m (*mins). */
static inline __m512i superblock_sums(const void *vx, const block_q8_K *y, const void *consts, __m128i *mins)
{
    const block_q4_K *x = vx;
    const struct q4k_consts *c = consts;
    const __mmask32 upper = 0xFFFF0000u;
    const __m128i sm = avx512_kq_scales_mins_k4(x->scales);
    const __m512i scales = _mm512_broadcast_i32x4(sm);
    *mins = avx2_kq_k4_mins(sm, y);

    const uint8_t *q4 = x->qs;
    const __m512i b0 = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)q4));
    const __m512i b1 = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(q4 + 32)));
    const __m512i b2 = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(q4 + 64)));
    const __m512i b3 = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(q4 + 96)));
    const __m512i u0 = _mm512_and_si512(_mm512_mask_srli_epi16(b0, upper, b0, 4), c->low4);
    const __m512i u1 = _mm512_and_si512(_mm512_mask_srli_epi16(b1, upper, b1, 4), c->low4);
    const __m512i u2 = _mm512_and_si512(_mm512_mask_srli_epi16(b2, upper, b2, 4), c->low4);
    const __m512i u3 = _mm512_and_si512(_mm512_mask_srli_epi16(b3, upper, b3, 4), c->low4);
    return avx512_kq_dot_4x64(u0, u1, u2, u3, y->qs, scales, c->ctl, false);
}

static void vec_dot_q4_K_q8_K_avx512(int n, float *s, const void *vx, const void *vy)
{
    const struct q4k_consts c = q4k_consts_make();
    *s = avx512_kq_vec_dot_min(n / QK_K, vx, sizeof(block_q4_K), offsetof(block_q4_K, d), vy, &c, superblock_sums);
}

void quarry_kernels_q4_K_avx512(struct quarry_type_traits *table)
{
    table[QUARRY_TYPE_Q4_K].to_float = dequantize_row_q4_K_avx512;
    table[QUARRY_TYPE_Q4_K].vec_dot = vec_dot_q4_K_q8_K_avx512;
}
