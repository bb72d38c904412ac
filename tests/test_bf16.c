/*
 * test_bf16.c - bf16 kernels: the standard kernel checks (tests/kernelcheck.h:
 * ggml golden data, every ISA level against scalar, test-quantize-fns error
 * bounds), conversions whose bfloat16 results are known (ties to even,
 * overflow to inf, subnormals kept, NaN made quiet), and an exact dot.
 */
#include "tests/kernelcheck.h"

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

static void test_dot_exact(void **state)
{
    (void)state;
    struct quarry_type_traits tab[QUARRY_TYPE_COUNT];
    assert_int_equal(quarry_traits_build(QUARRY_ISA_SCALAR, tab), 0);
    enum { N = 37 };
    float x[N], y[N];
    uint16_t bx[N], by[N];
    double want = 0;
    for (int i = 0; i < N; i++) {
        x[i] = (float)(i - 18) * 0.25f;
        y[i] = (float)(3 * i % 11 - 5);
        want += (double)x[i] * y[i];
    }
    tab[QUARRY_TYPE_BF16].from_float_ref(x, bx, N);
    tab[QUARRY_TYPE_BF16].from_float_ref(y, by, N);
    float s;
    tab[QUARRY_TYPE_BF16].vec_dot(N, &s, bx, by);
    assert_true(s == (float)want);
}

/* f32 subnormal inputs (which some vector conversions flush to zero) and
 * values around them: every level's fast and reference conversions must
 * give the reference bits, for lengths that exercise the vector tails. */
static void test_subnormal_inputs_all_levels(void **state)
{
    (void)state;
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
    tables[0][QUARRY_TYPE_BF16].from_float_ref(x, want, N);
    for (int l = 0; l < levels; l++) {
        for (int n = 1; n <= N; n += (n < 40 ? 1 : 9)) {
            memset(got, 0xAB, sizeof got);
            tables[l][QUARRY_TYPE_BF16].from_float(x, got, n);
            for (int i = 0; i < n; i++)
                if (got[i] != want[i])
                    fail_msg("%s bf16 from_float(n=%d): [%d] %a -> 0x%04x, reference 0x%04x",
                             quarry_isa_name((enum quarry_isa)l), n, i, (double)x[i], got[i],
                             want[i]);
            tables[l][QUARRY_TYPE_BF16].from_float_ref(x, got, n);
            assert_memory_equal(got, want, sizeof(uint16_t) * (size_t)n);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        KC_STANDARD_TESTS(QUARRY_TYPE_BF16),
        cmocka_unit_test(test_known_conversions),
        cmocka_unit_test(test_dot_exact),
        cmocka_unit_test(test_subnormal_inputs_all_levels),
    };
    return TU_RUN_GROUP(tests);
}
