/*
 * kernelcheck_family.c - the checks a family of kernel suites shares (see
 * kernelcheck_family.h for what each asserts): the K-quant saturated-block,
 * dequantized-dot and output-buffer checks, the legacy quants' dot against
 * their dequantized rows, and the f16/bf16 exact dot and subnormal inputs.
 */
#include "tests/kernelcheck_family.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/fp16.h"

static const char *type_name(enum quarry_type t)
{
    const struct quarry_type_info *info = quarry_type_info((uint32_t)t);
    return info ? info->name : "?";
}

/* ---- K-quants -------------------------------------------------------------- */

/* An activation super-block with scale d and quants: all +127 (pattern 1),
 * all -127 (pattern -1), or (37*l) % 255 - 127, which runs through
 * -127..127 (pattern 0); with its bsums. Returns the sum of its quants. */
static int32_t make_q8_K(block_q8_K *y, float d, int pattern)
{
    int32_t total = 0;
    y->d = d;
    for (int j = 0; j < QK_K / 16; j++) {
        int sum = 0;
        for (int l = 0; l < 16; l++) {
            const int v = pattern != 0 ? 127 * pattern : (37 * (16 * j + l)) % 255 - 127;
            y->qs[16 * j + l] = (int8_t)v;
            sum += v;
        }
        y->bsums[j] = (int16_t)sum;
        total += sum;
    }
    return total;
}

/* Where a K-quant super-block keeps its fp16 d and, for the types whose
 * weights carry a per-sub-block min (w = d*sc*q - dmin*m), dmin; returns
 * whether it has one. */
static bool kquant_scale_fields(enum quarry_type type, size_t *d, size_t *dmin)
{
    switch (type) {
    case QUARRY_TYPE_Q2_K:
        *d = offsetof(block_q2_K, d), *dmin = offsetof(block_q2_K, dmin);
        return true;
    case QUARRY_TYPE_Q4_K:
        *d = offsetof(block_q4_K, d), *dmin = offsetof(block_q4_K, dmin);
        return true;
    case QUARRY_TYPE_Q5_K:
        *d = offsetof(block_q5_K, d), *dmin = offsetof(block_q5_K, dmin);
        return true;
    case QUARRY_TYPE_Q3_K:
        *d = offsetof(block_q3_K, d), *dmin = 0;
        return false;
    case QUARRY_TYPE_Q6_K:
        *d = offsetof(block_q6_K, d), *dmin = 0;
        return false;
    default:
        fail_msg("kernelcheck: %s is not a K-quant", type_name(type));
        return false;
    }
}

/* Stores v as fp16 at p and returns the stored value as a float. */
static float store_fp16(unsigned char *p, float v)
{
    const uint16_t h = quarry_fp32_to_fp16(v);
    memcpy(p, &h, sizeof h);
    return quarry_fp16_to_fp32(h);
}

