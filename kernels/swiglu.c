/*
 * swiglu.c - SwiGLU gate (see swiglu.h): the scalar version and the dispatch
 * by ISA level; kernels/swiglu_avx512.c holds the vector one.
 */
#include "kernels/swiglu.h"

#include <math.h>

static void swiglu_scalar(float *g, const float *up, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        g[i] = g[i] / (1.0f + expf(-g[i])) * up[i];
}

void quarry_swiglu_isa(float *g, const float *up, int64_t n, enum quarry_isa isa)
{
    if (isa >= QUARRY_ISA_AVX512)
        quarry_swiglu_avx512(g, up, n);
    else
        swiglu_scalar(g, up, n);
}

void quarry_swiglu(float *g, const float *up, int64_t n)
{
    quarry_swiglu_isa(g, up, n, quarry_isa_chosen());
}
