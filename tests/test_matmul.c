/*
 * test_matmul.c - Y = X . W^T (kernels/matmul.h) for every weight type the
 * traits table has a vec_dot for, at every ISA level this CPU runs.
 *
 * Checks per type, shape (n = 37 rows, k = a few blocks, m = 1, 3, 17, 70),
 * thread count (no pool, 2, 3) and tiling (automatic and forced tiny tiles):
 *   - NMSE against a double-precision product with the dequantized weights
 *     below 5e-4 (ggml test-backend-ops' threshold for mul_mat);
 *   - on the vec_dot and qgemm paths, every Y element bit-equal to one direct
 *     vec_dot(W row, quantized X row) call: each element computed exactly
 *     once, by the right pair, whatever the thread split and tiles;
 *   - the BLAS path (F32/F16/BF16; forced at every m) against the same
 *     reference, and the gemm (F32/F16/BF16 on AVX-512; automatic at m = 17
 *     and 70, forced at every m) against it within rounding (NMSE < 1e-10:
 *     a term missed or added twice shows).
 * The gemm is also run on shapes off every multiple of its tiles, panels,
 * K blocks and packing groups (several K blocks, tiny forced K blocks and
 * chunks, 1 to 3 threads), and on weights scaled over many binades.
 * The qgemm (quantized weights, AVX-512 VNNI; automatic from a few rows up)
 * is also forced at every m, run on rows long enough that every one of the
 * legacy fold's 16 sums takes several blocks, with partial strips (n % 16)
 * and tiles (m % 8), and on weights of random bytes (every code, sign and
 * packed-scale pattern the unpacking must handle), always bit-equal to
 * vec_dot. Path choice, the serial threshold (a small product never reaches
 * a worker thread) and one pool thread serving alone are checked too.
 * Y is filled with NaN first so an element never written fails the checks.
 * A test-local F32 table exercises the tiling even when no kernel file has
 * registered yet; error cases and scratch reuse are checked too.
 */
#include "tests/testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/fp16.h"
#include "kernels/kernels.h"
#include "kernels/matmul.h"

#define NMSE_MAX 5e-4
#define GEMM_NMSE_MAX 1e-10
#define N_ROWS 37

struct problem {
    enum quarry_type type;
    int64_t n, k, m;
    uint8_t *w;        /* n rows of the weight type */
    size_t w_row;
    float *x;          /* m x k */
    double *ref;       /* m x n, from dequantized weights */
    float *y;          /* m x n */
};

static int64_t k_for(const struct quarry_type_traits *tr)
{
    if (tr->block_size == 1)
        return 100; /* not a multiple of any SIMD width: exercises the tails */
    if (tr->block_size == 32)
        return 7 * 32;
    return 3 * (int64_t)tr->block_size;
}

/* Makes W (random, row 5 all zero) quantized with the reference quantizer and
 * the double-precision reference for m activation rows. 0 on success, or -1
 * when the table lacks what is needed (reported by the caller). */
static int make_problem(struct problem *p, const struct quarry_type_traits *table,
                        enum quarry_type type, int64_t n, int64_t k, int64_t m, uint64_t seed)
{
    const struct quarry_type_traits *tr = &table[type];
    memset(p, 0, sizeof *p);
    p->type = type;
    p->n = n;
    p->k = k;
    p->m = m;
    p->w_row = quarry_row_size(type, k);
    assert_true(p->w_row > 0);
    quarry_from_float_fn quant = tr->from_float_ref ? tr->from_float_ref : tr->from_float;
    if ((!quant || !tr->to_float) && type != QUARRY_TYPE_F32)
        return -1;
    float *wf = malloc((size_t)(n * k) * sizeof *wf);
    float *wd = malloc((size_t)(n * k) * sizeof *wd);
    p->w = malloc(p->w_row * (size_t)n);
    p->x = malloc((size_t)(m * k) * sizeof *p->x);
    p->ref = malloc((size_t)(m * n) * sizeof *p->ref);
    p->y = malloc((size_t)(m * n) * sizeof *p->y);
    assert_true(wf && wd && p->w && p->x && p->ref && p->y);
    uint64_t rng = seed;
    for (int64_t i = 0; i < n * k; i++)
        wf[i] = tu_rand_normal(&rng);
    for (int64_t i = 0; i < k && n > 5; i++)
        wf[5 * k + i] = 0.0f;
    for (int64_t i = 0; i < m * k; i++)
        p->x[i] = tu_rand_normal(&rng);
    for (int64_t j = 0; j < n; j++) {
        uint8_t *row = p->w + (size_t)j * p->w_row;
        if (quant)
            quant(wf + j * k, row, k);
        else
            memcpy(row, wf + j * k, p->w_row);
        if (tr->to_float)
            tr->to_float(row, wd + j * k, k);
        else
            memcpy(wd + j * k, row, p->w_row);
    }
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t c = 0; c < k; c++)
                s += (double)p->x[i * k + c] * (double)wd[j * k + c];
            p->ref[i * n + j] = s;
        }
    free(wf);
    free(wd);
    return 0;
}

static void free_problem(struct problem *p)
{
    free(p->w);
    free(p->x);
    free(p->ref);
    free(p->y);
}

static double nmse_vs_ref(const struct problem *p)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < p->m * p->n; i++) {
        const double d = (double)p->y[i] - p->ref[i];
        num += d * d;
        den += p->ref[i] * p->ref[i];
    }
    return den > 0 ? num / den : num;
}

