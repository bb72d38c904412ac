/*
 * test_sampler.c - the sampling stages on distributions whose answer is known
 * by hand, the sampler's parameter checks, determinism for a seed, a
 * chi-square check that drawn frequencies follow softmax(logits / T) after
 * the filters, and the stop-string matcher over text split into pieces.
 */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/sampler.h"

/* Candidates with logit log(p[i]) for the given probabilities (sum to 1). */
static void make_cands(struct quarry_candidate *d, const float *p, size_t n,
                       struct quarry_candidates *c)
{
    for (size_t i = 0; i < n; i++) {
        d[i].id = (int32_t)i;
        d[i].logit = logf(p[i]);
        d[i].p = 0;
    }
    c->data = d;
    c->size = n;
    c->sorted = false;
    c->scratch = NULL;
}

static struct quarry_sampler_params plain_params(void)
{
    struct quarry_sampler_params p;
    quarry_sampler_params_default(&p);
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.penalty_last_n = 0;
    return p;
}

static void test_params_validation(void **state)
{
    (void)state;
    struct quarry_sampler_params p;
    quarry_error err = {0};
    quarry_sampler_params_default(&p);
    assert_int_equal(quarry_sampler_params_check(&p, &err), 0);

    const char *fields[] = {"top_k",          "temperature",    "temperature",
                            "top_p",          "min_p",          "penalty_last_n",
                            "repeat_penalty", "frequency_penalty"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        quarry_sampler_params_default(&p);
        switch (i) {
        case 0: p.top_k = -1; break;
        case 1: p.temperature = -0.5f; break;
        case 2: p.temperature = NAN; break;
        case 3: p.top_p = 1.5f; break;
        case 4: p.min_p = -0.1f; break;
        case 5: p.penalty_last_n = -1; break;
        case 6: p.repeat_penalty = 0.0f; break;
        case 7: p.frequency_penalty = INFINITY; break;
        }
        memset(&err, 0, sizeof err);
        assert_int_equal(quarry_sampler_params_check(&p, &err), QUARRY_EINVAL);
        assert_int_equal(err.code, QUARRY_EINVAL);
        assert_non_null(strstr(err.msg, fields[i]));
        quarry_sampler *s = (quarry_sampler *)1;
        assert_int_equal(quarry_sampler_new(&p, 10, &s, NULL), QUARRY_EINVAL);
        assert_null(s);
    }
    quarry_sampler_params_default(&p);
    quarry_sampler *s = NULL;
    assert_int_equal(quarry_sampler_new(&p, 0, &s, &err), QUARRY_EINVAL);

    /* logit bias outside the vocabulary, NaN bias */
    assert_int_equal(quarry_sampler_new(&p, 10, &s, &err), 0);
    struct quarry_logit_bias b1 = {10, 1.0f}, b2 = {-1, 1.0f}, b3 = {3, NAN};
    assert_int_equal(quarry_sampler_set_logit_bias(s, &b1, 1, &err), QUARRY_EINVAL);
    assert_int_equal(quarry_sampler_set_logit_bias(s, &b2, 1, &err), QUARRY_EINVAL);
    assert_int_equal(quarry_sampler_set_logit_bias(s, &b3, 1, &err), QUARRY_EINVAL);
    quarry_sampler_free(s);
}

