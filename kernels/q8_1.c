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
#include <math.h>

#include "kernels/fp16.h"
#include "kernels/kernels.h"

/* (int8_t)roundf(v) for |v| <= 127.5 as ggml writes it, made defined for
 * every input: saturates, and NaN (only from non-finite input) gives 0. */
static inline int8_t round_to_i8(float v)
{
    const float r = roundf(v);
    if (r >= 127.0f)
        return 127;
    if (r <= -128.0f)
        return -128;
    return r == r ? (int8_t)r : 0;
}

static void quantize_row_q8_1_ref(const float *x, void *vy, int64_t n)
{
    block_q8_1 *y = vy;
    const int64_t nb = n / QK8_1;
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * QK8_1;
        float amax = 0.0f;
        for (int j = 0; j < QK8_1; j++) {
            const float a = fabsf(xb[j]);
            amax = amax > a ? amax : a; /* ggml's MAX(), NaN included */
        }
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = quarry_fp32_to_fp16(d);
        int sum = 0;
        for (int j = 0; j < QK8_1; j++) {
            y[i].qs[j] = round_to_i8(xb[j] * id);
            sum += y[i].qs[j];
        }
        y[i].s = quarry_fp32_to_fp16((float)sum * d);
    }
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
