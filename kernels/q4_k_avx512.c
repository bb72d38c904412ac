/*
 * q4_k_avx512.c - q4_K kernels for AVX-512 (F/BW/VL/DQ/VNNI): dequantize a row
 * and the dot product of a q4_K row with a q8_K activation row.
 *
 * Layout (see q4_k.c): 8 sub-blocks of 32 weights with 6-bit scales and mins;
 * qs[32j..32j+31] hold sub-block 2j in the low and 2j+1 in the high nibbles,
 * so one 32-byte load broadcast to both halves of a zmm, its upper half
 * shifted right by 4, lines up with 64 consecutive activations.
 *
 * Dot product, exact as the contract in q4_k.c requires. Per group of four
 * super-blocks the 6-bit scales and mins of all four are unpacked at once in
 * one zmm (128-bit lane k = block k, scales_mins_k4_x4). Per super-block the
 * four 64-weight zmm u_m (sub-blocks 2m, 2m+1) meet the q8_K activations in
 * vpdpbusd (codes unsigned, activations signed): int32 lanes of 4 products,
 * |.| <= 15*128*4, so packs_epi32 narrows two of them to words exactly, and
 * one vpdpwssd per pair multiplies the words by their sub-block scale (picked
 * by vpshufb). The mins meet the activation's bsums in one 256-bit madd; an
 * add of the isum halves and a hadd with the mins leave 8 lanes per block,
 * and two hadds plus a lane add give the group's integer totals
 * {isum_k, isum_m_k}. These are folded in super-block order with the
 * scalar's float operations:
 *     sumf = sumf + (d*(float)isum - dmin*(float)isum_m)
 * (the products d*isum and dmin*isum_m are computed in vector lanes, which
 * rounds exactly as the scalar multiplies; the sums stay sequential). The
 * integer sums are exact, so their association does not matter.
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

/* Constants of the dot product: ctl[h], the vpshufb control giving the
 * 16-bit words of packs(d_{2h}, d_{2h+1}) their sub-block scales: in 128-bit
 * lanes 0-1 words 0-3 take scale 4h and words 4-7 scale 4h+2, in lanes 2-3
 * scales 4h+1 and 4h+3 (see superblock_sums). mctl spreads the mins 0..7
 * (bytes 8..15) over the 16 bsums words, two words each. */
struct q4k_consts {
    __m512i low4;
    __m512i ctl[2];
    __m256i mctl;
};

static inline struct q4k_consts q4k_consts_make(void)
{
    struct q4k_consts c;
    c.low4 = _mm512_set1_epi8(0x0F);
    for (int h = 0; h < 2; h++) {
        const char a = (char)(4 * h), b = (char)(4 * h + 2), e = (char)(4 * h + 1), f = (char)(4 * h + 3);
        const char z = (char)0x80;
        const __m128i lo = _mm_setr_epi8(a, z, a, z, a, z, a, z, b, z, b, z, b, z, b, z);
        const __m128i hi = _mm_setr_epi8(e, z, e, z, e, z, e, z, f, z, f, z, f, z, f, z);
        const __m256i l2 = _mm256_set_m128i(lo, lo), h2 = _mm256_set_m128i(hi, hi);
        c.ctl[h] = _mm512_inserti64x4(_mm512_castsi256_si512(l2), h2, 1);
    }
    const char z = (char)0x80;
    const __m128i ml = _mm_setr_epi8(8, z, 8, z, 9, z, 9, z, 10, z, 10, z, 11, z, 11, z);
    const __m128i mh = _mm_setr_epi8(12, z, 12, z, 13, z, 13, z, 14, z, 14, z, 15, z, 15, z);
    c.mctl = _mm256_set_m128i(mh, ml);
    return c;
}

/* One super-block: int32 lanes summing to isum (returned) and to isum_m (*mins).
 * u_m holds sub-block 2m (bytes 0-31) and 2m+1 (bytes 32-63); vpdpbusd gives
 * d_m, int32 lanes of 4 products q*y each (|.| <= 15*128*4, exact in int16),
 * packs_epi32 narrows two of them to words without saturation, and vpdpwssd
 * multiplies the words by their sub-block scale. All integer, all exact. */
static inline __m512i superblock_sums(const block_q4_K *x, const block_q8_K *y, const struct q4k_consts *c,
                                      __m512i scales, __m256i *mins)
{
    const __mmask32 upper = 0xFFFF0000u;
    {
        const __m256i bs = _mm256_loadu_si256((const __m256i *)y->bsums);
        const __m256i mw = _mm256_shuffle_epi8(_mm512_castsi512_si256(scales), c->mctl);
        *mins = _mm256_madd_epi16(mw, bs);
    }

    const uint8_t *q4 = x->qs;
    const int8_t *q8 = y->qs;
    const __m512i b0 = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)q4));
    const __m512i b1 = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(q4 + 32)));
    const __m512i b2 = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(q4 + 64)));
    const __m512i b3 = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(q4 + 96)));
    const __m512i u0 = _mm512_and_si512(_mm512_mask_srli_epi16(b0, upper, b0, 4), c->low4);
    const __m512i u1 = _mm512_and_si512(_mm512_mask_srli_epi16(b1, upper, b1, 4), c->low4);
    const __m512i u2 = _mm512_and_si512(_mm512_mask_srli_epi16(b2, upper, b2, 4), c->low4);
    const __m512i u3 = _mm512_and_si512(_mm512_mask_srli_epi16(b3, upper, b3, 4), c->low4);
    const __m512i zero = _mm512_setzero_si512();
    const __m512i d0 = _mm512_dpbusd_epi32(zero, u0, _mm512_loadu_si512(q8));
    const __m512i d1 = _mm512_dpbusd_epi32(zero, u1, _mm512_loadu_si512(q8 + 64));
    const __m512i d2 = _mm512_dpbusd_epi32(zero, u2, _mm512_loadu_si512(q8 + 128));
    const __m512i d3 = _mm512_dpbusd_epi32(zero, u3, _mm512_loadu_si512(q8 + 192));
    const __m512i acc = _mm512_dpwssd_epi32(zero, _mm512_packs_epi32(d0, d1), _mm512_shuffle_epi8(scales, c->ctl[0]));
    return _mm512_dpwssd_epi32(acc, _mm512_packs_epi32(d2, d3), _mm512_shuffle_epi8(scales, c->ctl[1]));
}