/* Every element equals a direct vec_dot call on the same quantized row. */
static void check_exact_vec_dot(const struct problem *p, const struct quarry_type_traits *table,
                                const char *what)
{
    const struct quarry_type_traits *tr = &table[p->type];
    const enum quarry_type at = tr->vec_dot_type;
    const size_t xq_row = quarry_row_size(at, p->k);
    uint8_t *xq = malloc(xq_row);
    assert_non_null(xq);
    quarry_from_float_fn q = table[at].from_float ? table[at].from_float : table[at].from_float_ref;
    for (int64_t i = 0; i < p->m; i++) {
        const float *xrow = p->x + i * p->k;
        const void *act = xrow;
        if (at != QUARRY_TYPE_F32) {
            q(xrow, xq, p->k);
            act = xq;
        }
        for (int64_t j = 0; j < p->n; j++) {
            float s = NAN;
            tr->vec_dot((int)p->k, &s, p->w + (size_t)j * p->w_row, act);
            const float got = p->y[i * p->n + j];
            if (memcmp(&s, &got, sizeof s) != 0)
                fail_msg("%s: Y[%lld][%lld] = %.9g, direct vec_dot gives %.9g", what,
                         (long long)i, (long long)j, got, s);
        }
    }
    free(xq);
}

static void run_case(struct problem *p, const struct quarry_type_traits *table,
                     quarry_threadpool *pool, quarry_matmul_ws *ws,
                     const struct quarry_matmul_opts *opts, const char *what)
{
    for (int64_t i = 0; i < p->m * p->n; i++)
        p->y[i] = NAN;
    quarry_error err = {0};
    int rc = quarry_matmul_ex(opts, pool, ws, p->type, p->w, p->n, p->k, p->x, p->m, p->y, &err);
    if (rc != 0)
        fail_msg("%s: matmul returned %d (%s)", what, rc, err.msg);
    const double e = nmse_vs_ref(p);
    if (!(e < NMSE_MAX))
        fail_msg("%s: NMSE %.3g >= %.1g", what, e, NMSE_MAX);
    const enum quarry_matmul_path path = quarry_matmul_path(opts, p->type, p->n, p->k, p->m);
    /* the gemm sums float products of exact float weights: only rounding is
     * left, so a missed or doubled term (relative error ~ 1/k) shows */
    if (path == QUARRY_MATMUL_PATH_GEMM && !(e < GEMM_NMSE_MAX))
        fail_msg("%s: gemm NMSE %.3g >= %.1g", what, e, GEMM_NMSE_MAX);
    if (path == QUARRY_MATMUL_PATH_VEC_DOT || path == QUARRY_MATMUL_PATH_QGEMM)
        check_exact_vec_dot(p, table, what);
}

/* All shapes, pools and tilings for one type of one table. */
static void check_type(const struct quarry_type_traits *table, enum quarry_type type,
                       quarry_threadpool **pools, int n_pools, quarry_matmul_ws *ws,
                       const char *level, int *n_checked)
{
    static const int64_t ms[] = {1, 3, 17, 70};
    const struct quarry_type_traits *tr = &table[type];
    for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++) {
        struct problem p;
        if (make_problem(&p, table, type, N_ROWS, k_for(tr), ms[mi], 1234 + (uint64_t)type) != 0) {
            print_message("  %s/%s: no quantizer or dequantizer; skipped\n", tr->name, level);
            return;
        }
        for (int pi = 0; pi < n_pools; pi++) {
            const int nt = quarry_threadpool_size(pools[pi]);
            char what[128];
            struct quarry_matmul_opts auto_opts = {.table = table};
            snprintf(what, sizeof what, "%s/%s m=%lld t=%d auto", tr->name, level,
                     (long long)p.m, nt);
            run_case(&p, table, pools[pi], ws, &auto_opts, what);

            struct quarry_matmul_opts tiny = {.table = table, .blas = QUARRY_MATMUL_BLAS_NEVER,
                                              .rows_per_chunk = 5, .cols_per_tile = 2};
            snprintf(what, sizeof what, "%s/%s m=%lld t=%d tiny tiles", tr->name, level,
                     (long long)p.m, nt);
            run_case(&p, table, pools[pi], ws, &tiny, what);

            struct quarry_matmul_opts qgemm = {.table = table, .qgemm = QUARRY_MATMUL_QGEMM_ALWAYS};
            if (quarry_matmul_path(&qgemm, type, p.n, p.k, p.m) == QUARRY_MATMUL_PATH_QGEMM) {
                snprintf(what, sizeof what, "%s/%s m=%lld t=%d qgemm", tr->name, level,
                         (long long)p.m, nt);
                run_case(&p, table, pools[pi], ws, &qgemm, what);
                qgemm.rows_per_chunk = 5; /* rounded up to one strip per chunk */
                qgemm.cols_per_tile = 3;
                snprintf(what, sizeof what, "%s/%s m=%lld t=%d qgemm tiny tiles", tr->name,
                         level, (long long)p.m, nt);
                run_case(&p, table, pools[pi], ws, &qgemm, what);
            }

            struct quarry_matmul_opts gemm = {.table = table, .gemm = QUARRY_MATMUL_GEMM_ALWAYS};
            if (quarry_matmul_path(&gemm, type, p.n, p.k, p.m) == QUARRY_MATMUL_PATH_GEMM) {
                snprintf(what, sizeof what, "%s/%s m=%lld t=%d gemm", tr->name, level,
                         (long long)p.m, nt);
                run_case(&p, table, pools[pi], ws, &gemm, what);
            }

            struct quarry_matmul_opts blas = {.table = table, .blas = QUARRY_MATMUL_BLAS_ALWAYS,
                                              .gemm = QUARRY_MATMUL_GEMM_NEVER};
            if (quarry_matmul_uses_blas(&blas, type, p.n, p.k, p.m)) {
                snprintf(what, sizeof what, "%s/%s m=%lld t=%d BLAS", tr->name, level,
                         (long long)p.m, nt);
                run_case(&p, table, pools[pi], ws, &blas, what);
            }
            *n_checked += 1;
        }
        free_problem(&p);
    }
}

