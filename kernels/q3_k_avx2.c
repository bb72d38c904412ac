/*
 * q3_k_avx2.c - q3_K kernels for AVX2 (+FMA, F16C): dequantize a row and the
 * dot product of a q3_K row with a q8_K activation row.
 *
 * A q3_K super-block holds 256 weights in 16 sub-blocks of 16, each with a
 * signed 6-bit scale (stored +32 in 12 packed bytes): w = d*sc*q with q in
 * -4..3. Weight 128h + 32j + l has its low 2 bits at bits 2j..2j+1 of
 * qs[32h + l] and its high bit at bit 4h + j of hmask[l]; a clear high bit
 * means "subtract 4". Sub-block 8h + 2j + l/16.
 *
 * Dot product, exact as the contract in q3_k.c requires: with u = q + 4 in
 * 0..7 (low bits plus 4 * high bit) maddubs/madd give sum_k sc_k * sum u*y in
 * int32 lanes, and the bias is taken back through the activation's bsums:
 * isum = that - 4 * sum_k sc_k*bsums[k] (bsums are the exact 16-value sums of
 * y.qs that every q8_K block carries). Four super-blocks are reduced together
 * and folded in order as in the scalar: sumf = sumf + d*(float)isum,
 * d = y.d * fp16(x.d), the products in vector lanes (same rounding).
 * Dequantization repeats the scalar's dl = d * sc, then dl * q, lane by lane.
 */
#include <immintrin.h>
#include <stddef.h>

#include "kernels/kernels.h"
#include "kernels/simd_avx2.h"
#include "kernels/types.h"

static void dequantize_row_q3_K_avx2(const void *vx, float *y, int64_t n)
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
                const __m256i bit = _mm256_set1_epi8((char)(1 << (4 * h + j)));
                const __m256i high = _mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), bit);
                const __m256i v = _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m3),
                                                  _mm256_andnot_si256(high, four));
                const int k = 8 * h + 2 * j;
                const float dl0 = d * (float)sc[k], dl1 = d * (float)sc[k + 1];
                avx2_kq_store_i8x16(_mm256_castsi256_si128(v), _mm256_set1_ps(dl0), y);
                avx2_kq_store_i8x16(_mm256_extracti128_si256(v, 1), _mm256_set1_ps(dl1), y + 16);
                y += 32;
            }
        }
    }
}

/* u = q + 4 in 0..7 of half h: the low 2 bits from qs, the high bit from
 * hmask (bit 4h + g for group g, moved to bit 2). */
static inline void unpack_half(const void *vx, int h, __m256i u[4])
{
    const block_q3_K *x = vx;
    const __m256i m3 = _mm256_set1_epi8(3), m4 = _mm256_set1_epi8(4);
    const __m256i hm = _mm256_loadu_si256((const __m256i *)x->hmask);
    const __m256i q = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * h));
    /* bit 4h + g of hmask at bit 2 + g */
    const __m256i hb = h == 0 ? _mm256_slli_epi16(hm, 2) : _mm256_srli_epi16(hm, 2);
    u[0] = _mm256_or_si256(_mm256_and_si256(q, m3), _mm256_and_si256(hb, m4));
    u[1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 2), m3), _mm256_and_si256(_mm256_srli_epi16(hb, 1), m4));
    u[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m3), _mm256_and_si256(_mm256_srli_epi16(hb, 2), m4));
    u[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 6), m3), _mm256_and_si256(_mm256_srli_epi16(hb, 3), m4));
}

/* One super-block: int32 lanes summing to isum = sum_k sc_k * sum q*y, from
 * u = q + 4 and the bias 4. */
static inline __m256i superblock_sums(const void *vx, const block_q8_K *y)
{
    const block_q3_K *x = vx;
    return avx2_kq_signed_sums(x, unpack_half, _mm256_cvtepi8_epi16(avx2_kq_q3_scales(x->scales)), y, 2);
}

static void vec_dot_q3_K_q8_K_avx2(int n, float *s, const void *vx, const void *vy)
{
    *s = avx2_kq_vec_dot(n / QK_K, vx, sizeof(block_q3_K), offsetof(block_q3_K, d), vy, superblock_sums);
}

void quarry_kernels_q3_K_avx2(struct quarry_type_traits *table)
{
    table[QUARRY_TYPE_Q3_K].to_float = dequantize_row_q3_K_avx2;
    table[QUARRY_TYPE_Q3_K].vec_dot = vec_dot_q3_K_q8_K_avx2;
}
