/*
 * q5_0_avx512.c - AVX-512 kernels for q5_0 (F/BW/VL + VNNI): dequantize and
 * the dot product against q8_0 activations, bit-identical to kernels/q5_0.c.
 *
 * The fifth bits (qh, one per weight) are loaded into a 32-bit mask register.
 * vec_dot works on groups of 16 blocks. Each block's integer sum
 * sum_j (c_j - 16) * y_j = sum_j n_j*y_j - 16 * sum_{fifth bit clear} y_j (n_j
 * the low 4 bits) is formed exactly with two vpdpbusd, the sums of blocks 0-7
 * and 8-15 are gathered into two vectors by transposing reductions, and the
 * per-block terms (float)sumi * (fp16(x.d) * fp16(y.d)) are formed in vector
 * lanes. Those terms are added into two 8-lane accumulators, lanes 0-7 and
 * 8-15 of the scalar reference's 16-lane fold (block b in lane b % 16; a
 * partial last group adds +0.0f in its empty lanes), one vector add per 8
 * blocks with no serial chain, and the pairwise tree at the end is the
 * scalar's (legacy_vec_dot in kernels/simd_avx2.h). The fp16 scales of each 8
 * blocks are picked out of 64-byte loads of the block bytes with word permutes
 * (vpermt2w), never reading past the 8 blocks.
 */
#include <immintrin.h>

#include "kernels/kernels.h"
#include "kernels/simd_avx512.h"

/* d of blocks x[0..7] as floats. Block k's d is 16-bit word 11k of the 176
 * bytes: k < 6 from bytes [0, 128), k = 6, 7 from bytes [112, 176). */
static inline __m256 q5_0_scales_8(const void *x)
{
    const uint8_t *p = x;
    const __m512i idx_lo = _mm512_zextsi128_si512(_mm_setr_epi16(0, 11, 22, 33, 44, 55, 0, 0));
    const __m512i idx_hi = _mm512_zextsi128_si512(_mm_setr_epi16(0, 0, 0, 0, 0, 0, 66 - 56, 77 - 56));
    const __m512i lo = _mm512_permutex2var_epi16(_mm512_loadu_si512(p), idx_lo,
                                                 _mm512_loadu_si512(p + 64));
    const __m512i hi = _mm512_permutexvar_epi16(idx_hi, _mm512_loadu_si512(p + 112));
    return _mm256_cvtph_ps(_mm_blend_epi32(_mm512_castsi512_si128(lo), _mm512_castsi512_si128(hi), 0x8));
}

/* The 32 codes of a block (0..31) in weight order: the 4-bit codes, and
 * bit j of qh adds 16 to weight j. */
static inline __m256i q5_0_codes(const block_q5_0 *x)
{
    const __m256i q = avx512_nibbles_32(x->qs);
    return _mm256_mask_add_epi8(q, (__mmask32)simd_load_u32(x->qh), q, _mm256_set1_epi8(16));
}

/* sum_j (c_j - 16) * y_j of block x with activation block y, as 8 int32
 * partial sums: sum_j n_j*y_j - 16 * sum_{j: fifth bit clear} y_j with n_j
 * the low 4 bits (exact: n <= 15 and |y| <= 128 keep every vpdpbusd lane far
 * from overflow). */
static inline __m256i block_dot(const void *vx, const void *vy)
{
    const block_q5_0 *x = vx;
    const block_q8_0 *y = vy;
    const __m256i n = avx512_nibbles_32(x->qs);
    const __m256i sixteen_where_clear = _mm256_mask_mov_epi8(
        _mm256_set1_epi8(16), (__mmask32)simd_load_u32(x->qh), _mm256_setzero_si256());
    const __m256i qy = _mm256_loadu_si256((const __m256i *)y->qs);
    const __m256i ny = _mm256_dpbusd_epi32(_mm256_setzero_si256(), n, qy);
    return _mm256_sub_epi32(ny, _mm256_dpbusd_epi32(_mm256_setzero_si256(), sixteen_where_clear, qy));
}

/* ---- kernels --------------------------------------------------------------- */

static void dequantize_row_q5_0_avx512(const void *vx, float *y, int64_t n)
{
    const block_q5_0 *x = vx;
    const int64_t nb = n / QK5_0;
    for (int64_t i = 0; i < nb; i++) {
        const __m256i w = _mm256_sub_epi8(q5_0_codes(&x[i]), _mm256_set1_epi8(16));
        avx512_store_scaled_i8x32(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1),
                                  _mm512_set1_ps(_cvtsh_ss(x[i].d)), y + i * QK5_0);
    }
}

static void vec_dot_q5_0_q8_0_avx512(int n, float *s, const void *vx, const void *vy)
{
    *s = legacy_vec_dot(n / QK5_0, vx, sizeof(block_q5_0), vy, sizeof(block_q8_0), block_dot,
                        q5_0_scales_8, avx512_q8_0_scales_8);
}

void quarry_kernels_q5_0_avx512(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_Q5_0];
    t->to_float = dequantize_row_q5_0_avx512;
    t->vec_dot = vec_dot_q5_0_q8_0_avx512;
}
