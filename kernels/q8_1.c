/*
 * q8_1.c - scalar reference kernels for q8_1: blocks of 32 int8 q with an
 * fp16 scale d and an fp16 s = d * sum(q). It is only an activation type
 * (the vec_dot partner of q4_1 and q5_1, whose dot products use s to apply
 * the weights' minimum), so ggml has no vec_dot for it; quarry gives it a
 * to_float (w = d*q) for tests and tools.
 *
 * Quantizer (ggml's quantize_row_q8_1_ref): d = amax/127, q = roundf(x/d)
 * computed as x * (1/d) (0 when d is 0), d stored as fp16 of the float d,
 * s = fp16((float)sum(q) * d) with the unrounded float d.
 */

#include "kernels/fp16.h"
#include "kernels/kernels.h"
#include "kernels/legacy_common.h"

static void quantize_row_q8_1_ref(const float *x, void *vy, int64_t n)
{
    block_q8_1 *y = vy;
    const int64_t nb = n / QK8_1;
    for (int64_t i = 0; i < nb; i++)
        lq_quantize_block_q8_1(x + i * QK8_1, &y[i]);
}

static void dequantize_row_q8_1(const void *vx, float *y, int64_t n)
{
    const block_q8_1 *x = vx;
    const int64_t nb = n / QK8_1;
    for (int64_t i = 0; i < nb; i++) {
        const float d = quarry_fp16_to_fp32(x[i].d);
        for (int j = 0; j < QK8_1; j++)
            y[i * QK8_1 + j] = (float)x[i].qs[j] * d;
    }
}

void quarry_kernels_q8_1_scalar(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_Q8_1];
    t->to_float = dequantize_row_q8_1;
    t->from_float_ref = quantize_row_q8_1_ref;
    t->from_float = quantize_row_q8_1_ref;
    t->vec_dot_type = QUARRY_TYPE_Q8_1;
}