static void test_every_type_every_level(void **state)
{
    (void)state;
    quarry_threadpool *pools[3] = {NULL, NULL, NULL};
    quarry_error err;
    assert_int_equal(quarry_threadpool_new(2, &pools[1], &err), 0);
    assert_int_equal(quarry_threadpool_new(3, &pools[2], &err), 0);
    quarry_matmul_ws *ws = quarry_matmul_ws_new();
    assert_non_null(ws);
    static struct quarry_type_traits table[QUARRY_TYPE_COUNT];
    int n_checked = 0, n_types = 0;
    for (int level = 0; level <= (int)quarry_isa_detected(); level++) {
        assert_int_equal(quarry_traits_build((enum quarry_isa)level, table), 0);
        char present[512] = "";
        for (int t = 0; t < QUARRY_TYPE_COUNT; t++) {
            if (!table[t].name || !table[t].vec_dot)
                continue;
            if (level == 0)
                n_types++;
            strncat(present, " ", sizeof present - strlen(present) - 1);
            strncat(present, table[t].name, sizeof present - strlen(present) - 1);
            check_type(table, (enum quarry_type)t, pools, 3, ws,
                       quarry_isa_name((enum quarry_isa)level), &n_checked);
        }
        print_message("  %s: types with vec_dot:%s\n", quarry_isa_name((enum quarry_isa)level),
                      present[0] ? present : " (none yet)");
    }
    print_message("  %d types, %d (type, level, m, threads) combinations checked\n", n_types,
                  n_checked);
    quarry_matmul_ws_free(ws);
    quarry_threadpool_free(pools[1]);
    quarry_threadpool_free(pools[2]);
}

/* ---- a test-local F32 table: the tiling logic on its own ---------------- */

static void local_f32_dot(int n, float *s, const void *x, const void *y)
{
    const float *a = x, *b = y;
    double acc = 0; /* double: the reference check is then exact to rounding */
    for (int i = 0; i < n; i++)
        acc += (double)a[i] * (double)b[i];
    *s = (float)acc;
}

static void local_f32_copy(const void *x, float *y, int64_t n)
{
    memcpy(y, x, (size_t)n * sizeof *y);
}

static void test_tiling_with_local_table(void **state)
{
    (void)state;
    static struct quarry_type_traits table[QUARRY_TYPE_COUNT];
    memset(table, 0, sizeof table);
    table[QUARRY_TYPE_F32] = (struct quarry_type_traits){
        .name = "f32", .block_size = 1, .type_size = 4, .to_float = local_f32_copy,
        .vec_dot = local_f32_dot, .vec_dot_type = QUARRY_TYPE_F32};
    quarry_threadpool *pool;
    quarry_error err;
    assert_int_equal(quarry_threadpool_new(2, &pool, &err), 0);
    const int64_t shapes[][3] = {{37, 100, 1}, {37, 100, 70}, {1, 33, 5}, {301, 64, 9}, {5, 7, 130}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        struct problem p;
        assert_int_equal(make_problem(&p, table, QUARRY_TYPE_F32, shapes[s][0], shapes[s][1],
                                      shapes[s][2], 99 + s), 0);
        const int64_t chunks[] = {0, 1, 4, 1000};
        const int64_t tiles[] = {0, 1, 3, 1000};
        for (size_t c = 0; c < 4; c++)
            for (size_t t = 0; t < 4; t++) {
                struct quarry_matmul_opts o = {.table = table, .blas = QUARRY_MATMUL_BLAS_NEVER,
                                               .rows_per_chunk = chunks[c], .cols_per_tile = tiles[t]};
                char what[96];
                snprintf(what, sizeof what, "local f32 %lldx%lld m=%lld chunk=%lld tile=%lld",
                         (long long)p.n, (long long)p.k, (long long)p.m, (long long)chunks[c],
                         (long long)tiles[t]);
                run_case(&p, table, pool, NULL, &o, what);
                run_case(&p, table, NULL, NULL, &o, what);
            }
        struct quarry_matmul_opts b = {.table = table, .blas = QUARRY_MATMUL_BLAS_ALWAYS};
        run_case(&p, table, pool, NULL, &b, "local f32 BLAS");
        free_problem(&p);
    }
    quarry_threadpool_free(pool);
}

/* Automatic path choice: BLAS only for float weights and m, n, k >= the minimum. */
static void test_blas_choice(void **state)
{
    (void)state;
    static struct quarry_type_traits table[QUARRY_TYPE_COUNT];
    assert_int_equal(quarry_traits_build(QUARRY_ISA_SCALAR, table), 0);
    struct quarry_matmul_opts o = {.table = table};
    const int64_t b = QUARRY_MATMUL_BLAS_MIN;
    assert_true(quarry_matmul_uses_blas(&o, QUARRY_TYPE_F32, b, b, b));
    assert_false(quarry_matmul_uses_blas(&o, QUARRY_TYPE_F32, b, b, b - 1));
    assert_false(quarry_matmul_uses_blas(&o, QUARRY_TYPE_F32, b - 1, b, b));
    assert_false(quarry_matmul_uses_blas(&o, QUARRY_TYPE_Q4_0, 4096, 4096, 512));
    assert_false(quarry_matmul_uses_blas(&o, QUARRY_TYPE_Q4_K, 4096, 4096, 512));
    o.blas = QUARRY_MATMUL_BLAS_NEVER;
    assert_false(quarry_matmul_uses_blas(&o, QUARRY_TYPE_F32, 4096, 4096, 512));
    o.blas = QUARRY_MATMUL_BLAS_ALWAYS;
    assert_true(quarry_matmul_uses_blas(&o, QUARRY_TYPE_F32, 1, 1, 1));
    /* F16 goes through BLAS only once it can be converted to float */
    assert_int_equal(quarry_matmul_uses_blas(&o, QUARRY_TYPE_F16, 64, 64, 64),
                     table[QUARRY_TYPE_F16].to_float != NULL);
}