static void test_greedy(void **state)
{
    (void)state;
    struct quarry_sampler_params p = plain_params();
    p.temperature = 0.0f;
    p.top_k = 2; /* filters must not matter for greedy */
    quarry_sampler *s;
    assert_int_equal(quarry_sampler_new(&p, 6, &s, NULL), 0);
    const float logits[6] = {0.5f, 3.0f, -1.0f, 3.0f, 2.9f, -INFINITY};
    int32_t tok = -1;
    /* tie between 1 and 3: the lower id wins */
    for (int rep = 0; rep < 5; rep++) {
        assert_int_equal(quarry_sampler_sample(s, logits, &tok, NULL), 0);
        assert_int_equal(tok, 1);
    }
    /* a bias moves the argmax; -inf bans */
    struct quarry_logit_bias bias[2] = {{4, 0.2f}, {1, -INFINITY}};
    assert_int_equal(quarry_sampler_set_logit_bias(s, bias, 2, NULL), 0);
    assert_int_equal(quarry_sampler_sample(s, logits, &tok, NULL), 0);
    assert_int_equal(tok, 4);
    /* clearing the bias restores the argmax */
    assert_int_equal(quarry_sampler_set_logit_bias(s, NULL, 0, NULL), 0);
    assert_int_equal(quarry_sampler_sample(s, logits, &tok, NULL), 0);
    assert_int_equal(tok, 1);

    /* NaN logits and "everything banned" are errors */
    float bad[6];
    memcpy(bad, logits, sizeof bad);
    bad[2] = NAN;
    quarry_error err = {0};
    assert_int_equal(quarry_sampler_sample(s, bad, &tok, &err), QUARRY_EINVAL);
    assert_non_null(strstr(err.msg, "NaN"));
    const float none[6] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    assert_int_equal(quarry_sampler_sample(s, none, &tok, NULL), QUARRY_EINVAL);
    quarry_sampler_free(s);

    /* with temperature > 0 too */
    p = plain_params();
    assert_int_equal(quarry_sampler_new(&p, 6, &s, NULL), 0);
    assert_int_equal(quarry_sampler_sample(s, none, &tok, NULL), QUARRY_EINVAL);
    quarry_sampler_free(s);
}

static void test_top_k(void **state)
{
    (void)state;
    const float probs[6] = {0.05f, 0.3f, 0.1f, 0.4f, 0.05f, 0.1f};
    struct quarry_candidate d[6];
    struct quarry_candidates c;
    make_cands(d, probs, 6, &c);
    quarry_candidates_top_k(&c, 3);
    assert_int_equal(c.size, 3);
    assert_true(c.sorted);
    assert_int_equal(d[0].id, 3);
    assert_int_equal(d[1].id, 1);
    assert_int_equal(d[2].id, 2); /* 2 and 5 tie at 0.1: lower id first */

    /* k = 0 is off, k > size keeps all */
    make_cands(d, probs, 6, &c);
    quarry_candidates_top_k(&c, 0);
    assert_int_equal(c.size, 6);
    quarry_candidates_top_k(&c, 100);
    assert_int_equal(c.size, 6);

    /* the heap path (k << n) agrees with a full sort */
    enum { N = 5000, K = 17 };
    struct quarry_candidate *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    uint64_t rs = 12345;
    for (int i = 0; i < N; i++) {
        a[i].id = i;
        /* coarse values so that ties occur */
        a[i].logit = (float)(int)(tu_rand_normal(&rs) * 8.0f);
        a[i].p = 0;
    }
    memcpy(b, a, N * sizeof *a);
    struct quarry_candidates ca = {a, N, false, NULL}, cb = {b, N, false, NULL};
    quarry_candidates_top_k(&ca, K);
    quarry_candidates_softmax(&cb); /* sorts all */
    assert_int_equal(ca.size, K);
    for (int i = 0; i < K; i++) {
        assert_int_equal(a[i].id, b[i].id);
        if (i > 0)
            assert_true(a[i - 1].logit >= a[i].logit);
    }
    free(a);
    free(b);
}

/* The radix sort (used when scratch space is given) and the comparison
 * sort agree exactly: descending logit, ties by lower id, -0 == +0, -inf last. */
