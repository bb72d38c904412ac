/*
 * attn_ref.c - reference attention (see attn_ref.h): the textbook formula,
 * one query row at a time, all arithmetic in double.
 */
#include "kernels/attn_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"

/* Converts all n rows (kv_dim values each) of a K or V block to float. */
static void rows_to_float(const struct quarry_attn *a, const void *src, size_t stride, int kv_dim,
                          float *dst)
{
    for (int j = 0; j < a->n_kv; j++) {
        const uint8_t *row = (const uint8_t *)src + (size_t)j * stride;
        if (a->kv_type == QUARRY_TYPE_F32)
            memcpy(dst + (size_t)j * kv_dim, row, (size_t)kv_dim * sizeof(float));
        else
            quarry_traits(a->kv_type)->to_float(row, dst + (size_t)j * kv_dim, kv_dim);
    }
}

int quarry_attn_ref(const struct quarry_attn *a, quarry_error *err)
{
    int rc = quarry_attn_check(a, err);
    if (rc)
        return rc;
    const int hd = a->head_dim, group = a->n_head / a->n_head_kv;
    const int kv_dim = a->n_head_kv * hd;
    const size_t n_kv = (size_t)a->n_kv;
    float *k = malloc((n_kv * kv_dim + 1) * sizeof(float));
    float *v = malloc((n_kv * kv_dim + 1) * sizeof(float));
    double *p = malloc((n_kv + 1) * sizeof(double));
    double *o = malloc((size_t)hd * sizeof(double));
    if (!k || !v || !p || !o) {
        rc = quarry_errorf(err, QUARRY_ENOMEM, "reference attention: out of memory");
        goto done;
    }
    rows_to_float(a, a->k, a->k_stride, kv_dim, k);
    rows_to_float(a, a->v, a->v_stride, kv_dim, v);

    for (int t = 0; t < a->n_q; t++) {
        const int visible = a->q_pos ? a->q_pos[t] + 1 : a->n_kv;
        for (int h = 0; h < a->n_head; h++) {
            const float *q = a->q + (int64_t)t * a->q_stride + (int64_t)h * hd;
            const int kvh = h / group;
            double max = -INFINITY, sum = 0.0;
            for (int j = 0; j < visible; j++) {
                const float *kj = k + (size_t)j * kv_dim + (size_t)kvh * hd;
                double s = 0.0;
                for (int d = 0; d < hd; d++)
                    s += (double)q[d] * (double)kj[d];
                p[j] = s * (double)a->scale;
                if (p[j] > max)
                    max = p[j];
            }
            for (int j = 0; j < visible; j++) {
                p[j] = exp(p[j] - max);
                sum += p[j];
            }
            for (int d = 0; d < hd; d++)
                o[d] = 0.0;
            for (int j = 0; j < visible; j++) {
                const float *vj = v + (size_t)j * kv_dim + (size_t)kvh * hd;
                for (int d = 0; d < hd; d++)
                    o[d] += p[j] / sum * (double)vj[d];
            }
            float *out = a->out + (int64_t)t * a->out_stride + (int64_t)h * hd;
            for (int d = 0; d < hd; d++)
                out[d] = (float)o[d];
        }
    }
done:
    free(k);
    free(v);
    free(p);
    free(o);
    return rc;
}
