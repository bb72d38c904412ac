/*
 * bench_attention.c - flash attention vs the reference at several context
 * depths (see bench_attention.h). Inputs are random normal values from a fixed
 * seed, K and V stored in the cache type through its reference quantizer.
 */
#include "harness/bench_attention.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness/results.h"
#include "kernels/attn_ref.h"
#include "kernels/flash_attn.h"
#include "kernels/kernels.h"

void quarry_bench_attention_defaults(struct quarry_bench_attention_opts *o)
{
    if (o->n_depths <= 0) {
        static const int d[] = {512, 2048, 8192};
        for (int i = 0; i < 3; i++)
            o->depths[i] = d[i];
        o->n_depths = 3;
    }
    if (o->n_q <= 0)
        o->n_q = 1;
    if (o->n_head <= 0)
        o->n_head = 32;
    if (o->n_head_kv <= 0)
        o->n_head_kv = 4;
    if (o->head_dim <= 0)
        o->head_dim = 64;
    if (o->isa_mask == 0)
        for (int l = 0; l <= (int)quarry_isa_detected(); l++)
            o->isa_mask |= 1u << l;
}

/* xorshift64*, normal by Box-Muller: inputs only need to be reproducible. */
static float rand_normal(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
    *s = x;
    const double u1 = ((double)((x * UINT64_C(0x2545F4914F6CDD1D)) >> 11) + 1.0) / 9007199254740993.0;
    x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
    *s = x;
    const double u2 = (double)((x * UINT64_C(0x2545F4914F6CDD1D)) >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

struct run {
    struct quarry_attn a;
    enum quarry_isa isa;
    int reference;
    float *scratch;
    quarry_error *err;
};

static int run_calls(void *ctx, int64_t calls)
{
    struct run *r = ctx;
    for (int64_t c = 0; c < calls; c++) {
        if (r->reference) {
            int rc = quarry_attn_ref(&r->a, r->err);
            if (rc)
                return rc;
        } else {
            const int tasks = quarry_flash_attn_tasks(&r->a);
            for (int t = 0; t < tasks; t++)
                quarry_flash_attn_task_isa(&r->a, t, r->scratch, r->isa);
        }
    }
    return 0;
}

static double nmse(const float *a, const float *ref, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - ref[i]) * ((double)a[i] - ref[i]);
        den += (double)ref[i] * ref[i];
    }
    return den > 0 ? num / den : num;
}

static int emit(const struct quarry_bench_attention_row *row, cJSON *rows,
                quarry_bench_attention_row_fn on_row, void *ud)
{
    if (rows) {
        cJSON *o = cJSON_CreateObject();
        cJSON *g = quarry_stats_json(&row->gflops, "GFLOP/s");
        if (!o || !g) {
            cJSON_Delete(o);
            cJSON_Delete(g);
            return QUARRY_ENOMEM;
        }
        cJSON_AddStringToObject(o, "impl", row->impl);
        cJSON_AddStringToObject(o, "isa", row->isa);
        cJSON_AddStringToObject(o, "kv_type", row->kv_type);
        cJSON_AddNumberToObject(o, "depth", row->depth);
        cJSON_AddNumberToObject(o, "n_q", row->n_q);
        cJSON_AddNumberToObject(o, "n_head", row->n_head);
        cJSON_AddNumberToObject(o, "n_head_kv", row->n_head_kv);
        cJSON_AddNumberToObject(o, "head_dim", row->head_dim);
        cJSON_AddItemToObject(o, "gflops", g);
        cJSON_AddNumberToObject(o, "seconds_per_call", row->seconds_per_call);
        cJSON_AddNumberToObject(o, "kv_gbytes_per_s", row->kv_gbytes_per_s);
        if (row->nmse >= 0)
            cJSON_AddNumberToObject(o, "nmse_vs_reference", row->nmse);
        else
            cJSON_AddNullToObject(o, "nmse_vs_reference");
        cJSON_AddItemToArray(rows, o);
    }
    if (on_row)
        on_row(row, ud);
    return 0;
}

