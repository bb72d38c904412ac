/*
 * test_mathkernels.c - rmsnorm, rope and softmax against straightforward
 * double-precision references, plus the properties that pin down conventions
 * a reference written by the same hand could share by mistake: which values
 * rope pairs in each style, position 0 being the identity, rotations keeping
 * lengths and depending only on relative position.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/softmax.h"
#include "kernels/swiglu.h"

static void fill_normal(float *x, int n, float sigma, uint64_t *rng)
{
    for (int i = 0; i < n; i++)
        x[i] = sigma * tu_rand_normal(rng);
}

/* ---- rmsnorm ------------------------------------------------------------ */

static void rmsnorm_ref(double *y, const float *x, const float *w, int n, double eps)
{
    double ss = 0;
    for (int i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    const double s = 1.0 / sqrt(ss / n + eps);
    for (int i = 0; i < n; i++)
        y[i] = x[i] * s * (w ? w[i] : 1.0);
}

static void test_rmsnorm_matches_double(void **state)
{
    (void)state;
    uint64_t rng = 11;
    const int sizes[] = {1, 7, 64, 288, 4096};
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
        const int n = sizes[si];
        float *x = malloc(n * sizeof *x), *w = malloc(n * sizeof *w), *y = malloc(n * sizeof *y);
        float *yf = malloc(n * sizeof *yf);
        double *ref = malloc(n * sizeof *ref);
        assert_non_null(x && w && y && yf && ref);
        fill_normal(x, n, 3.0f, &rng);
        fill_normal(w, n, 1.0f, &rng);
        for (int with_w = 0; with_w < 2; with_w++) {
            const float *wp = with_w ? w : NULL;
            quarry_rmsnorm(y, x, wp, n, 1e-5f);
            rmsnorm_ref(ref, x, wp, n, 1e-5);
            for (int i = 0; i < n; i++)
                yf[i] = (float)ref[i];
            double e = tu_nmse(y, yf, n);
            if (e > 1e-12)
                print_error("rmsnorm n=%d w=%d nmse %g\n", n, with_w, e);
            assert_true(e <= 1e-12);
            /* in place gives the same bits */
            memcpy(yf, x, n * sizeof *x);
            quarry_rmsnorm(yf, yf, wp, n, 1e-5f);
            assert_memory_equal(yf, y, n * sizeof *y);
        }
        /* the unweighted result has mean square 1 (eps small against the data) */
        quarry_rmsnorm(y, x, NULL, n, 1e-6f);
        double ms = 0;
        for (int i = 0; i < n; i++)
            ms += (double)y[i] * y[i];
        assert_true(fabs(ms / n - 1.0) < 1e-5);
        free(x), free(w), free(y), free(yf), free(ref);
    }
}

static void test_rmsnorm_zero_row(void **state)
{
    (void)state;
    float x[5] = {0}, y[5];
    quarry_rmsnorm(y, x, NULL, 5, 1e-5f);
    for (int i = 0; i < 5; i++)
        assert_true(y[i] == 0.0f);
}

/* ---- rope --------------------------------------------------------------- */

/* theta_i = freq_scale * pos * base^(-2i/n_dims) / ff_i, rotation of pair i. */
static void rope_ref(const struct quarry_rope_params *p, int pos, const float *x, double *y,
                     int n_heads, int head_dim)
{
    for (int h = 0; h < n_heads; h++) {
        const float *v = x + h * head_dim;
        double *o = y + h * head_dim;
        for (int d = 0; d < head_dim; d++)
            o[d] = v[d];
        for (int i = 0; i < p->n_dims / 2; i++) {
            double theta = p->freq_scale * pos * pow(p->freq_base, -2.0 * i / p->n_dims);
            if (p->freq_factors)
                theta /= p->freq_factors[i];
            int a = p->style == QUARRY_ROPE_NEOX ? i : 2 * i;
            int b = p->style == QUARRY_ROPE_NEOX ? i + p->n_dims / 2 : 2 * i + 1;
            o[a] = v[a] * cos(theta) - v[b] * sin(theta);
            o[b] = v[a] * sin(theta) + v[b] * cos(theta);
        }
    }
}

