/*
 * bench_kernels.c - the kernel microbenchmark (see bench_kernels.h for what
 * is measured and in which units).
 *
 * Inputs are synthetic: normal-ish random floats from a fixed seed, quantized
 * with the type's own quantizer. Large weight matrices are built by repeating
 * a 32-row quantized pattern (the kernels' speed does not depend on the
 * values, and quantizing 65M weights with the K-quant reference quantizer
 * would take longer than the benchmark). For matvec the matrix is repeated
 * in enough copies to fill COLD_BYTES and each call reads the next copy, so
 * weights come from memory as they do when decoding a whole model, not from
 * a warm L3.
 */
#include "harness/bench_kernels.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/threadpool.h"
#include "harness/membw.h"
#include "harness/results.h"
#include "kernels/kernels.h"
#include "kernels/matmul.h"

#define KERNEL_ELEMS (64 * 1024)             /* quantize / dequantize: 256 KiB of floats */
#define VEC_DOT_K 4096
#define VEC_DOT_BYTES (128 * 1024)           /* weight rows for vec_dot, hot in L2 */
#define PATTERN_ROWS 32
#define COLD_BYTES ((size_t)256 << 20)       /* matvec footprint: far beyond L3 */
#define MEMBW_BYTES ((size_t)512 << 20)
#define MEMBW_BYTES_QUICK ((size_t)256 << 20)
#define MEMBW_RUNS 7
#define MEMBW_RUNS_QUICK 3
#define MATMUL_M 512

/* n x k of the weight matrices of a 1.1B llama (TinyLlama): q/o projections,
 * FFN down, FFN gate/up, output. */
static const int64_t matvec_shapes[][2] = {{2048, 2048}, {2048, 5632}, {5632, 2048}, {32000, 2048}};
/* prompt processing: the output projection is only needed for the last
 * token, so it is left out of the matrix-matrix shapes */
static const int64_t matmul_shapes[][2] = {{2048, 2048}, {2048, 5632}, {5632, 2048}};
static const int64_t matmul_shapes_quick[][2] = {{512, 2048}};

static const char *const op_names[] = {"membw_read", "quantize", "dequantize", "vec_dot",
                                       "matvec", "matmul"};

const char *quarry_bench_op_name(enum quarry_bench_op op)
{
    for (int i = 0; i < 6; i++)
        if ((unsigned)op == (1u << i))
            return op_names[i];
    return NULL;
}

int quarry_bench_op_from_name(const char *name)
{
    for (int i = 0; i < 6; i++)
        if (strcmp(name, op_names[i]) == 0 || (i == 0 && strcmp(name, "membw") == 0))
            return 1 << i;
    return -1;
}

/* ---- state of one benchmark run ------------------------------------------ */

struct bench {
    const struct quarry_bench_kernels_opts *opts;
    const struct quarry_bench_callbacks *cb;
    cJSON *rows;
    quarry_error *err;
    struct quarry_measure_opts mopts;
    int threads[QUARRY_BENCH_MAX_THREAD_COUNTS];
    int n_threads;
    quarry_threadpool *pools[QUARRY_BENCH_MAX_THREAD_COUNTS];
    double membw_best[QUARRY_BENCH_MAX_THREAD_COUNTS]; /* GB/s; < 0 when not measured */
    quarry_matmul_ws *ws;
    uint64_t rng;
};

static float random_float(uint64_t *s)
{
    /* xorshift64*, sum of two uniforms in [-1, 1): a triangular spread */
    float v = 0;
    for (int i = 0; i < 2; i++) {
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        const uint64_t r = *s * UINT64_C(0x2545F4914F6CDD1D);
        v += (float)(r >> 40) * (2.0f / 16777216.0f) - 1.0f;
    }
    return v;
}

static void fill_random(struct bench *b, float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = random_float(&b->rng);
}

static void note(struct bench *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct bench *b, const char *fmt, ...)
{
    if (!b->cb || !b->cb->on_note)
        return;
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    b->cb->on_note(text, b->cb->ud);
}

/* Appends a row to the JSON array (if any) and hands it to the callback.
 * extra: more fields for this op (taken over, even on failure); may be NULL. */
