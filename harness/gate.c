/*
 * gate.c - the regression gate's workloads and its comparison with the
 * baseline (see gate.h for what each workload does and why it is counted
 * with callgrind rather than timed).
 *
 * Every input comes from a fixed seed and every workload runs on the calling
 * thread (no pool: thread scheduling would change the instruction counts).
 * Weight matrices repeat a small quantized pattern, as in bench_kernels.c:
 * the kernels' instruction counts do not depend on the values, and quantizing
 * a whole matrix with the K-quant reference quantizer under valgrind would
 * take longer than everything the gate measures.
 */
#include "harness/gate.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/model.h"
#include "engine/tokenizer.h"
#include "harness/machine.h"
#include "kernels/flash_attn.h"
#include "kernels/kernels.h"
#include "kernels/matmul.h"
#include "kernels/types.h"

#define GATE_MATVEC_N 256            /* weight rows */
#define GATE_MATVEC_K 4096           /* weights per row */
#define GATE_PATTERN_ROWS 16         /* distinct quantized rows, repeated */
#define GATE_DEQUANT_ELEMS (256 * 1024)
#define GATE_DEQUANT_PATTERN (16 * 1024)
#define GATE_ATTN_DEPTH 1024
#define GATE_MODEL_PATH "tests/data/stories260K.gguf"
#define GATE_MODEL_PROMPT "Once upon a time"
#define GATE_MODEL_STEPS 16
#define GATE_MODEL_MAX_PROMPT 32

enum gate_kind { GATE_MATVEC, GATE_DEQUANT, GATE_ATTN, GATE_MODEL };

struct gate_spec {
    const char *name;
    enum gate_kind kind;
    enum quarry_type type; /* matvec / dequantize */
};

static const struct gate_spec gate_specs[] = {
    {"matvec_f32", GATE_MATVEC, QUARRY_TYPE_F32},
    {"matvec_f16", GATE_MATVEC, QUARRY_TYPE_F16},
    {"matvec_bf16", GATE_MATVEC, QUARRY_TYPE_BF16},
    {"matvec_q4_0", GATE_MATVEC, QUARRY_TYPE_Q4_0},
    {"matvec_q4_1", GATE_MATVEC, QUARRY_TYPE_Q4_1},
    {"matvec_q5_0", GATE_MATVEC, QUARRY_TYPE_Q5_0},
    {"matvec_q5_1", GATE_MATVEC, QUARRY_TYPE_Q5_1},
    {"matvec_q8_0", GATE_MATVEC, QUARRY_TYPE_Q8_0},
    {"matvec_q2_K", GATE_MATVEC, QUARRY_TYPE_Q2_K},
    {"matvec_q3_K", GATE_MATVEC, QUARRY_TYPE_Q3_K},
    {"matvec_q4_K", GATE_MATVEC, QUARRY_TYPE_Q4_K},
    {"matvec_q5_K", GATE_MATVEC, QUARRY_TYPE_Q5_K},
    {"matvec_q6_K", GATE_MATVEC, QUARRY_TYPE_Q6_K},
    {"dequantize_f16", GATE_DEQUANT, QUARRY_TYPE_F16},
    {"dequantize_bf16", GATE_DEQUANT, QUARRY_TYPE_BF16},
    {"dequantize_q4_0", GATE_DEQUANT, QUARRY_TYPE_Q4_0},
    {"dequantize_q4_1", GATE_DEQUANT, QUARRY_TYPE_Q4_1},
    {"dequantize_q5_0", GATE_DEQUANT, QUARRY_TYPE_Q5_0},
    {"dequantize_q5_1", GATE_DEQUANT, QUARRY_TYPE_Q5_1},
    {"dequantize_q8_0", GATE_DEQUANT, QUARRY_TYPE_Q8_0},
    {"dequantize_q8_1", GATE_DEQUANT, QUARRY_TYPE_Q8_1},
    {"dequantize_q2_K", GATE_DEQUANT, QUARRY_TYPE_Q2_K},
    {"dequantize_q3_K", GATE_DEQUANT, QUARRY_TYPE_Q3_K},
    {"dequantize_q4_K", GATE_DEQUANT, QUARRY_TYPE_Q4_K},
    {"dequantize_q5_K", GATE_DEQUANT, QUARRY_TYPE_Q5_K},
    {"dequantize_q6_K", GATE_DEQUANT, QUARRY_TYPE_Q6_K},
    {"dequantize_q8_K", GATE_DEQUANT, QUARRY_TYPE_Q8_K},
    {"flash_attn", GATE_ATTN, QUARRY_TYPE_F16},
    {"model_stories260K", GATE_MODEL, QUARRY_TYPE_F32},
};
#define N_GATE_SPECS (sizeof gate_specs / sizeof gate_specs[0])