static void test_rope_pairing(void **state)
{
    (void)state;
    /* One unit vector per head at position 1, base 10000, 4 dims: pair 0 turns
     * by exactly 1 radian. NORMAL pairs x0 with x1, NEOX pairs x0 with x2. */
    float cs[4];
    struct quarry_rope_params p = {4, 10000.0f, 1.0f, NULL, QUARRY_ROPE_NORMAL};
    float x[4] = {1, 0, 0, 0};
    quarry_rope_cache(&p, 1, cs);
    quarry_rope_apply(&p, cs, x, 1, 4);
    assert_true(fabsf(x[0] - cosf(1.0f)) < 1e-6f && fabsf(x[1] - sinf(1.0f)) < 1e-6f);
    assert_true(x[2] == 0.0f && x[3] == 0.0f);

    p.style = QUARRY_ROPE_NEOX;
    float y[4] = {1, 0, 0, 0};
    quarry_rope_cache(&p, 1, cs);
    quarry_rope_apply(&p, cs, y, 1, 4);
    assert_true(fabsf(y[0] - cosf(1.0f)) < 1e-6f && fabsf(y[2] - sinf(1.0f)) < 1e-6f);
    assert_true(y[1] == 0.0f && y[3] == 0.0f);

    /* Pair 1 of a 4-dim rotation turns by 10000^(-1/2) = 0.01 rad per position. */
    p.style = QUARRY_ROPE_NORMAL;
    float z[4] = {0, 0, 1, 0};
    quarry_rope_cache(&p, 100, cs);
    quarry_rope_apply(&p, cs, z, 1, 4);
    assert_true(fabsf(z[2] - cosf(1.0f)) < 1e-5f && fabsf(z[3] - sinf(1.0f)) < 1e-5f);
}

static void test_rope_matches_double(void **state)
{
    (void)state;
    uint64_t rng = 22;
    const int head_dim = 64, n_heads = 3;
    float ff[32];
    for (int i = 0; i < 32; i++)
        ff[i] = 1.0f + (float)i / 4.0f;
    const struct {
        int n_dims;
        float base, scale;
        const float *ff;
        enum quarry_rope_style style;
    } cases[] = {
        {64, 10000.0f, 1.0f, NULL, QUARRY_ROPE_NORMAL},
        {64, 10000.0f, 1.0f, NULL, QUARRY_ROPE_NEOX},
        {32, 10000.0f, 1.0f, NULL, QUARRY_ROPE_NORMAL}, /* partial: last 32 values pass through */
        {32, 500000.0f, 1.0f, NULL, QUARRY_ROPE_NEOX},
        {64, 10000.0f, 0.25f, NULL, QUARRY_ROPE_NORMAL}, /* linear scaling, factor 4 */
        {64, 500000.0f, 1.0f, ff, QUARRY_ROPE_NORMAL},   /* llama-3 frequency factors */
    };
    const int positions[] = {0, 1, 7, 100, 4095};
    float x[n_heads * head_dim], y[n_heads * head_dim], yr[n_heads * head_dim], cs[head_dim];
    double ref[n_heads * head_dim];
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        struct quarry_rope_params p = {cases[c].n_dims, cases[c].base, cases[c].scale, cases[c].ff,
                                       cases[c].style};
        for (size_t pi = 0; pi < sizeof positions / sizeof *positions; pi++) {
            fill_normal(x, n_heads * head_dim, 1.0f, &rng);
            memcpy(y, x, sizeof x);
            quarry_rope_cache(&p, positions[pi], cs);
            quarry_rope_apply(&p, cs, y, n_heads, head_dim);
            rope_ref(&p, positions[pi], x, ref, n_heads, head_dim);
            for (int i = 0; i < n_heads * head_dim; i++)
                yr[i] = (float)ref[i];
            /* Tolerance: test-backend-ops' default NMSE 1e-7. The angles are
             * float, as in ggml: at position 4095 one rounding of the angle
             * alone is ~2.4e-4 rad, which gives an NMSE of a few 1e-9. */
            double e = tu_nmse(y, yr, n_heads * head_dim);
            if (e > 1e-7)
                print_error("rope case %zu pos %d nmse %g\n", c, positions[pi], e);
            assert_true(e <= 1e-7);
            if (positions[pi] == 0) /* position 0 is the identity */
                assert_memory_equal(x, y, sizeof x);
            for (int h = 0; h < n_heads; h++) /* untouched tail */
                assert_memory_equal(x + h * head_dim + p.n_dims, y + h * head_dim + p.n_dims,
                                    (head_dim - p.n_dims) * sizeof(float));
            /* rotations keep the length of each head */
            for (int h = 0; h < n_heads; h++) {
                double a = 0, b = 0;
                for (int d = 0; d < head_dim; d++) {
                    a += (double)x[h * head_dim + d] * x[h * head_dim + d];
                    b += (double)y[h * head_dim + d] * y[h * head_dim + d];
                }
                assert_true(fabs(a - b) <= 1e-5 * a);
            }
        }
    }
}

