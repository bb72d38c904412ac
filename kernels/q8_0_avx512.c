/*
 * q8_0_avx512.c - AVX-512 kernels for q8_0 (F/BW/VL + VNNI): dequantize, the
 * activation quantizer (from_float) and the q8_0 . q8_0 dot product, all
 * bit-identical to kernels/q8_0.c.
 *
 * vec_dot works on groups of 16 blocks. Each block's integer sum
 * sum_j x_j * y_j is formed exactly with vpdpbusd on (x + 128) as unsigned
 * bytes, minus 128 * sum_j y_j (a second vpdpbusd), so every int8 value is
 * handled, -128 included. The sums of blocks 0-7 and 8-15 are gathered into
 * two vectors by transposing reductions, the per-block terms
 * (float)sumi * (fp16(x.d) * fp16(y.d)) are formed in vector lanes and added
 * into two 8-lane accumulators, lanes 0-7 and 8-15 of the scalar reference's
 * 16-lane fold (block b in lane b % 16), one vector add per 8 blocks with no
 * serial chain; the pairwise tree at the end is the scalar's (legacy_vec_dot
 * in kernels/simd_avx2.h). The fp16 scales of each 8 blocks come out of the
 * block bytes with word permutes (vpermt2w), never reading past the 8 blocks.
 *
 * from_float follows quantize_row_q8_0_ref step by step (amax, d = amax/127,
 * id = 1/d, roundf(x*id) with ties away from zero, emulated exactly as trunc
 * plus a +-1 correction); a block whose values or inverse scale are not finite
 * takes the scalar path, so every input gives the reference's bytes.
 */
#include <immintrin.h>

#include "kernels/fp16.h"
#include "kernels/kernels.h"
#include "kernels/legacy_common.h"
#include "kernels/simd_avx512.h"

/* sum_j x_j * y_j of block x with activation block y, as 8 int32 partial
 * sums, exact for all int8 values: (x + 128) * y summed by vpdpbusd, minus
 * 128 * y. */
static inline __m256i block_dot(const void *vx, const void *vy)
{
    const block_q8_0 *x = vx;
    const block_q8_0 *y = vy;
    const __m256i bias = _mm256_set1_epi8((char)0x80);
    const __m256i qx = _mm256_loadu_si256((const __m256i *)x->qs);
    const __m256i qy = _mm256_loadu_si256((const __m256i *)y->qs);
    const __m256i biased = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_xor_si256(qx, bias), qy);
    return _mm256_sub_epi32(biased, _mm256_dpbusd_epi32(_mm256_setzero_si256(), bias, qy));
}

/* ---- kernels --------------------------------------------------------------- */

static void quantize_row_q8_0_avx512(const float *x, void *vy, int64_t n)
{
    block_q8_0 *y = vy;
    const int64_t nb = n / QK8_0;
    for (int64_t i = 0; i < nb; i++) {
        if (!avx512_q8_quantize_block(x + i * QK8_0, &y[i].d, y[i].qs, NULL, NULL))
            lq_quantize_block_q8_0(x + i * QK8_0, &y[i]);
    }
}

static void dequantize_row_q8_0_avx512(const void *vx, float *y, int64_t n)
{
    const block_q8_0 *x = vx;
    const int64_t nb = n / QK8_0;
    for (int64_t i = 0; i < nb; i++)
        avx512_store_scaled_i8x32(_mm_loadu_si128((const __m128i *)x[i].qs),
                                  _mm_loadu_si128((const __m128i *)(x[i].qs + 16)),
                                  _mm512_set1_ps(_cvtsh_ss(x[i].d)), y + i * QK8_0);
}

static void vec_dot_q8_0_q8_0_avx512(int n, float *s, const void *vx, const void *vy)
{
    *s = legacy_vec_dot(n / QK8_0, vx, sizeof(block_q8_0), vy, sizeof(block_q8_0), block_dot,
                        avx512_q8_0_scales_8, avx512_q8_0_scales_8);
}

void quarry_kernels_q8_0_avx512(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_Q8_0];
    t->to_float = dequantize_row_q8_0_avx512;
    t->from_float = quantize_row_q8_0_avx512;
    t->vec_dot = vec_dot_q8_0_q8_0_avx512;
}