static void test_errors(void **state)
{
    (void)state;
    float x[64] = {0}, y[64];
    uint8_t w[256] = {0};
    quarry_error err = {0};
    /* k not a multiple of the block size */
    assert_int_equal(quarry_matmul(NULL, NULL, QUARRY_TYPE_Q4_0, w, 2, 20, x, 1, y, &err),
                     QUARRY_EINVAL);
    assert_int_equal(err.code, QUARRY_EINVAL);
    /* an id that is no type (4 was Q4_2) */
    assert_int_equal(quarry_matmul(NULL, NULL, (enum quarry_type)4, w, 2, 32, x, 1, y, &err),
                     QUARRY_EUNSUPPORTED);
    assert_int_equal(quarry_matmul(NULL, NULL, QUARRY_TYPE_F32, NULL, 2, 8, x, 1, y, &err),
                     QUARRY_EINVAL);
    assert_int_equal(quarry_matmul(NULL, NULL, QUARRY_TYPE_F32, w, -1, 8, x, 1, y, &err),
                     QUARRY_EINVAL);
    /* empty products do nothing and succeed */
    y[0] = 42.0f;
    assert_int_equal(quarry_matmul(NULL, NULL, QUARRY_TYPE_F32, w, 0, 8, x, 1, y, &err), 0);
    assert_int_equal(quarry_matmul(NULL, NULL, QUARRY_TYPE_F32, w, 2, 8, x, 0, y, &err), 0);
    assert_true(y[0] == 42.0f);
}

/* One workspace across growing and shrinking problems gives the same results
 * as fresh scratch. */
static void test_ws_reuse(void **state)
{
    (void)state;
    const struct quarry_type_traits *q = quarry_traits(QUARRY_TYPE_Q8_0);
    enum quarry_type type = q && q->vec_dot ? QUARRY_TYPE_Q8_0 : QUARRY_TYPE_F32;
    static struct quarry_type_traits table[QUARRY_TYPE_COUNT];
    assert_int_equal(quarry_traits_build(quarry_isa_chosen(), table), 0);
    if (!table[type].vec_dot) {
        print_message("  no vec_dot for %s yet: skipped\n", quarry_type_info(type)->name);
        return;
    }
    quarry_matmul_ws *ws = quarry_matmul_ws_new();
    assert_non_null(ws);
    const int64_t ms[] = {2, 40, 1, 17};
    for (size_t i = 0; i < 4; i++) {
        struct problem p;
        assert_int_equal(make_problem(&p, table, type, 19, 4 * 32, ms[i], 7 + i), 0);
        struct quarry_matmul_opts o = {.table = table, .blas = QUARRY_MATMUL_BLAS_NEVER};
        run_case(&p, table, NULL, ws, &o, "ws reuse");
        free_problem(&p);
    }
    quarry_matmul_ws_free(ws);
}

/* ---- the qgemm ------------------------------------------------------------ */

/* The table of the highest level, when the qgemm can run on this CPU. */
static int qgemm_table(struct quarry_type_traits *table)
{
    if (quarry_isa_detected() < QUARRY_ISA_AVX512)
        return 0;
    assert_int_equal(quarry_traits_build(QUARRY_ISA_AVX512, table), 0);
    return 1;
}

/* Long rows: every one of the legacy fold's 16 sums takes several blocks
 * (k = 37 blocks, 5 super-blocks), a partial last strip (n = 45) and tile
 * (m = 11), one and two threads. */
static void test_qgemm_long_rows(void **state)
{
    (void)state;
    static struct quarry_type_traits table[QUARRY_TYPE_COUNT];
    if (!qgemm_table(table)) {
        print_message("  no AVX-512 VNNI: qgemm not available, skipped\n");
        skip();
    }
    quarry_threadpool *pool;
    quarry_error err;
    assert_int_equal(quarry_threadpool_new(2, &pool, &err), 0);
    int n_types = 0;
    for (int t = 0; t < QUARRY_TYPE_COUNT; t++) {
        struct quarry_matmul_opts o = {.table = table, .qgemm = QUARRY_MATMUL_QGEMM_ALWAYS};
        const int64_t k = table[t].block_size == 32 ? 37 * 32 : 5 * 256;
        if (!table[t].name || table[t].block_size <= 1 ||
            quarry_matmul_path(&o, (enum quarry_type)t, 45, k, 11) != QUARRY_MATMUL_PATH_QGEMM)
            continue;
        struct problem p;
        assert_int_equal(make_problem(&p, table, (enum quarry_type)t, 45, k, 11, 77 + (uint64_t)t), 0);
        char what[96];
        snprintf(what, sizeof what, "%s qgemm long rows", table[t].name);
        run_case(&p, table, NULL, NULL, &o, what);
        run_case(&p, table, pool, NULL, &o, what);
        free_problem(&p);
        n_types++;
    }
    print_message("  %d types through the qgemm\n", n_types);
    assert_true(n_types >= 10);
    quarry_threadpool_free(pool);
}

/* Byte offsets of a block's fp16 fields (scales and mins), -1 terminated. */
static const int *fp16_fields(enum quarry_type t)
{
    static const int at0[] = {0, -1}, at01[] = {0, 2, -1}, q2k[] = {80, 82, -1},
                     q3k[] = {108, -1}, q6k[] = {208, -1};
    switch (t) {
    case QUARRY_TYPE_Q4_0:
    case QUARRY_TYPE_Q5_0:
    case QUARRY_TYPE_Q8_0: return at0;
    case QUARRY_TYPE_Q4_1:
    case QUARRY_TYPE_Q5_1:
    case QUARRY_TYPE_Q4_K:
    case QUARRY_TYPE_Q5_K: return at01;
    case QUARRY_TYPE_Q2_K: return q2k;
    case QUARRY_TYPE_Q3_K: return q3k;
    case QUARRY_TYPE_Q6_K: return q6k;
    default: return NULL;
    }
}

/* Weights of random bytes (finite random fp16 scales): every code, sign,
 * high-bit and packed-scale pattern, e.g. q8_0's -128 and q6_K's negative
 * scales, which the quantizers rarely or never write. The qgemm must still
 * give vec_dot's bits. */