/* q.k after rotation depends only on the distance between the positions. */
static void test_rope_relative_positions(void **state)
{
    (void)state;
    uint64_t rng = 33;
    const int hd = 32;
    float q[32], k[32], qa[32], ka[32], cs[32];
    fill_normal(q, hd, 1.0f, &rng);
    fill_normal(k, hd, 1.0f, &rng);
    for (int style = 0; style < 2; style++) {
        struct quarry_rope_params p = {hd, 10000.0f, 1.0f, NULL,
                                       style ? QUARRY_ROPE_NEOX : QUARRY_ROPE_NORMAL};
        double dots[3];
        const int pq[3] = {5, 105, 1005}, pk[3] = {2, 102, 1002};
        for (int c = 0; c < 3; c++) {
            memcpy(qa, q, sizeof q);
            memcpy(ka, k, sizeof k);
            quarry_rope_cache(&p, pq[c], cs);
            quarry_rope_apply(&p, cs, qa, 1, hd);
            quarry_rope_cache(&p, pk[c], cs);
            quarry_rope_apply(&p, cs, ka, 1, hd);
            dots[c] = 0;
            for (int d = 0; d < hd; d++)
                dots[c] += (double)qa[d] * ka[d];
        }
        assert_true(fabs(dots[0] - dots[1]) < 1e-3 && fabs(dots[0] - dots[2]) < 1e-3);
    }
}

/* ---- softmax ------------------------------------------------------------ */

static void softmax_ref(const float *x, float *y, int n)
{
    double max = -INFINITY, sum = 0;
    for (int i = 0; i < n; i++)
        if (x[i] > max)
            max = x[i];
    for (int i = 0; i < n; i++)
        sum += exp((double)x[i] - max);
    for (int i = 0; i < n; i++)
        y[i] = (float)(exp((double)x[i] - max) / sum);
}

static void test_softmax_matches_double(void **state)
{
    (void)state;
    uint64_t rng = 44;
    const int sizes[] = {1, 2, 31, 512, 32000};
    const float sigmas[] = {0.1f, 1.0f, 30.0f, 1000.0f};
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
        for (size_t gi = 0; gi < sizeof sigmas / sizeof *sigmas; gi++) {
            const int n = sizes[si];
            float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y), *r = malloc(n * sizeof *r);
            assert_non_null(x && y && r);
            fill_normal(x, n, sigmas[gi], &rng);
            if (n > 2)
                x[n / 2] = -INFINITY; /* a masked entry */
            memcpy(y, x, n * sizeof *x);
            quarry_softmax(y, n);
            softmax_ref(x, r, n);
            double e = tu_nmse(y, r, n), sum = 0;
            for (int i = 0; i < n; i++)
                sum += y[i];
            if (e >= 1e-6)
                print_error("softmax n=%d sigma=%g nmse %g\n", n, sigmas[gi], e);
            assert_true(e < 1e-6);
            assert_true(fabs(sum - 1.0) < 1e-5);
            if (n > 2)
                assert_true(y[n / 2] == 0.0f);
            free(x), free(y), free(r);
        }
}

