/*
 * q6_k_avx2.c - q6_K kernels for AVX2 (+FMA, F16C): dequantize a row and the
 * dot product of a q6_K row with a q8_K activation row.
 *
 * A q6_K super-block holds 256 weights in 16 sub-blocks of 16, each with a
 * signed 8-bit scale: w = d*sc*(q - 32), q in 0..63. In each half h (128
 * weights) the 32-weight groups g = 0..3 take their low 4 bits from
 * ql[64h + 32*(g&1) + l] (low nibble for g < 2, high nibble otherwise) and
 * their top 2 bits from bits 2g..2g+1 of qh[32h + l]. Sub-block = weight / 16.
 *
 * Dot product, exact as the contract in q6_k.c requires: maddubs/madd give
 * sum_k sc_k * sum q*y in int32 lanes with the unsigned q (63*128*2 < 2^15),
 * and the -32 bias is taken back through the activation's bsums:
 * isum = that - 32 * sum_k sc_k*bsums[k] (bsums are the exact 16-value sums of
 * y.qs that every q8_K block carries). Four super-blocks are reduced together
 * and folded in order as in the scalar: sumf = sumf + d*(float)isum,
 * d = y.d * fp16(x.d), the products in vector lanes (same rounding).
 * Dequantization repeats the scalar's (d * sc) * q lane by lane.
 */
#include <immintrin.h>
#include <stddef.h>

#include "kernels/kernels.h"
#include "kernels/simd_avx2.h"
#include "kernels/types.h"

/* The four 32-weight groups of half h of a block as bytes q in 0..63. */
static inline void unpack_q6_half(const uint8_t *ql, const uint8_t *qh, __m256i q[4])
{
    const __m256i m4 = _mm256_set1_epi8(0x0F), top = _mm256_set1_epi8(0x30);
    const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
    const __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
    const __m256i h = _mm256_loadu_si256((const __m256i *)qh);
    /* bits 2g..2g+1 of qh to bits 4..5 (16-bit shifts; stray bits fall outside 0x30) */
    q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(h, 4), top));
    q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(h, 2), top));
    q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(h, top));
    q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                           _mm256_and_si256(_mm256_srli_epi16(h, 2), top));
}

static void dequantize_row_q6_K_avx2(const void *vx, float *y, int64_t n)
{
    const block_q6_K *x = vx;
    const int64_t nb = n / QK_K;
    const __m256i m32 = _mm256_set1_epi8(32);
    for (int64_t i = 0; i < nb; i++) {
        const float d = _cvtsh_ss(x[i].d);
        const int8_t *sc = x[i].scales;
        for (int h = 0; h < 2; h++) {
            __m256i q[4];
            unpack_q6_half(x[i].ql + 64 * h, x[i].qh + 32 * h, q);
            for (int g = 0; g < 4; g++) {
                const __m256i v = _mm256_sub_epi8(q[g], m32);
                const int k = 8 * h + 2 * g;
                const float d0 = d * (float)sc[k], d1 = d * (float)sc[k + 1];
                avx2_kq_store_i8x16(_mm256_castsi256_si128(v), _mm256_set1_ps(d0), y);
                avx2_kq_store_i8x16(_mm256_extracti128_si256(v, 1), _mm256_set1_ps(d1), y + 16);
                y += 32;
            }
        }
    }
}

/* the unsigned quants of half h */
static inline void unpack_half(const void *vx, int h, __m256i q[4])
{
    const block_q6_K *x = vx;
    unpack_q6_half(x->ql + 64 * h, x->qh + 32 * h, q);
}

/* One super-block: int32 lanes summing to isum = sum_k sc_k * sum (q-32)*y. */
static inline __m256i superblock_sums(const void *vx, const block_q8_K *y)
{
    const block_q6_K *x = vx;
    return avx2_kq_signed_sums(x, unpack_half, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x->scales)), y,
                               5);
}

static void vec_dot_q6_K_q8_K_avx2(int n, float *s, const void *vx, const void *vy)
{
    *s = avx2_kq_vec_dot(n / QK_K, vx, sizeof(block_q6_K), offsetof(block_q6_K, d), vy, superblock_sums);
}

void quarry_kernels_q6_K_avx2(struct quarry_type_traits *table)
{
    table[QUARRY_TYPE_Q6_K].to_float = dequantize_row_q6_K_avx2;
    table[QUARRY_TYPE_Q6_K].vec_dot = vec_dot_q6_K_q8_K_avx2;
}