static void test_qgemm_random_bytes(void **state)
{
    (void)state;
    static struct quarry_type_traits table[QUARRY_TYPE_COUNT];
    if (!qgemm_table(table)) {
        print_message("  no AVX-512 VNNI: qgemm not available, skipped\n");
        skip();
    }
    const int64_t n = 35, m = 9;
    for (int t = 0; t < QUARRY_TYPE_COUNT; t++) {
        const int *fields = fp16_fields((enum quarry_type)t);
        if (!fields || !table[t].vec_dot)
            continue;
        const int64_t k = table[t].block_size == 32 ? 19 * 32 : 3 * 256;
        struct quarry_matmul_opts o = {.table = table, .qgemm = QUARRY_MATMUL_QGEMM_ALWAYS};
        assert_int_equal(quarry_matmul_path(&o, (enum quarry_type)t, n, k, m),
                         QUARRY_MATMUL_PATH_QGEMM);
        struct problem p = {.type = (enum quarry_type)t, .n = n, .k = k, .m = m};
        p.w_row = quarry_row_size(p.type, k);
        p.w = malloc(p.w_row * (size_t)n);
        p.x = malloc((size_t)(m * k) * sizeof *p.x);
        p.y = malloc((size_t)(m * n) * sizeof *p.y);
        assert_true(p.w && p.x && p.y);
        uint64_t rng = 4242 + (uint64_t)t;
        for (size_t i = 0; i < p.w_row * (size_t)n; i++)
            p.w[i] = (uint8_t)(tu_rand_u64(&rng) >> 56);
        const size_t bs = table[t].type_size;
        for (size_t b = 0; b < p.w_row * (size_t)n / bs; b++)
            for (const int *f = fields; *f >= 0; f++) {
                const uint16_t h = quarry_fp32_to_fp16((tu_rand_uniform(&rng) - 0.5f) * 0.02f);
                memcpy(p.w + b * bs + (size_t)*f, &h, sizeof h);
            }
        for (int64_t i = 0; i < m * k; i++)
            p.x[i] = tu_rand_normal(&rng);
        for (int64_t i = 0; i < m * n; i++)
            p.y[i] = NAN;
        quarry_error err = {0};
        assert_int_equal(quarry_matmul_ex(&o, NULL, NULL, p.type, p.w, n, k, p.x, m, p.y, &err), 0);
        char what[64];
        snprintf(what, sizeof what, "%s qgemm random bytes", table[t].name);
        check_exact_vec_dot(&p, table, what);
        free(p.w), free(p.x), free(p.y);
    }
}

/* ---- the gemm (float weights, AVX-512) --------------------------------------- */

/* Shapes around the gemm's tiles (12 activation rows x 32 weight rows, K
 * blocks, 16-weight transposes, 64-weight packing groups): m, n, k on and
 * off multiples, k past one and several K blocks (default and forced tiny),
 * chunks of one strip to all of n; F32, F16, BF16; no pool, 1, 2 and 3
 * threads. Every element is written (Y starts as NaN) and within rounding of
 * the double-precision reference. */
static void test_gemm_shapes(void **state)
{
    (void)state;
    static struct quarry_type_traits table[QUARRY_TYPE_COUNT];
    if (!qgemm_table(table)) {
        print_message("  no AVX-512: the gemm is not available, skipped\n");
        skip();
    }
    quarry_threadpool *pools[4] = {NULL, NULL, NULL, NULL};
    quarry_error err;
    assert_int_equal(quarry_threadpool_new(1, &pools[1], &err), 0);
    assert_int_equal(quarry_threadpool_new(2, &pools[2], &err), 0);
    assert_int_equal(quarry_threadpool_new(3, &pools[3], &err), 0);
    quarry_matmul_ws *ws = quarry_matmul_ws_new();
    assert_non_null(ws);
    /* n, k, m */
    static const int64_t shapes[][3] = {
        {32, 64, 12},  {37, 100, 70}, {1, 1, 1},     {33, 17, 13},   {31, 1300, 25},
        {64, 2100, 37}, {100, 513, 11}, {300, 48, 130}, {45, 1025, 24}, {16, 65, 1},
    };
    static const int64_t k_blocks[] = {0, 16, 37};
    static const int64_t chunks[] = {0, 5, 64, 1000};
    const enum quarry_type types[] = {QUARRY_TYPE_F32, QUARRY_TYPE_F16, QUARRY_TYPE_BF16};
    int n_cases = 0;
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++)
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            const int64_t n = shapes[si][0], k = shapes[si][1], m = shapes[si][2];
            struct problem p;
            assert_int_equal(make_problem(&p, table, types[ti], n, k, m, 300 + si), 0);
            for (size_t kb = 0; kb < sizeof k_blocks / sizeof k_blocks[0]; kb++)
                for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++)
                    for (int pi = 0; pi < 4; pi++) {
                        struct quarry_matmul_opts o = {.table = table,
                                                       .gemm = QUARRY_MATMUL_GEMM_ALWAYS,
                                                       .k_block = k_blocks[kb],
                                                       .rows_per_chunk = chunks[c]};
                        assert_int_equal(quarry_matmul_path(&o, types[ti], n, k, m),
                                         QUARRY_MATMUL_PATH_GEMM);
                        char what[128];
                        snprintf(what, sizeof what,
                                 "%s gemm n=%lld k=%lld m=%lld kc=%lld chunk=%lld t=%d",
                                 table[types[ti]].name, (long long)n, (long long)k,
                                 (long long)m, (long long)k_blocks[kb], (long long)chunks[c],
                                 quarry_threadpool_size(pools[pi]));
                        run_case(&p, table, pools[pi], pi == 3 ? NULL : ws, &o, what);
                        n_cases++;
                    }
            free_problem(&p);
        }
    print_message("  %d gemm products checked\n", n_cases);
    quarry_matmul_ws_free(ws);
    for (int pi = 1; pi < 4; pi++)
        quarry_threadpool_free(pools[pi]);
}

/* Weights and activations of every magnitude and sign the float types hold
 * (F16 subnormals, BF16 exponents far outside F16's range), large products
 * (the automatic path, 2 threads, several K blocks and chunks): the gemm
 * against the reference. */