size_t quarry_gate_workload_count(void)
{
    return N_GATE_SPECS;
}

const char *quarry_gate_workload_name(size_t i)
{
    return i < N_GATE_SPECS ? gate_specs[i].name : NULL;
}

struct quarry_gate_workload {
    const struct gate_spec *spec;
    int planted;
    int measured_calls;
    /* matvec and dequantize */
    const struct quarry_type_traits *traits;
    uint8_t *w;             /* matvec: n x k weights; dequantize: the quantized values */
    float *x, *y;           /* matvec: x [k], y [n]; dequantize: y [elements] */
    quarry_matmul_ws *ws;
    /* flash attention */
    struct quarry_attn attn;
    float *q, *out;
    uint8_t *k, *v;
    int32_t pos;
    /* model */
    quarry_model *model;
    quarry_context *ctx;
    float *logits;
    int32_t prompt[GATE_MODEL_MAX_PROMPT];
    int32_t n_prompt;
    int32_t generated[GATE_MODEL_STEPS];
};

/* Buffers are 64-byte aligned so that their alignment - which changes the
 * instruction counts of memcpy-like code paths - does not depend on what was
 * allocated before (stdio buffers, the model loader). */
static void *gate_alloc(size_t bytes)
{
    return aligned_alloc(64, (bytes + 63) & ~(size_t)63);
}

/* xorshift64*; a sum of two uniforms: a triangular spread in (-1, 1) */
static float gate_random(uint64_t *s)
{
    float v = 0;
    for (int i = 0; i < 2; i++) {
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        v += (float)((*s * UINT64_C(0x2545F4914F6CDD1D)) >> 40) * (2.0f / 16777216.0f) - 1.0f;
    }
    return v;
}

/* Quantizes `rows` rows of k random values with the type's reference
 * quantizer (F32 rows are copied). */
static int quantize_pattern(const struct quarry_type_traits *tr, enum quarry_type type,
                            int64_t rows, int64_t k, uint64_t *seed, uint8_t *dst,
                            quarry_error *err)
{
    float *row = malloc((size_t)k * sizeof *row);
    if (!row)
        return quarry_errorf(err, QUARRY_ENOMEM, "gate: out of memory");
    const size_t rb = quarry_row_size(type, k);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t i = 0; i < k; i++)
            row[i] = gate_random(seed);
        if (type == QUARRY_TYPE_F32)
            memcpy(dst + (size_t)r * rb, row, rb);
        else
            tr->from_float_ref(row, dst + (size_t)r * rb, k);
    }
    free(row);
    return 0;
}

static int prepare_matvec(quarry_gate_workload *g, quarry_error *err)
{
    const enum quarry_type type = g->spec->type;
    const int64_t n = GATE_MATVEC_N, k = GATE_MATVEC_K;
    const size_t rb = quarry_row_size(type, k);
    uint64_t seed = 0x9E3779B97F4A7C15u ^ (uint64_t)type;
    g->w = gate_alloc(rb * (size_t)n);
    g->x = gate_alloc((size_t)k * sizeof *g->x);
    g->y = gate_alloc((size_t)n * sizeof *g->y);
    g->ws = quarry_matmul_ws_new();
    if (!g->w || !g->x || !g->y || !g->ws)
        return quarry_errorf(err, QUARRY_ENOMEM, "gate: out of memory");
    int rc = quantize_pattern(g->traits, type, GATE_PATTERN_ROWS, k, &seed, g->w, err);
    if (rc)
        return rc;
    for (int64_t r = GATE_PATTERN_ROWS; r < n; r++)
        memcpy(g->w + (size_t)r * rb, g->w + (size_t)(r % GATE_PATTERN_ROWS) * rb, rb);
    for (int64_t i = 0; i < k; i++)
        g->x[i] = gate_random(&seed);
    return 0;
}