static void test_sort_paths_agree(void **state)
{
    (void)state;
    enum { N = 6000 };
    struct quarry_candidate *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b),
                            *tmp = malloc(N * sizeof *tmp);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(tmp);
    uint64_t rs = 99;
    for (int i = 0; i < N; i++) {
        const int r = (int)(tu_rand_u64(&rs) % 10);
        a[i].id = (int32_t)((i * 7919) % N); /* ids not in order */
        a[i].logit = r == 0   ? -INFINITY
                     : r == 1 ? (tu_rand_u64(&rs) & 1 ? -0.0f : 0.0f)
                     : r == 2 ? 1e30f
                              : (float)(int)(tu_rand_normal(&rs) * 6.0f) * 0.5f;
        a[i].p = 0;
    }
    memcpy(b, a, N * sizeof *a);
    struct quarry_candidates ca = {a, N, false, tmp}, cb = {b, N, false, NULL};
    quarry_candidates_softmax(&ca);
    quarry_candidates_softmax(&cb);
    for (int i = 0; i < N; i++) {
        assert_int_equal(a[i].id, b[i].id);
        if (i > 0) {
            assert_true(a[i - 1].logit >= a[i].logit);
            if (a[i - 1].logit == a[i].logit)
                assert_true(a[i - 1].id < a[i].id);
        }
    }
    free(a);
    free(b);
    free(tmp);
}

static void test_top_p(void **state)
{
    (void)state;
    const float probs[4] = {0.1f, 0.25f, 0.5f, 0.15f};
    struct quarry_candidate d[4];
    struct quarry_candidates c;

    make_cands(d, probs, 4, &c);
    quarry_candidates_top_p(&c, 0.7f, 1); /* 0.5 + 0.25 = 0.75 >= 0.7 */
    assert_int_equal(c.size, 2);
    assert_int_equal(d[0].id, 2);
    assert_int_equal(d[1].id, 1);
    assert_float_equal(d[0].p, 0.5f, 1e-6);

    make_cands(d, probs, 4, &c);
    quarry_candidates_top_p(&c, 0.8f, 1); /* needs 0.5 + 0.25 + 0.15 */
    assert_int_equal(c.size, 3);

    make_cands(d, probs, 4, &c);
    quarry_candidates_top_p(&c, 0.3f, 1);
    assert_int_equal(c.size, 1);

    make_cands(d, probs, 4, &c);
    quarry_candidates_top_p(&c, 0.3f, 3); /* min_keep wins */
    assert_int_equal(c.size, 3);

    make_cands(d, probs, 4, &c);
    quarry_candidates_top_p(&c, 1.0f, 1); /* off */
    assert_int_equal(c.size, 4);
}

static void test_min_p(void **state)
{
    (void)state;
    const float probs[5] = {0.15f, 0.5f, 0.04f, 0.25f, 0.06f};
    struct quarry_candidate d[5];
    struct quarry_candidates c;

    /* unsorted path: keep p >= 0.35 * 0.5 = 0.175 -> {0.5, 0.25}, order kept */
    make_cands(d, probs, 5, &c);
    quarry_candidates_min_p(&c, 0.35f, 1);
    assert_int_equal(c.size, 2);
    assert_int_equal(d[0].id, 1);
    assert_int_equal(d[1].id, 3);

    /* sorted path gives the same set */
    make_cands(d, probs, 5, &c);
    quarry_candidates_softmax(&c);
    quarry_candidates_min_p(&c, 0.35f, 1);
    assert_int_equal(c.size, 2);
    assert_int_equal(d[0].id, 1);
    assert_int_equal(d[1].id, 3);

    /* 0.1 * 0.5 = 0.05: drops only 0.04 */
    make_cands(d, probs, 5, &c);
    quarry_candidates_min_p(&c, 0.1f, 1);
    assert_int_equal(c.size, 4);
    for (size_t i = 0; i < c.size; i++)
        assert_int_not_equal(d[i].id, 2);

    /* min_keep larger than the filtered set: falls back to the sorted cut */
    make_cands(d, probs, 5, &c);
    quarry_candidates_min_p(&c, 0.9f, 3);
    assert_int_equal(c.size, 3);
    assert_int_equal(d[0].id, 1);
    assert_int_equal(d[1].id, 3);
    assert_int_equal(d[2].id, 0);

    /* p = 0 is off */
    make_cands(d, probs, 5, &c);
    quarry_candidates_min_p(&c, 0.0f, 1);
    assert_int_equal(c.size, 5);
}