static void test_gemm_large(void **state)
{
    (void)state;
    static struct quarry_type_traits table[QUARRY_TYPE_COUNT];
    if (!qgemm_table(table)) {
        print_message("  no AVX-512: the gemm is not available, skipped\n");
        skip();
    }
    quarry_threadpool *pool;
    quarry_error err;
    assert_int_equal(quarry_threadpool_new(2, &pool, &err), 0);
    const enum quarry_type types[] = {QUARRY_TYPE_F32, QUARRY_TYPE_F16, QUARRY_TYPE_BF16};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const enum quarry_type t = types[ti];
        struct problem p;
        assert_int_equal(make_problem(&p, table, t, 333, 1500, 77, 900 + ti), 0);
        /* rescale W rows over many binades (re-quantized, reference redone) */
        const struct quarry_type_traits *tr = &table[t];
        float *row = malloc((size_t)p.k * sizeof *row);
        assert_non_null(row);
        for (int64_t j = 0; j < p.n; j++) {
            const float scale = t == QUARRY_TYPE_BF16 ? ldexpf(1.0f, (int)(j % 41) - 20)
                                                      : ldexpf(1.0f, (int)(j % 23) - 16);
            uint8_t *wrow = p.w + (size_t)j * p.w_row;
            if (tr->to_float)
                tr->to_float(wrow, row, p.k);
            else
                memcpy(row, wrow, p.w_row);
            for (int64_t c = 0; c < p.k; c++)
                row[c] *= scale;
            if (t == QUARRY_TYPE_F32)
                memcpy(wrow, row, p.w_row);
            else
                (tr->from_float_ref ? tr->from_float_ref : tr->from_float)(row, wrow, p.k);
            if (tr->to_float)
                tr->to_float(wrow, row, p.k);
            for (int64_t i = 0; i < p.m; i++) {
                double sum = 0;
                for (int64_t c = 0; c < p.k; c++)
                    sum += (double)p.x[i * p.k + c] * (double)row[c];
                p.ref[i * p.n + j] = sum;
            }
        }
        free(row);
        struct quarry_matmul_opts o = {.table = table};
        assert_int_equal(quarry_matmul_path(&o, t, p.n, p.k, p.m), QUARRY_MATMUL_PATH_GEMM);
        char what[64];
        snprintf(what, sizeof what, "%s gemm 333x1500 m=77 scaled rows", tr->name);
        run_case(&p, table, pool, NULL, &o, what);
        run_case(&p, table, NULL, NULL, &o, what);
        free_problem(&p);
    }
    quarry_threadpool_free(pool);
}

/* Which path a product takes. */
static void test_path_choice(void **state)
{
    (void)state;
    static struct quarry_type_traits scalar[QUARRY_TYPE_COUNT], top[QUARRY_TYPE_COUNT];
    assert_int_equal(quarry_traits_build(QUARRY_ISA_SCALAR, scalar), 0);
    assert_int_equal(quarry_traits_build(quarry_isa_detected(), top), 0);
    const int vnni = quarry_isa_detected() >= QUARRY_ISA_AVX512;
    const enum quarry_type quants[] = {QUARRY_TYPE_Q4_0, QUARRY_TYPE_Q4_1, QUARRY_TYPE_Q5_0,
                                       QUARRY_TYPE_Q5_1, QUARRY_TYPE_Q8_0, QUARRY_TYPE_Q2_K,
                                       QUARRY_TYPE_Q3_K, QUARRY_TYPE_Q4_K, QUARRY_TYPE_Q5_K,
                                       QUARRY_TYPE_Q6_K};
    for (size_t i = 0; i < sizeof quants / sizeof quants[0]; i++) {
        const enum quarry_type t = quants[i];
        const int64_t min_m = quarry_matmul_qgemm_min_m(t);
        assert_true(min_m >= 2 && min_m <= 16);
        struct quarry_matmul_opts o = {.table = top};
        /* decoding (m = 1) stays on vec_dot; from min_m on, the qgemm */
        assert_int_equal(quarry_matmul_path(&o, t, 4096, 4096, 1), QUARRY_MATMUL_PATH_VEC_DOT);
        assert_int_equal(quarry_matmul_path(&o, t, 4096, 4096, min_m - 1),
                         QUARRY_MATMUL_PATH_VEC_DOT);
        assert_int_equal(quarry_matmul_path(&o, t, 4096, 4096, min_m),
                         vnni ? QUARRY_MATMUL_PATH_QGEMM : QUARRY_MATMUL_PATH_VEC_DOT);
        assert_int_equal(quarry_matmul_path(&o, t, 4096, 4096, 512),
                         vnni ? QUARRY_MATMUL_PATH_QGEMM : QUARRY_MATMUL_PATH_VEC_DOT);
        o.qgemm = QUARRY_MATMUL_QGEMM_NEVER;
        assert_int_equal(quarry_matmul_path(&o, t, 4096, 4096, 512), QUARRY_MATMUL_PATH_VEC_DOT);
        o.qgemm = QUARRY_MATMUL_QGEMM_ALWAYS;
        assert_int_equal(quarry_matmul_path(&o, t, 4096, 4096, 1),
                         vnni ? QUARRY_MATMUL_PATH_QGEMM : QUARRY_MATMUL_PATH_VEC_DOT);
        /* a table of a lower level keeps to its level */
        struct quarry_matmul_opts s = {.table = scalar, .qgemm = QUARRY_MATMUL_QGEMM_ALWAYS};
        assert_int_equal(quarry_matmul_path(&s, t, 4096, 4096, 512), QUARRY_MATMUL_PATH_VEC_DOT);
    }
    /* float weights: the gemm (AVX-512), BLAS or vec_dot, never the qgemm */
    assert_int_equal(quarry_matmul_qgemm_min_m(QUARRY_TYPE_F16), INT64_MAX);
    const enum quarry_matmul_path big = vnni ? QUARRY_MATMUL_PATH_GEMM : QUARRY_MATMUL_PATH_BLAS;
    const enum quarry_type floats[] = {QUARRY_TYPE_F32, QUARRY_TYPE_F16, QUARRY_TYPE_BF16};
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
        const enum quarry_type t = floats[i];
        /* the smallest m, n, k taken automatically */
        const int64_t b = vnni ? QUARRY_MATMUL_GEMM_MIN : QUARRY_MATMUL_BLAS_MIN;
        struct quarry_matmul_opts o = {.table = top, .qgemm = QUARRY_MATMUL_QGEMM_ALWAYS};
        assert_int_equal(quarry_matmul_path(&o, t, 64, 64, 64), big);
        assert_int_equal(quarry_matmul_path(&o, t, 2048, 2048, 512), big);
        assert_int_equal(quarry_matmul_path(&o, t, b, b, b), big);
        assert_int_equal(quarry_matmul_path(&o, t, 64, 64, 1), QUARRY_MATMUL_PATH_VEC_DOT);
        assert_int_equal(quarry_matmul_path(&o, t, 64, 64, b - 1), QUARRY_MATMUL_PATH_VEC_DOT);
        assert_int_equal(quarry_matmul_path(&o, t, b - 1, 64, 64), QUARRY_MATMUL_PATH_VEC_DOT);
        assert_int_equal(quarry_matmul_path(&o, t, 64, b - 1, 64), QUARRY_MATMUL_PATH_VEC_DOT);
        /* the gemm switched off: BLAS as before, from QUARRY_MATMUL_BLAS_MIN */
        o.gemm = QUARRY_MATMUL_GEMM_NEVER;
        assert_int_equal(quarry_matmul_path(&o, t, 64, 64, 64), QUARRY_MATMUL_PATH_BLAS);
        assert_int_equal(quarry_matmul_path(&o, t, 64, 64, QUARRY_MATMUL_BLAS_MIN - 1),
                         QUARRY_MATMUL_PATH_VEC_DOT);
        /* forced: the gemm at any m where the CPU has it, over any blas setting */
        o.gemm = QUARRY_MATMUL_GEMM_ALWAYS;
        o.blas = QUARRY_MATMUL_BLAS_NEVER;
        assert_int_equal(quarry_matmul_path(&o, t, 64, 64, 1),
                         vnni ? QUARRY_MATMUL_PATH_GEMM : QUARRY_MATMUL_PATH_VEC_DOT);
        /* BLAS forced still gets BLAS; BLAS_NEVER still means vec_dot */
        struct quarry_matmul_opts ob = {.table = top, .blas = QUARRY_MATMUL_BLAS_ALWAYS};
        assert_int_equal(quarry_matmul_path(&ob, t, 64, 64, 64), QUARRY_MATMUL_PATH_BLAS);
        assert_int_equal(quarry_matmul_path(&ob, t, 64, 64, 1), QUARRY_MATMUL_PATH_BLAS);
        ob.blas = QUARRY_MATMUL_BLAS_NEVER;
        assert_int_equal(quarry_matmul_path(&ob, t, 64, 64, 64), QUARRY_MATMUL_PATH_VEC_DOT);
        /* a table of a lower level keeps to its level: BLAS */
        struct quarry_matmul_opts s = {.table = scalar, .gemm = QUARRY_MATMUL_GEMM_ALWAYS};
        assert_int_equal(quarry_matmul_path(&s, t, 64, 64, 64), QUARRY_MATMUL_PATH_BLAS);
    }
    /* quantized weights never take the gemm */
    struct quarry_matmul_opts og = {.table = top, .gemm = QUARRY_MATMUL_GEMM_ALWAYS};
    assert_true(quarry_matmul_path(&og, QUARRY_TYPE_Q4_0, 4096, 4096, 512) !=
                QUARRY_MATMUL_PATH_GEMM);
    assert_string_equal(quarry_matmul_path_name(QUARRY_MATMUL_PATH_GEMM), "gemm");
    assert_string_equal(quarry_matmul_path_name(QUARRY_MATMUL_PATH_QGEMM), "qgemm");
    assert_string_equal(quarry_matmul_path_name(QUARRY_MATMUL_PATH_BLAS), "blas");
    assert_string_equal(quarry_matmul_path_name(QUARRY_MATMUL_PATH_VEC_DOT), "vec_dot");
}

