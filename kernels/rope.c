/*
 * rope.c - rotary position embedding (see rope.h). A forward pass computes
 * the cos/sin table once per token and applies it to every Q and K head of
 * that token.
 */
#include "kernels/rope.h"

#include <math.h>

void quarry_rope_cache(const struct quarry_rope_params *p, int32_t pos, float *cs)
{
    const float theta_scale = powf(p->freq_base, -2.0f / (float)p->n_dims);
    float theta = (float)pos; /* p * base^(-2i/n_dims), built up one pair at a time */
    for (int i = 0; i < p->n_dims / 2; i++) {
        const float ff = p->freq_factors ? p->freq_factors[i] : 1.0f;
        const float angle = p->freq_scale * (theta / ff);
        cs[2 * i + 0] = cosf(angle);
        cs[2 * i + 1] = sinf(angle);
        theta *= theta_scale;
    }
}

void quarry_rope_apply(const struct quarry_rope_params *p, const float *cs, float *x, int n_heads,
                       int head_dim)
{
    const int n_pairs = p->n_dims / 2;
    /* NORMAL: pair i is (x[2i], x[2i+1]); NEOX: pair i is (x[i], x[i + n_dims/2]). */
    const int stride = p->style == QUARRY_ROPE_NEOX ? 1 : 2;
    const int offset = p->style == QUARRY_ROPE_NEOX ? n_pairs : 1;
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (int64_t)h * head_dim;
        for (int i = 0; i < n_pairs; i++) {
            const float c = cs[2 * i], s = cs[2 * i + 1];
            float *a = v + i * stride, *b = a + offset;
            const float x0 = *a, x1 = *b;
            *a = x0 * c - x1 * s;
            *b = x0 * s + x1 * c;
        }
    }
}
