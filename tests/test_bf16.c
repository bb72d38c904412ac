/*
 * test_bf16.c - bf16 kernels: the standard kernel checks (tests/kernelcheck.h:
 * ggml golden data, every ISA level against scalar, test-quantize-fns error
 * bounds), conversions whose bfloat16 results are known (ties to even,
 * overflow to inf, subnormals kept, NaN made quiet), and
 * (tests/kernelcheck_family.h) an exact dot and subnormal f32 inputs at
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
    static const struct { uint32_t x; uint16_t b; } cases[] = {
        {0x3F800000, 0x3F80},  /* 1.0 */
        {0x3F808000, 0x3F80},  /* 1 + 2^-8: tie, to even (down) */
        {0x3F818000, 0x3F82},  /* 1 + 3*2^-8: tie, to even (up) */
        {0x3F808001, 0x3F81},  /* just above the tie */
        {0xBF7FFFFF, 0xBF80},  /* rounds up into the next binade */
        {0x7F7FFFFF, 0x7F80},  /* FLT_MAX rounds to inf */
        {0x7F800000, 0x7F80},  /* inf */
        {0x80000000, 0x8000},  /* -0 */
        {0x00010000, 0x0001},  /* subnormal kept (no flush to zero) */
        {0x00008000, 0x0000},  /* tie between 0 and the smallest subnormal */
        {0x7F800001, 0x7FC0},  /* signalling NaN becomes quiet */
        {0xFFC00000, 0xFFC0},  /* quiet NaN kept */
    };
    enum { N = sizeof cases / sizeof cases[0] };
    float x[N], back[N];
    uint16_t b[N];
    for (int i = 0; i < N; i++)
        x[i] = quarry_f32_from_bits(cases[i].x);
    tab[QUARRY_TYPE_BF16].from_float_ref(x, b, N);
    for (int i = 0; i < N; i++) {
        if (b[i] != cases[i].b)
            fail_msg("bf16(0x%08x) = 0x%04x, expected 0x%04x", cases[i].x, b[i], cases[i].b);
    }
    /* back to float: the bf16 bits become the top half of the float */
    tab[QUARRY_TYPE_BF16].to_float(b, back, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(quarry_f32_bits(back[i]), (uint32_t)b[i] << 16);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        KC_STANDARD_TESTS(QUARRY_TYPE_BF16),
        cmocka_unit_test(test_known_conversions),
        cmocka_unit_test_prestate(kc_test_half_dot_exact, KC_STATE(QUARRY_TYPE_BF16)),
        cmocka_unit_test_prestate(kc_test_half_subnormal_inputs, KC_STATE(QUARRY_TYPE_BF16)),
    };
    return TU_RUN_GROUP(tests);
}
