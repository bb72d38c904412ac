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
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/types.h"

/* Splits the 12 packed scale bytes into scales (out[0..1], bytes 0..7) and
 * mins (out[2..3], bytes 0..7), one 6-bit value per byte. */
static inline void unpack_scales_mins(const uint8_t *packed, uint32_t out[4])
{
    uint32_t a[3];
    memcpy(a, packed, sizeof a);
    out[0] = a[0] & 0x3f3f3f3fu;
    out[1] = (a[2] & 0x0f0f0f0fu) | (((a[0] >> 6) & 0x03030303u) << 4);
    out[2] = a[1] & 0x3f3f3f3fu;
    out[3] = ((a[2] >> 4) & 0x0f0f0f0fu) | (((a[1] >> 6) & 0x03030303u) << 4);
}

/* The same split with vector operations, as 16 bytes: scales 0..7 then mins
 * 0..7. The 16-byte load also reads the first 4 bytes of qs (ignored). */
static inline __m128i decode_scales_mins(const uint8_t *packed)
{
    const __m128i v = _mm_loadu_si128((const __m128i *)packed);
    /* a: bytes 0-3, 8-11, 4-7, 8-11; b: the top-2-bit sources for 4-7 / 12-15 */
    const __m128i a = _mm_shuffle_epi8(v, _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
    const __m128i b = _mm_shuffle_epi8(v, _mm_setr_epi8(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7));
    const __m128i low = _mm_and_si128(_mm_srlv_epi32(a, _mm_setr_epi32(0, 0, 0, 4)),
                                      _mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 15, 15, 15, 15));
    const __m128i top = _mm_and_si128(_mm_srli_epi16(b, 2), _mm_set1_epi8(0x30));
    return _mm_or_si128(low, top);
}

/* 32 bytes (0..255) -> 32 floats d*q - m at y. */
static inline void store_scaled_u8x32(__m256i q, __m512 d, __m512 m, float *y)
{
    const __m512 f0 = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_castsi256_si128(q)));
    const __m512 f1 = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_extracti128_si256(q, 1)));
    _mm512_storeu_ps(y, _mm512_sub_ps(_mm512_mul_ps(d, f0), m));
    _mm512_storeu_ps(y + 16, _mm512_sub_ps(_mm512_mul_ps(d, f1), m));
}

static void dequantize_row_q4_K_avx512(const void *vx, float *y, int64_t n)
{
    const block_q4_K *x = vx;
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int64_t i = 0; i < nb; i++) {
        const float d = _cvtsh_ss(x[i].d), dmin = _cvtsh_ss(x[i].dmin);
        uint32_t sm[4];
        unpack_scales_mins(x[i].scales, sm);
        const uint8_t *sc = (const uint8_t *)&sm[0], *mn = (const uint8_t *)&sm[2];
        for (int j = 0; j < QK_K / 64; j++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * j));
            const float d1 = d * (float)sc[2 * j], m1 = dmin * (float)mn[2 * j];
            const float d2 = d * (float)sc[2 * j + 1], m2 = dmin * (float)mn[2 * j + 1];
            store_scaled_u8x32(_mm256_and_si256(q, m4), _mm512_set1_ps(d1), _mm512_set1_ps(m1), y);
            store_scaled_u8x32(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), _mm512_set1_ps(d2),
                               _mm512_set1_ps(m2), y + 32);
            y += 64;
        }
    }
}

/* Constants of the dot product. ctl[m]: vpshufb control that turns the 16
 * scale/min bytes (in every 128-bit lane) into the 16-bit scale of sub-block
 * 2m (lanes 0-1) and 2m+1 (lanes 2-3), zero-extended. */
struct q4k_consts {
    __m512i low4;
    __m512i ctl[4];
};

static inline struct q4k_consts q4k_consts_make(void)
{
    struct q4k_consts c;
    c.low4 = _mm512_set1_epi8(0x0F);
    for (int m = 0; m < 4; m++) {
        const __m256i lo = _mm256_set1_epi16((short)(0xFF00 | (2 * m)));
        const __m256i hi = _mm256_set1_epi16((short)(0xFF00 | (2 * m + 1)));
        c.ctl[m] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    }
    return c;
}

/* One super-block: int32 lanes summing to isum (returned) and to isum_m (*mins). */
static inline __m512i superblock_sums(const block_q4_K *x, const block_q8_K *y, const struct q4k_consts *c,
                                      __m128i *mins)
{
    const __mmask32 upper = 0xFFFF0000u;
    const __m128i sm = decode_scales_mins(x->scales);
    const __m512i scales = _mm512_broadcast_i32x4(sm);
    /* isum_m lanes: m_j * (bsums[2j] + bsums[2j+1]) in pairs */
    const __m256i bs = _mm256_loadu_si256((const __m256i *)y->bsums);
    const __m128i bs_pairs = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    *mins = _mm_madd_epi16(_mm_unpackhi_epi8(sm, _mm_setzero_si128()), bs_pairs);

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
    __m512i acc0 = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_maddubs_epi16(u0, _mm512_loadu_si512(q8)),
                                       _mm512_shuffle_epi8(scales, c->ctl[0]));
    __m512i acc1 = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_maddubs_epi16(u1, _mm512_loadu_si512(q8 + 64)),
                                       _mm512_shuffle_epi8(scales, c->ctl[1]));
    acc0 = _mm512_dpwssd_epi32(acc0, _mm512_maddubs_epi16(u2, _mm512_loadu_si512(q8 + 128)),
                               _mm512_shuffle_epi8(scales, c->ctl[2]));
    acc1 = _mm512_dpwssd_epi32(acc1, _mm512_maddubs_epi16(u3, _mm512_loadu_si512(q8 + 192)),
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
static inline __m256 super_scales4(const block_q4_K *x, const block_q8_K *y, int count)
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

static void vec_dot_q4_K_q8_K_avx512(int n, float *s, const void *vx, const void *vy)
{
    const block_q4_K *x = vx;
    const block_q8_K *y = vy;
    const int nb = n / QK_K;
    const struct q4k_consts c = q4k_consts_make();
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

void quarry_kernels_q4_K_avx512(struct quarry_type_traits *table)
{
    table[QUARRY_TYPE_Q4_K].to_float = dequantize_row_q4_K_avx512;
    table[QUARRY_TYPE_Q4_K].vec_dot = vec_dot_q4_K_q8_K_avx512;
}
