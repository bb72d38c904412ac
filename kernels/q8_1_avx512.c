/*
 * q8_1_avx512.c - AVX-512 kernels for q8_1 (F/BW/VL): the activation
 * quantizer (from_float) and to_float, bit-identical to kernels/q8_1.c.
 * q8_1 is the activation type of q4_1 and q5_1; it has no vec_dot of its own.
 *
 * from_float follows quantize_row_q8_1_ref step by step (amax, d = amax/127,
 * id = 1/d, roundf(x*id) with ties away from zero, emulated exactly as
 * trunc plus a +-1 correction, s = fp16((float)sum(q) * d)); a block whose
 * values or inverse scale are not finite takes the scalar path, so every
 * input gives the reference's bytes.
 *
 * It also defines avx512_prepare_q8_1, the act_prepare of every weight type
 * with q8_1 activations (kernels/simd_avx512.h).
 */
#include <immintrin.h>

#include "kernels/fp16.h"
#include "kernels/kernels.h"
#include "kernels/legacy_common.h"
#include "kernels/simd_avx512.h"

static void quantize_row_q8_1_avx512(const float *x, void *vy, int64_t n)
{
    block_q8_1 *y = vy;
    const int64_t nb = n / QK8_1;
    for (int64_t i = 0; i < nb; i++) {
        float d;
        int32_t sum;
        if (!avx512_q8_quantize_block(x + i * QK8_1, &y[i].d, y[i].qs, &d, &sum)) {
            lq_quantize_block_q8_1(x + i * QK8_1, &y[i]);
            continue;
        }
        y[i].s = quarry_fp32_to_fp16((float)sum * d);
    }
}

static void dequantize_row_q8_1_avx512(const void *vx, float *y, int64_t n)
{
    const block_q8_1 *x = vx;
    const int64_t nb = n / QK8_1;
    for (int64_t i = 0; i < nb; i++)
        avx512_store_scaled_i8x32(_mm_loadu_si128((const __m128i *)x[i].qs),
                                  _mm_loadu_si128((const __m128i *)(x[i].qs + 16)),
                                  _mm512_set1_ps(_cvtsh_ss(x[i].d)), y + i * QK8_1);
}

void avx512_prepare_q8_1(int64_t k, const void *vy, void *prepared)
{
    avx512_legacy_prepare(k, vy, sizeof(block_q8_1), prepared, avx512_act_group_q8_1);
}

void quarry_kernels_q8_1_avx512(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_Q8_1];
    t->to_float = dequantize_row_q8_1_avx512;
    t->from_float = quantize_row_q8_1_avx512;
}