static int prepare_dequant(quarry_gate_workload *g, quarry_error *err)
{
    const enum quarry_type type = g->spec->type;
    const size_t pattern_bytes = quarry_row_size(type, GATE_DEQUANT_PATTERN);
    const int copies = GATE_DEQUANT_ELEMS / GATE_DEQUANT_PATTERN;
    uint64_t seed = 0xD1B54A32D192ED03u ^ (uint64_t)type;
    g->w = gate_alloc(pattern_bytes * (size_t)copies);
    g->y = gate_alloc((size_t)GATE_DEQUANT_ELEMS * sizeof *g->y);
    if (!g->w || !g->y)
        return quarry_errorf(err, QUARRY_ENOMEM, "gate: out of memory");
    int rc = quantize_pattern(g->traits, type, 1, GATE_DEQUANT_PATTERN, &seed, g->w, err);
    if (rc)
        return rc;
    for (int c = 1; c < copies; c++)
        memcpy(g->w + (size_t)c * pattern_bytes, g->w, pattern_bytes);
    return 0;
}

static int prepare_attn(quarry_gate_workload *g, quarry_error *err)
{
    const int n_head = 32, n_head_kv = 4, hd = 64, depth = GATE_ATTN_DEPTH;
    const int kv_dim = n_head_kv * hd, q_dim = n_head * hd;
    const enum quarry_type kv_type = g->spec->type;
    const size_t row_bytes = quarry_row_size(kv_type, kv_dim);
    uint64_t seed = 0xA0761D6478BD642Fu;
    g->q = gate_alloc((size_t)q_dim * sizeof *g->q);
    g->out = gate_alloc((size_t)q_dim * sizeof *g->out);
    g->k = gate_alloc((size_t)depth * row_bytes);
    g->v = gate_alloc((size_t)depth * row_bytes);
    if (!g->q || !g->out || !g->k || !g->v)
        return quarry_errorf(err, QUARRY_ENOMEM, "gate: out of memory");
    for (int i = 0; i < q_dim; i++)
        g->q[i] = gate_random(&seed);
    int rc = quantize_pattern(g->traits, kv_type, depth, kv_dim, &seed, g->k, err);
    if (!rc)
        rc = quantize_pattern(g->traits, kv_type, depth, kv_dim, &seed, g->v, err);
    if (rc)
        return rc;
    g->pos = depth - 1;
    g->attn = (struct quarry_attn){
        .n_q = 1, .n_kv = depth, .n_head = n_head, .n_head_kv = n_head_kv, .head_dim = hd,
        .scale = 1.0f / sqrtf((float)hd), .q = g->q, .q_stride = q_dim, .kv_type = kv_type,
        .k = g->k, .k_stride = row_bytes, .v = g->v, .v_stride = row_bytes, .q_pos = &g->pos,
        .out = g->out, .out_stride = q_dim};
    return quarry_attn_check(&g->attn, err);
}

static int prepare_model(quarry_gate_workload *g, quarry_error *err)
{
    int rc = quarry_model_open(GATE_MODEL_PATH, &g->model, err);
    if (rc)
        return rc;
    quarry_tokenizer *tok = NULL;
    if ((rc = quarry_tokenizer_load(g->model->own_file, &tok, err)))
        return rc;
    size_t n = 0;
    rc = quarry_tokenize(tok, GATE_MODEL_PROMPT, strlen(GATE_MODEL_PROMPT), true, false,
                         g->prompt, GATE_MODEL_MAX_PROMPT, &n, err);
    quarry_tokenizer_free(tok);
    if (rc)
        return rc;
    g->n_prompt = (int32_t)n;
    struct quarry_context_params cp;
    quarry_context_params_default(&cp);
    cp.n_ctx = GATE_MODEL_MAX_PROMPT + GATE_MODEL_STEPS + 1;
    cp.kv_type = QUARRY_TYPE_F16;
    cp.pool = NULL; /* the calling thread only */
    if ((rc = quarry_context_new(g->model, &cp, &g->ctx, err)))
        return rc;
    g->logits = gate_alloc((size_t)g->model->hp.n_vocab * sizeof *g->logits);
    if (!g->logits)
        return quarry_errorf(err, QUARRY_ENOMEM, "gate: out of memory");
    return 0;
}

