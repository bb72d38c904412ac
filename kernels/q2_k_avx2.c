/*
 * q2_k_avx2.c - q2_K kernels for AVX2 (+FMA, F16C): dequantize a row and the
 * dot product of a q2_K row with a q8_K activation row.
 *
 * A q2_K super-block holds 256 weights in 16 sub-blocks of 16; byte
 * scales[k] has the 4-bit scale (low nibble) and 4-bit min (high nibble) of
 * sub-block k: w = d*sc*q - dmin*m, q in 0..3. Weight 128h + 32j + l is
 * bits 2j..2j+1 of qs[32h + l], sub-block 8h + 2j + l/16.
 *
 * Dot product, exact as the contract in q2_k.c requires: per super-block the
 * int32 sums isum = sum_k sc_k * sum_{l in k} q_l*y_l and
 * isum_m = sum_k m_k * bsums[k] come from maddubs/madd (2-bit times 8-bit
 * products cannot saturate). Four super-blocks are reduced together and
 * folded in order with the scalar's float operations:
 * sumf = sumf + (d*(float)isum - dmin*(float)isum_m), d = y.d*fp16(x.d),
 * dmin = y.d*fp16(x.dmin), the products in vector lanes (same rounding).
 * Dequantization repeats the scalar's d*sc, dmin*m, dl*q - ml lane by lane.
 */
#include <immintrin.h>
#include <stddef.h>

#include "kernels/kernels.h"
#include "kernels/simd_avx2.h"
#include "kernels/types.h"

static void dequantize_row_q2_K_avx2(const void *vx, float *y, int64_t n)
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
                avx2_kq_store_u8x16(_mm256_castsi256_si128(v), _mm256_set1_ps(dl0), _mm256_set1_ps(ml0), y);
                avx2_kq_store_u8x16(_mm256_extracti128_si256(v, 1), _mm256_set1_ps(dl1), _mm256_set1_ps(ml1),
                                   y + 16);
                y += 32;
            }
        }
    }
}

/* vpshufb controls: row j picks scale bytes 2j (low 128-bit lane) and 2j+1
 * (high lane) of the 8 held in each lane, zero-extended to every 16-bit slot:
 * a 32-weight vector's low and high 16 weights are sub-blocks 2j and 2j+1. */
static _Alignas(32) const uint8_t scale_pair_bcast[4][32] = {
#define ROW(j) {2*j, 0x80, 2*j, 0x80, 2*j, 0x80, 2*j, 0x80, 2*j, 0x80, 2*j, 0x80, 2*j, 0x80, 2*j, 0x80, \
    2*j+1, 0x80, 2*j+1, 0x80, 2*j+1, 0x80, 2*j+1, 0x80, 2*j+1, 0x80, 2*j+1, 0x80, 2*j+1, 0x80, 2*j+1, 0x80}
    ROW(0), ROW(1), ROW(2), ROW(3)
#undef ROW
};

/* One super-block: int32 lanes summing to isum (returned) and to isum_m
 * (*mins). Always inlined into the row loop: kept out of line (GCC's own
 * choice for it) the dot product is about 9% slower. */
SIMD_ALWAYS_INLINE __m256i superblock_sums(const void *vx, const block_q8_K *y, __m128i *mins)
{
    const block_q2_K *x = vx;
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m128i packed = _mm_loadu_si128((const __m128i *)x->scales);
    const __m128i sc8 = _mm_and_si128(packed, _mm_set1_epi8(0x0F));
    *mins = avx2_kq_q2_mins(packed, y);
    const __m256i ctl[4] = {_mm256_load_si256((const __m256i *)scale_pair_bcast[0]),
                            _mm256_load_si256((const __m256i *)scale_pair_bcast[1]),
                            _mm256_load_si256((const __m256i *)scale_pair_bcast[2]),
                            _mm256_load_si256((const __m256i *)scale_pair_bcast[3])};
    /* the 2-bit fields 0..3 of the 32 bytes of half h (scale bytes 8h..8h+7
     * in both 128-bit lanes) */
#define HALF(h, sc, acc)                                                                               \
    {                                                                                                  \
        const __m256i q = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * (h)));                     \
        const __m256i u[4] = {_mm256_and_si256(q, m3), _mm256_and_si256(_mm256_srli_epi16(q, 2), m3),  \
                              _mm256_and_si256(_mm256_srli_epi16(q, 4), m3),                           \
                              _mm256_and_si256(_mm256_srli_epi16(q, 6), m3)};                          \
        acc = avx2_kq_half_sums(u, y->qs + 128 * (h), sc, ctl);                                        \
    }
    __m256i acc0, acc1;
    HALF(0, _mm256_broadcastsi128_si256(sc8), acc0)
    HALF(1, _mm256_broadcastsi128_si256(_mm_srli_si128(sc8, 8)), acc1)
#undef HALF
    return _mm256_add_epi32(acc0, acc1);
}

static void vec_dot_q2_K_q8_K_avx2(int n, float *s, const void *vx, const void *vy)
{
    *s = avx2_kq_vec_dot_min(n / QK_K, vx, sizeof(block_q2_K), offsetof(block_q2_K, d), vy, superblock_sums);
}

void quarry_kernels_q2_K_avx2(struct quarry_type_traits *table)
{
    table[QUARRY_TYPE_Q2_K].to_float = dequantize_row_q2_K_avx2;
    table[QUARRY_TYPE_Q2_K].vec_dot = vec_dot_q2_K_q8_K_avx2;
}