void kc_check_kquant_saturated(const struct kc_kq_saturated_blocks *blocks)
{
    const enum quarry_type type = blocks->type;
    const struct kc_kq_case *cases = blocks->cases;
    enum { NB = 3 };
    const size_t block_bytes = kc_row_bytes(type, QK_K);
    unsigned char *x = malloc(NB * block_bytes);
    assert_non_null(x);
    block_q8_K y[NB];
    size_t d_at = 0, dmin_at = 0;
    const bool has_min = kquant_scale_fields(type, &d_at, &dmin_at);
    float expected = 0.0f;
    for (int b = 0; b < NB; b++) {
        unsigned char *block = x + b * block_bytes;
        for (int k = 0; k < 3; k++) {
            const struct kc_fill *f = &cases[b].fills[k];
            if (f->offset + f->size > block_bytes)
                fail_msg("%s saturated case %d: fill %d outside the block", type_name(type), b, k);
            memset(block + f->offset, f->byte, f->size);
        }
        struct kc_kq_saturated c = cases[b].decodes;
        /* the scales as stored */
        c.d = store_fp16(block + d_at, c.d);
        if (has_min)
            c.dmin = store_fp16(block + dmin_at, c.dmin);
        /* all +127, then the mixed pattern, then all -127 */
        const float yd = b == 1 ? 0.0123f : 0.5f / 127;
        const int32_t q8_total = make_q8_K(&y[b], yd, 1 - b);
        assert_true(q8_total != 0); /* so the integer sums are not trivially 0 */
        const int32_t isum = c.sc * c.q * q8_total;
        /* the documented fold (kernels/<type>.c) */
        const float d = y[b].d * c.d;
        if (has_min) {
            const int32_t isum_m = c.m * q8_total;
            const float dmin = y[b].d * c.dmin;
            expected += d * (float)isum - dmin * (float)isum_m;
        } else {
            expected += d * (float)isum;
        }
    }

    struct quarry_type_traits tables[QUARRY_ISA_COUNT][QUARRY_TYPE_COUNT];
    const int levels = kc_build_levels(tables);
    for (int lv = 0; lv < levels; lv++) {
        float got = NAN;
        tables[lv][type].vec_dot(NB * QK_K, &got, x, y);
        if (!kc_same_float(got, expected)) {
            free(x);
            fail_msg("%s saturated blocks, level %s: got %.9g, expected %.9g", type_name(type),
                     quarry_isa_name((enum quarry_isa)lv), got, expected);
        }
    }
    free(x);
}

void kc_check_kquant_dot_vs_dequantized(enum quarry_type type)
{
    const int lengths[] = {QK_K, 3 * QK_K, 16 * QK_K};
    struct quarry_type_traits tables[QUARRY_ISA_COUNT][QUARRY_TYPE_COUNT];
    const int levels = kc_build_levels(tables);
    uint64_t rng = 0x4b5f;
    double worst = 0;
    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
        const int n = lengths[li];
        float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
        void *qa = malloc(kc_row_bytes(type, n));
        void *qb = malloc(kc_row_bytes(QUARRY_TYPE_Q8_K, n));
        assert_true(a && b && qa && qb);
        for (int i = 0; i < n; i++) {
            a[i] = 0.05f * tu_rand_normal(&rng) + (i % 97 == 0 ? 1.0f : 0.0f);
            b[i] = tu_rand_normal(&rng);
        }
        tables[0][type].from_float_ref(a, qa, n);
        tables[0][QUARRY_TYPE_Q8_K].from_float_ref(b, qb, n);
        double abs_sum = 0;
        const double ref = kc_dequant_dot(type, qa, QUARRY_TYPE_Q8_K, qb, n, &abs_sum);
        assert_true(abs_sum > 0);
        for (int lv = 0; lv < levels; lv++) {
            float got = NAN;
            tables[lv][type].vec_dot(n, &got, qa, qb);
            /* Both sides compute the same sum; they differ only by float
             * rounding of the scales, products and partial sums (a few
             * ulps of the magnitude; measured below 3e-8). A mispaired
             * quant or scale is off by O(1). */
            if (fabs(got - ref) / abs_sum > worst)
                worst = fabs(got - ref) / abs_sum;
            if (!(fabs(got - ref) <= 1e-6 * abs_sum))
                fail_msg("%s n=%d level %s: vec_dot %.9g, dequantized dot %.9g (|x*y| sum %.6g)",
                         type_name(type), n, quarry_isa_name((enum quarry_isa)lv), got, ref,
                         abs_sum);
        }
        free(a), free(b), free(qa), free(qb);
    }
    printf("%s vec_dot vs dequantized dot: worst |diff| / magnitude = %.3g (bound 1e-6)\n",
           type_name(type), worst);
}

