/*
 * test_q8_k.c - q8_K, the activation type of the K-quant dot products. The
 * shared kernel checks (tests/kernelcheck.h: ggml's golden bytes, every ISA
 * level against scalar; ggml has no dequantize or dot for q8_K, so those
 * goldens do not exist) plus the properties the K-quant dot products rely on:
 *   - bsums[j] is exactly the sum of quants 16j..16j+15, and every quant is
 *     in -127..127 with the value of largest magnitude at -127 (ggml scales
 *     by -127/max), for every data case and every level's quantizers;
 *   - each value comes back within half a quantization step;
 *   - integer data with max |x| = 127 round-trips exactly (scale +-1);
 *   - an all-zero super-block gives d = 0 and zero quants and bsums whatever
 *     the output buffer held.
 */
#include "tests/kernelcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TYPE QUARRY_TYPE_Q8_K

/* Checks the invariants of super-blocks y[0..nb) quantized from x. */
static void check_blocks(const float *x, const block_q8_K *y, int nb, const char *what)
{
    for (int b = 0; b < nb; b++) {
        const float *xb = x + (size_t)b * QK_K;
        int argmax = 0;
        for (int i = 1; i < QK_K; i++)
            if (fabsf(xb[i]) > fabsf(xb[argmax]))
                argmax = i;
        for (int j = 0; j < QK_K / 16; j++) {
            int sum = 0;
            for (int l = 0; l < 16; l++)
                sum += y[b].qs[16 * j + l];
            if (sum != y[b].bsums[j])
                fail_msg("%s block %d: bsums[%d] = %d, sum of its quants %d", what, b, j,
                         y[b].bsums[j], sum);
        }
        if (xb[argmax] == 0) {
            assert_true(y[b].d == 0);
            continue;
        }
        for (int i = 0; i < QK_K; i++) {
            if (y[b].qs[i] < -127)
                fail_msg("%s block %d: quant %d is %d", what, b, i, y[b].qs[i]);
            /* rounding to nearest: within half a step (plus float slack) */
            const double err = fabs((double)xb[i] - (double)y[b].d * y[b].qs[i]);
            if (!(err <= 0.5001 * fabs((double)y[b].d)))
                fail_msg("%s block %d: x[%d] = %g comes back as %g (step %g)", what, b, i,
                         xb[i], (double)y[b].d * y[b].qs[i], y[b].d);
        }
        if (y[b].qs[argmax] != -127)
            fail_msg("%s block %d: the largest-magnitude value quantizes to %d, not -127", what, b,
                     y[b].qs[argmax]);
    }
}

static void test_bsums_and_range(void **state)
{
    (void)state;
    const int nb = 5;
    const int n = nb * QK_K;
    struct quarry_type_traits tables[QUARRY_ISA_COUNT][QUARRY_TYPE_COUNT];
    const int levels = kc_build_levels(tables);
    float *x = malloc(n * sizeof *x);
    block_q8_K *y = malloc(nb * sizeof *y);
    assert_true(x && y);
    for (int c = 0; c < KC_CASE_COUNT; c++) {
        kc_fill_case((enum kc_case)c, 100 + (uint64_t)c, x, n);
        for (int lv = 0; lv < levels; lv++) {
            for (int fast = 0; fast < 2; fast++) {
                char what[96];
                snprintf(what, sizeof what, "q8_K %s, level %s, %s", kc_case_name((enum kc_case)c),
                         quarry_isa_name((enum quarry_isa)lv),
                         fast ? "from_float" : "from_float_ref");
                quarry_from_float_fn fn = fast ? tables[lv][TYPE].from_float
                                               : tables[lv][TYPE].from_float_ref;
                memset(y, 0x5A, nb * sizeof *y);
                fn(x, y, n);
                check_blocks(x, y, nb, what);
            }
        }
    }
    free(x), free(y);
}

static void test_integers_round_trip_exactly(void **state)
{
    (void)state;
    /* block 0 runs through -126..127, block 1 through -127..126 (53 and 29
     * are coprime to 254), so their largest magnitudes are +127 and -127 */
    float x[2 * QK_K];
    for (int i = 0; i < QK_K; i++) {
        x[i] = (float)((i * 53) % 254 - 126);
        x[QK_K + i] = (float)(126 - (i * 29) % 254);
    }
    block_q8_K y[2];
    float back[2 * QK_K];
    const struct quarry_type_traits *t = quarry_traits(TYPE);
    assert_non_null(t);
    t->from_float_ref(x, y, 2 * QK_K);
    assert_non_null(t->to_float);
    t->to_float(y, back, 2 * QK_K);
    assert_true(fabsf(y[0].d) == 1.0f && fabsf(y[1].d) == 1.0f);
    for (int i = 0; i < 2 * QK_K; i++)
        if (back[i] != x[i])
            fail_msg("q8_K integer x[%d] = %g comes back as %g", i, x[i], back[i]);
    check_blocks(x, y, 2, "q8_K integers");
}

static void test_zero_block(void **state)
{
    (void)state;
    /* block 0 all zero, block 1 not */
    float x[2 * QK_K];
    uint64_t rng = 3;
    for (int i = 0; i < QK_K; i++) {
        x[i] = 0.0f;
        x[QK_K + i] = tu_rand_normal(&rng);
    }
    struct quarry_type_traits tables[QUARRY_ISA_COUNT][QUARRY_TYPE_COUNT];
    const int levels = kc_build_levels(tables);
    for (int lv = 0; lv < levels; lv++) {
        for (int fast = 0; fast < 2; fast++) {
            block_q8_K y[2];
            memset(y, 0xAA, sizeof y);
            (fast ? tables[lv][TYPE].from_float : tables[lv][TYPE].from_float_ref)(x, y, 2 * QK_K);
            assert_true(y[0].d == 0);
            for (int i = 0; i < QK_K; i++)
                assert_int_equal(y[0].qs[i], 0);
            for (int j = 0; j < QK_K / 16; j++)
                assert_int_equal(y[0].bsums[j], 0);
            check_blocks(x, y, 2, "q8_K zero block");
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        KC_STANDARD_TESTS(TYPE),
        cmocka_unit_test(test_bsums_and_range),
        cmocka_unit_test(test_integers_round_trip_exactly),
        cmocka_unit_test(test_zero_block),
    };
    return TU_RUN_GROUP(tests);
}