static void test_temperature(void **state)
{
    (void)state;
    const float probs[3] = {0.2f, 0.5f, 0.3f};
    struct quarry_candidate d[3];
    struct quarry_candidates c;
    make_cands(d, probs, 3, &c);
    quarry_candidates_temperature(&c, 0.5f);
    quarry_candidates_softmax(&c);
    /* T = 0.5 squares the probabilities: p^2 / sum p^2 */
    const double s2 = 0.04 + 0.25 + 0.09;
    assert_int_equal(d[0].id, 1);
    assert_float_equal(d[0].p, 0.25 / s2, 1e-5);
    assert_float_equal(d[1].p, 0.09 / s2, 1e-5);
    assert_float_equal(d[2].p, 0.04 / s2, 1e-5);

    /* T -> 0: only the argmax keeps a finite logit */
    make_cands(d, probs, 3, &c);
    quarry_candidates_temperature(&c, 0.0f);
    assert_true(isinf(d[0].logit) && d[0].logit < 0);
    assert_true(isfinite(d[1].logit));
    assert_true(isinf(d[2].logit) && d[2].logit < 0);
}

static void test_penalties_stage(void **state)
{
    (void)state;
    struct quarry_candidate d[4] = {
        {0, 2.0f, 0}, {1, -1.0f, 0}, {2, 1.0f, 0}, {3, 0.5f, 0}};
    struct quarry_candidates c = {d, 4, true, NULL};
    const int32_t counts[4] = {1, 2, 0, 3};
    quarry_candidates_penalties(&c, counts, 2.0f, 0.5f, 1.0f);
    assert_float_equal(d[0].logit, 2.0f / 2 - 0.5f * 1 - 1.0f, 1e-6); /* -0.5 */
    assert_float_equal(d[1].logit, -1.0f * 2 - 0.5f * 2 - 1.0f, 1e-6); /* -4 */
    assert_float_equal(d[2].logit, 1.0f, 0);                          /* unseen */
    assert_float_equal(d[3].logit, 0.5f / 2 - 0.5f * 3 - 1.0f, 1e-6);  /* -2.25 */
    assert_false(c.sorted);
}

/* The penalty window: a token is penalised while it is among the last
 * penalty_last_n accepted tokens, and not after it has fallen out. */
static void test_penalty_window(void **state)
{
    (void)state;
    struct quarry_sampler_params p = plain_params();
    p.temperature = 0.0f;
    p.penalty_last_n = 3;
    p.presence_penalty = 10.0f;
    quarry_sampler *s;
    assert_int_equal(quarry_sampler_new(&p, 5, &s, NULL), 0);
    const float logits[5] = {5.0f, 4.0f, 3.0f, 2.0f, 1.0f};
    int32_t tok;
    assert_int_equal(quarry_sampler_sample(s, logits, &tok, NULL), 0);
    assert_int_equal(tok, 0);
    quarry_sampler_accept(s, 0);
    assert_int_equal(quarry_sampler_sample(s, logits, &tok, NULL), 0);
    assert_int_equal(tok, 1);
    quarry_sampler_accept(s, 1);
    quarry_sampler_accept(s, 4);
    assert_int_equal(quarry_sampler_sample(s, logits, &tok, NULL), 0);
    assert_int_equal(tok, 2); /* 0 and 1 still in the window */
    quarry_sampler_accept(s, 4);  /* window now 1, 4, 4: token 0 fell out */
    assert_int_equal(quarry_sampler_sample(s, logits, &tok, NULL), 0);
    assert_int_equal(tok, 0);
    quarry_sampler_accept(s, 99); /* outside the vocabulary: ignored */
    quarry_sampler_accept(s, -3);
    assert_int_equal(quarry_sampler_sample(s, logits, &tok, NULL), 0);
    assert_int_equal(tok, 0);
    quarry_sampler_accept(s, 0);
    quarry_sampler_reset(s); /* forgets the window */
    assert_int_equal(quarry_sampler_sample(s, logits, &tok, NULL), 0);
    assert_int_equal(tok, 0);
    quarry_sampler_free(s);
}