static int report(struct bench *b, const struct quarry_bench_row *row, int64_t calls_per_run,
                  cJSON *extra)
{
    if (b->rows) {
        cJSON *o = cJSON_CreateObject();
        if (!o) {
            cJSON_Delete(extra);
            return quarry_errorf(b->err, QUARRY_ENOMEM, "bench: out of memory");
        }
        int ok = cJSON_AddStringToObject(o, "op", row->op) != NULL;
        ok &= (strcmp(row->type, "-") ? cJSON_AddStringToObject(o, "type", row->type)
                                      : cJSON_AddNullToObject(o, "type")) != NULL;
        ok &= (strcmp(row->isa, "-") ? cJSON_AddStringToObject(o, "isa", row->isa)
                                     : cJSON_AddNullToObject(o, "isa")) != NULL;
        const int is_membw = strcmp(row->op, "membw_read") == 0;
        ok &= (row->path && !is_membw ? cJSON_AddStringToObject(o, "path", row->path)
                         : cJSON_AddNullToObject(o, "path")) != NULL;
        ok &= cJSON_AddNumberToObject(o, "threads", row->threads) != NULL;
        if (row->n > 0) {
            cJSON *shape = cJSON_AddObjectToObject(o, "shape");
            ok &= shape && cJSON_AddNumberToObject(shape, "n", (double)row->n) &&
                  cJSON_AddNumberToObject(shape, "k", (double)row->k) &&
                  cJSON_AddNumberToObject(shape, "m", (double)row->m);
        } else {
            ok &= cJSON_AddNullToObject(o, "shape") != NULL;
        }
        if (row->elements > 0)
            ok &= cJSON_AddNumberToObject(o, "elements", (double)row->elements) != NULL;
        cJSON *value = quarry_stats_json(&row->value, row->unit);
        ok &= value != NULL && cJSON_AddItemToObject(o, "value", value);
        ok &= cJSON_AddNumberToObject(o, "seconds_per_call", row->seconds_per_call) != NULL;
        if (calls_per_run > 0)
            ok &= cJSON_AddNumberToObject(o, "calls_per_run", (double)calls_per_run) != NULL;
        if (row->fraction_of_membw >= 0)
            ok &= cJSON_AddNumberToObject(o, "fraction_of_membw", row->fraction_of_membw) != NULL;
        for (cJSON *it = extra ? extra->child : NULL; ok && it; it = it->next)
            ok &= cJSON_AddItemToObject(o, it->string, cJSON_Duplicate(it, 1));
        cJSON_Delete(extra);
        if (!ok || !cJSON_AddItemToArray(b->rows, o)) {
            cJSON_Delete(o);
            return quarry_errorf(b->err, QUARRY_ENOMEM, "bench: out of memory");
        }
    } else {
        cJSON_Delete(extra);
    }
    if (b->cb && b->cb->on_row)
        b->cb->on_row(row, b->cb->ud);
    return 0;
}

/* Turns per-call seconds into throughput samples (work_per_call / s * scale),
 * reports the row. */
static int emit(struct bench *b, struct quarry_bench_row *row, const double *sec, int n,
                double work_per_call, double scale, int64_t calls_per_run)
{
    double thr[QUARRY_MEASURE_MAX_REPS] = {0};
    double sum_s = 0;
    for (int i = 0; i < n; i++) {
        thr[i] = work_per_call / sec[i] * scale;
        sum_s += sec[i];
    }
    quarry_stats_compute(thr, n, &row->value);
    row->seconds_per_call = n > 0 ? sum_s / n : 0;
    return report(b, row, calls_per_run, NULL);
}

static int measure(struct bench *b, quarry_measured_fn fn, void *ctx, double *sec, int *n,
                   int64_t *calls)
{
    return quarry_measure(fn, ctx, &b->mopts, sec, n, calls);
}

/* ---- memory bandwidth ------------------------------------------------------ */

/* Measures read bandwidth at every thread count. At the start of the run
 * (when = "start") the figures become the reference for matvec fractions:
 * for t threads, the best bandwidth measured with t or fewer threads. At the
 * end (when = "end") they are only reported, to show how much the machine
 * drifted during the run. */
