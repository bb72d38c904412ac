/*
 * q4_0_avx512.c - AVX-512 kernels for q4_0 (F/BW/VL + VNNI): dequantize and
 * the dot product against q8_0 activations, bit-identical to kernels/q4_0.c.
 *
 * vec_dot works on groups of 16 blocks. Each block's integer sum
 * sum_j (c_j - 8) * y_j is formed exactly with vpdpbusd (codes as unsigned
 * bytes times activations, minus 8 * sum_j y_j, also by vpdpbusd), the sums of
 * blocks 0-7 and 8-15 are gathered into two vectors by transposing reductions,
 * and the per-block terms (float)sumi * (fp16(x.d) * fp16(y.d)) are formed in
 * vector lanes. Those terms are added into two 8-lane accumulators, lanes 0-7
 * and 8-15 of the scalar reference's 16-lane fold (block b in lane b % 16; a
 * partial last group adds +0.0f in its empty lanes), one vector add per 8
 * blocks with no serial chain, and the pairwise tree at the end is the
 * scalar's (legacy_vec_dot in kernels/simd_avx2.h). The fp16 scales of each 8
 * blocks are picked out of 64-byte loads of the block bytes with word permutes
 * (vpermt2w), never reading past the 8 blocks.
 */
#include <immintrin.h>

#include "kernels/kernels.h"
#include "kernels/simd_avx512.h"

/* d of blocks x[0..7] as floats. Block k's d is 16-bit word 9k of the 144
 * bytes, so all 8 lie in the first 128 bytes. */
static inline __m256 q4_0_scales_8(const void *x)
{
    const uint8_t *p = x;
    const __m512i idx = _mm512_zextsi128_si512(_mm_setr_epi16(0, 9, 18, 27, 36, 45, 54, 63));
    const __m512i w = _mm512_permutex2var_epi16(_mm512_loadu_si512(p), idx, _mm512_loadu_si512(p + 64));
    return _mm256_cvtph_ps(_mm512_castsi512_si128(w));
}

/* sum_j (c_j - 8) * y_j of block x with activation block y, as 8 int32
 * partial sums (exact: codes <= 15 and |y| <= 128 keep every vpdpbusd lane
 * far from overflow). */
static inline __m256i block_dot(const void *vx, const void *vy)
{
    const block_q4_0 *x = vx;
    const block_q8_0 *y = vy;
    const __m256i qy = _mm256_loadu_si256((const __m256i *)y->qs);
    const __m256i cy = _mm256_dpbusd_epi32(_mm256_setzero_si256(), avx512_nibbles_32(x->qs), qy);
    const __m256i y8 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(8), qy);
    return _mm256_sub_epi32(cy, y8);
}

/* ---- kernels --------------------------------------------------------------- */

static void dequantize_row_q4_0_avx512(const void *vx, float *y, int64_t n)
{
    const block_q4_0 *x = vx;
    const int64_t nb = n / QK4_0;
    const __m128i low4 = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
    for (int64_t i = 0; i < nb; i++) {
        const __m128i qs = _mm_loadu_si128((const __m128i *)x[i].qs);
        const __m128i lo = _mm_sub_epi8(_mm_and_si128(qs, low4), eight);
        const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(qs, 4), low4), eight);
        avx512_store_scaled_i8x32(lo, hi, _mm512_set1_ps(_cvtsh_ss(x[i].d)), y + i * QK4_0);
    }
}

static void vec_dot_q4_0_q8_0_avx512(int n, float *s, const void *vx, const void *vy)
{
    *s = legacy_vec_dot(n / QK4_0, vx, sizeof(block_q4_0), vy, sizeof(block_q8_0), block_dot,
                        q4_0_scales_8, avx512_q8_0_scales_8);
}

void quarry_kernels_q4_0_avx512(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_Q4_0];
    t->to_float = dequantize_row_q4_0_avx512;
    t->vec_dot = vec_dot_q4_0_q8_0_avx512;
}
