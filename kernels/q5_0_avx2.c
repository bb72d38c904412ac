/*
 * q5_0_avx2.c - AVX2 kernels for q5_0: dequantize and the dot product against
 * q8_0 activations, bit-identical to kernels/q5_0.c.
 *
 * The fifth bits (qh, one per weight) are spread to bytes with a byte shuffle
 * and compare. vec_dot works on groups of 16 blocks. Each block's integer sum
 * sum_j (c_j - 16) * y_j = sum_j n_j*y_j - 16 * sum_{fifth bit clear} y_j (n_j
 * the low 4 bits) is formed exactly with two vpmaddubsw (the 16-bit pair sums
 * stay below 2^14) and vpmaddwd, the sums of blocks 0-7 and 8-15 are gathered
 * into two vectors by transposing reductions, and the per-block terms
 * (float)sumi * (fp16(x.d) * fp16(y.d)) are formed in vector lanes. Those
 * terms are added into two 8-lane accumulators, lanes 0-7 and 8-15 of the
 * scalar reference's 16-lane fold (block b in lane b % 16; a partial last
 * group adds +0.0f in its empty lanes), one vector add per 8 blocks with no
 * serial chain, and the pairwise tree at the end is the scalar's
 * (legacy_vec_dot in kernels/simd_avx2.h).
 */
#include <immintrin.h>

#include "kernels/kernels.h"
#include "kernels/simd_avx2.h"

/* sum_j (c_j - 16) * y_j of block x with activation block y, as 8 int32
 * partial sums: sum_j n_j*y_j - 16 * sum_{j: fifth bit clear} y_j, n_j the
 * low 4 bits. The 16-bit pair sums (|.| <= 2*15*128 + 2*16*128) cannot
 * saturate. */
static inline __m256i block_dot(const void *vx, const void *vy)
{
    const block_q5_0 *x = vx;
    const block_q8_0 *y = vy;
    const __m256i sixteen_where_clear = _mm256_andnot_si256(avx2_bits_to_bytes(x->qh), _mm256_set1_epi8(16));
    const __m256i qy = _mm256_loadu_si256((const __m256i *)y->qs);
    const __m256i pairs = _mm256_sub_epi16(_mm256_maddubs_epi16(avx2_nibbles_32(x->qs), qy),
                                           _mm256_maddubs_epi16(sixteen_where_clear, qy));
    return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

/* d of 8 q5_0 blocks */
static inline __m256 q5_0_scales_8(const void *x)
{
    return avx2_fp16_8_strided(x, sizeof(block_q5_0));
}

/* ---- kernels --------------------------------------------------------------- */

static void dequantize_row_q5_0_avx2(const void *vx, float *y, int64_t n)
{
    const block_q5_0 *x = vx;
    const int64_t nb = n / QK5_0;
    for (int64_t i = 0; i < nb; i++) {
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(x[i].d));
        /* c - 16 = n - 16 where the fifth bit is clear, n where it is set */
        const __m256i w = _mm256_sub_epi8(avx2_nibbles_32(x[i].qs),
                                          _mm256_andnot_si256(avx2_bits_to_bytes(x[i].qh), _mm256_set1_epi8(16)));
        avx2_store_scaled_i8x32(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1), d, y + i * QK5_0);
    }
}

static void vec_dot_q5_0_q8_0_avx2(int n, float *s, const void *vx, const void *vy)
{
    *s = legacy_vec_dot(n / QK5_0, vx, sizeof(block_q5_0), vy, sizeof(block_q8_0), block_dot,
                        q5_0_scales_8, avx2_q8_0_scales_8);
}

void quarry_kernels_q5_0_avx2(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_Q5_0];
    t->to_float = dequantize_row_q5_0_avx2;
    t->vec_dot = vec_dot_q5_0_q8_0_avx2;
}