int quarry_gate_workload_new(const char *name, quarry_gate_workload **out, quarry_error *err)
{
    *out = NULL;
    const struct gate_spec *spec = NULL;
    for (size_t i = 0; i < N_GATE_SPECS; i++)
        if (strcmp(gate_specs[i].name, name) == 0)
            spec = &gate_specs[i];
    if (!spec)
        return quarry_errorf(err, QUARRY_ENOTFOUND, "gate: no workload called '%s'", name);
    quarry_gate_workload *g = calloc(1, sizeof *g);
    if (!g)
        return quarry_errorf(err, QUARRY_ENOMEM, "gate: out of memory");
    g->spec = spec;
    const char *plant = getenv(QUARRY_GATE_PLANT_ENV);
    g->planted = plant && *plant && strcmp(plant, "0") != 0 &&
                 strcmp(name, QUARRY_GATE_PLANTED_WORKLOAD) == 0;
    g->traits = quarry_traits(spec->type);
    int rc = 0;
    if (spec->kind != GATE_MODEL &&
        (!g->traits || (spec->type != QUARRY_TYPE_F32 && !g->traits->from_float_ref) ||
         (spec->kind == GATE_MATVEC && !g->traits->vec_dot) ||
         (spec->kind != GATE_MATVEC && !g->traits->to_float)))
        rc = quarry_errorf(err, QUARRY_EUNSUPPORTED, "gate: %s: the kernels it needs are missing",
                           name);
    else if (spec->kind == GATE_MATVEC)
        rc = prepare_matvec(g, err);
    else if (spec->kind == GATE_DEQUANT)
        rc = prepare_dequant(g, err);
    else if (spec->kind == GATE_ATTN)
        rc = prepare_attn(g, err);
    else
        rc = prepare_model(g, err);
    if (rc) {
        quarry_gate_workload_free(g);
        return rc;
    }
    *out = g;
    return 0;
}

void quarry_gate_workload_free(quarry_gate_workload *g)
{
    if (!g)
        return;
    free(g->w);
    free(g->x);
    free(g->y);
    quarry_matmul_ws_free(g->ws);
    free(g->q);
    free(g->out);
    free(g->k);
    free(g->v);
    free(g->logits);
    quarry_context_free(g->ctx);
    quarry_model_free(g->model);
    free(g);
}

