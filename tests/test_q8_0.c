/*
 * test_q8_0.c - q8_0 kernels: the standard kernel checks (tests/kernelcheck.h:
 * ggml golden data, every ISA level against scalar, test-quantize-fns error
 * bounds), a block whose rounding ties show roundf (half away from zero)
 * rather than round-to-even, vec_dot against exact integer arithmetic, and
 * (tests/kernelcheck_family.h) vec_dot against the exact dot product of
 * the dequantized rows.
 */
#include "tests/kernelcheck_family.h"

#include <math.h>
#include <string.h>

#include "kernels/fp16.h"

/* amax = 127 makes d = 1 exactly, so q = roundf(x): ties round away from
 * zero (2.5 -> 3, -2.5 -> -3), unlike the round-to-even of SIMD rounding. */
static void test_known_block_ties(void **state)
{
    (void)state;
    struct quarry_type_traits tab[QUARRY_TYPE_COUNT];
    assert_int_equal(quarry_traits_build(QUARRY_ISA_SCALAR, tab), 0);
    float x[QK8_0];
    int8_t want[QK8_0];
    x[0] = 127.0f;
    want[0] = 127;
    x[1] = -127.0f;
    want[1] = -127;
    for (int j = 2; j < QK8_0; j++) {
        const int k = (j - 2) * 4 - 58;      /* -58 .. 58 */
        x[j] = (float)k + (k < 0 ? -0.5f : 0.5f);
        want[j] = (int8_t)(k < 0 ? k - 1 : k + 1);
    }
    block_q8_0 b;
    tab[QUARRY_TYPE_Q8_0].from_float_ref(x, &b, QK8_0);
    assert_int_equal(b.d, 0x3C00);
    assert_memory_equal(b.qs, want, QK8_0);
    float y[QK8_0];
    tab[QUARRY_TYPE_Q8_0].to_float(&b, y, QK8_0);
    for (int j = 0; j < QK8_0; j++)
        assert_true(y[j] == (float)want[j]);
}

/* With d = 1 on both sides the dot is the integer sum of products. */
static void test_dot_integer(void **state)
{
    (void)state;
    struct quarry_type_traits tab[QUARRY_TYPE_COUNT];
    assert_int_equal(quarry_traits_build(QUARRY_ISA_SCALAR, tab), 0);
    enum { NB = 5, N = NB * QK8_0 };
    block_q8_0 x[NB], y[NB];
    uint64_t rng = 42;
    int64_t want = 0;
    for (int i = 0; i < NB; i++) {
        x[i].d = y[i].d = 0x3C00;
        for (int j = 0; j < QK8_0; j++) {
            x[i].qs[j] = (int8_t)((int)(tu_rand_u64(&rng) % 255) - 127);
            y[i].qs[j] = (int8_t)((int)(tu_rand_u64(&rng) % 255) - 127);
            want += x[i].qs[j] * y[i].qs[j];
        }
    }
    float s;
    tab[QUARRY_TYPE_Q8_0].vec_dot(N, &s, x, y);
    assert_true(s == (float)want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        KC_STANDARD_TESTS(QUARRY_TYPE_Q8_0),
        cmocka_unit_test(test_known_block_ties),
        cmocka_unit_test(test_dot_integer),
        cmocka_unit_test_prestate(kc_test_legacy_dot_vs_dequantized, KC_STATE(QUARRY_TYPE_Q8_0)),
    };
    return TU_RUN_GROUP(tests);
}