/* ---- threads ------------------------------------------------------------- */

/* A test-local F32 kernel that counts the calls made off the main thread. */
static pthread_t main_thread;
static atomic_int off_main_calls;

static void counting_f32_dot(int n, float *s, const void *x, const void *y)
{
    if (!pthread_equal(pthread_self(), main_thread))
        atomic_fetch_add(&off_main_calls, 1);
    local_f32_dot(n, s, x, y);
}

/* Products below QUARRY_MATMUL_SERIAL_BYTES (weight bytes x rows) run on
 * the calling thread only, pool or not; opts.serial forces that at any size. */
static void test_small_products_stay_serial(void **state)
{
    (void)state;
    static struct quarry_type_traits table[QUARRY_TYPE_COUNT];
    memset(table, 0, sizeof table);
    table[QUARRY_TYPE_F32] = (struct quarry_type_traits){
        .name = "f32", .block_size = 1, .type_size = 4, .to_float = local_f32_copy,
        .vec_dot = counting_f32_dot, .vec_dot_type = QUARRY_TYPE_F32};
    main_thread = pthread_self();
    quarry_threadpool *pool;
    quarry_error err;
    assert_int_equal(quarry_threadpool_new(2, &pool, &err), 0);
    /* stories260K's shapes: 64 x 64, 172 x 64 and 512 x 64 F32, one token */
    const int64_t shapes[][3] = {{64, 64, 1}, {172, 64, 1}, {64, 172, 1}, {64, 64, 3}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int64_t n = shapes[i][0], k = shapes[i][1], m = shapes[i][2];
        assert_true((double)n * k * 4 * m < QUARRY_MATMUL_SERIAL_BYTES);
        struct problem p;
        assert_int_equal(make_problem(&p, table, QUARRY_TYPE_F32, n, k, m, 5 + i), 0);
        struct quarry_matmul_opts o = {.table = table, .blas = QUARRY_MATMUL_BLAS_NEVER};
        atomic_store(&off_main_calls, 0);
        for (int rep = 0; rep < 20; rep++)
            run_case(&p, table, pool, NULL, &o, "small product");
        assert_int_equal(atomic_load(&off_main_calls), 0);
        free_problem(&p);
    }
    /* a large product with serial forced */
    struct problem p;
    assert_int_equal(make_problem(&p, table, QUARRY_TYPE_F32, 300, 512, 2, 11), 0);
    assert_true((double)300 * 512 * 4 * 2 >= QUARRY_MATMUL_SERIAL_BYTES);
    struct quarry_matmul_opts o = {.table = table, .blas = QUARRY_MATMUL_BLAS_NEVER, .serial = 1};
    atomic_store(&off_main_calls, 0);
    run_case(&p, table, pool, NULL, &o, "serial forced");
    assert_int_equal(atomic_load(&off_main_calls), 0);
    free_problem(&p);
    quarry_threadpool_free(pool);
}