static void draw_sequence(const struct quarry_sampler_params *p, const float *logits, int n_vocab,
                          int32_t *out, int n)
{
    quarry_sampler *s;
    assert_int_equal(quarry_sampler_new(p, n_vocab, &s, NULL), 0);
    for (int i = 0; i < n; i++) {
        assert_int_equal(quarry_sampler_sample(s, logits, &out[i], NULL), 0);
        quarry_sampler_accept(s, out[i]);
    }
    quarry_sampler_free(s);
}

static void test_determinism(void **state)
{
    (void)state;
    enum { V = 100, N = 200 };
    float logits[V];
    uint64_t rs = 7;
    for (int i = 0; i < V; i++)
        logits[i] = tu_rand_normal(&rs) * 2.0f;
    struct quarry_sampler_params p;
    quarry_sampler_params_default(&p);
    p.repeat_penalty = 1.1f;
    p.seed = 42;
    int32_t a[N], b[N], c[N];
    draw_sequence(&p, logits, V, a, N);
    draw_sequence(&p, logits, V, b, N);
    assert_memory_equal(a, b, sizeof a);
    p.seed = 43;
    draw_sequence(&p, logits, V, c, N);
    assert_memory_not_equal(a, c, sizeof a);

    /* reset re-seeds: the same sampler repeats itself */
    p.seed = 42;
    quarry_sampler *s;
    assert_int_equal(quarry_sampler_new(&p, V, &s, NULL), 0);
    for (int rep = 0; rep < 2; rep++) {
        for (int i = 0; i < N; i++) {
            int32_t t;
            assert_int_equal(quarry_sampler_sample(s, logits, &t, NULL), 0);
            quarry_sampler_accept(s, t);
            assert_int_equal(t, a[i]);
        }
        quarry_sampler_reset(s);
    }
    quarry_sampler_free(s);
}

/* Pearson's chi-square of observed counts against expected probabilities. */
static double chi_square(const int *obs, const double *expect_p, int k, int n)
{
    double x2 = 0;
    for (int i = 0; i < k; i++) {
        const double e = expect_p[i] * n;
        x2 += (obs[i] - e) * (obs[i] - e) / e;
    }
    return x2;
}

static void sample_counts(const struct quarry_sampler_params *p, const float *logits, int v,
                          int n, int *counts)
{
    quarry_sampler *s;
    assert_int_equal(quarry_sampler_new(p, v, &s, NULL), 0);
    memset(counts, 0, (size_t)v * sizeof *counts);
    for (int i = 0; i < n; i++) {
        int32_t t;
        assert_int_equal(quarry_sampler_sample(s, logits, &t, NULL), 0);
        assert_true(t >= 0 && t < v);
        counts[t]++;
    }
    quarry_sampler_free(s);
}