void kc_check_quantize_ignores_output_contents(enum quarry_type type)
{
    const int n = 4 * quarry_type_info((uint32_t)type)->block_size;
    struct quarry_type_traits tables[QUARRY_ISA_COUNT][QUARRY_TYPE_COUNT];
    const int levels = kc_build_levels(tables);
    const size_t bytes = kc_row_bytes(type, n);
    float *x = malloc(n * sizeof *x);
    unsigned char *q0 = malloc(bytes), *q1 = malloc(bytes);
    assert_true(x && q0 && q1);
    for (int c = 0; c < KC_CASE_COUNT; c++) {
        kc_fill_case((enum kc_case)c, 7 + (uint64_t)c, x, n);
        for (int lv = 0; lv < levels; lv++) {
            for (int fast = 0; fast < 2; fast++) {
                quarry_from_float_fn fn = fast ? tables[lv][type].from_float
                                               : tables[lv][type].from_float_ref;
                memset(q0, 0x00, bytes);
                memset(q1, 0xFF, bytes);
                fn(x, q0, n);
                fn(x, q1, n);
                if (memcmp(q0, q1, bytes) != 0)
                    fail_msg("%s %s, level %s, %s: output depends on the buffer's old contents",
                             type_name(type), kc_case_name((enum kc_case)c),
                             quarry_isa_name((enum quarry_isa)lv),
                             fast ? "from_float" : "from_float_ref");
            }
        }
    }
    free(x), free(q0), free(q1);
}

void kc_test_kquant_saturated(void **state)
{
    assert_non_null(*state);
    kc_check_kquant_saturated(*state);
}

void kc_test_kquant_dot_vs_dequantized(void **state)
{
    kc_check_kquant_dot_vs_dequantized(kc_state_type(state));
}

void kc_test_quantize_ignores_output_contents(void **state)
{
    kc_check_quantize_ignores_output_contents(kc_state_type(state));
}

/* ---- legacy quants --------------------------------------------------------- */

/* fp16 minimum m of block b of a q4_1 / q5_1 row. */
static uint16_t legacy_block_min(enum quarry_type type, const void *x, int b)
{
    if (type == QUARRY_TYPE_Q4_1)
        return ((const block_q4_1 *)x)[b].m;
    if (type == QUARRY_TYPE_Q5_1)
        return ((const block_q5_1 *)x)[b].m;
    fail_msg("kernelcheck: %s has no block minimum", type_name(type));
    return 0;
}

void kc_check_legacy_dot_vs_dequantized(enum quarry_type type)
{
    struct quarry_type_traits tab[QUARRY_TYPE_COUNT];
    assert_int_equal(quarry_traits_build(QUARRY_ISA_SCALAR, tab), 0);
    const enum quarry_type vdt = kc_expect(type).vec_dot_type;
    /* q4_1 / q5_1: w = d*c + m, applied through the activation's s = d*sum(q) */
    const bool with_min = vdt == QUARRY_TYPE_Q8_1;
    enum { N = 32 * 24, NB = N / 32 };
    float *x = malloc(N * sizeof *x), *a = malloc(N * sizeof *a);
    float *dx = malloc(N * sizeof *dx), *da = malloc(N * sizeof *da);
    void *qx = malloc(kc_row_bytes(type, N));
    void *qa = malloc(kc_row_bytes(vdt, N));
    assert_true(x && a && dx && da && qx && qa);
    for (int seed = 1; seed <= 8; seed++) {
        const enum kc_case xcase = with_min && seed % 2 == 0 ? KC_CASE_OFFSET : KC_CASE_NORMAL;
        kc_fill_case(xcase, (uint64_t)seed, x, N);
        kc_fill_case(KC_CASE_NORMAL, (uint64_t)seed + 100, a, N);
        tab[type].from_float_ref(x, qx, N);
        tab[vdt].from_float_ref(a, qa, N);
        double want = 0, mag = 0;
        if (with_min) {
            /* Per block, dot = d_x*d_y*sum(c*q) + m_x*s_y where
             * s_y = fp16(d_y*sum(q)): computed here in double from the
             * dequantized codes and the stored s. */
            const block_q8_1 *ya = qa;
            kc_dequantize(type, qx, dx, N);
            kc_dequantize(vdt, qa, da, N);
            for (int b = 0; b < NB; b++) {
                const double m = quarry_fp16_to_fp32(legacy_block_min(type, qx, b));
                for (int j = 0; j < 32; j++) {
                    want += ((double)dx[b * 32 + j] - m) * da[b * 32 + j];
                    mag += fabs(((double)dx[b * 32 + j] - m) * da[b * 32 + j]);
                }
                want += m * quarry_fp16_to_fp32(ya[b].s);
                mag += fabs(m * quarry_fp16_to_fp32(ya[b].s));
            }
        } else {
            want = kc_dequant_dot(type, qx, vdt, qa, N, &mag);
        }
        /* The integer-exact dot equals this up to float rounding of the
         * per-block terms and their running sum. */
        float s;
        tab[type].vec_dot(N, &s, qx, qa);
        if (!(fabs((double)s - want) <= 1e-6 * mag)) {
            free(x), free(a), free(dx), free(da), free(qx), free(qa);
            fail_msg("%s seed %d: vec_dot %.9g, dequantized dot %.9g (magnitude %.6g)",
                     type_name(type), seed, (double)s, want, mag);
        }
    }
    free(x), free(a), free(dx), free(da), free(qx), free(qa);
}

