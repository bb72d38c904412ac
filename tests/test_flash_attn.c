/*
 * test_flash_attn.c - CPU flash attention against the plain reference
 * (kernels/attn_ref.c, double precision, full score rows) across KV lengths
 * (1, 7, 64, 300: below, at and across the 64-key tile), GQA ratios (1, 2, 4,
 * 8), causal masks as a prompt, a decode step and a chunk see them, no mask,
 * and KV rows stored as F32, F16 (the cache default) and Q8_0. The tolerance
 * is test-backend-ops' NMSE 5e-4 for flash attention. Also: scores large
 * enough to overflow exp() without the running maximum, with a maximum that
 * grows from tile to tile; strided rows; tasks independent of order and of
 * scratch contents; argument errors. Every test runs the scalar tile kernel
 * and each SIMD one the CPU supports.
 */
#include "testutil.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/attn_ref.h"
#include "kernels/flash_attn.h"
#include "kernels/kernels.h"

#define NMSE_FLASH_ATTN 5e-4

/* Owns the buffers of one attention problem. */
struct problem {
    struct quarry_attn a;
    float *q, *out, *out_ref;
    void *k, *v;
    int32_t *pos;
    bool have_ref;
};

enum mask { MASK_NONE, MASK_PROMPT, MASK_DECODE, MASK_CHUNK };

/* Random q/k/v; k row j scaled by (1 + j * k_growth) so later keys can score
 * higher; q scaled by q_scale. */
static void problem_make(struct problem *p, int n_kv, int n_head, int n_head_kv, int hd,
                         enum quarry_type kv_type, enum mask mask, float q_scale, float k_growth,
                         int stride_pad, uint64_t *rng)
{
    memset(p, 0, sizeof *p);
    int n_q = n_kv;
    if (mask == MASK_NONE)
        n_q = 3;
    else if (mask == MASK_DECODE)
        n_q = 1;
    else if (mask == MASK_CHUNK)
        n_q = n_kv < 5 ? n_kv : 5;
    const int64_t q_stride = (int64_t)n_head * hd + stride_pad;
    const int kv_dim = n_head_kv * hd;
    const size_t row = quarry_row_size(kv_type, kv_dim) + (size_t)stride_pad * 4;
    p->q = malloc((size_t)n_q * q_stride * sizeof(float));
    p->out = malloc((size_t)n_q * q_stride * sizeof(float));
    p->out_ref = malloc((size_t)n_q * q_stride * sizeof(float));
    p->k = calloc((size_t)n_kv, row);
    p->v = calloc((size_t)n_kv, row);
    p->pos = malloc((size_t)n_q * sizeof(int32_t));
    float *tmp = malloc((size_t)kv_dim * sizeof(float));
    if (kv_type != QUARRY_TYPE_F32) /* the type's kernels must be registered */
        assert_non_null(quarry_traits(kv_type)->from_float_ref);
    assert_non_null(p->q && p->out && p->out_ref && p->k && p->v && p->pos && tmp);
    for (int64_t i = 0; i < n_q * q_stride; i++) {
        p->q[i] = q_scale * tu_rand_normal(rng);
        p->out[i] = p->out_ref[i] = 12345.0f; /* padding must stay untouched */
    }
    for (int kv = 0; kv < 2; kv++)
        for (int j = 0; j < n_kv; j++) {
            for (int d = 0; d < kv_dim; d++)
                tmp[d] = tu_rand_normal(rng) * (kv ? 1.0f : 1.0f + (float)j * k_growth);
            uint8_t *dst = (uint8_t *)(kv ? p->v : p->k) + (size_t)j * row;
            if (kv_type == QUARRY_TYPE_F32)
                memcpy(dst, tmp, (size_t)kv_dim * sizeof(float));
            else
                quarry_traits(kv_type)->from_float_ref(tmp, dst, kv_dim);
        }
    for (int t = 0; t < n_q; t++)
        p->pos[t] = n_kv - n_q + t;
    p->a = (struct quarry_attn){
        .n_q = n_q, .n_kv = n_kv, .n_head = n_head, .n_head_kv = n_head_kv, .head_dim = hd,
        .scale = 1.0f / sqrtf((float)hd), .q = p->q, .q_stride = q_stride, .kv_type = kv_type,
        .k = p->k, .k_stride = row, .v = p->v, .v_stride = row,
        .q_pos = mask == MASK_NONE ? NULL : p->pos, .out = p->out, .out_stride = q_stride};
    free(tmp);
}