/* One super-block's isum and isum_m partial sums: 128-bit lane h holds
 * {isum, isum, isum_m, isum_m} parts (hadd of the halved isum lanes and the
 * isum_m lanes). */
static inline __m256i superblock_sums8(const block_q4_K *x, const block_q8_K *y, const struct q4k_consts *c,
                                       __m512i scales)
{
    __m256i m;
    const __m512i a = superblock_sums(x, y, c, scales, &m);
    return _mm256_hadd_epi32(_mm256_add_epi32(_mm512_castsi512_si256(a), _mm512_extracti64x4_epi64(a, 1)), m);
}

/* avx512_kq_scales_mins_k4 for four super-blocks at once: 128-bit lane k
 * holds the 16 scale/min bytes of x[k] (x[0] again for k >= count). */
static inline __m512i scales_mins_k4_x4(const block_q4_K *x, int count)
{
    const int k1 = count > 1 ? 1 : 0, k2 = count > 2 ? 2 : 0, k3 = count > 3 ? 3 : 0;
    __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)x[0].scales));
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)x[k1].scales), 1);
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)x[k2].scales), 2);
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)x[k3].scales), 3);
    const __m512i a = _mm512_shuffle_epi8(
        v, _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11)));
    const __m512i b = _mm512_shuffle_epi8(
        v, _mm512_broadcast_i32x4(_mm_setr_epi8(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7)));
    const __m512i low = _mm512_and_si512(
        _mm512_srlv_epi32(a, _mm512_broadcast_i32x4(_mm_setr_epi32(0, 0, 0, 4))),
        _mm512_broadcast_i32x4(_mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 15, 15, 15, 15)));
    return _mm512_ternarylogic_epi32(low, _mm512_srli_epi16(b, 2), _mm512_set1_epi8(0x30), 0xF8); /* low | (b' & 0x30) */
}

/* One group of count (1..4) super-blocks; called with a constant 4 for whole
 * groups so that the branches on count compile away (they cost a third of
 * the time when count was a variable). */
SIMD_ALWAYS_INLINE float q4k_group(float sumf, int count, const block_q4_K *x, const block_q8_K *y,
                                   const struct q4k_consts *c)
{
    const __m256i zero = _mm256_setzero_si256();
    const __m512i sm4 = scales_mins_k4_x4(x, count);
    const __m256i r0 = superblock_sums8(x, y, c, _mm512_shuffle_i32x4(sm4, sm4, 0x00));
    const __m256i r1 = count > 1 ? superblock_sums8(x + 1, y + 1, c, _mm512_shuffle_i32x4(sm4, sm4, 0x55)) : zero;
    const __m256i r2 = count > 2 ? superblock_sums8(x + 2, y + 2, c, _mm512_shuffle_i32x4(sm4, sm4, 0xAA)) : zero;
    const __m256i r3 = count > 3 ? superblock_sums8(x + 3, y + 3, c, _mm512_shuffle_i32x4(sm4, sm4, 0xFF)) : zero;
    /* per 128-bit lane {isum, isum_m} parts of blocks k, k+1; the two
     * lanes added: {isum_0, isum_m_0, .., isum_3, isum_m_3} */
    const __m256i q01 = _mm256_hadd_epi32(r0, r1), q23 = _mm256_hadd_epi32(r2, r3);
    const __m256i totals = _mm256_add_epi32(_mm256_permute2x128_si256(q01, q23, 0x20),
                                            _mm256_permute2x128_si256(q01, q23, 0x31));
    return kq_fold4_min(sumf, totals, kq_scales4_min((const uint8_t *)&x->d, sizeof(block_q4_K), y, count),
                        count);
}

static void vec_dot_q4_K_q8_K_avx512(int n, float *s, const void *vx, const void *vy)
{
    const struct q4k_consts c = q4k_consts_make();
    const block_q4_K *x = vx;
    const block_q8_K *y = vy;
    const int nb = n / QK_K;
    float sumf = 0.0f;
    int i = 0;
    for (; i + 4 <= nb; i += 4)
        sumf = q4k_group(sumf, 4, x + i, y + i, &c);
    if (i < nb)
        sumf = q4k_group(sumf, nb - i, x + i, y + i, &c);
    *s = sumf;
}

void quarry_kernels_q4_K_avx512(struct quarry_type_traits *table)
{
    table[QUARRY_TYPE_Q4_K].to_float = dequantize_row_q4_K_avx512;
    table[QUARRY_TYPE_Q4_K].vec_dot = vec_dot_q4_K_q8_K_avx512;
}