static void test_softmax_edge_rows(void **state)
{
    (void)state;
    float same[4] = {3, 3, 3, 3};
    quarry_softmax(same, 4);
    for (int i = 0; i < 4; i++)
        assert_true(fabsf(same[i] - 0.25f) < 1e-7f);
    float masked[3] = {-INFINITY, -INFINITY, -INFINITY};
    quarry_softmax(masked, 3);
    for (int i = 0; i < 3; i++)
        assert_true(masked[i] == 0.0f);
    float big[2] = {1e30f, -1e30f}; /* no overflow: the maximum is subtracted first */
    quarry_softmax(big, 2);
    assert_true(big[0] == 1.0f && big[1] == 0.0f);
}

/* SwiGLU at every level against silu(g) * up in double: random gates over
 * the range where exp matters, the tails 1..37 of the vector loop, and
 * special values (zeros, tiny, large of both signs, NaN). The scalar level
 * is within float rounding of the double result; the vector exp within a
 * few ulp (2e-6 relative; 1e-30 absolute where exp(-x) overflows float and
 * even the scalar level gives 0 for a true value near 1e-37). */
static void test_swiglu_matches_double(void **state)
{
    (void)state;
    enum { N = 1000 };
    static const float special[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 1.0f, -1.0f, 20.0f, -20.0f,
                                    87.0f, -87.0f, 89.0f, -89.0f, 1e30f, -1e30f, NAN};
    float g[N], up[N], out[N];
    uint64_t rng = 5;
    for (int i = 0; i < N; i++) {
        g[i] = i < (int)(sizeof special / sizeof special[0]) ? special[i]
                                                             : (tu_rand_uniform(&rng) - 0.5f) * 60.0f;
        up[i] = tu_rand_uniform(&rng) * 4.0f - 2.0f;
    }
    for (int isa = 0; isa <= (int)quarry_isa_detected(); isa++)
        for (int n = 1; n <= N; n = n < 40 ? n + 1 : n * 5) {
            memcpy(out, g, sizeof(float) * (size_t)n);
            quarry_swiglu_isa(out, up, n, (enum quarry_isa)isa);
            for (int i = 0; i < n; i++) {
                const double x = g[i], want = x / (1.0 + exp(-x)) * up[i];
                if (isnan(x)) {
                    if (!isnan(out[i]))
                        fail_msg("%s: swiglu(NaN) = %g, not NaN", quarry_isa_name((enum quarry_isa)isa),
                                 (double)out[i]);
                    continue;
                }
                const double tol = fmax(2e-6 * fabs(want), 1e-30);
                if (!(fabs(out[i] - want) <= tol))
                    fail_msg("%s n=%d: swiglu(%g) * %g = %.9g, double gives %.9g",
                             quarry_isa_name((enum quarry_isa)isa), n, x, (double)up[i],
                             (double)out[i], want);
            }
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rmsnorm_matches_double),
        cmocka_unit_test(test_rmsnorm_zero_row),
        cmocka_unit_test(test_rope_pairing),
        cmocka_unit_test(test_rope_matches_double),
        cmocka_unit_test(test_rope_relative_positions),
        cmocka_unit_test(test_softmax_matches_double),
        cmocka_unit_test(test_softmax_edge_rows),
        cmocka_unit_test(test_swiglu_matches_double),
    };
    return TU_RUN_GROUP(tests);
}
