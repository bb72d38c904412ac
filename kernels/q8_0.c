/*
 * q8_0.c - scalar reference kernels for q8_0: blocks of 32 weights stored as
 * int8 q with one fp16 scale d, w = d*q. q8_0 is also the activation type of
 * q4_0, q5_0 and q8_0 weights, so its from_float quantizes activations.
 *
 * Quantizer (ggml's quantize_row_q8_0_ref): d = amax/127, q = roundf(x/d)
 * computed as x * (1/d) (0 when d is 0), d stored as fp16 of the float d.
 *
 * vec_dot q8_0 . q8_0 - the accumulation order every ISA level reproduces:
 *   sumf = 0.0f
 *   for each block b, in order:
 *     sumi = sum_{j<32} x.qs[j] * y.qs[j]                  (int32, exact)
 *     sumf = sumf + (float)sumi * (fp16(x.d) * fp16(y.d))  (two roundings:
 *            the scale product, then sumi times it; then the add)
 *   *s = sumf
 * Separate float multiply and add, no FMA. Because sumi is exact, SIMD code
 * may form it in any order; the per-block scale products may be computed in
 * vector lanes (elementwise products round identically), but the adds into
 * sumf must happen one block at a time in block order.
 */

#include "kernels/fp16.h"
#include "kernels/kernels.h"
#include "kernels/legacy_common.h"

static void quantize_row_q8_0_ref(const float *x, void *vy, int64_t n)
{
    block_q8_0 *y = vy;
    const int64_t nb = n / QK8_0;
    for (int64_t i = 0; i < nb; i++)
        lq_quantize_block_q8_0(x + i * QK8_0, &y[i]);
}

static void dequantize_row_q8_0(const void *vx, float *y, int64_t n)
{
    const block_q8_0 *x = vx;
    const int64_t nb = n / QK8_0;
    for (int64_t i = 0; i < nb; i++) {
        const float d = quarry_fp16_to_fp32(x[i].d);
        for (int j = 0; j < QK8_0; j++)
            y[i * QK8_0 + j] = (float)x[i].qs[j] * d;
    }
}

static void vec_dot_q8_0_q8_0(int n, float *s, const void *vx, const void *vy)
{
    const block_q8_0 *x = vx;
    const block_q8_0 *y = vy;
    const int nb = n / QK8_0;
    float sumf = 0.0f;
    for (int i = 0; i < nb; i++) {
        int32_t sumi = 0;
        for (int j = 0; j < QK8_0; j++)
            sumi += (int32_t)x[i].qs[j] * (int32_t)y[i].qs[j];
        const float d = quarry_fp16_to_fp32(x[i].d) * quarry_fp16_to_fp32(y[i].d);
        sumf = sumf + (float)sumi * d;
    }
    *s = sumf;
}

void quarry_kernels_q8_0_scalar(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_Q8_0];
    t->to_float = dequantize_row_q8_0;
    t->from_float_ref = quantize_row_q8_0_ref;
    t->from_float = quantize_row_q8_0_ref;
    t->vec_dot = vec_dot_q8_0_q8_0;
    t->vec_dot_type = QUARRY_TYPE_Q8_0;
}
