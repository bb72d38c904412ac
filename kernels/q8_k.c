/*
 * q8_k.c - scalar reference kernels for q8_K, the activation type the
 * K-quant dot products use: 256 int8 values with one fp32 scale, plus the sum
 * of every 16 consecutive quants (bsums), which lets q2_K/q4_K/q5_K fold
 * their per-sub-block mins into the dot product without touching the quants:
 *     x = d*q,  q in -127..127 (clamped to 127 above; -128 cannot occur).
 *
 * Quantizer: ggml's quantize_row_q8_K_ref (scale -127/max with max the value
 * of largest magnitude, nearest_int rounding). For an all-zero super-block
 * ggml writes d = 0 and zero quants and leaves bsums untouched; quarry writes
 * zero bsums (their true value) so the output never depends on the buffer.
 *
 * to_float is provided for tests and tools (ggml has it but never calls it);
 * there is no vec_dot: q8_K is only ever the right-hand side of one.
 */
#include <math.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/kquant_common.h"

static void quantize_row_q8_K_ref(const float *x, void *vy, int64_t k)
{
    block_q8_K *y = vy;
    const int64_t nb = k / QK_K;

    for (int64_t i = 0; i < nb; i++) {
        float max = 0;
        float amax = 0;
        for (int j = 0; j < QK_K; ++j) {
            const float ax = fabsf(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (amax == 0) {
            y[i].d = 0;
            memset(y[i].qs, 0, sizeof y[i].qs);
            memset(y[i].bsums, 0, sizeof y[i].bsums);
            x += QK_K;
            continue;
        }
        /* -127 rather than -128 keeps every quant in -127..127 */
        const float iscale = -127.f / max;
        for (int j = 0; j < QK_K; ++j)
            y[i].qs[j] = (int8_t)kq_min_int(127, kq_nearest_int(iscale * x[j]));
        for (int j = 0; j < QK_K / 16; ++j) {
            int sum = 0;
            for (int ii = 0; ii < 16; ++ii)
                sum += y[i].qs[16 * j + ii];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
        x += QK_K;
    }
}

static void dequantize_row_q8_K(const void *vx, float *y, int64_t k)
{
    const block_q8_K *x = vx;
    const int64_t nb = k / QK_K;

    for (int64_t i = 0; i < nb; i++)
        for (int j = 0; j < QK_K; ++j)
            *y++ = x[i].d * (float)x[i].qs[j];
}

void quarry_kernels_q8_K_scalar(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_Q8_K];
    t->to_float = dequantize_row_q8_K;
    t->from_float_ref = quantize_row_q8_K_ref;
    t->from_float = quantize_row_q8_K_ref;
    t->vec_dot_type = QUARRY_TYPE_Q8_K;
}
