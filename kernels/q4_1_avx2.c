/*
 * q4_1_avx2.c - AVX2 kernels for q4_1: dequantize and the dot product against
 * q8_1 activations, bit-identical to kernels/q4_1.c.
 *
 * vec_dot works on groups of 16 blocks. Each block's integer sum
 * sum_j c_j * y_j is formed exactly with vpmaddubsw (codes as unsigned bytes;
 * the 16-bit pair sums stay below 2^12) and vpmaddwd, the sums of blocks 0-7
 * and 8-15 are gathered into two vectors by transposing reductions, and the
 * per-block terms t = (float)sumi * (fp16(x.d) * fp16(y.d)) +
 * fp16(x.m) * fp16(y.s) are formed in vector lanes with the scalar's
 * roundings. Those terms are added into two 8-lane accumulators, lanes 0-7 and
 * 8-15 of the scalar reference's 16-lane fold (block b in lane b % 16; a
 * partial last group adds +0.0f in its empty lanes), one vector add per 8
 * blocks with no serial chain, and the pairwise tree at the end is the
 * scalar's (legacy_vec_dot_min in kernels/simd_avx2.h).
 */
#include <immintrin.h>

#include "kernels/kernels.h"
#include "kernels/simd_avx2.h"

/* The 32 codes of a block (0..15) in weight order. */
static inline __m256i q4_1_codes(const block_q4_1 *x)
{
    return avx2_nibbles_32(x->qs);
}

/* sum_j c_j * y_j of block x with activation block y, as 8 int32 partial
 * sums (exact) */
static inline __m256i block_dot(const void *x, const void *y)
{
    const __m256i qy = _mm256_loadu_si256((const __m256i *)((const block_q8_1 *)y)->qs);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(q4_1_codes(x), qy), _mm256_set1_epi16(1));
}

/* (d, m) of 8 q4_1 blocks */
static inline struct fp16_pairs q4_1_scales_8(const void *x)
{
    return avx2_fp16_pairs_8(x, sizeof(block_q4_1));
}

/* ---- kernels --------------------------------------------------------------- */

static void dequantize_row_q4_1_avx2(const void *vx, float *y, int64_t n)
{
    const block_q4_1 *x = vx;
    const int64_t nb = n / QK4_1;
    for (int64_t i = 0; i < nb; i++)
        avx2_store_affine_u8x32(q4_1_codes(&x[i]), _mm256_set1_ps(_cvtsh_ss(x[i].d)),
                                _mm256_set1_ps(_cvtsh_ss(x[i].m)), y + i * QK4_1);
}

static void vec_dot_q4_1_q8_1_avx2(int n, float *s, const void *vx, const void *vy)
{
    *s = legacy_vec_dot_min(n / QK4_1, vx, sizeof(block_q4_1), vy, sizeof(block_q8_1), block_dot,
                            q4_1_scales_8, avx2_q8_1_scales_8);
}

void quarry_kernels_q4_1_avx2(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_Q4_1];
    t->to_float = dequantize_row_q4_1_avx2;
    t->vec_dot = vec_dot_q4_1_q8_1_avx2;
}