static int bench_membw(struct bench *b, const char *when)
{
    int rc;
    for (int i = 0; i < b->n_threads; i++) {
        struct quarry_membw_result r;
        const size_t bytes = b->opts->quick ? MEMBW_BYTES_QUICK : MEMBW_BYTES;
        const int runs = b->opts->quick ? MEMBW_RUNS_QUICK : MEMBW_RUNS;
        rc = quarry_membw_read(b->pools[i], bytes, runs, &r, b->err);
        if (rc != 0)
            return rc;
        if (strcmp(when, "start") == 0)
            b->membw_best[i] = r.best_gbps;
        struct quarry_bench_row row = {.op = "membw_read", .type = "-", .isa = "-", .path = when,
                                       .threads = b->threads[i], .unit = "GB/s",
                                       .elements = (int64_t)r.bytes, .value = r.gbps,
                                       .seconds_per_call = (double)r.bytes * 1e-9 / r.gbps.mean,
                                       .fraction_of_membw = -1};
        cJSON *extra = cJSON_CreateObject();
        if (!extra || !cJSON_AddNumberToObject(extra, "bytes", (double)r.bytes) ||
            !cJSON_AddNumberToObject(extra, "best_gbps", r.best_gbps) ||
            !cJSON_AddStringToObject(extra, "when", when)) {
            cJSON_Delete(extra);
            return quarry_errorf(b->err, QUARRY_ENOMEM, "bench: out of memory");
        }
        if ((rc = report(b, &row, 1, extra)) != 0)
            return rc;
    }
    return 0;
}

/* The bandwidth a matvec with threads[t] threads is compared with: the best
 * start-of-run figure with that many threads or fewer (more threads cannot
 * lower the reachable bandwidth; a lower figure is noise). */
static double membw_reference(const struct bench *b, int t)
{
    double ref = -1;
    for (int j = 0; j < b->n_threads; j++)
        if (b->threads[j] <= b->threads[t] && b->membw_best[j] > ref)
            ref = b->membw_best[j];
    return ref;
}

/* ---- single-thread kernels --------------------------------------------------- */

struct convert_ctx {
    quarry_from_float_fn from_float;
    quarry_to_float_fn to_float;
    const float *x;
    void *q;
    float *y;
    int64_t n;
};

static int run_quantize(void *p, int64_t calls)
{
    struct convert_ctx *c = p;
    for (int64_t i = 0; i < calls; i++)
        c->from_float(c->x, c->q, c->n);
    return 0;
}

static int run_dequantize(void *p, int64_t calls)
{
    struct convert_ctx *c = p;
    for (int64_t i = 0; i < calls; i++)
        c->to_float(c->q, c->y, c->n);
    return 0;
}

struct dot_ctx {
    quarry_vec_dot_fn vec_dot;
    const uint8_t *w;
    size_t row_bytes;
    int rows;
    const void *act;
    int k;
    volatile float sink;
};

static int run_vec_dot(void *p, int64_t calls)
{
    struct dot_ctx *c = p;
    float acc = 0;
    for (int64_t i = 0; i < calls; i++)
        for (int r = 0; r < c->rows; r++) {
            float s;
            c->vec_dot(c->k, &s, c->w + (size_t)r * c->row_bytes, c->act);
            acc += s;
        }
    c->sink = acc;
    return 0;
}

/* Quantizes rows x k random floats into out (rows of quarry_row_size bytes). */
static int quantize_rows(struct bench *b, const struct quarry_type_traits *table,
                         enum quarry_type type, int64_t rows, int64_t k, uint8_t *out)
{
    const struct quarry_type_traits *tr = &table[type];
    quarry_from_float_fn q = tr->from_float ? tr->from_float : tr->from_float_ref;
    if (!q && type != QUARRY_TYPE_F32)
        return QUARRY_EUNSUPPORTED;
    const size_t rb = quarry_row_size(type, k);
    float *x = malloc((size_t)k * sizeof *x);
    if (!x)
        return quarry_errorf(b->err, QUARRY_ENOMEM, "bench: out of memory");
    for (int64_t r = 0; r < rows; r++) {
        fill_random(b, x, k);
        if (q)
            q(x, out + (size_t)r * rb, k);
        else
            memcpy(out + (size_t)r * rb, x, rb);
    }
    free(x);
    return 0;
}

/* vec_dot_prepared on the rows and activations of dc (the figure beside
 * vec_dot's: what the matvec path runs where a type has it). */