static void test_frequencies_follow_distribution(void **state)
{
    (void)state;
    enum { V = 8, N = 40000 };
    const double probs[V] = {0.30, 0.20, 0.15, 0.12, 0.10, 0.07, 0.04, 0.02};
    float logits[V];
    for (int i = 0; i < V; i++)
        logits[i] = (float)log(probs[i]) + 1.7f; /* a shift must not matter */
    int counts[V];
    /* chi-square critical values at significance 0.001: 7 dof 24.32, 2 dof 13.82 */
    struct quarry_sampler_params p = plain_params();
    p.seed = 2024;
    sample_counts(&p, logits, V, N, counts);
    double x2 = chi_square(counts, probs, V, N);
    printf("chi-square T=1: %.2f (7 dof, critical 24.32)\n", x2);
    assert_true(x2 < 24.32);

    /* T = 0.5: p^2 renormalised */
    double sq[V], s2 = 0;
    for (int i = 0; i < V; i++)
        s2 += probs[i] * probs[i];
    for (int i = 0; i < V; i++)
        sq[i] = probs[i] * probs[i] / s2;
    p.temperature = 0.5f;
    p.seed = 99;
    sample_counts(&p, logits, V, N, counts);
    x2 = chi_square(counts, sq, V, N);
    printf("chi-square T=0.5: %.2f (7 dof, critical 24.32)\n", x2);
    assert_true(x2 < 24.32);

    /* top-k 3: only the three best, renormalised; the others never drawn */
    p = plain_params();
    p.top_k = 3;
    p.seed = 5;
    sample_counts(&p, logits, V, N, counts);
    const double top3[3] = {0.30 / 0.65, 0.20 / 0.65, 0.15 / 0.65};
    x2 = chi_square(counts, top3, 3, N);
    printf("chi-square top-k 3: %.2f (2 dof, critical 13.82)\n", x2);
    assert_true(x2 < 13.82);
    for (int i = 3; i < V; i++)
        assert_int_equal(counts[i], 0);

    /* the chi-square test can fail: the wrong distribution is rejected */
    p = plain_params();
    p.seed = 2024;
    sample_counts(&p, logits, V, N, counts);
    const double uniform[V] = {0.125, 0.125, 0.125, 0.125, 0.125, 0.125, 0.125, 0.125};
    assert_true(chi_square(counts, uniform, V, N) > 24.32);
}

/* ---- stop strings ---- */

struct collected {
    char text[256];
    size_t len;
};

static int feed(quarry_stop_matcher *m, struct collected *c, const char *piece)
{
    const char *e;
    size_t n;
    int rc = quarry_stop_feed(m, piece, strlen(piece), &e, &n);
    assert_true(rc >= 0);
    assert_true(c->len + n < sizeof c->text);
    memcpy(c->text + c->len, e, n);
    c->len += n;
    c->text[c->len] = 0;
    return rc;
}

static void flush(quarry_stop_matcher *m, struct collected *c)
{
    const char *e;
    size_t n;
    quarry_stop_flush(m, &e, &n);
    memcpy(c->text + c->len, e, n);
    c->len += n;
    c->text[c->len] = 0;
}

