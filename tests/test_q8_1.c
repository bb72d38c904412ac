/*
 * test_q8_1.c - q8_1 kernels (an activation type: quantizer plus quarry's own
 * to_float): the standard kernel checks (tests/kernelcheck.h: ggml's golden
 * q8_1 bytes, every ISA level against scalar, test-quantize-fns error
 * bounds), a hand-worked block with its sum field, and agreement with q8_0,
 * whose quants and scale ggml computes the same way.
 */
#include "tests/kernelcheck.h"

#include <math.h>
#include <string.h>

#include "kernels/fp16.h"

/* amax = 127 gives d = 1: q = roundf(x) with ties away from zero, and
 * s = fp16(d * sum(q)) = sum(q). */
static void test_known_block(void **state)
{
    (void)state;
    struct quarry_type_traits tab[QUARRY_TYPE_COUNT];
    assert_int_equal(quarry_traits_build(QUARRY_ISA_SCALAR, tab), 0);
    float x[QK8_1];
    int8_t want[QK8_1];
    int sum = 0;
    for (int j = 0; j < QK8_1; j++) {
        const int k = j == 0 ? 127 : j * 3 - 40; /* -37 .. 53 */
        x[j] = j == 0 ? 127.0f : (float)k + (k < 0 ? -0.5f : 0.5f);
        want[j] = (int8_t)(j == 0 ? 127 : (k < 0 ? k - 1 : k + 1));
        sum += want[j];
    }
    block_q8_1 b;
    tab[QUARRY_TYPE_Q8_1].from_float_ref(x, &b, QK8_1);
    assert_int_equal(b.d, 0x3C00);
    assert_memory_equal(b.qs, want, QK8_1);
    assert_int_equal(b.s, quarry_fp32_to_fp16((float)sum));
    float y[QK8_1];
    tab[QUARRY_TYPE_Q8_1].to_float(&b, y, QK8_1);
    for (int j = 0; j < QK8_1; j++)
        assert_true(y[j] == (float)want[j]);
}

/* Same quants and scale as q8_0 for the same data, and s within fp16
 * rounding of d * sum(q) (the float d is known only as its fp16 here). */
static void test_agrees_with_q8_0(void **state)
{
    (void)state;
    struct quarry_type_traits tab[QUARRY_TYPE_COUNT];
    assert_int_equal(quarry_traits_build(QUARRY_ISA_SCALAR, tab), 0);
    enum { NB = 64, N = NB * 32 };
    float x[N];
    block_q8_1 a[NB];
    block_q8_0 b[NB];
    for (int c = 0; c < KC_CASE_COUNT; c++) {
        kc_fill_case((enum kc_case)c, 7, x, N);
        tab[QUARRY_TYPE_Q8_1].from_float_ref(x, a, N);
        tab[QUARRY_TYPE_Q8_0].from_float_ref(x, b, N);
        for (int i = 0; i < NB; i++) {
            assert_int_equal(a[i].d, b[i].d);
            assert_memory_equal(a[i].qs, b[i].qs, 32);
            int sum = 0;
            for (int j = 0; j < 32; j++)
                sum += a[i].qs[j];
            /* s = fp16(sum * d) against sum * fp16(d): each fp16 rounding is
             * off by at most half an ulp, 2^-11 relative or 2^-25 absolute
             * (subnormal spacing 2^-24) */
            const double s = quarry_fp16_to_fp32(a[i].s);
            const double d = quarry_fp16_to_fp32(a[i].d);
            if (isinf(d))
                continue; /* huge blocks: the fp16 scale overflowed */
            const double err_s = fmax(fabs(s) * 0x1p-11, 0x1p-25);
            const double err_d = fmax(d * 0x1p-11, 0x1p-25);
            assert_true(fabs(s - sum * d) <= err_s + fabs((double)sum) * err_d);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        KC_STANDARD_TESTS(QUARRY_TYPE_Q8_1),
        cmocka_unit_test(test_known_block),
        cmocka_unit_test(test_agrees_with_q8_0),
    };
    return TU_RUN_GROUP(tests);
}