void kc_test_legacy_dot_vs_dequantized(void **state)
{
    kc_check_legacy_dot_vs_dequantized(kc_state_type(state));
}

/* ---- 16-bit floats --------------------------------------------------------- */

void kc_check_half_dot_exact(enum quarry_type type)
{
    struct quarry_type_traits tab[QUARRY_TYPE_COUNT];
    assert_int_equal(quarry_traits_build(QUARRY_ISA_SCALAR, tab), 0);
    enum { N = 37 };
    float x[N], y[N];
    uint16_t hx[N], hy[N];
    double want = 0;
    for (int i = 0; i < N; i++) {
        x[i] = (float)(i - 18) * 0.25f;
        y[i] = (float)(3 * i % 11 - 5);
        want += (double)x[i] * y[i];
    }
    tab[type].from_float_ref(x, hx, N);
    tab[type].from_float_ref(y, hy, N);
    float s;
    tab[type].vec_dot(N, &s, hx, hy);
    assert_true(s == (float)want);
}

void kc_check_half_subnormal_inputs(enum quarry_type type)
{
    struct quarry_type_traits tables[QUARRY_ISA_COUNT][QUARRY_TYPE_COUNT];
    const int levels = kc_build_levels(tables);
    enum { N = 77 };
    float x[N];
    uint16_t want[N], got[N];
    uint64_t rng = 99;
    for (int i = 0; i < N; i++) {
        /* random bits below the smallest normal float, either sign, with a
         * few normal neighbours and zeros mixed in */
        uint32_t bits = (uint32_t)(tu_rand_u64(&rng) & 0x007FFFFF);
        if (i % 11 == 5)
            bits |= 0x00800000; /* smallest binade of normals */
        if (i % 13 == 7)
            bits = 0;
        if (i % 2)
            bits |= 0x80000000;
        x[i] = quarry_f32_from_bits(bits);
    }
    tables[0][type].from_float_ref(x, want, N);
    for (int l = 0; l < levels; l++) {
        for (int n = 1; n <= N; n += (n < 40 ? 1 : 9)) {
            memset(got, 0xAB, sizeof got);
            tables[l][type].from_float(x, got, n);
            for (int i = 0; i < n; i++)
                if (got[i] != want[i])
                    fail_msg("%s %s from_float(n=%d): [%d] %a -> 0x%04x, reference 0x%04x",
                             quarry_isa_name((enum quarry_isa)l), type_name(type), n, i,
                             (double)x[i], got[i], want[i]);
            tables[l][type].from_float_ref(x, got, n);
            assert_memory_equal(got, want, sizeof(uint16_t) * (size_t)n);
        }
    }
}

void kc_test_half_dot_exact(void **state) { kc_check_half_dot_exact(kc_state_type(state)); }

void kc_test_half_subnormal_inputs(void **state)
{
    kc_check_half_subnormal_inputs(kc_state_type(state));
}
