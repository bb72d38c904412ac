/*
 * f32.c - scalar kernels for f32 tensors: to_float / from_float are plain
 * copies, and vec_dot is the f32 x f32 dot product used by f32 matmuls.
 *
 * vec_dot order (ggml's ggml_vec_dot_f32 without SIMD): each product
 * x[i]*y[i] is rounded to float, then accumulated in double from i = 0
 * upwards; the double sum is rounded to float once at the end. SIMD levels
 * may reorder the sum (float dot products are not integer-exact); they must
 * stay within 1e-6 * sum_i |x[i]*y[i]| of this result (KERNELS.md).
 */
#include <string.h>

#include "kernels/kernels.h"

static void f32_to_float(const void *x, float *y, int64_t n)
{
    memmove(y, x, sizeof(float) * (size_t)n);
}

static void f32_from_float(const float *x, void *y, int64_t n)
{
    memmove(y, x, sizeof(float) * (size_t)n);
}

static void vec_dot_f32_f32(int n, float *s, const void *vx, const void *vy)
{
    const float *x = vx;
    const float *y = vy;
    double sum = 0.0;
    for (int i = 0; i < n; i++)
        sum += (double)(x[i] * y[i]);
    *s = (float)sum;
}

void quarry_kernels_f32_scalar(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_F32];
    t->to_float = f32_to_float;
    t->from_float_ref = f32_from_float;
    t->from_float = f32_from_float;
    t->vec_dot = vec_dot_f32_f32;
    t->vec_dot_type = QUARRY_TYPE_F32;
}
