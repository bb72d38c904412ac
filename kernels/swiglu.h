/*
 * swiglu.h - the gate of the llama feed-forward block (SwiGLU, Shazeer 2020):
 *
 *   g[i] = silu(g[i]) * up[i],   silu(x) = x / (1 + exp(-x))
 *
 * in place over one or more rows. The scalar version uses libm's expf; the
 * AVX-512 one a vector exp (Cephes' method, relative error about 1e-7 over
 * the whole float range, as ggml's own vectorised silu approximates exp), so
 * the levels agree to a few ulp, not bit for bit.
 */
#ifndef QUARRY_SWIGLU_H
#define QUARRY_SWIGLU_H

#include <stdint.h>

#include "kernels/kernels.h"

/* g[0..n-1] = silu(g) * up with the process's chosen ISA level. */
void quarry_swiglu(float *g, const float *up, int64_t n);

/* The same at a given level (at most quarry_isa_detected()), for tests. */
void quarry_swiglu_isa(float *g, const float *up, int64_t n, enum quarry_isa isa);
void quarry_swiglu_avx512(float *g, const float *up, int64_t n);

#endif
