/*
 * test_q2_k.c - q2_K kernels. The shared kernel checks (tests/kernelcheck.h):
 * ggml's golden bytes, floats and dots, every ISA level against scalar, and
 * ggml's test-quantize-fns round-trip thresholds. Plus what is particular to
 * the K-quant dot product:
 *   - saturated blocks (every quant, scale and min at its extreme) whose dot
 *     is known in closed form: the integer sums must be exact (no int16/int32
 *     overflow at any level) and the float result must equal, bit for bit, the
 *     fold documented in kernels/q2_k.c (what the SIMD levels must reproduce);
 *   - vec_dot against the double-precision dot of the dequantized operands on
 *     random multi-block rows (catches any quant/scale mispairing);
 *   - the quantizers do not depend on what the output buffer held before.
 */
#include "tests/kernelcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/fp16.h"

#define TYPE QUARRY_TYPE_Q2_K

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

/* A q2_K super-block filled with constant bytes, and what every weight of it
 * decodes to: a scale byte is scale | min << 4 for each of the 16 sub-blocks;
 * every 2-bit field of a qs byte 0xFF is 3, of 0x55 is 1. */
struct sat_case {
    uint8_t scales_fill, qs_fill;
    int sc, m, q;
    float d, dmin;
};

static void test_saturated_blocks_exact(void **state)
{
    (void)state;
    const struct sat_case cases[] = {
        {0xFF, 0xFF, 15, 15, 3, 0.5f, 0.25f},
        {0x0F, 0x55, 15, 0, 1, 3.0f, 1.5f},
        {0xF0, 0xFF, 0, 15, 3, 65504.0f, 2.0f},
    };
    const int nb = (int)(sizeof cases / sizeof cases[0]);
    block_q2_K x[3];
    block_q8_K y[3];
    float expected = 0.0f;
    for (int b = 0; b < nb; b++) {
        const struct sat_case *c = &cases[b];
        memset(x[b].scales, c->scales_fill, sizeof x[b].scales);
        memset(x[b].qs, c->qs_fill, sizeof x[b].qs);
        x[b].d = quarry_fp32_to_fp16(c->d);
        x[b].dmin = quarry_fp32_to_fp16(c->dmin);
        /* all +127, then the mixed pattern, then all -127 */
        const float yd = b == 1 ? 0.0123f : 0.5f / 127;
        const int32_t q8_total = make_q8_K(&y[b], yd, 1 - b);
        assert_true(q8_total != 0); /* so the integer sums are not trivially 0 */
        const int32_t isum = c->sc * c->q * q8_total;
        const int32_t isum_m = c->m * q8_total;
        /* the documented fold (kernels/q2_k.c) */
        const float d = y[b].d * quarry_fp16_to_fp32(x[b].d);
        const float dmin = y[b].d * quarry_fp16_to_fp32(x[b].dmin);
        expected += d * (float)isum - dmin * (float)isum_m;
    }

    struct quarry_type_traits tables[QUARRY_ISA_COUNT][QUARRY_TYPE_COUNT];
    const int levels = kc_build_levels(tables);
    for (int lv = 0; lv < levels; lv++) {
        float got = NAN;
        tables[lv][TYPE].vec_dot(nb * QK_K, &got, x, y);
        if (!kc_same_float(got, expected))
            fail_msg("q2_K saturated blocks, level %s: got %.9g, expected %.9g",
                     quarry_isa_name((enum quarry_isa)lv), got, expected);
    }
}

static void test_dot_matches_dequantized(void **state)
{
    (void)state;
    const int lengths[] = {QK_K, 3 * QK_K, 16 * QK_K};
    struct quarry_type_traits tables[QUARRY_ISA_COUNT][QUARRY_TYPE_COUNT];
    const int levels = kc_build_levels(tables);
    uint64_t rng = 0x4b5f;
    double worst = 0;
    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
        const int n = lengths[li];
        float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
        void *qa = malloc(kc_row_bytes(TYPE, n));
        void *qb = malloc(kc_row_bytes(QUARRY_TYPE_Q8_K, n));
        assert_true(a && b && qa && qb);
        for (int i = 0; i < n; i++) {
            a[i] = 0.05f * tu_rand_normal(&rng) + (i % 97 == 0 ? 1.0f : 0.0f);
            b[i] = tu_rand_normal(&rng);
        }
        tables[0][TYPE].from_float_ref(a, qa, n);
        tables[0][QUARRY_TYPE_Q8_K].from_float_ref(b, qb, n);
        double abs_sum = 0;
        const double ref = kc_dequant_dot(TYPE, qa, QUARRY_TYPE_Q8_K, qb, n, &abs_sum);
        assert_true(abs_sum > 0);
        for (int lv = 0; lv < levels; lv++) {
            float got = NAN;
            tables[lv][TYPE].vec_dot(n, &got, qa, qb);
            /* Both sides compute the same sum; they differ only by float
             * rounding of the scales, products and partial sums (a few
             * ulps of the magnitude; measured below 3e-8). A mispaired
             * quant or scale is off by O(1). */
            if (fabs(got - ref) / abs_sum > worst)
                worst = fabs(got - ref) / abs_sum;
            if (!(fabs(got - ref) <= 1e-6 * abs_sum))
                fail_msg("q2_K n=%d level %s: vec_dot %.9g, dequantized dot %.9g (|x*y| sum %.6g)",
                         n, quarry_isa_name((enum quarry_isa)lv), got, ref, abs_sum);
        }
        free(a), free(b), free(qa), free(qb);
    }
    printf("q2_K vec_dot vs dequantized dot: worst |diff| / magnitude = %.3g (bound 1e-6)\n",
           worst);
}

static void test_quantize_ignores_output_contents(void **state)
{
    (void)state;
    const int n = 4 * QK_K;
    struct quarry_type_traits tables[QUARRY_ISA_COUNT][QUARRY_TYPE_COUNT];
    const int levels = kc_build_levels(tables);
    const size_t bytes = kc_row_bytes(TYPE, n);
    float *x = malloc(n * sizeof *x);
    unsigned char *q0 = malloc(bytes), *q1 = malloc(bytes);
    assert_true(x && q0 && q1);
    for (int c = 0; c < KC_CASE_COUNT; c++) {
        kc_fill_case((enum kc_case)c, 7 + (uint64_t)c, x, n);
        for (int lv = 0; lv < levels; lv++) {
            for (int fast = 0; fast < 2; fast++) {
                quarry_from_float_fn fn = fast ? tables[lv][TYPE].from_float
                                               : tables[lv][TYPE].from_float_ref;
                memset(q0, 0x00, bytes);
                memset(q1, 0xFF, bytes);
                fn(x, q0, n);
                fn(x, q1, n);
                if (memcmp(q0, q1, bytes) != 0)
                    fail_msg("q2_K %s, level %s, %s: output depends on the buffer's old contents",
                             kc_case_name((enum kc_case)c), quarry_isa_name((enum quarry_isa)lv),
                             fast ? "from_float" : "from_float_ref");
            }
        }
    }
    free(x), free(q0), free(q1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        KC_STANDARD_TESTS(TYPE),
        cmocka_unit_test(test_saturated_blocks_exact),
        cmocka_unit_test(test_dot_matches_dequantized),
        cmocka_unit_test(test_quantize_ignores_output_contents),
    };
    return TU_RUN_GROUP(tests);
}