/* quarry_matmul_shared_ex gives, bit for bit, what separate calls give and
 * what direct vec_dot calls give: for parts of one type (the shared vec_dot
 * path in decoding, the separate paths from the qgemm's m on) and of mixed
 * types, on 1 to 3 threads, with rows that make the chunks cross part
 * boundaries; and it refuses 0 or too many parts. */
static void test_shared_products(void **state)
{
    (void)state;
    static struct quarry_type_traits table[QUARRY_TYPE_COUNT];
    assert_int_equal(quarry_traits_build(quarry_isa_detected(), table), 0);
    quarry_threadpool *pools[3] = {NULL, NULL, NULL};
    quarry_error err;
    assert_int_equal(quarry_threadpool_new(2, &pools[1], &err), 0);
    assert_int_equal(quarry_threadpool_new(3, &pools[2], &err), 0);
    quarry_matmul_ws *ws = quarry_matmul_ws_new();
    assert_non_null(ws);
    const enum quarry_type types[] = {QUARRY_TYPE_Q4_0, QUARRY_TYPE_Q8_0, QUARRY_TYPE_Q5_1,
                                      QUARRY_TYPE_Q4_K, QUARRY_TYPE_Q6_K, QUARRY_TYPE_F16,
                                      QUARRY_TYPE_F32};
    const int64_t rows[3] = {700, 37, 3000};
    const int64_t ms[] = {1, 2, 5};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++)
        for (int mixed = 0; mixed < 2; mixed++)
            for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++) {
                /* mixed: the middle part of another type with the same
                 * activations where there is one (q4_0 / q8_0, q4_K / q6_K:
                 * still one shared product), q8_0 beside q5_1 and the floats */
                const enum quarry_type t = types[ti];
                enum quarry_type other = QUARRY_TYPE_Q8_0;
                if (t == QUARRY_TYPE_Q8_0)
                    other = QUARRY_TYPE_Q4_0;
                else if (t == QUARRY_TYPE_Q4_K)
                    other = QUARRY_TYPE_Q6_K;
                else if (t == QUARRY_TYPE_Q6_K)
                    other = QUARRY_TYPE_Q4_K;
                const int64_t k = 2 * 256;
                struct problem p[3];
                for (int i = 0; i < 3; i++)
                    assert_int_equal(make_problem(&p[i], table, mixed && i == 1 ? other : t, rows[i],
                                                  k, ms[mi], 40 + (uint64_t)i), 0);
                for (int pi = 0; pi < 3; pi++) {
                    struct quarry_matmul_opts o = {.table = table};
                    struct quarry_matmul_part parts[3];
                    float *separate[3];
                    for (int i = 0; i < 3; i++) {
                        separate[i] = malloc(sizeof(float) * (size_t)(p[i].n * p[i].m));
                        assert_non_null(separate[i]);
                        assert_int_equal(quarry_matmul_ex(&o, pools[pi], ws, p[i].type, p[i].w, p[i].n,
                                                          k, p[0].x, p[i].m, separate[i], &err), 0);
                        for (int64_t j = 0; j < p[i].n * p[i].m; j++)
                            p[i].y[j] = NAN;
                        parts[i] = (struct quarry_matmul_part){
                            .type = p[i].type, .w = p[i].w, .n = p[i].n, .y = p[i].y};
                    }
                    assert_int_equal(
                        quarry_matmul_shared_ex(&o, pools[pi], ws, parts, 3, k, p[0].x, p[0].m, &err), 0);
                    for (int i = 0; i < 3; i++) {
                        char what[96];
                        snprintf(what, sizeof what, "%s%s m=%lld t=%d part %d", table[t].name,
                                 mixed ? " mixed" : "", (long long)p[0].m,
                                 pools[pi] ? quarry_threadpool_size(pools[pi]) : 1, i);
                        if (memcmp(separate[i], p[i].y, sizeof(float) * (size_t)(p[i].n * p[i].m)) != 0)
                            fail_msg("%s: differs from its separate product", what);
                        free(separate[i]);
                        float *own_x = p[i].x; /* the shared X for the direct check */
                        p[i].x = p[0].x;
                        check_exact_vec_dot(&p[i], table, what);
                        p[i].x = own_x;
                    }
                }
                for (int i = 0; i < 3; i++)
                    free_problem(&p[i]);
            }
    struct quarry_matmul_part none[QUARRY_MATMUL_MAX_PARTS + 1] = {{0}};
    float x[32] = {0};
    assert_int_equal(quarry_matmul_shared_ex(NULL, NULL, ws, none, 0, 32, x, 1, &err), QUARRY_EINVAL);
    assert_int_equal(quarry_matmul_shared_ex(NULL, NULL, ws, none, QUARRY_MATMUL_MAX_PARTS + 1, 32, x,
                                             1, &err),
                     QUARRY_EINVAL);
    quarry_matmul_ws_free(ws);
    quarry_threadpool_free(pools[1]);
    quarry_threadpool_free(pools[2]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_type_every_level),
        cmocka_unit_test(test_tiling_with_local_table),
        cmocka_unit_test(test_blas_choice),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_ws_reuse),
        cmocka_unit_test(test_qgemm_long_rows),
        cmocka_unit_test(test_qgemm_random_bytes),
        cmocka_unit_test(test_gemm_shapes),
        cmocka_unit_test(test_gemm_large),
        cmocka_unit_test(test_path_choice),
        cmocka_unit_test(test_small_products_stay_serial),
        cmocka_unit_test(test_shared_products),
    };
    return TU_RUN_GROUP(tests);
}
