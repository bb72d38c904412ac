/*
 * q8_0_avx2.c - AVX2 kernels for q8_0: dequantize, the activation quantizer
 * (from_float) and the q8_0 . q8_0 dot product, all bit-identical to
 * kernels/q8_0.c.
 *
 * vec_dot works on groups of 16 blocks. Each block's integer sum
 * sum_j x_j * y_j is formed with vpmaddubsw on |x| and y carrying x's sign,
 * then vpmaddwd. That is exact when the activation y has no -128 (whose
 * negation wraps): the q8_0 quantizer never writes -128 (|x/d| <= 127), and
 * the weights x may hold any int8 value. The sums of blocks 0-7 and 8-15 are
 * gathered into two vectors by transposing reductions, the per-block terms
 * (float)sumi * (fp16(x.d) * fp16(y.d)) are formed in vector lanes and added
 * into two 8-lane accumulators, lanes 0-7 and 8-15 of the scalar reference's
 * 16-lane fold (block b in lane b % 16), one vector add per 8 blocks with no
 * serial chain; the pairwise tree at the end is the scalar's (legacy_vec_dot
 * in kernels/simd_avx2.h).
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
#include "kernels/simd_avx2.h"

/* sum_j x_j * y_j of block x with activation block y, as 8 int32 partial
 * sums. |x| <= 128 and |y| <= 127 keep the 16-bit pair sums of vpmaddubsw
 * below 2^15. */
static inline __m256i block_dot(const void *vx, const void *vy)
{
    const block_q8_0 *x = vx;
    const block_q8_0 *y = vy;
    const __m256i qx = _mm256_loadu_si256((const __m256i *)x->qs);
    const __m256i qy = _mm256_loadu_si256((const __m256i *)y->qs);
    const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(qx, qx), _mm256_sign_epi8(qy, qx));
    return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

/* ---- kernels --------------------------------------------------------------- */

static void quantize_row_q8_0_avx2(const float *x, void *vy, int64_t n)
{
    block_q8_0 *y = vy;
    const int64_t nb = n / QK8_0;
    for (int64_t i = 0; i < nb; i++) {
        if (!avx2_q8_quantize_block(x + i * QK8_0, &y[i].d, y[i].qs, NULL, NULL))
            lq_quantize_block_q8_0(x + i * QK8_0, &y[i]);
    }
}

static void dequantize_row_q8_0_avx2(const void *vx, float *y, int64_t n)
{
    const block_q8_0 *x = vx;
    const int64_t nb = n / QK8_0;
    for (int64_t i = 0; i < nb; i++)
        avx2_store_scaled_q8_32(x[i].qs, _mm256_set1_ps(_cvtsh_ss(x[i].d)), y + i * QK8_0);
}

static void vec_dot_q8_0_q8_0_avx2(int n, float *s, const void *vx, const void *vy)
{
    *s = legacy_vec_dot(n / QK8_0, vx, sizeof(block_q8_0), vy, sizeof(block_q8_0), block_dot,
                        avx2_q8_0_scales_8, avx2_q8_0_scales_8);
}

void quarry_kernels_q8_0_avx2(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_Q8_0];
    t->to_float = dequantize_row_q8_0_avx2;
    t->from_float = quantize_row_q8_0_avx2;
    t->vec_dot = vec_dot_q8_0_q8_0_avx2;
}
