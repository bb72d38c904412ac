/*
 * rmsnorm.h - root-mean-square layer normalisation (Zhang & Sennrich 2019),
 * the normalisation llama-family models use before attention and the FFN.
 *
 *   y[i] = x[i] * (1 / sqrt(mean_j(x[j]^2) + eps)) * w[i]
 *
 * The sum of squares is accumulated in double and the scale is applied
 * before the weight, as ggml's rms_norm followed by mul does, so results match
 * llama.cpp closely.
 */
#ifndef QUARRY_RMSNORM_H
#define QUARRY_RMSNORM_H

#include <stdint.h>

/* Normalises one row of n floats. w (n weights) may be NULL for no weight.
 * y may equal x (in place). n >= 1. */
void quarry_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps);

#endif
