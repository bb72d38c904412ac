/*
 * q4_0_avx2.c - AVX2 kernels for q4_0: dequantize and the dot product against
 * q8_0 activations, bit-identical to kernels/q4_0.c.
 *
 * vec_dot works on groups of 16 blocks. Each block's integer sum
 * sum_j (c_j - 8) * y_j is formed exactly with vpmaddubsw (codes as unsigned
 * bytes times activations, minus 8 * y by a second vpmaddubsw; the 16-bit pair
 * sums stay below 2^13) and vpmaddwd, the sums of blocks 0-7 and 8-15 are
 * gathered into two vectors by transposing reductions, and the per-block terms
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

/* sum_j (c_j - 8) * y_j of block x with activation block y, as 8 int32
 * partial sums. The 16-bit pair sums c*y (|.| <= 2*15*128) minus 8*y
 * (|.| <= 2*8*128) cannot saturate. */
static inline __m256i block_dot(const void *vx, const void *vy)
{
    const block_q4_0 *x = vx;
    const block_q8_0 *y = vy;
    const __m256i codes = avx2_nibbles_32(x->qs);
    const __m256i qy = _mm256_loadu_si256((const __m256i *)y->qs);
    const __m256i pairs = _mm256_sub_epi16(_mm256_maddubs_epi16(codes, qy),
                                           _mm256_maddubs_epi16(_mm256_set1_epi8(8), qy));
    return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

/* d of 8 q4_0 blocks */
static inline __m256 q4_0_scales_8(const void *x)
{
    return avx2_fp16_8_strided(x, sizeof(block_q4_0));
}

/* ---- kernels --------------------------------------------------------------- */

static void dequantize_row_q4_0_avx2(const void *vx, float *y, int64_t n)
{
    const block_q4_0 *x = vx;
    const int64_t nb = n / QK4_0;
    const __m128i low4 = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
    for (int64_t i = 0; i < nb; i++) {
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(x[i].d));
        const __m128i qs = _mm_loadu_si128((const __m128i *)x[i].qs);
        const __m128i lo = _mm_sub_epi8(_mm_and_si128(qs, low4), eight);
        const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(qs, 4), low4), eight);
        avx2_store_scaled_i8x32(lo, hi, d, y + i * QK4_0);
    }
}

static void vec_dot_q4_0_q8_0_avx2(int n, float *s, const void *vx, const void *vy)
{
    *s = legacy_vec_dot(n / QK4_0, vx, sizeof(block_q4_0), vy, sizeof(block_q8_0), block_dot,
                        q4_0_scales_8, avx2_q8_0_scales_8);
}

void quarry_kernels_q4_0_avx2(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_Q4_0];
    t->to_float = dequantize_row_q4_0_avx2;
    t->vec_dot = vec_dot_q4_0_q8_0_avx2;
}