static void problem_free(struct problem *p)
{
    free(p->q), free(p->out), free(p->out_ref), free(p->k), free(p->v), free(p->pos);
}

/* Runs flash and reference; returns the NMSE over the output rows and checks
 * the stride padding was not written. */
static double problem_run_isa(struct problem *p, enum quarry_isa isa)
{
    quarry_error err = {0};
    int rc = quarry_flash_attn_isa(&p->a, isa, &err);
    if (rc)
        print_error("flash: %s\n", err.msg);
    assert_int_equal(rc, 0);
    if (!p->have_ref) { /* the reference once per problem */
        struct quarry_attn r = p->a;
        r.out = p->out_ref;
        assert_int_equal(quarry_attn_ref(&r, &err), 0);
        p->have_ref = true;
    }
    const int width = p->a.n_head * p->a.head_dim;
    double num = 0, den = 0;
    for (int t = 0; t < p->a.n_q; t++) {
        const float *o = p->out + t * p->a.out_stride, *e = p->out_ref + t * p->a.out_stride;
        for (int i = 0; i < width; i++) {
            num += ((double)o[i] - e[i]) * ((double)o[i] - e[i]);
            den += (double)e[i] * e[i];
            assert_false(isnan(o[i]));
        }
        for (int i = width; i < p->a.out_stride; i++)
            assert_true(o[i] == 12345.0f);
    }
    return num / den;
}

static double problem_run(struct problem *p)
{
    return problem_run_isa(p, quarry_isa_chosen());
}

/* Every length x GQA ratio x mask, at every ISA level this CPU has. */
static void sweep(enum quarry_type kv_type, int hd)
{
    const int lengths[] = {1, 7, 64, 300};
    const int ratios[] = {1, 2, 4, 8};
    const enum mask masks[] = {MASK_NONE, MASK_PROMPT, MASK_DECODE, MASK_CHUNK};
    double worst[QUARRY_ISA_COUNT] = {0};
    uint64_t rng = 1000 + kv_type;
    for (size_t li = 0; li < 4; li++)
        for (size_t ri = 0; ri < 4; ri++)
            for (size_t mi = 0; mi < 4; mi++) {
                struct problem p;
                problem_make(&p, lengths[li], 2 * ratios[ri], 2, hd, kv_type, masks[mi], 1.0f,
                             0.0f, 0, &rng);
                for (int isa = 0; isa <= (int)quarry_isa_detected(); isa++) {
                    const double e = problem_run_isa(&p, (enum quarry_isa)isa);
                    if (!(e < NMSE_FLASH_ATTN))
                        print_error("%s %s hd %d n_kv %d ratio %d mask %d: nmse %g\n",
                                    quarry_isa_name((enum quarry_isa)isa),
                                    quarry_type_info(kv_type)->name, hd, lengths[li], ratios[ri],
                                    (int)masks[mi], e);
                    assert_true(e < NMSE_FLASH_ATTN);
                    if (e > worst[isa])
                        worst[isa] = e;
                }
                problem_free(&p);
            }
    for (int isa = 0; isa <= (int)quarry_isa_detected(); isa++)
        printf("  %-6s %s head_dim %d: worst NMSE %.3g\n", quarry_isa_name((enum quarry_isa)isa),
               quarry_type_info(kv_type)->name, hd, worst[isa]);
}

static void test_sweep_f32(void **state)
{
    (void)state;
    sweep(QUARRY_TYPE_F32, 64);
    sweep(QUARRY_TYPE_F32, 100); /* not a multiple of 16 or 32: masked vector tails */
    sweep(QUARRY_TYPE_F32, 128);
}

