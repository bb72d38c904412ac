/*
 * test_f32.c - f32 kernels: the standard kernel checks (tests/kernelcheck.h;
 * there is no f32 golden data, so these are every ISA level against scalar
 * and the test-quantize-fns measures), copies that keep every bit, and a dot
 * product whose answer depends on accumulating in double as ggml does.
 */
#include "tests/kernelcheck.h"

#include <math.h>
#include <string.h>

#include "kernels/fp16.h"

static void test_copies_keep_bits(void **state)
{
    (void)state;
    struct quarry_type_traits tab[QUARRY_TYPE_COUNT];
    assert_int_equal(quarry_traits_build(QUARRY_ISA_SCALAR, tab), 0);
    const uint32_t bits[] = {0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00001,
                             0xffbfffff, 0x00000001, 0x3f800000, 0x7f7fffff};
    enum { N = sizeof bits / sizeof bits[0] };
    float x[N], q[N], y[N];
    for (int i = 0; i < N; i++)
        x[i] = quarry_f32_from_bits(bits[i]);
    tab[QUARRY_TYPE_F32].from_float(x, q, N);
    tab[QUARRY_TYPE_F32].to_float(q, y, N);
    assert_memory_equal(q, x, sizeof x);
    assert_memory_equal(y, x, sizeof x);
    tab[QUARRY_TYPE_F32].from_float_ref(x, q, N);
    assert_memory_equal(q, x, sizeof x);
}

/* Small integers: every product and partial sum is exact. */
static void test_dot_exact(void **state)
{
    (void)state;
    struct quarry_type_traits tab[QUARRY_TYPE_COUNT];
    assert_int_equal(quarry_traits_build(QUARRY_ISA_SCALAR, tab), 0);
    enum { N = 37 };
    float x[N], y[N];
    double want = 0;
    for (int i = 0; i < N; i++) {
        x[i] = (float)(i - 18);
        y[i] = (float)(3 * i % 11 - 5);
        want += (double)x[i] * y[i];
    }
    float s;
    tab[QUARRY_TYPE_F32].vec_dot(N, &s, x, y);
    assert_true(s == (float)want);
}

/* 1e8 + 1 - 1e8: a float accumulator loses the 1, ggml's double keeps it. */
static void test_dot_accumulates_in_double(void **state)
{
    (void)state;
    struct quarry_type_traits tab[QUARRY_TYPE_COUNT];
    assert_int_equal(quarry_traits_build(QUARRY_ISA_SCALAR, tab), 0);
    const float x[3] = {1e8f, 1.0f, -1e8f}, y[3] = {1.0f, 1.0f, 1.0f};
    float s;
    tab[QUARRY_TYPE_F32].vec_dot(3, &s, x, y);
    assert_true(s == 1.0f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        KC_STANDARD_TESTS(QUARRY_TYPE_F32),
        cmocka_unit_test(test_copies_keep_bits),
        cmocka_unit_test(test_dot_exact),
        cmocka_unit_test(test_dot_accumulates_in_double),
    };
    return TU_RUN_GROUP(tests);
}