static int bench_prepared_dot(struct bench *b, const struct quarry_type_traits *tr,
                              const char *isa, const struct dot_ctx *dc, int rows, size_t rb,
                              double *sec)
{
    void *prepared = aligned_alloc(64, tr->act_prepared_size(dc->k));
    if (!prepared)
        return quarry_errorf(b->err, QUARRY_ENOMEM, "bench: out of memory");
    tr->act_prepare(dc->k, dc->act, prepared);
    struct dot_ctx pc = *dc;
    pc.vec_dot = tr->vec_dot_prepared;
    pc.act = prepared;
    int n;
    int64_t calls;
    int rc = measure(b, run_vec_dot, &pc, sec, &n, &calls);
    struct quarry_bench_row row = {.op = "vec_dot_prepared", .type = tr->name, .isa = isa,
                                   .threads = 1, .unit = "GB/s",
                                   .elements = (int64_t)rows * dc->k, .fraction_of_membw = -1};
    if (rc == 0)
        rc = emit(b, &row, sec, n, (double)rb * rows, 1e-9, calls);
    free(prepared);
    return rc;
}

static int bench_single_thread(struct bench *b, const struct quarry_type_traits *table,
                               enum quarry_type type, const char *isa)
{
    const struct quarry_type_traits *tr = &table[type];
    const unsigned ops = b->opts->ops;
    double sec[QUARRY_MEASURE_MAX_REPS];
    int n;
    int64_t calls;
    int rc = 0;
    const int64_t elems = KERNEL_ELEMS;
    float *x = malloc((size_t)elems * sizeof *x);
    float *y = malloc((size_t)elems * sizeof *y);
    uint8_t *q = malloc(quarry_row_size(type, elems));
    if (!x || !y || !q) {
        rc = quarry_errorf(b->err, QUARRY_ENOMEM, "bench: out of memory");
        goto done;
    }
    fill_random(b, x, elems);
    quarry_from_float_fn quant = tr->from_float ? tr->from_float : tr->from_float_ref;
    if (quant)
        quant(x, q, elems);
    else
        memcpy(q, x, quarry_row_size(type, elems)); /* f32 without a quantizer */

    struct convert_ctx cc = {tr->from_float, tr->to_float, x, q, y, elems};
    if ((ops & QUARRY_BENCH_QUANTIZE) && tr->from_float) {
        if ((rc = measure(b, run_quantize, &cc, sec, &n, &calls)) != 0)
            goto done;
        struct quarry_bench_row row = {.op = "quantize", .type = tr->name, .isa = isa,
                                       .threads = 1, .unit = "MB/s", .elements = elems,
                                       .fraction_of_membw = -1};
        if ((rc = emit(b, &row, sec, n, (double)elems * sizeof(float), 1e-6, calls)) != 0)
            goto done;
    }
    if ((ops & QUARRY_BENCH_DEQUANTIZE) && tr->to_float) {
        if ((rc = measure(b, run_dequantize, &cc, sec, &n, &calls)) != 0)
            goto done;
        struct quarry_bench_row row = {.op = "dequantize", .type = tr->name, .isa = isa,
                                       .threads = 1, .unit = "GB/s", .elements = elems,
                                       .fraction_of_membw = -1};
        if ((rc = emit(b, &row, sec, n, (double)elems * sizeof(float), 1e-9, calls)) != 0)
            goto done;
    }
    if ((ops & QUARRY_BENCH_VEC_DOT) && tr->vec_dot) {
        const enum quarry_type at = tr->vec_dot_type;
        const size_t rb = quarry_row_size(type, VEC_DOT_K);
        const int rows = (int)(VEC_DOT_BYTES / rb > 0 ? VEC_DOT_BYTES / rb : 1);
        uint8_t *w = malloc(rb * (size_t)rows);
        uint8_t *act = malloc(quarry_row_size(at, VEC_DOT_K));
        if (!w || !act) {
            free(w);
            free(act);
            rc = quarry_errorf(b->err, QUARRY_ENOMEM, "bench: out of memory");
            goto done;
        }
        rc = quantize_rows(b, table, type, rows, VEC_DOT_K, w);
        if (rc == 0)
            rc = quantize_rows(b, table, at, 1, VEC_DOT_K, act);
        if (rc == 0) {
            struct dot_ctx dc = {.vec_dot = tr->vec_dot, .w = w, .row_bytes = rb, .rows = rows,
                                 .act = act, .k = VEC_DOT_K};
            rc = measure(b, run_vec_dot, &dc, sec, &n, &calls);
            struct quarry_bench_row row = {.op = "vec_dot", .type = tr->name, .isa = isa,
                                           .threads = 1, .unit = "GB/s",
                                           .elements = (int64_t)rows * VEC_DOT_K,
                                           .fraction_of_membw = -1};
            if (rc == 0)
                rc = emit(b, &row, sec, n, (double)rb * rows, 1e-9, calls);
            if (rc == 0 && tr->vec_dot_prepared)
                rc = bench_prepared_dot(b, tr, isa, &dc, rows, rb, sec);
        } else if (rc == QUARRY_EUNSUPPORTED) {
            note(b, "%s/%s: vec_dot skipped (no quantizer for %s or %s)", tr->name, isa,
                 tr->name, quarry_type_info(at)->name);
            rc = 0;
        }
        free(w);
        free(act);
    }
done:
    free(x);
    free(y);
    free(q);
    return rc;
}