static void test_sweep_f16(void **state)
{
    (void)state;
    sweep(QUARRY_TYPE_F16, 64);
    sweep(QUARRY_TYPE_F16, 8); /* stories260K's head size */
}

static void test_sweep_q8_0(void **state)
{
    (void)state;
    sweep(QUARRY_TYPE_Q8_0, 64);
}

/* Scores around 100 (exp overflows float above ~88) whose maximum rises from
 * tile to tile: only a correct running maximum and rescaling survive. */
static void test_large_growing_scores(void **state)
{
    (void)state;
    uint64_t rng = 77;
    const enum mask masks[] = {MASK_NONE, MASK_PROMPT};
    for (int mi = 0; mi < 2; mi++) {
        struct problem p;
        problem_make(&p, 300, 8, 2, 64, QUARRY_TYPE_F32, masks[mi], 12.0f, 0.02f, 0, &rng);
        for (int isa = 0; isa <= (int)quarry_isa_detected(); isa++) {
            const double e = problem_run_isa(&p, (enum quarry_isa)isa);
            printf("  %-6s large scores, mask %d: NMSE %.3g\n",
                   quarry_isa_name((enum quarry_isa)isa), (int)masks[mi], e);
            assert_true(e < NMSE_FLASH_ATTN);
        }
        problem_free(&p);
    }
}

static void test_strided_rows(void **state)
{
    (void)state;
    uint64_t rng = 88;
    struct problem p;
    problem_make(&p, 130, 4, 2, 64, QUARRY_TYPE_F32, MASK_PROMPT, 1.0f, 0.0f, 24, &rng);
    assert_true(problem_run(&p) < NMSE_FLASH_ATTN);
    problem_free(&p);
}

/* Each task writes only its own rows and needs nothing from its scratch:
 * running tasks backwards with NaN-filled scratch gives the same bits. */
static void test_tasks_independent(void **state)
{
    (void)state;
    uint64_t rng = 99;
    struct problem p;
    problem_make(&p, 100, 8, 2, 64, QUARRY_TYPE_F32, MASK_PROMPT, 1.0f, 0.0f, 0, &rng);
    quarry_error err;
    assert_int_equal(quarry_flash_attn(&p.a, &err), 0);
    const size_t n_out = (size_t)p.a.n_q * p.a.out_stride;
    float *again = malloc(n_out * sizeof(float));
    const size_t n_scratch = quarry_flash_attn_scratch_floats(&p.a);
    float *scratch = malloc(n_scratch * sizeof(float));
    assert_non_null(again && scratch);
    struct quarry_attn b = p.a;
    b.out = again;
    const int tasks = quarry_flash_attn_tasks(&b);
    assert_true(tasks > 2);
    for (int t = tasks - 1; t >= 0; t--) {
        for (size_t i = 0; i < n_scratch; i++)
            scratch[i] = NAN;
        quarry_flash_attn_task(&b, t, scratch);
    }
    assert_memory_equal(again, p.out, n_out * sizeof(float));
    free(again), free(scratch);
    problem_free(&p);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    uint64_t rng = 5;
    struct problem p;
    problem_make(&p, 10, 6, 4, 8, QUARRY_TYPE_F32, MASK_PROMPT, 1.0f, 0.0f, 0, &rng);
    quarry_error err = {0};
    /* 6 query heads cannot share 4 KV heads */
    assert_int_equal(quarry_flash_attn(&p.a, &err), QUARRY_EINVAL);
    p.a.n_head = 8;
    p.a.q_stride = p.a.out_stride = 8 * 8; /* fits in the 6*8 + 0 rows? use fewer queries */
    p.a.n_q = 5;
    p.pos[2] = 10; /* past the last key */
    assert_int_equal(quarry_flash_attn(&p.a, &err), QUARRY_EINVAL);
    assert_non_null(strstr(err.msg, "position 10"));
    p.pos[2] = 2;
    p.a.kv_type = QUARRY_TYPE_Q8_0; /* 8 values per head: not whole 32-value blocks */
    assert_int_equal(quarry_attn_check(&p.a, &err), QUARRY_EUNSUPPORTED);
    assert_int_equal(quarry_attn_ref(&p.a, &err), QUARRY_EUNSUPPORTED);
    problem_free(&p);
}