static void test_stop_strings(void **state)
{
    (void)state;
    const char *stops[] = {"</s>", "STOP"};
    quarry_stop_matcher *m;
    assert_int_equal(quarry_stop_new(stops, 2, &m, NULL), 0);

    /* a stop string split over three pieces; held text is not shown early */
    struct collected c = {{0}, 0};
    assert_int_equal(feed(m, &c, "Hello <"), 0);
    assert_string_equal(c.text, "Hello ");
    assert_int_equal(feed(m, &c, "/"), 0);
    assert_string_equal(c.text, "Hello ");
    assert_int_equal(feed(m, &c, "s>tail"), 1);
    assert_string_equal(c.text, "Hello ");
    assert_int_equal(quarry_stop_which(m), 0);
    assert_int_equal(feed(m, &c, "more"), 1); /* stays stopped */
    flush(m, &c);
    assert_string_equal(c.text, "Hello ");

    /* a false start is released once it cannot be a stop string */
    quarry_stop_reset(m);
    assert_int_equal(quarry_stop_which(m), -1);
    memset(&c, 0, sizeof c);
    assert_int_equal(feed(m, &c, "a<"), 0);
    assert_string_equal(c.text, "a");
    assert_int_equal(feed(m, &c, "b"), 0);
    assert_string_equal(c.text, "a<b");
    assert_int_equal(feed(m, &c, "S"), 0);
    assert_int_equal(feed(m, &c, "T"), 0);
    assert_string_equal(c.text, "a<b");
    assert_int_equal(feed(m, &c, "OP!"), 1);
    assert_string_equal(c.text, "a<b");
    assert_int_equal(quarry_stop_which(m), 1);

    /* no stop: flush releases the held tail at the end of generation */
    quarry_stop_reset(m);
    memset(&c, 0, sizeof c);
    assert_int_equal(feed(m, &c, "the end </"), 0);
    assert_string_equal(c.text, "the end ");
    flush(m, &c);
    assert_string_equal(c.text, "the end </");

    /* a stop string inside one piece, text after it dropped */
    quarry_stop_reset(m);
    memset(&c, 0, sizeof c);
    assert_int_equal(feed(m, &c, "abcSTOPdef</s>"), 1);
    assert_string_equal(c.text, "abc");
    assert_int_equal(quarry_stop_which(m), 1);
    quarry_stop_free(m);

    /* the earliest match wins, whichever string it is */
    const char *stops2[] = {"b", "ab"};
    assert_int_equal(quarry_stop_new(stops2, 2, &m, NULL), 0);
    memset(&c, 0, sizeof c);
    assert_int_equal(feed(m, &c, "xa"), 0);
    assert_string_equal(c.text, "x");
    assert_int_equal(feed(m, &c, "b"), 1);
    assert_string_equal(c.text, "x");
    assert_int_equal(quarry_stop_which(m), 1);
    quarry_stop_free(m);

    /* UTF-8: a character split over pieces is held until complete */
    assert_int_equal(quarry_stop_new(NULL, 0, &m, NULL), 0);
    memset(&c, 0, sizeof c);
    assert_int_equal(feed(m, &c, "price \xe2\x82"), 0);
    assert_string_equal(c.text, "price ");
    assert_int_equal(feed(m, &c, "\xac!"), 0);
    assert_string_equal(c.text, "price \xe2\x82\xac!");
    quarry_stop_free(m);

    /* empty stop strings are refused */
    const char *bad[] = {"ok", ""};
    quarry_error err = {0};
    assert_int_equal(quarry_stop_new(bad, 2, &m, &err), QUARRY_EINVAL);
    assert_null(m);
    assert_true(strlen(err.msg) > 0);
}

/* Every split of a text into two pieces gives the same output as one piece. */
static void test_stop_all_splits(void **state)
{
    (void)state;
    const char *stops[] = {"<|im_end|>", "\n\nUser:"};
    const char *text = "Sure, here it is.\n\nUse<|im_e it <|im_end|> ignored";
    const char *want = "Sure, here it is.\n\nUse<|im_e it ";
    quarry_stop_matcher *m;
    assert_int_equal(quarry_stop_new(stops, 2, &m, NULL), 0);
    const size_t n = strlen(text);
    for (size_t cut1 = 0; cut1 <= n; cut1++) {
        for (size_t cut2 = cut1; cut2 <= n; cut2 += 3) {
            quarry_stop_reset(m);
            struct collected c = {{0}, 0};
            char a[128], b[128], d[128];
            memcpy(a, text, cut1);
            a[cut1] = 0;
            memcpy(b, text + cut1, cut2 - cut1);
            b[cut2 - cut1] = 0;
            strcpy(d, text + cut2);
            int rc = feed(m, &c, a);
            if (rc == 0)
                rc = feed(m, &c, b);
            if (rc == 0)
                rc = feed(m, &c, d);
            assert_int_equal(rc, 1);
            assert_string_equal(c.text, want);
        }
    }
    quarry_stop_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params_validation),
        cmocka_unit_test(test_greedy),
        cmocka_unit_test(test_top_k),
        cmocka_unit_test(test_sort_paths_agree),
        cmocka_unit_test(test_top_p),
        cmocka_unit_test(test_min_p),
        cmocka_unit_test(test_temperature),
        cmocka_unit_test(test_penalties_stage),
        cmocka_unit_test(test_penalty_window),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_frequencies_follow_distribution),
        cmocka_unit_test(test_stop_strings),
        cmocka_unit_test(test_stop_all_splits),
    };
    return TU_RUN_GROUP(tests);
}