static int32_t argmax(const float *v, int32_t n)
{
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

static double sum_floats(const float *v, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += v[i];
    return s;
}

/* The prompt in one forward pass, then greedy decoding. */
static int run_model(quarry_gate_workload *g, quarry_error *err)
{
    int rc = quarry_kvcache_clear(quarry_context_kv(g->ctx), -1, err);
    if (rc)
        return rc;
    quarry_batch b = {.n_tokens = g->n_prompt, .token = g->prompt};
    if ((rc = quarry_forward(g->model, g->ctx, &b, g->logits, err)))
        return rc;
    for (int s = 0; s < GATE_MODEL_STEPS; s++) {
        g->generated[s] = argmax(g->logits, g->model->hp.n_vocab);
        if (s + 1 == GATE_MODEL_STEPS)
            break;
        b = (quarry_batch){.n_tokens = 1, .token = &g->generated[s]};
        if ((rc = quarry_forward(g->model, g->ctx, &b, g->logits, err)))
            return rc;
    }
    return 0;
}

static int run_workload(quarry_gate_workload *g, quarry_error *err);

int quarry_gate_warmup(quarry_gate_workload *g, quarry_error *err)
{
    return run_workload(g, err);
}

/* Not inlined, so callgrind finds it by name; its body differs from the
 * warm-up's (the counter), so the compiler cannot fold the two into one
 * function and have the warm-up counted too. */
__attribute__((noinline)) int quarry_gate_measured(quarry_gate_workload *g, quarry_error *err)
{
    g->measured_calls++;
    return run_workload(g, err);
}

static int run_workload(quarry_gate_workload *g, quarry_error *err)
{
    int rc = 0;
    switch (g->spec->kind) {
    case GATE_MATVEC:
        rc = quarry_matmul(NULL, g->ws, g->spec->type, g->w, GATE_MATVEC_N, GATE_MATVEC_K, g->x,
                           1, g->y, err);
        if (!rc && g->planted) {
            /* the planted slowdown: the first eighth of the rows once more */
            rc = quarry_matmul(NULL, g->ws, g->spec->type, g->w, GATE_MATVEC_N / 8, GATE_MATVEC_K,
                               g->x, 1, g->y, err);
        }
        break;
    case GATE_DEQUANT:
        g->traits->to_float(g->w, g->y, GATE_DEQUANT_ELEMS);
        break;
    case GATE_ATTN:
        rc = quarry_flash_attn(&g->attn, err);
        break;
    case GATE_MODEL:
        rc = run_model(g, err);
        break;
    }
    return rc;
}

double quarry_gate_checksum(const quarry_gate_workload *g)
{
    switch (g->spec->kind) {
    case GATE_MATVEC:
        return sum_floats(g->y, GATE_MATVEC_N);
    case GATE_DEQUANT:
        return sum_floats(g->y, GATE_DEQUANT_ELEMS);
    case GATE_ATTN:
        return sum_floats(g->out, (size_t)g->attn.n_head * (size_t)g->attn.head_dim);
    case GATE_MODEL: {
        double s = 0; /* position-weighted, so a reordering shows too */
        for (int i = 0; i < GATE_MODEL_STEPS; i++)
            s += (double)(i + 1) * g->generated[i];
        return s;
    }
    }
    return 0;
}

int quarry_gate_planted(const quarry_gate_workload *g)
{
    return g->planted;
}

/* ---- counts and baselines ------------------------------------------------------ */

const char *quarry_gate_verdict_name(enum quarry_gate_verdict v)
{
    switch (v) {
    case QUARRY_GATE_SAME: return "same";
    case QUARRY_GATE_REGRESSED: return "REGRESSED";
    case QUARRY_GATE_IMPROVED: return "improved";
    case QUARRY_GATE_NEW: return "new";
    case QUARRY_GATE_MISSING: return "missing";
    }
    return "?";
}

int quarry_gate_compare(const cJSON *baseline, const struct quarry_gate_count *now, size_t n_now,
                        double threshold, struct quarry_gate_row *rows, size_t max_rows,
                        size_t *n_rows, quarry_error *err)
{
    *n_rows = 0;
    const cJSON *wl = cJSON_GetObjectItemCaseSensitive(baseline, "workloads");
    if (!cJSON_IsObject(wl))
        return quarry_errorf(err, QUARRY_EFORMAT, "gate baseline: no \"workloads\" object");
    const cJSON *it;
    cJSON_ArrayForEach(it, wl)
    {
        const cJSON *ins = cJSON_GetObjectItemCaseSensitive(it, "instructions");
        if (!it->string || !cJSON_IsNumber(ins) || ins->valuedouble < 1 ||
            strlen(it->string) >= sizeof rows[0].name)
            return quarry_errorf(err, QUARRY_EFORMAT,
                                 "gate baseline: workload %s has no positive instruction count",
                                 it->string ? it->string : "?");
        if (*n_rows == max_rows)
            return quarry_errorf(err, QUARRY_ERANGE, "gate: more than %zu workloads", max_rows);
        struct quarry_gate_row *r = &rows[(*n_rows)++];
        memset(r, 0, sizeof *r);
        snprintf(r->name, sizeof r->name, "%s", it->string);
        r->base = (uint64_t)ins->valuedouble;
        r->verdict = QUARRY_GATE_MISSING;
        for (size_t i = 0; i < n_now; i++) {
            if (strcmp(now[i].name, r->name) != 0)
                continue;
            r->now = now[i].instructions;
            /* the difference first, in integers: exactly 3% then compares
             * equal to a threshold of 0.03 instead of a rounding above it */
            r->change = (double)((int64_t)r->now - (int64_t)r->base) / (double)r->base;
            r->verdict = r->change > threshold    ? QUARRY_GATE_REGRESSED
                         : r->change < -threshold ? QUARRY_GATE_IMPROVED
                                                  : QUARRY_GATE_SAME;
            break;
        }
    }
    for (size_t i = 0; i < n_now; i++) {
        if (cJSON_GetObjectItemCaseSensitive(wl, now[i].name))
            continue;
        if (*n_rows == max_rows)
            return quarry_errorf(err, QUARRY_ERANGE, "gate: more than %zu workloads", max_rows);
        struct quarry_gate_row *r = &rows[(*n_rows)++];
        memset(r, 0, sizeof *r);
        snprintf(r->name, sizeof r->name, "%s", now[i].name);
        r->now = now[i].instructions;
        r->verdict = QUARRY_GATE_NEW;
    }
    return 0;
}

int quarry_gate_read_counts(const char *path, struct quarry_gate_count *counts, size_t max,
                            size_t *n, char *isa, quarry_error *err)
{
    *n = 0;
    isa[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return quarry_errorf(err, QUARRY_EIO, "gate: cannot open %s: %s", path, strerror(errno));
    char line[512];
    int rc = 0, lineno = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0' || line[0] == '#')
            continue;
        char name[64], level[16];
        unsigned long long count;
        char extra;
        if (sscanf(line, "%63[^\t]\t%15[^\t]\t%llu %c", name, level, &count, &extra) != 3 ||
            count == 0) {
            rc = quarry_errorf(err, QUARRY_EFORMAT, "gate: %s:%d: expected NAME<TAB>ISA<TAB>COUNT",
                               path, lineno);
            break;
        }
        if (isa[0] && strcmp(isa, level) != 0) {
            rc = quarry_errorf(err, QUARRY_EFORMAT,
                               "gate: %s:%d: workloads ran at different ISA levels (%s, %s)",
                               path, lineno, isa, level);
            break;
        }
        snprintf(isa, 16, "%s", level);
        for (size_t i = 0; i < *n; i++)
            if (strcmp(counts[i].name, name) == 0)
                rc = quarry_errorf(err, QUARRY_EFORMAT, "gate: %s:%d: %s counted twice", path,
                                   lineno, name);
        if (rc)
            break;
        if (*n == max) {
            rc = quarry_errorf(err, QUARRY_ERANGE, "gate: %s: more than %zu workloads", path, max);
            break;
        }
        snprintf(counts[*n].name, sizeof counts[*n].name, "%s", name);
        counts[*n].instructions = count;
        (*n)++;
    }
    if (rc == 0 && ferror(f))
        rc = quarry_errorf(err, QUARRY_EIO, "gate: cannot read %s", path);
    fclose(f);
    if (rc == 0 && *n == 0)
        rc = quarry_errorf(err, QUARRY_EFORMAT, "gate: %s holds no counts", path);
    return rc;
}

cJSON *quarry_gate_baseline_new(const struct quarry_gate_count *counts, size_t n,
                                const char *isa, const char *tool, const char *git_sha)
{
    cJSON *doc = cJSON_CreateObject();
    if (!doc)
        return NULL;
    char when[32] = "";
    const time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm))
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int ok = cJSON_AddStringToObject(doc, "schema", "quarry-gate/1") != NULL;
    ok = ok && cJSON_AddStringToObject(doc, "isa", isa);
    ok = ok && cJSON_AddStringToObject(doc, "tool", tool);
    ok = ok && cJSON_AddStringToObject(doc, "compiler", quarry_compiler_name());
    ok = ok && cJSON_AddNumberToObject(doc, "threshold", QUARRY_GATE_THRESHOLD);
    ok = ok && cJSON_AddStringToObject(doc, "created_utc", when);
    ok = ok && (git_sha ? cJSON_AddStringToObject(doc, "git_sha", git_sha)
                        : cJSON_AddNullToObject(doc, "git_sha"));
    ok = ok && cJSON_AddStringToObject(doc, "measured",
                                       "instructions executed inside " QUARRY_GATE_MEASURED_SYMBOL
                                       "(), one process per workload, single thread");
    cJSON *wl = ok ? cJSON_AddObjectToObject(doc, "workloads") : NULL;
    ok = wl != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        ok = o && cJSON_AddNumberToObject(o, "instructions", (double)counts[i].instructions) &&
             cJSON_AddItemToObject(wl, counts[i].name, o);
        if (!ok)
            cJSON_Delete(o);
    }
    if (!ok) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}