/* Measures one implementation on problem r; fills row's timing fields. */
static int measure(struct run *r, const struct quarry_bench_attention_opts *o, double flops,
                   double kv_bytes, struct quarry_bench_attention_row *row)
{
    const struct quarry_measure_opts mo = quarry_measure_defaults(o->quick);
    double samples[QUARRY_MEASURE_MAX_REPS];
    int n = 0;
    int64_t calls = 0;
    int rc = quarry_measure(run_calls, r, &mo, samples, &n, &calls);
    if (rc)
        return rc;
    double mean_s = 0;
    for (int i = 0; i < n; i++) {
        mean_s += samples[i];
        samples[i] = flops / samples[i] * 1e-9;
    }
    mean_s /= n;
    quarry_stats_compute(samples, n, &row->gflops);
    row->seconds_per_call = mean_s;
    row->kv_gbytes_per_s = kv_bytes / mean_s * 1e-9;
    return 0;
}

int quarry_bench_attention(const struct quarry_bench_attention_opts *opts_in, cJSON *rows,
                           quarry_bench_attention_row_fn on_row, void *ud, quarry_error *err)
{
    struct quarry_bench_attention_opts o = *opts_in;
    quarry_bench_attention_defaults(&o);
    const struct quarry_type_info *info = quarry_type_info(o.kv_type);
    if (!info)
        return quarry_errorf(err, QUARRY_EINVAL, "bench attention: unknown KV type");
    if (o.kv_type != QUARRY_TYPE_F32 &&
        (!quarry_traits(o.kv_type) || !quarry_traits(o.kv_type)->from_float_ref))
        return quarry_errorf(err, QUARRY_EUNSUPPORTED, "bench attention: no %s quantizer",
                             info->name);
    const int hd = o.head_dim, kv_dim = o.n_head_kv * hd, q_dim = o.n_head * hd;
    int rc = 0;
    for (int di = 0; di < o.n_depths && rc == 0; di++) {
        const int depth = o.depths[di];
        const int n_q = o.n_q < depth ? o.n_q : depth;
        const size_t row_bytes = quarry_row_size(o.kv_type, kv_dim);
        float *q = malloc((size_t)n_q * q_dim * sizeof(float));
        float *out = malloc((size_t)n_q * q_dim * sizeof(float));
        float *ref = malloc((size_t)n_q * q_dim * sizeof(float));
        float *tmp = malloc((size_t)kv_dim * sizeof(float));
        uint8_t *k = malloc((size_t)depth * row_bytes), *v = malloc((size_t)depth * row_bytes);
        int32_t *pos = malloc((size_t)n_q * sizeof(int32_t));
        struct run r = {.err = err};
        if (!q || !out || !ref || !tmp || !k || !v || !pos) {
            rc = quarry_errorf(err, QUARRY_ENOMEM, "bench attention: out of memory");
            goto next;
        }
        uint64_t seed = 0x9E3779B97F4A7C15u ^ (uint64_t)depth;
        for (size_t i = 0; i < (size_t)n_q * q_dim; i++)
            q[i] = rand_normal(&seed);
        for (int kv = 0; kv < 2; kv++)
            for (int j = 0; j < depth; j++) {
                for (int d = 0; d < kv_dim; d++)
                    tmp[d] = rand_normal(&seed);
                uint8_t *dst = (kv ? v : k) + (size_t)j * row_bytes;
                if (o.kv_type == QUARRY_TYPE_F32)
                    memcpy(dst, tmp, row_bytes);
                else
                    quarry_traits(o.kv_type)->from_float_ref(tmp, dst, kv_dim);
            }
        double flops = 0;
        for (int t = 0; t < n_q; t++) {
            pos[t] = depth - n_q + t;
            flops += 4.0 * o.n_head * hd * (pos[t] + 1);
        }
        r.a = (struct quarry_attn){
            .n_q = n_q, .n_kv = depth, .n_head = o.n_head, .n_head_kv = o.n_head_kv,
            .head_dim = hd, .scale = 1.0f / sqrtf((float)hd), .q = q, .q_stride = q_dim,
            .kv_type = o.kv_type, .k = k, .k_stride = row_bytes, .v = v, .v_stride = row_bytes,
            .q_pos = pos, .out = out, .out_stride = q_dim};
        if ((rc = quarry_attn_check(&r.a, err)))
            goto next;
        r.scratch = malloc(quarry_flash_attn_scratch_floats(&r.a) * sizeof(float));
        if (!r.scratch) {
            rc = quarry_errorf(err, QUARRY_ENOMEM, "bench attention: out of memory");
            goto next;
        }
        const double kv_bytes = 2.0 * depth * (double)row_bytes;
        struct quarry_bench_attention_row row = {
            .kv_type = info->name, .depth = depth, .n_q = n_q, .n_head = o.n_head,
            .n_head_kv = o.n_head_kv, .head_dim = hd, .nmse = -1};
        if (!o.skip_reference) {
            struct quarry_attn ra = r.a;
            ra.out = ref;
            if ((rc = quarry_attn_ref(&ra, err)))
                goto next;
            struct run rr = r;
            rr.a = ra;
            rr.reference = 1;
            row.impl = "reference";
            row.isa = "-";
            if ((rc = measure(&rr, &o, flops, kv_bytes, &row)) ||
                (rc = emit(&row, rows, on_row, ud)))
                goto next;
        }
        for (int l = 0; l < QUARRY_ISA_COUNT; l++) {
            if (!(o.isa_mask & (1u << l)) || l > (int)quarry_isa_detected())
                continue;
            r.isa = (enum quarry_isa)l;
            run_calls(&r, 1);
            row.impl = "flash";
            row.isa = quarry_isa_name(r.isa);
            row.nmse = o.skip_reference ? -1 : nmse(out, ref, (size_t)n_q * q_dim);
            if ((rc = measure(&r, &o, flops, kv_bytes, &row)) ||
                (rc = emit(&row, rows, on_row, ud)))
                goto next;
        }
    next:
        free(q), free(out), free(ref), free(tmp), free(k), free(v), free(pos), free(r.scratch);
    }
    return rc;
}

