/*
 * test_f16.c - f16 kernels: the standard kernel checks (tests/kernelcheck.h:
 * ggml golden data, every ISA level against scalar, test-quantize-fns error
 * bounds), conversions whose IEEE binary16 results are known (rounding ties
 * to even, overflow, subnormals, signed zero, NaN), every half round trip,
 * and (tests/kernelcheck_family.h) an exact dot and subnormal f32 inputs at
 * every ISA level.
 */
#include "tests/kernelcheck_family.h"

#include <math.h>
#include <string.h>

#include "kernels/fp16.h"

static void test_known_conversions(void **state)
{
    (void)state;
    struct quarry_type_traits tab[QUARRY_TYPE_COUNT];
    assert_int_equal(quarry_traits_build(QUARRY_ISA_SCALAR, tab), 0);
    static const struct { float x; uint16_t h; } cases[] = {
        {1.0f, 0x3C00},
        {-2.0f, 0xC000},
        {0.5f, 0x3800},
        {-0.0f, 0x8000},
        {65504.0f, 0x7BFF},               /* largest finite half */
        {65519.0f, 0x7BFF},               /* below the halfway point to 2^16 */
        {65520.0f, 0x7C00},               /* halfway: ties to even = overflow */
        {1.0f + 0x1p-11f, 0x3C00},        /* tie, rounds to even (down) */
        {1.0f + 3 * 0x1p-11f, 0x3C02},    /* tie, rounds to even (up) */
        {1.0f + 0x1p-11f + 0x1p-20f, 0x3C01}, /* just above the tie */
        {0x1p-14f, 0x0400},               /* smallest normal */
        {0x1p-24f, 0x0001},               /* smallest subnormal */
        {0x1p-25f, 0x0000},               /* tie between 0 and 2^-24: to even */
        {3 * 0x1p-25f, 0x0002},           /* tie between 1 and 2 ulps: to even */
        {1e-10f, 0x0000},
        {INFINITY, 0x7C00},
        {-INFINITY, 0xFC00},
    };
    enum { N = sizeof cases / sizeof cases[0] };
    float x[N], back[N];
    uint16_t h[N];
    for (int i = 0; i < N; i++)
        x[i] = cases[i].x;
    tab[QUARRY_TYPE_F16].from_float_ref(x, h, N);
    for (int i = 0; i < N; i++) {
        if (h[i] != cases[i].h)
            fail_msg("f16(%a) = 0x%04x, expected 0x%04x", (double)x[i], h[i], cases[i].h);
    }
    /* back to float: exact for every representable value */
    tab[QUARRY_TYPE_F16].to_float(h, back, N);
    assert_true(back[0] == 1.0f && back[4] == 65504.0f && back[11] == 0x1p-24f);
    assert_true(signbit(back[3]) && back[3] == 0.0f);
    assert_true(isinf(back[6]) && back[6] > 0);
    /* NaN stays NaN */
    const float nan_in = NAN;
    uint16_t hn;
    tab[QUARRY_TYPE_F16].from_float_ref(&nan_in, &hn, 1);
    assert_int_equal(hn & 0x7C00, 0x7C00);
    assert_int_not_equal(hn & 0x03FF, 0);
    float nan_out;
    tab[QUARRY_TYPE_F16].to_float(&hn, &nan_out, 1);
    assert_true(isnan(nan_out));
}

/* Every half converts to float and back unchanged (NaNs stay NaN). */
static void test_all_halves_round_trip(void **state)
{
    (void)state;
    struct quarry_type_traits tab[QUARRY_TYPE_COUNT];
    assert_int_equal(quarry_traits_build(QUARRY_ISA_SCALAR, tab), 0);
    enum { N = 65536 };
    static uint16_t h[N], h2[N];
    static float f[N];
    for (int i = 0; i < N; i++)
        h[i] = (uint16_t)i;
    tab[QUARRY_TYPE_F16].to_float(h, f, N);
    tab[QUARRY_TYPE_F16].from_float_ref(f, h2, N);
    for (int i = 0; i < N; i++) {
        const bool is_nan = (h[i] & 0x7C00) == 0x7C00 && (h[i] & 0x03FF) != 0;
        if (is_nan)
            assert_true(isnan(f[i]));
        else if (h2[i] != h[i])
            fail_msg("half 0x%04x -> %a -> 0x%04x", h[i], (double)f[i], h2[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        KC_STANDARD_TESTS(QUARRY_TYPE_F16),
        cmocka_unit_test(test_known_conversions),
        cmocka_unit_test(test_all_halves_round_trip),
        cmocka_unit_test_prestate(kc_test_half_dot_exact, KC_STATE(QUARRY_TYPE_F16)),
        cmocka_unit_test_prestate(kc_test_half_subnormal_inputs, KC_STATE(QUARRY_TYPE_F16)),
    };
    return TU_RUN_GROUP(tests);
}
