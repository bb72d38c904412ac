/*
 * q8_0_avx512.c - AVX-512 kernels for q8_0 (F/BW/VL + VNNI): dequantize, the
 * activation quantizer (from_float) and the q8_0 . q8_0 dot product, all
 * bit-identical to kernels/q8_0.c.
 *
 * vec_dot works on groups of 16 blocks with 512-bit vectors throughout
 * (avx512_legacy_vec_dot and the group layout in kernels/simd_avx512.h): both
 * rows are read as 64-byte chunks and put into the quad layout by
 * avx512_q8_0_group_load (values 0..15 and 16..31 of block 4q+p in 128-bit
 * lane p of two vectors per quad). Each block's integer sum
 * sum_j x_j * y_j is formed exactly with vpdpbusd on (x + 128) as unsigned
 * bytes, minus 128 * sum_j y_j (the prepared block sums), so every int8 value is
 * handled, -128 included. The quads' sums are reduced to the 16 block sums,
 * the terms (float)sumi * (fp16(x.d) * fp16(y.d)) are formed in 16 lanes and
 * added into the 16-lane accumulator with one vector add per group, each
 * block into its fold lane of the scalar reference; the pairwise tree at the
 * end is the scalar's.
 *
 * from_float follows quantize_row_q8_0_ref step by step (amax, d = amax/127,
 * id = 1/d, roundf(x*id) with ties away from zero, emulated exactly as trunc
 * plus a +-1 correction); a block whose values or inverse scale are not finite
 * takes the scalar path, so every input gives the reference's bytes.
 *
 * It also defines avx512_prepare_q8_0, the act_prepare of every weight type
 * with q8_0 activations (kernels/simd_avx512.h).
 */
#include <immintrin.h>

#include "kernels/fp16.h"
#include "kernels/kernels.h"
#include "kernels/legacy_common.h"
#include "kernels/simd_avx512.h"

/* sum_j (x_j + 128) * y_j of the quad's blocks (lane p: 4 partial sums of
 * block p): vpdpbusd wants one side unsigned, so the weights are biased. */
static inline __m512i q8_0_quad_sums(__m512i xlo, __m512i xhi, __m512i ylo, __m512i yhi)
{
    const __m512i bias = _mm512_set1_epi8((char)0x80);
    return _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_xor_si512(xlo, bias), ylo),
                               _mm512_xor_si512(xhi, bias), yhi);
}

/* The terms of the 16 blocks at x against the prepared activations act, in the
 * group lane order (kernels/simd_avx512.h): sum_j x_j * y_j, exact for all
 * int8 values, is the biased sum minus 128 * (each block's sum of
 * activations). */
SIMD_ALWAYS_INLINE __m512 q8_0_terms(const uint8_t *x, const struct avx512_act_group *act)
{
    const struct avx512_q8_0_group gx = avx512_q8_0_group_load(x);
    const __m512i xy = avx512_group_sums(q8_0_quad_sums(gx.lo[0], gx.hi[0], act->lo[0], act->hi[0]),
                                         q8_0_quad_sums(gx.lo[1], gx.hi[1], act->lo[1], act->hi[1]),
                                         q8_0_quad_sums(gx.lo[2], gx.hi[2], act->lo[2], act->hi[2]),
                                         q8_0_quad_sums(gx.lo[3], gx.hi[3], act->lo[3], act->hi[3]));
    const __m512i sumi = _mm512_sub_epi32(xy, _mm512_slli_epi32(act->sum, 7));
    const __m512 d = _mm512_mul_ps(_mm512_cvtph_ps(gx.d), act->d);
    return _mm512_mul_ps(_mm512_cvtepi32_ps(sumi), d);
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
    *s = avx512_legacy_vec_dot(n / QK8_0, vx, sizeof(block_q8_0), vy, sizeof(block_q8_0),
                               avx512_act_group_q8_0, q8_0_terms);
}

static void vec_dot_q8_0_prepared_avx512(int n, float *s, const void *vx, const void *prepared)
{
    *s = avx512_legacy_vec_dot_prepared(n / QK8_0, vx, sizeof(block_q8_0), prepared, q8_0_terms);
}

void avx512_prepare_q8_0(int64_t k, const void *vy, void *prepared)
{
    avx512_legacy_prepare(k, vy, sizeof(block_q8_0), prepared, avx512_act_group_q8_0);
}

void quarry_kernels_q8_0_avx512(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_Q8_0];
    t->to_float = dequantize_row_q8_0_avx512;
    t->from_float = quantize_row_q8_0_avx512;
    t->vec_dot = vec_dot_q8_0_q8_0_avx512;
    t->act_prepared_size = avx512_legacy_prepared_size;
    t->act_prepare = avx512_prepare_q8_0;
    t->vec_dot_prepared = vec_dot_q8_0_prepared_avx512;
}