/* ---- matrix products --------------------------------------------------------- */

struct product_ctx {
    struct quarry_matmul_opts mopts;
    quarry_threadpool *pool;
    quarry_matmul_ws *ws;
    enum quarry_type type;
    const uint8_t *w;
    size_t matrix_bytes;
    int64_t copies, next;
    int64_t n, k, m;
    const float *x;
    float *y;
    quarry_error *err;
};

static int run_product(void *p, int64_t calls)
{
    struct product_ctx *c = p;
    for (int64_t i = 0; i < calls; i++) {
        const uint8_t *w = c->w + (size_t)(c->next % c->copies) * c->matrix_bytes;
        c->next++;
        int rc = quarry_matmul_ex(&c->mopts, c->pool, c->ws, c->type, w, c->n, c->k, c->x, c->m,
                                  c->y, c->err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Builds `copies` copies of an n x k matrix of `type` from a quantized pattern. */
static uint8_t *build_matrix(struct bench *b, const struct quarry_type_traits *table,
                             enum quarry_type type, int64_t n, int64_t k, int64_t copies, int *rc)
{
    const size_t rb = quarry_row_size(type, k);
    uint8_t *pattern = malloc(rb * PATTERN_ROWS);
    uint8_t *w = malloc(rb * (size_t)n * (size_t)copies);
    if (!pattern || !w) {
        free(pattern);
        free(w);
        *rc = quarry_errorf(b->err, QUARRY_ENOMEM, "bench: cannot allocate %lld x %lld %s x %lld",
                            (long long)n, (long long)k, table[type].name, (long long)copies);
        return NULL;
    }
    *rc = quantize_rows(b, table, type, PATTERN_ROWS, k, pattern);
    if (*rc != 0) {
        free(pattern);
        free(w);
        return NULL;
    }
    const int64_t total = n * copies;
    for (int64_t r = 0; r < total; r++)
        memcpy(w + (size_t)r * rb, pattern + (size_t)(r % PATTERN_ROWS) * rb, rb);
    free(pattern);
    return w;
}

static int bench_products(struct bench *b, const struct quarry_type_traits *table,
                          enum quarry_type type, const char *isa, int matmul)
{
    const struct quarry_type_traits *tr = &table[type];
    const int64_t(*shapes)[2] = matmul ? (b->opts->quick ? matmul_shapes_quick : matmul_shapes)
                                       : matvec_shapes;
    const int n_shapes = matmul ? (b->opts->quick ? 1 : 3) : 4;
    const int64_t m = matmul ? MATMUL_M : 1;
    double sec[QUARRY_MEASURE_MAX_REPS];
    int rc = 0;
    for (int s = 0; s < n_shapes && rc == 0; s++) {
        const int64_t n = shapes[s][0], k = shapes[s][1];
        const size_t bytes = quarry_row_size(type, k) * (size_t)n;
        const int64_t copies = matmul ? 1 : (int64_t)((COLD_BYTES + bytes - 1) / bytes);
        uint8_t *w = build_matrix(b, table, type, n, k, copies, &rc);
        float *x = malloc((size_t)(m * k) * sizeof *x);
        float *y = malloc((size_t)(m * n) * sizeof *y);
        if (rc == QUARRY_EUNSUPPORTED) {
            note(b, "%s/%s: %s skipped (no quantizer to make weights)", tr->name, isa,
                 matmul ? "matmul" : "matvec");
            free(x);
            free(y);
            return 0;
        }
        if (!w || !x || !y) {
            if (rc == 0)
                rc = quarry_errorf(b->err, QUARRY_ENOMEM, "bench: out of memory");
            free(w);
            free(x);
            free(y);
            return rc;
        }
        fill_random(b, x, m * k);
        for (int t = 0; t < b->n_threads && rc == 0; t++) {
            struct product_ctx c = {.mopts = {.table = table}, .pool = b->pools[t], .ws = b->ws,
                                    .type = type, .w = w, .matrix_bytes = bytes,
                                    .copies = copies, .n = n, .k = k, .m = m, .x = x, .y = y,
                                    .err = b->err};
            int n_samples;
            int64_t calls;
            rc = measure(b, run_product, &c, sec, &n_samples, &calls);
            if (rc != 0)
                break;
            struct quarry_bench_row row = {
                .op = matmul ? "matmul" : "matvec", .type = tr->name, .isa = isa,
                .path = quarry_matmul_path_name(quarry_matmul_path(&c.mopts, type, n, k, m)),
                .n = n, .k = k, .m = m, .threads = b->threads[t],
                .unit = matmul ? "GFLOP/s" : "GB/s", .fraction_of_membw = -1};
            if (matmul) {
                rc = emit(b, &row, sec, n_samples, 2.0 * (double)m * (double)n * (double)k, 1e-9,
                          calls);
            } else {
                double mean_gbps = 0;
                for (int i = 0; i < n_samples; i++)
                    mean_gbps += (double)bytes / sec[i] * 1e-9 / n_samples;
                const double ref = membw_reference(b, t);
                if (ref > 0)
                    row.fraction_of_membw = mean_gbps / ref;
                rc = emit(b, &row, sec, n_samples, (double)bytes, 1e-9, calls);
            }
        }
        free(w);
        free(x);
        free(y);
    }
    return rc;
}

/* ---- driver -------------------------------------------------------------------- */

static int type_selected(const struct quarry_bench_kernels_opts *o, int t)
{
    for (int i = 0; i < QUARRY_TYPE_COUNT; i++)
        if (o->types[i])
            return o->types[t] != 0;
    return 1;
}

static void resolve_threads(const struct quarry_bench_kernels_opts *o, int *threads, int *n)
{
    if (o->n_threads > 0) {
        *n = o->n_threads < QUARRY_BENCH_MAX_THREAD_COUNTS ? o->n_threads
                                                           : QUARRY_BENCH_MAX_THREAD_COUNTS;
        memcpy(threads, o->threads, sizeof(int) * (size_t)*n);
        return;
    }
    const int cores = quarry_physical_cores();
    threads[0] = 1;
    *n = 1;
    if (cores > 1)
        threads[(*n)++] = cores;
}

static unsigned resolve_isa_mask(const struct quarry_bench_kernels_opts *o)
{
    const unsigned all = (1u << ((unsigned)quarry_isa_detected() + 1)) - 1;
    return o->isa_mask ? (o->isa_mask & all) : all;
}

cJSON *quarry_bench_kernels_config_json(const struct quarry_bench_kernels_opts *o)
{
    cJSON *c = cJSON_CreateObject();
    if (!c)
        return NULL;
    int threads[QUARRY_BENCH_MAX_THREAD_COUNTS], n_threads;
    resolve_threads(o, threads, &n_threads);
    const unsigned isa = resolve_isa_mask(o);
    const unsigned ops = o->ops ? o->ops : QUARRY_BENCH_ALL_OPS;
    cJSON *jt = cJSON_AddArrayToObject(c, "threads");
    cJSON *ji = cJSON_AddArrayToObject(c, "isa");
    cJSON *jty = cJSON_AddArrayToObject(c, "types");
    cJSON *jo = cJSON_AddArrayToObject(c, "ops");
    int ok = jt && ji && jty && jo && cJSON_AddBoolToObject(c, "quick", o->quick) &&
             cJSON_AddNumberToObject(c, "matmul_m", MATMUL_M) &&
             cJSON_AddNumberToObject(c, "matvec_cold_bytes", (double)COLD_BYTES) &&
             cJSON_AddNumberToObject(c, "kernel_elements", KERNEL_ELEMS) &&
             cJSON_AddNumberToObject(c, "vec_dot_k", VEC_DOT_K);
    for (int i = 0; ok && i < n_threads; i++)
        ok = cJSON_AddItemToArray(jt, cJSON_CreateNumber(threads[i]));
    for (int l = 0; ok && l < QUARRY_ISA_COUNT; l++)
        if (isa & (1u << l))
            ok = cJSON_AddItemToArray(ji, cJSON_CreateString(quarry_isa_name((enum quarry_isa)l)));
    for (int t = 0; ok && t < QUARRY_TYPE_COUNT; t++)
        if (quarry_type_info((uint32_t)t) && type_selected(o, t))
            ok = cJSON_AddItemToArray(jty, cJSON_CreateString(quarry_type_info((uint32_t)t)->name));
    for (int i = 0; ok && i < 6; i++)
        if (ops & (1u << i))
            ok = cJSON_AddItemToArray(jo, cJSON_CreateString(op_names[i]));
    if (!ok) {
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}

int quarry_bench_kernels(const struct quarry_bench_kernels_opts *opts_in, cJSON *rows,
                         const struct quarry_bench_callbacks *cb, quarry_error *err)
{
    struct quarry_bench_kernels_opts opts = *opts_in;
    if (!opts.ops)
        opts.ops = QUARRY_BENCH_ALL_OPS;
    struct bench b = {.opts = &opts, .cb = cb, .rows = rows, .err = err,
                      .mopts = quarry_measure_defaults(opts.quick), .rng = 0x9e3779b97f4a7c15u};
    resolve_threads(&opts, b.threads, &b.n_threads);
    const unsigned isa_mask = resolve_isa_mask(&opts);
    if (isa_mask == 0)
        return quarry_errorf(err, QUARRY_EUNSUPPORTED, "bench: none of the asked ISA levels runs here");
    static struct quarry_type_traits table[QUARRY_TYPE_COUNT]; /* large: not on the stack */
    int rc = 0;
    for (int i = 0; i < b.n_threads; i++) {
        b.membw_best[i] = -1;
        if ((rc = quarry_threadpool_new(b.threads[i], &b.pools[i], err)) != 0)
            goto done;
    }
    if (!(b.ws = quarry_matmul_ws_new())) {
        rc = quarry_errorf(err, QUARRY_ENOMEM, "bench: out of memory");
        goto done;
    }
    if (opts.ops & (QUARRY_BENCH_MEMBW | QUARRY_BENCH_MATVEC))
        if ((rc = bench_membw(&b, "start")) != 0)
            goto done;

    const unsigned per_type_ops = QUARRY_BENCH_ALL_OPS & ~(unsigned)QUARRY_BENCH_MEMBW;
    for (int t = 0; t < QUARRY_TYPE_COUNT && rc == 0 && (opts.ops & per_type_ops); t++) {
        if (!quarry_type_info((uint32_t)t) || !type_selected(&opts, t))
            continue;
        for (int l = 0; l < QUARRY_ISA_COUNT && rc == 0; l++) {
            if (!(isa_mask & (1u << l)))
                continue;
            if ((rc = quarry_traits_build((enum quarry_isa)l, table)) != 0) {
                quarry_errorf(err, rc, "bench: cannot build the %s table",
                              quarry_isa_name((enum quarry_isa)l));
                break;
            }
            const struct quarry_type_traits *tr = &table[t];
            const char *isa = quarry_isa_name((enum quarry_isa)l);
            if (!tr->to_float && !tr->from_float && !tr->vec_dot) {
                if (l == 0)
                    note(&b, "%s: no kernels registered", tr->name);
                continue;
            }
            /* a level with nothing new for this type repeats the level below */
            if (l > 0 && (int)tr->isa < l && (int)table[tr->vec_dot_type].isa < l) {
                note(&b, "%s/%s: no %s kernels (same as %s)", tr->name, isa, isa,
                     quarry_isa_name(tr->isa > table[tr->vec_dot_type].isa
                                         ? tr->isa : table[tr->vec_dot_type].isa));
                continue;
            }
            rc = bench_single_thread(&b, table, (enum quarry_type)t, isa);
            if (rc == 0 && (opts.ops & QUARRY_BENCH_MATVEC) && tr->vec_dot)
                rc = bench_products(&b, table, (enum quarry_type)t, isa, 0);
            if (rc == 0 && (opts.ops & QUARRY_BENCH_MATMUL) &&
                (tr->vec_dot || quarry_matmul_uses_blas(&(struct quarry_matmul_opts){.table = table},
                                                        (enum quarry_type)t, 4096, 4096, MATMUL_M)))
                rc = bench_products(&b, table, (enum quarry_type)t, isa, 1);
        }
    }
    if (rc == 0 && (opts.ops & QUARRY_BENCH_MATVEC))
        rc = bench_membw(&b, "end");
done:
    quarry_matmul_ws_free(b.ws);
    for (int i = 0; i < b.n_threads; i++)
        quarry_threadpool_free(b.pools[i]);
    return rc;
}
