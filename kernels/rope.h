/*
 * rope.h - rotary position embedding (Su et al. 2021, "RoFormer").
 *
 * Each head vector is split into pairs; pair i at position p is rotated by the
 * angle theta_i(p) = freq_scale * p * freq_base^(-2i/n_dims) / ff_i, where ff_i
 * is an optional per-frequency divisor (llama 3's rope_freqs tensor) and
 * freq_scale = 1/factor for linear ("position interpolation") scaling.
 * Only the first n_dims values of a head rotate; the rest pass through.
 *
 * Two pairings exist, named as in ggml:
 *   NORMAL (ggml mode 0): adjacent values (x[2i], x[2i+1]) form pair i. This
 *     is what llama-architecture GGUF files need: llama.cpp's converter
 *     permutes the Q/K weights of Hugging Face checkpoints so that this
 *     pairing is the right one.
 *   NEOX (ggml mode 2): x[i] pairs with x[i + n_dims/2] (GPT-NeoX, qwen2, ...).
 *
 * The angles are computed as ggml does (theta starts at p and is multiplied by
 * base^(-2/n_dims) once per pair, in float), so values match llama.cpp.
 */
#ifndef QUARRY_ROPE_H
#define QUARRY_ROPE_H

#include <stdint.h>

enum quarry_rope_style {
    QUARRY_ROPE_NORMAL = 0, /* adjacent pairs (ggml mode 0) */
    QUARRY_ROPE_NEOX = 2,   /* first half with second half (ggml mode 2) */
};

struct quarry_rope_params {
    int n_dims;                  /* leading values per head that rotate; even, <= head_dim */
    float freq_base;             /* e.g. 10000 (llama 2), 500000 (llama 3) */
    float freq_scale;            /* 1 / linear scaling factor; 1 = no scaling */
    const float *freq_factors;   /* [n_dims/2] divisors per frequency, or NULL */
    enum quarry_rope_style style;
};

/* The rotation for one position: cs[2i] = cos(theta_i), cs[2i+1] = sin(theta_i)
 * for i < n_dims/2 (cs holds n_dims floats). */
void quarry_rope_cache(const struct quarry_rope_params *p, int32_t pos, float *cs);

/* Rotates n_heads consecutive head vectors of head_dim floats each, in place,
 * by the rotation cs from quarry_rope_cache. */
void quarry_rope_apply(const struct quarry_rope_params *p, const float *cs, float *x, int n_heads,
                       int head_dim);

#endif
