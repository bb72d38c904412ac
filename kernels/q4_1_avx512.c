/*
 * q4_1_avx512.c - AVX-512 kernels for q4_1 (F/BW/VL + VNNI): dequantize and
 * the dot product against q8_1 activations, bit-identical to kernels/q4_1.c.
 *
 * vec_dot works on groups of 16 blocks. Each block's integer sum
 * sum_j c_j * y_j is formed exactly with one vpdpbusd (codes as unsigned
 * bytes), the sums of blocks 0-7 and 8-15 are gathered into two vectors by
 * transposing reductions, and the per-block terms t =
 * (float)sumi * (fp16(x.d) * fp16(y.d)) + fp16(x.m) * fp16(y.s) are formed in
 * vector lanes with the scalar's roundings. Those terms are added into two
 * 8-lane accumulators, lanes 0-7 and 8-15 of the scalar reference's 16-lane
 * fold (block b in lane b % 16; a partial last group adds +0.0f in its empty
 * lanes), one vector add per 8 blocks with no serial chain, and the pairwise
 * tree at the end is the scalar's (legacy_vec_dot_min in kernels/simd_avx2.h).
 * The fp16 pairs (d, m) and (d, s) of each 8 blocks are pulled out of the
 * block bytes with word permutes (vpermt2w), never reading past the 8 blocks.
 */
#include <immintrin.h>

#include "kernels/kernels.h"
#include "kernels/simd_avx512.h"

/* (d, m) of q4_1 blocks x[0..7]: words 10k and 10k+1 of the 160 bytes;
 * k < 7 from bytes [0, 128), k = 7 from bytes [96, 160). Output words
 * 0..7 are the d's, 8..15 the m's. */
static inline struct fp16_pairs q4_1_scales_8(const void *x)
{
    const uint8_t *p = x;
    const __m512i idx_lo = _mm512_zextsi256_si512(_mm256_setr_epi16(
        0, 10, 20, 30, 40, 50, 60, 0, 1, 11, 21, 31, 41, 51, 61, 0));
    const __m512i idx_hi = _mm512_zextsi256_si512(_mm256_setr_epi16(
        0, 0, 0, 0, 0, 0, 0, 70 - 48, 0, 0, 0, 0, 0, 0, 0, 71 - 48));
    const __m512i lo = _mm512_permutex2var_epi16(_mm512_loadu_si512(p), idx_lo,
                                                 _mm512_loadu_si512(p + 64));
    const __m512i hi = _mm512_permutexvar_epi16(idx_hi, _mm512_loadu_si512(p + 96));
    return avx512_widen_pairs(_mm256_mask_blend_epi16((__mmask16)0x8080, _mm512_castsi512_si256(lo),
                                               _mm512_castsi512_si256(hi)));
}

/* The 32 codes of a block (0..15) in weight order. */
static inline __m256i q4_1_codes(const block_q4_1 *x)
{
    return avx512_nibbles_32(x->qs);
}

/* sum_j c_j * y_j of block x with activation block y, as 8 int32 partial
 * sums (exact) */
static inline __m256i block_dot(const void *x, const void *y)
{
    const __m256i qy = _mm256_loadu_si256((const __m256i *)((const block_q8_1 *)y)->qs);
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), q4_1_codes(x), qy);
}

/* ---- kernels --------------------------------------------------------------- */

static void dequantize_row_q4_1_avx512(const void *vx, float *y, int64_t n)
{
    const block_q4_1 *x = vx;
    const int64_t nb = n / QK4_1;
    for (int64_t i = 0; i < nb; i++)
        avx512_store_affine_u8x32(q4_1_codes(&x[i]), _mm512_set1_ps(_cvtsh_ss(x[i].d)),
                                  _mm512_set1_ps(_cvtsh_ss(x[i].m)), y + i * QK4_1);
}

static void vec_dot_q4_1_q8_1_avx512(int n, float *s, const void *vx, const void *vy)
{
    *s = legacy_vec_dot_min(n / QK4_1, vx, sizeof(block_q4_1), vy, sizeof(block_q8_1), block_dot,
                            q4_1_scales_8, avx512_q8_1_scales_8);
}

void quarry_kernels_q4_1_avx512(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_Q4_1];
    t->to_float = dequantize_row_q4_1_avx512;
    t->vec_dot = vec_dot_q4_1_q8_1_avx512;
}
