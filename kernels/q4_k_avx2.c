/*
 * q4_k_avx2.c - q4_K kernels for AVX2 (+FMA, F16C): dequantize a row and the
 * dot product of a q4_K row with a q8_K activation row.
 *
 * Layout (see q4_k.c): 256 weights in 8 sub-blocks of 32, each with a 6-bit
 * scale and min, w = d*sc*q - dmin*m, q in 0..15; bytes qs[32j..32j+31] carry
 * sub-block 2j in their low and 2j+1 in their high nibbles.
 *
 * Dot product, exact as the contract in q4_k.c requires: per super-block
 * maddubs forms 16-bit pair sums of q*y (no saturation: 15*128*2 < 2^15) and
 * madd multiplies them by the sub-block scale into int32 lanes; the mins meet
 * the activation's bsums in a madd. Four super-blocks are reduced together to
 * their integer totals isum/isum_m, which are then folded in super-block
 * order with the scalar's float operations:
 *     sumf = sumf + (d*(float)isum - dmin*(float)isum_m)
 * (the products computed in vector lanes round exactly as the scalar ones;
 * the sums stay sequential). The scales are unpacked with integer
 * instructions, which run beside the vector work. Dequantization repeats the
 * scalar's d*sc, dmin*m and d1*q - m1 lane by lane, so it is bit-identical.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/types.h"

/* Splits the 12 packed scale bytes into 16 bytes: scales 0..7, then mins 0..7. */
static inline __m128i unpack_scales_mins(const uint8_t *packed)
{
    uint32_t a[3];
    memcpy(a, packed, sizeof a);
    const uint64_t sc = (a[0] & 0x3f3f3f3fu) |
                        (uint64_t)((a[2] & 0x0f0f0f0fu) | (((a[0] >> 6) & 0x03030303u) << 4)) << 32;
    const uint64_t mn = (a[1] & 0x3f3f3f3fu) |
                        (uint64_t)(((a[2] >> 4) & 0x0f0f0f0fu) | (((a[1] >> 6) & 0x03030303u) << 4)) << 32;
    return _mm_set_epi64x((long long)mn, (long long)sc);
}

/* 32 bytes (0..255) -> 32 floats d*q - m at y. */
static inline void store_scaled_u8x32(__m256i q, __m256 d, __m256 m, float *y)
{
    const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
    for (int k = 0; k < 4; k++) {
        const __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(parts[k]));
        _mm256_storeu_ps(y + 8 * k, _mm256_sub_ps(_mm256_mul_ps(d, f), m));
    }
}

static void dequantize_row_q4_K_avx2(const void *vx, float *y, int64_t n)
{
    const block_q4_K *x = vx;
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int64_t i = 0; i < nb; i++) {
        const float d = _cvtsh_ss(x[i].d), dmin = _cvtsh_ss(x[i].dmin);
        uint8_t sm[16];
        _mm_storeu_si128((__m128i *)sm, unpack_scales_mins(x[i].scales));
        for (int j = 0; j < QK_K / 64; j++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * j));
            const float d1 = d * (float)sm[2 * j], m1 = dmin * (float)sm[8 + 2 * j];
            const float d2 = d * (float)sm[2 * j + 1], m2 = dmin * (float)sm[8 + 2 * j + 1];
            store_scaled_u8x32(_mm256_and_si256(q, m4), _mm256_set1_ps(d1), _mm256_set1_ps(m1), y);
            store_scaled_u8x32(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), _mm256_set1_ps(d2),
                               _mm256_set1_ps(m2), y + 32);
            y += 64;
        }
    }
}

/* vpshufb controls: row k turns the 16 scale/min bytes (in both 128-bit
 * lanes) into scale k, zero-extended to every 16-bit slot. */
static _Alignas(32) const uint8_t scale_bcast16[8][32] = {
#define ROW(k) {k, 0x80, k, 0x80, k, 0x80, k, 0x80, k, 0x80, k, 0x80, k, 0x80, k, 0x80, \
                k, 0x80, k, 0x80, k, 0x80, k, 0x80, k, 0x80, k, 0x80, k, 0x80, k, 0x80}
    ROW(0), ROW(1), ROW(2), ROW(3), ROW(4), ROW(5), ROW(6), ROW(7)
#undef ROW
};

/* One super-block: int32 lanes summing to isum (returned) and to isum_m (*mins). */
static inline __m256i superblock_sums(const block_q4_K *x, const block_q8_K *y, __m128i *mins)
{
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m128i sm = unpack_scales_mins(x->scales);
    const __m256i scales = _mm256_broadcastsi128_si256(sm);
    /* isum_m lanes: m_j * (bsums[2j] + bsums[2j+1]) in pairs */
    const __m256i bs = _mm256_loadu_si256((const __m256i *)y->bsums);
    const __m128i bs_pairs = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    *mins = _mm_madd_epi16(_mm_unpackhi_epi8(sm, _mm_setzero_si128()), bs_pairs);

    const uint8_t *q4 = x->qs;
    const int8_t *q8 = y->qs;
#define CHUNK(j, acc)                                                                                          \
    {                                                                                                         \
        const __m256i q = _mm256_loadu_si256((const __m256i *)(q4 + 32 * (j)));                              \
        const __m256i pl = _mm256_maddubs_epi16(_mm256_and_si256(q, m4),                                      \
                                                _mm256_loadu_si256((const __m256i *)(q8 + 64 * (j))));        \
        const __m256i ph = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4),                \
                                                _mm256_loadu_si256((const __m256i *)(q8 + 64 * (j) + 32)));   \
        const __m256i sl = _mm256_shuffle_epi8(scales, _mm256_load_si256((const __m256i *)scale_bcast16[2 * (j)])); \
        const __m256i sh = _mm256_shuffle_epi8(scales, _mm256_load_si256((const __m256i *)scale_bcast16[2 * (j) + 1])); \
        acc = _mm256_add_epi32(acc, _mm256_add_epi32(_mm256_madd_epi16(pl, sl), _mm256_madd_epi16(ph, sh))); \
    }
    __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
    CHUNK(0, acc0)
    CHUNK(1, acc1)
    CHUNK(2, acc0)
    CHUNK(3, acc1)
#undef CHUNK
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
static inline __m256 super_scales4(const block_q4_K *x, const block_q8_K *y, int count)
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

static void vec_dot_q4_K_q8_K_avx2(int n, float *s, const void *vx, const void *vy)
{
    const block_q4_K *x = vx;
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

void quarry_kernels_q4_K_avx2(struct quarry_type_traits *table)
{
    table[QUARRY_TYPE_Q4_K].to_float = dequantize_row_q4_K_avx2;
    table[QUARRY_TYPE_Q4_K].vec_dot = vec_dot_q4_K_q8_K_avx2;
}
