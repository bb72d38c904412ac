/*
 * bf16.c - scalar kernels for bf16 (bfloat16, the top 16 bits of an f32)
 * tensors: conversion to and from float with kernels/fp16.h (round to
 * nearest even, NaN kept quiet: ggml's bits), and the bf16 x bf16 dot
 * product used for bf16 weights.
 *
 * vec_dot order (ggml's ggml_vec_dot_bf16 without SIMD): both values are
 * widened to float, their product is rounded to float, and the products are
 * accumulated in double from i = 0 upwards; the double sum is rounded to float
 * once at the end. SIMD levels may reorder the sum; they must stay within
 * 1e-6 * sum_i |x[i]*y[i]| of this result (KERNELS.md).
 */
#include "kernels/fp16.h"
#include "kernels/kernels.h"

static void bf16_to_float(const void *vx, float *y, int64_t n)
{
    const uint16_t *x = vx;
    for (int64_t i = 0; i < n; i++)
        y[i] = quarry_bf16_to_fp32(x[i]);
}

static void bf16_from_float_ref(const float *x, void *vy, int64_t n)
{
    uint16_t *y = vy;
    for (int64_t i = 0; i < n; i++)
        y[i] = quarry_fp32_to_bf16(x[i]);
}

static void vec_dot_bf16_bf16(int n, float *s, const void *vx, const void *vy)
{
    const uint16_t *x = vx;
    const uint16_t *y = vy;
    double sum = 0.0;
    for (int i = 0; i < n; i++)
        sum += (double)(quarry_bf16_to_fp32(x[i]) * quarry_bf16_to_fp32(y[i]));
    *s = (float)sum;
}

void quarry_kernels_bf16_scalar(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_BF16];
    t->to_float = bf16_to_float;
    t->from_float_ref = bf16_from_float_ref;
    t->from_float = bf16_from_float_ref;
    t->vec_dot = vec_dot_bf16_bf16;
    t->vec_dot_type = QUARRY_TYPE_BF16;
}