/* The AVX-512 four-row tile kernel gives each row exactly what the
 * single-row kernel gives it: from a fresh state and from a state earlier
 * tiles left, for full and partial tiles and head sizes with masked tails. */
static void test_four_row_tile_kernel(void **state)
{
    (void)state;
    if (quarry_isa_detected() < QUARRY_ISA_AVX512) {
        print_message("  no AVX-512 on this CPU: the four-row kernel is not built for this level\n");
        return;
    }
    enum { T = QUARRY_FA_KV_TILE };
    const int head_dims[] = {8, 64, 100, 128};
    const int lengths[] = {1, 17, 50, 64};
    uint64_t rng = 77;
    for (size_t hi = 0; hi < 4; hi++)
        for (size_t ni = 0; ni < 4; ni++)
            for (int fresh = 0; fresh < 2; fresh++) {
                const int hd = head_dims[hi], n = lengths[ni];
                float *q = malloc(sizeof(float) * 4 * (size_t)hd);
                float *kt = malloc(sizeof(float) * (size_t)hd * T);
                float *v = malloc(sizeof(float) * (size_t)T * (size_t)hd);
                float *o1 = malloc(sizeof(float) * 4 * (size_t)hd);
                float *o4 = malloc(sizeof(float) * 4 * (size_t)hd);
                float scores1[T], scores4[4 * T];
                float m1[4], l1[4], m4[4], l4[4];
                assert_true(q && kt && v && o1 && o4);
                for (int i = 0; i < 4 * hd; i++)
                    q[i] = tu_rand_uniform(&rng) * 2.0f - 1.0f;
                for (int i = 0; i < hd * T; i++)
                    kt[i] = tu_rand_uniform(&rng) * 2.0f - 1.0f;
                for (int i = 0; i < T * hd; i++)
                    v[i] = tu_rand_uniform(&rng) * 2.0f - 1.0f;
                for (int r = 0; r < 4; r++) {
                    m1[r] = m4[r] = fresh ? -INFINITY : 0.5f * (float)r - 0.25f;
                    l1[r] = l4[r] = fresh ? 0.0f : 3.0f + (float)r;
                    for (int d = 0; d < hd; d++)
                        o1[r * hd + d] = o4[r * hd + d] = fresh ? 0.0f : tu_rand_uniform(&rng);
                }
                for (int r = 0; r < 4; r++)
                    quarry_fa_tile_avx512(q + r * hd, kt, v, n, hd, 0.125f, scores1, &m1[r], &l1[r],
                                          o1 + r * hd);
                quarry_fa_tile4_avx512(q, (size_t)hd, kt, v, n, hd, 0.125f, scores4, m4, l4, o4,
                                       (size_t)hd);
                if (memcmp(m1, m4, sizeof m1) != 0 || memcmp(l1, l4, sizeof l1) != 0 ||
                    memcmp(o1, o4, sizeof(float) * 4 * (size_t)hd) != 0)
                    fail_msg("four-row kernel differs from the single-row one (hd %d, n %d, %s)", hd,
                             n, fresh ? "fresh state" : "earlier state");
                free(q);
                free(kt);
                free(v);
                free(o1);
                free(o4);
            }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sweep_f32),
        cmocka_unit_test(test_sweep_f16),
        cmocka_unit_test(test_sweep_q8_0),
        cmocka_unit_test(test_large_growing_scores),
        cmocka_unit_test(test_strided_rows),
        cmocka_unit_test(test_tasks_independent),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_four_row_tile_kernel),
    };
    return TU_RUN_GROUP(tests);
}
