/*
 * test_q4_0.c - q4_0 kernels: the standard kernel checks (tests/kernelcheck.h:
 * ggml golden data, every ISA level against scalar, test-quantize-fns error
 * bounds), a block worked out by hand, and (tests/kernelcheck_family.h)
 * vec_dot against the exact dot product of the dequantized rows.
 */
#include "tests/kernelcheck_family.h"

#include <math.h>
#include <string.h>

#include "kernels/fp16.h"

/* x_j = (j - 16) / 2: the largest magnitude is x_0 = -8, so d = -8 / -8 = 1
 * and code c_j = min(15, trunc(x_j + 8.5)) = min(15, trunc((j + 1) / 2)). */
static void test_known_block(void **state)
{
    (void)state;
    struct quarry_type_traits tab[QUARRY_TYPE_COUNT];
    assert_int_equal(quarry_traits_build(QUARRY_ISA_SCALAR, tab), 0);
    float x[QK4_0], y[QK4_0];
    for (int j = 0; j < QK4_0; j++)
        x[j] = (float)(j - 16) / 2.0f;
    block_q4_0 b;
    tab[QUARRY_TYPE_Q4_0].from_float_ref(x, &b, QK4_0);
    assert_int_equal(b.d, 0x3C00); /* 1.0 */
    for (int j = 0; j < QK4_0 / 2; j++) {
        const int c_lo = (j + 1) / 2;
        const int c_hi = (j + 16 + 1) / 2 > 15 ? 15 : (j + 16 + 1) / 2;
        assert_int_equal(b.qs[j], c_lo | c_hi << 4);
    }
    tab[QUARRY_TYPE_Q4_0].to_float(&b, y, QK4_0);
    for (int j = 0; j < QK4_0; j++) {
        const int c = (j + 1) / 2 > 15 ? 15 : (j + 1) / 2;
        assert_true(y[j] == (float)(c - 8));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        KC_STANDARD_TESTS(QUARRY_TYPE_Q4_0),
        cmocka_unit_test(test_known_block),
        cmocka_unit_test_prestate(kc_test_legacy_dot_vs_dequantized, KC_STATE(QUARRY_TYPE_Q4_0)),
    };
    return TU_RUN_GROUP(tests);
}
