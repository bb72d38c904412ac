/*
 * softmax.c - softmax of one row (see softmax.h). Used by the reference paths
 * and the sampler; flash attention keeps its own running (online) softmax.
 */
#include "kernels/softmax.h"

#include <math.h>

void quarry_softmax(float *x, int64_t n)
{
    if (n <= 0)
        return;
    float max = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        if (x[i] > max)
            max = x[i];
    if (max == -INFINITY) {
        for (int64_t i = 0; i < n; i++)
            x[i] = 0.0f;
        return;
    }
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += (double)x[i];
    }
    const float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++)
        x[i] *= inv;
}
