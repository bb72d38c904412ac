/*
 * test_q4_1.c - q4_1 kernels: the standard kernel checks (tests/kernelcheck.h:
 * ggml golden data, every ISA level against scalar, test-quantize-fns error
 * bounds), a block worked out by hand, and vec_dot against the exact dot
 * product written the way the q8_1 sum term defines it.
 */
#include "tests/kernelcheck.h"

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

/* Per block, dot = d_x*d_y*sum(c*q) + m_x*s_y where s_y = fp16(d_y*sum(q)):
 * computed here in double from the dequantized codes and the stored s, the
 * kernel must agree up to float rounding of the block terms and their sum. */
static void test_dot_matches_dequantized(void **state)
{
    (void)state;
    struct quarry_type_traits tab[QUARRY_TYPE_COUNT];
    assert_int_equal(quarry_traits_build(QUARRY_ISA_SCALAR, tab), 0);
    enum { N = 32 * 24, NB = N / 32 };
    float x[N], a[N], dx[N], da[N];
    block_q4_1 qx[NB];
    block_q8_1 qa[NB];
    for (int seed = 1; seed <= 8; seed++) {
        kc_fill_case(seed % 2 ? KC_CASE_NORMAL : KC_CASE_OFFSET, (uint64_t)seed, x, N);
        kc_fill_case(KC_CASE_NORMAL, (uint64_t)seed + 100, a, N);
        tab[QUARRY_TYPE_Q4_1].from_float_ref(x, qx, N);
        tab[QUARRY_TYPE_Q8_1].from_float_ref(a, qa, N);
        kc_dequantize(QUARRY_TYPE_Q4_1, qx, dx, N);
        kc_dequantize(QUARRY_TYPE_Q8_1, qa, da, N);
        double want = 0, mag = 0;
        for (int b = 0; b < NB; b++) {
            const double m = quarry_fp16_to_fp32(qx[b].m);
            for (int j = 0; j < 32; j++) {
                want += ((double)dx[b * 32 + j] - m) * da[b * 32 + j];
                mag += fabs(((double)dx[b * 32 + j] - m) * da[b * 32 + j]);
            }
            want += m * quarry_fp16_to_fp32(qa[b].s);
            mag += fabs(m * quarry_fp16_to_fp32(qa[b].s));
        }
        float s;
        tab[QUARRY_TYPE_Q4_1].vec_dot(N, &s, qx, qa);
        assert_true(fabs((double)s - want) <= 1e-6 * mag);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        KC_STANDARD_TESTS(QUARRY_TYPE_Q4_1),
        cmocka_unit_test(test_known_block),
        cmocka_unit_test(test_dot_matches_dequantized),
    };
    return TU_RUN_GROUP(tests);
}