cJSON *quarry_bench_attention_config_json(const struct quarry_bench_attention_opts *opts_in)
{
    struct quarry_bench_attention_opts o = *opts_in;
    quarry_bench_attention_defaults(&o);
    cJSON *c = cJSON_CreateObject();
    cJSON *d = cJSON_CreateIntArray(o.depths, o.n_depths);
    cJSON *isas = cJSON_CreateArray();
    if (!c || !d || !isas) {
        cJSON_Delete(c), cJSON_Delete(d), cJSON_Delete(isas);
        return NULL;
    }
    for (int l = 0; l < QUARRY_ISA_COUNT; l++)
        if (o.isa_mask & (1u << l))
            cJSON_AddItemToArray(isas, cJSON_CreateString(quarry_isa_name((enum quarry_isa)l)));
    cJSON_AddItemToObject(c, "depths", d);
    cJSON_AddNumberToObject(c, "n_q", o.n_q);
    cJSON_AddNumberToObject(c, "n_head", o.n_head);
    cJSON_AddNumberToObject(c, "n_head_kv", o.n_head_kv);
    cJSON_AddNumberToObject(c, "head_dim", o.head_dim);
    const struct quarry_type_info *info = quarry_type_info(o.kv_type);
    cJSON_AddStringToObject(c, "kv_type", info ? info->name : "?");
    cJSON_AddItemToObject(c, "isa", isas);
    cJSON_AddBoolToObject(c, "reference", !o.skip_reference);
    cJSON_AddBoolToObject(c, "quick", o.quick != 0);
    cJSON_AddNumberToObject(c, "threads", 1);
    return c;
}
