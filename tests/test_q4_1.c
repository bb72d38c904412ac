/*
 * test_q4_1.c - q4_1 kernels: the standard kernel checks (tests/kernelcheck.h:
 * ggml golden data, every ISA level against scalar, test-quantize-fns error
 * bounds), a block worked out by hand, and (tests/kernelcheck_family.h)
 * vec_dot against the exact dot product written the way the q8_1 sum term
 * defines it.
 */
#include "tests/kernelcheck_family.h"

#include <math.h>
#include <string.h>

#include "kernels/fp16.h"

/* x_j = (j mod 16) + 3: min 3, max 18, so d = 15 / 15 = 1 and code
 * c_j = trunc(x_j - 3 + 0.5) = j mod 16; dequantization gives x back. */
static void test_known_block(void **state)
{
    (void)state;
    struct quarry_type_traits tab[QUARRY_TYPE_COUNT];
    assert_int_equal(quarry_traits_build(QUARRY_ISA_SCALAR, tab), 0);
    float x[QK4_1], y[QK4_1];
    for (int j = 0; j < QK4_1; j++)
        x[j] = (float)(j % 16 + 3);
    block_q4_1 b;
    tab[QUARRY_TYPE_Q4_1].from_float_ref(x, &b, QK4_1);
    assert_int_equal(b.d, 0x3C00); /* 1.0 */
    assert_int_equal(b.m, 0x4200); /* 3.0 */
    for (int j = 0; j < QK4_1 / 2; j++)
        assert_int_equal(b.qs[j], j | j << 4);
    tab[QUARRY_TYPE_Q4_1].to_float(&b, y, QK4_1);
    for (int j = 0; j < QK4_1; j++)
        assert_true(y[j] == x[j]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        KC_STANDARD_TESTS(QUARRY_TYPE_Q4_1),
        cmocka_unit_test(test_known_block),
        cmocka_unit_test_prestate(kc_test_legacy_dot_vs_dequantized, KC_STATE(QUARRY_TYPE_Q4_1)),
    };
    return TU_RUN_GROUP(tests);
}
