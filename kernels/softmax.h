/*
 * softmax.h - numerically stable softmax over one row:
 *
 *   y[i] = exp(x[i] - max_j x[j]) / sum_j exp(x[j] - max_j x[j])
 *
 * The exponentials are taken in float and summed in double (as ggml does), so
 * the row sums to 1 within float rounding. Entries of -INFINITY (masked) give 0.
 */
#ifndef QUARRY_SOFTMAX_H
#define QUARRY_SOFTMAX_H

#include <stdint.h>

/* In place over x[0..n). A row that is entirely -INFINITY becomes all zeros
 * (there is nothing to attend to); n == 0 does nothing. */
void quarry_softmax(float *x, int64_t n);

#endif
