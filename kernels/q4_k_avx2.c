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
#include <stddef.h>

#include "kernels/kernels.h"
#include "kernels/simd_avx2.h"
#include "kernels/types.h"

static void dequantize_row_q4_K_avx2(const void *vx, float *y, int64_t n)
{
    const block_q4_K *x = vx;
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int64_t i = 0; i < nb; i++) {
        const float d = _cvtsh_ss(x[i].d), dmin = _cvtsh_ss(x[i].dmin);
        uint8_t sm[16];
        _mm_storeu_si128((__m128i *)sm, avx2_kq_scales_mins_k4(x[i].scales));
        for (int j = 0; j < QK_K / 64; j++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * j));
            const float d1 = d * (float)sm[2 * j], m1 = dmin * (float)sm[8 + 2 * j];
            const float d2 = d * (float)sm[2 * j + 1], m2 = dmin * (float)sm[8 + 2 * j + 1];
            avx2_kq_store_u8x32(_mm256_and_si256(q, m4), _mm256_set1_ps(d1), _mm256_set1_ps(m1), y);
            avx2_kq_store_u8x32(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), _mm256_set1_ps(d2),
                                _mm256_set1_ps(m2), y + 32);
            y += 64;
        }
    }
}

/* One super-block: int32 lanes summing to isum (returned) and to isum_m (*mins). */
static inline __m256i superblock_sums(const void *vx, const block_q8_K *y, __m128i *mins)
{
    const block_q4_K *x = vx;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m128i sm = avx2_kq_scales_mins_k4(x->scales);
    const __m256i scales = _mm256_broadcastsi128_si256(sm);
    *mins = avx2_kq_k4_mins(sm, y);
    /* chunk j: sub-blocks 2j (low nibbles of qs[32j..]) and 2j+1 (high nibbles) */
#define CHUNK(j, acc)                                                                                  \
    {                                                                                                  \
        const __m256i q = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * (j)));                     \
        acc = avx2_kq_k4_chunk(acc, scales, _mm256_and_si256(q, m4),                                   \
                               _mm256_and_si256(_mm256_srli_epi16(q, 4), m4), y->qs, j);               \
    }
    __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
    CHUNK(0, acc0)
    CHUNK(1, acc1)
    CHUNK(2, acc0)
    CHUNK(3, acc1)
#undef CHUNK
    return _mm256_add_epi32(acc0, acc1);
}

static void vec_dot_q4_K_q8_K_avx2(int n, float *s, const void *vx, const void *vy)
{
    *s = avx2_kq_vec_dot_min(n / QK_K, vx, sizeof(block_q4_K), offsetof(block_q4_K, d), vy, superblock_sums);
}

void quarry_kernels_q4_K_avx2(struct quarry_type_traits *table)
{
    table[QUARRY_TYPE_Q4_K].to_float = dequantize_row_q4_K_avx2;
    table[QUARRY_TYPE_Q4_K].vec_dot = vec_dot_q4_K_q8_K_avx2;
}
