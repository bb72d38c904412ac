/*
 * rmsnorm.c - RMS normalisation of one row (see rmsnorm.h). Plain C: the row
 * is short (the embedding width) and the step is a tiny share of a forward
 * pass, so a vector version would not pay.
 */
#include "kernels/rmsnorm.h"

#include <math.h>

void quarry_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps)
{
    double sum_sq = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum_sq += (double)(x[i] * x[i]);
    const float mean = (float)(sum_sq / (double)n);
    const float scale = 1.0f / sqrtf(mean + eps);
    if (w) {
        for (int64_t i = 0; i < n; i++)
            y[i] = (x[i] * scale) * w[i];
    } else {
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] * scale;
    }
}
