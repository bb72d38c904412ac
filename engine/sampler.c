/*
 * sampler.c - token sampling (llama.cpp's default chain) and the stop-string
 * matcher; see sampler.h for the stages and their order.
 *
 * The candidate array holds one entry per vocabulary token; stages shrink it
 * from the end after sorting (top-k, top-p) or by filtering (min-p). Sorting
 * is by descending logit with ties broken by the lower token id, so results do
 * not depend on the sort algorithm. top-k selects with a small heap when k is
 * much smaller than the candidate count, the common case (k = 40 of 32000).
 */
#include "engine/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- random numbers: xoshiro256** seeded by splitmix64 ------------------- */

struct rng {
    uint64_t s[4];
};

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(struct rng *r)
{
    uint64_t *s = r->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1) with 53 random bits. */
static double rng_uniform(struct rng *r)
{
    return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- parameters ---------------------------------------------------------- */

void quarry_sampler_params_default(struct quarry_sampler_params *p)
{
    p->temperature = 0.8f;
    p->top_k = 40;
    p->top_p = 0.95f;
    p->min_p = 0.05f;
    p->penalty_last_n = 64;
    p->repeat_penalty = 1.0f;
    p->frequency_penalty = 0.0f;
    p->presence_penalty = 0.0f;
    p->min_keep = 1;
    p->seed = 0x5eed;
}

int quarry_sampler_params_check(const struct quarry_sampler_params *p, quarry_error *err)
{
    if (!p)
        return quarry_errorf(err, QUARRY_EINVAL, "sampler: no parameters");
    if (!(p->temperature >= 0.0f) || isinf(p->temperature))
        return quarry_errorf(err, QUARRY_EINVAL,
                             "sampler: temperature must be a finite number >= 0 (got %g)",
                             (double)p->temperature);
    if (p->top_k < 0)
        return quarry_errorf(err, QUARRY_EINVAL, "sampler: top_k must be >= 0 (got %d)",
                             (int)p->top_k);
    if (!(p->top_p >= 0.0f && p->top_p <= 1.0f))
        return quarry_errorf(err, QUARRY_EINVAL, "sampler: top_p must be in [0, 1] (got %g)",
                             (double)p->top_p);
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return quarry_errorf(err, QUARRY_EINVAL, "sampler: min_p must be in [0, 1] (got %g)",
                             (double)p->min_p);
    if (p->penalty_last_n < 0)
        return quarry_errorf(err, QUARRY_EINVAL,
                             "sampler: penalty_last_n must be >= 0 (got %d; pass the context "
                             "length for 'whole context')",
                             (int)p->penalty_last_n);
    if (!(p->repeat_penalty > 0.0f) || isinf(p->repeat_penalty))
        return quarry_errorf(err, QUARRY_EINVAL,
                             "sampler: repeat_penalty must be a finite number > 0 (got %g)",
                             (double)p->repeat_penalty);
    if (!isfinite(p->frequency_penalty))
        return quarry_errorf(err, QUARRY_EINVAL, "sampler: frequency_penalty must be finite");
    if (!isfinite(p->presence_penalty))
        return quarry_errorf(err, QUARRY_EINVAL, "sampler: presence_penalty must be finite");
    return 0;
}

/* ---- candidate stages ----------------------------------------------------- */

/* True when a comes before b: larger logit first, then lower id. */
static bool cand_before(const struct quarry_candidate *a, const struct quarry_candidate *b)
{
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static void cand_swap(struct quarry_candidate *a, struct quarry_candidate *b)
{
    struct quarry_candidate t = *a;
    *a = *b;
    *b = t;
}

/* Min-heap on "before" order: h[0] is the candidate that comes last. */
static void heap_sift_down(struct quarry_candidate *h, size_t n, size_t i)
{
    for (;;) {
        size_t worst = i, l = 2 * i + 1, r = l + 1;
        if (l < n && cand_before(&h[worst], &h[l]))
            worst = l;
        if (r < n && cand_before(&h[worst], &h[r]))
            worst = r;
        if (worst == i)
            return;
        cand_swap(&h[i], &h[worst]);
        i = worst;
    }
}

/* Sorts d[0..n) into "before" order: an introsort (quicksort with a
 * median-of-3 pivot, heapsort past a depth limit, insertion sort for short
 * ranges) with the comparison inlined; qsort() through a function pointer
 * is several times slower on a 32000-entry vocabulary. */
static void heap_sort(struct quarry_candidate *d, size_t n)
{
    for (size_t i = n / 2; i-- > 0;)
        heap_sift_down(d, n, i);
    for (size_t end = n; end > 1; end--) {
        cand_swap(&d[0], &d[end - 1]); /* the last in order goes to the back */
        heap_sift_down(d, end - 1, 0);
    }
}

static void intro_sort(struct quarry_candidate *d, size_t n, int depth)
{
    while (n > 16) {
        if (depth-- == 0) {
            heap_sort(d, n);
            return;
        }
        /* median of three as the pivot value */
        struct quarry_candidate *a = &d[0], *b = &d[n / 2], *c = &d[n - 1], *m;
        if (cand_before(a, b))
            m = cand_before(b, c) ? b : cand_before(a, c) ? c : a;
        else
            m = cand_before(a, c) ? a : cand_before(b, c) ? c : b;
        const struct quarry_candidate pivot = *m;
        /* Hoare partition: d[0..j] come no later than the pivot, d[j+1..n) no earlier */
        size_t i = (size_t)-1, j = n;
        for (;;) {
            do
                i++;
            while (cand_before(&d[i], &pivot));
            do
                j--;
            while (cand_before(&pivot, &d[j]));
            if (i >= j)
                break;
            cand_swap(&d[i], &d[j]);
        }
        const size_t left = j + 1;
        if (left < n - left) { /* recurse into the smaller side */
            intro_sort(d, left, depth);
            d += left;
            n -= left;
        } else {
            intro_sort(d + left, n - left, depth);
            n = left;
        }
    }
    for (size_t i = 1; i < n; i++) {
        const struct quarry_candidate x = d[i];
        size_t k = i;
        for (; k > 0 && cand_before(&x, &d[k - 1]); k--)
            d[k] = d[k - 1];
        d[k] = x;
    }
}

static void sort_range(struct quarry_candidate *d, size_t n)
{
    int depth = 0;
    for (size_t m = n; m > 1; m >>= 1)
        depth += 2;
    intro_sort(d, n, depth);
}

/* Radix sort key: ascending key order is descending logit order. */
static uint32_t descending_key(float logit)
{
    uint32_t u;
    if (logit == 0.0f)
        logit = 0.0f; /* -0 and +0 are equal logits */
    memcpy(&u, &logit, sizeof u);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u); /* ascending as unsigned */
    return ~u;
}

/* LSD radix sort by (logit descending, id ascending), 8 bits a pass, through
 * tmp[n]; passes where every entry has the same digit are skipped. */
static void radix_sort(struct quarry_candidate *d, struct quarry_candidate *tmp, size_t n)
{
    int32_t max_id = 0;
    for (size_t i = 0; i < n; i++)
        if (d[i].id > max_id)
            max_id = d[i].id;
    int id_passes = 0;
    for (uint32_t m = (uint32_t)max_id; m; m >>= 8)
        id_passes++;
    struct quarry_candidate *src = d, *dst = tmp;
    for (int pass = 0; pass < id_passes + 4; pass++) {
        const bool on_id = pass < id_passes;
        const int shift = 8 * (on_id ? pass : pass - id_passes);
        size_t count[256] = {0};
        for (size_t i = 0; i < n; i++) {
            const uint32_t v = on_id ? (uint32_t)src[i].id : descending_key(src[i].logit);
            count[(v >> shift) & 0xff]++;
        }
        bool trivial = false;
        for (int b = 0; b < 256; b++)
            if (count[b] == n)
                trivial = true;
        if (trivial)
            continue;
        size_t pos = 0;
        for (int b = 0; b < 256; b++) {
            const size_t k = count[b];
            count[b] = pos;
            pos += k;
        }
        for (size_t i = 0; i < n; i++) {
            const uint32_t v = on_id ? (uint32_t)src[i].id : descending_key(src[i].logit);
            dst[count[(v >> shift) & 0xff]++] = src[i];
        }
        struct quarry_candidate *t = src;
        src = dst;
        dst = t;
    }
    if (src != d)
        memcpy(d, src, n * sizeof *d);
}

static void cand_sort(struct quarry_candidates *c)
{
    if (!c->sorted) {
        if (c->scratch && c->size > 512)
            radix_sort(c->data, c->scratch, c->size);
        else
            sort_range(c->data, c->size);
        c->sorted = true;
    }
}

/* Moves the k first candidates (in sorted order) to data[0..k), sorted. */
static void cand_select_top(struct quarry_candidates *c, size_t k)
{
    struct quarry_candidate *d = c->data;
    if (k == 0 || c->sorted)
        return;
    if (k * 8 >= c->size) {
        cand_sort(c);
        return;
    }
    /* data[0..k) becomes a heap of the best k seen so far. */
    for (size_t i = k / 2; i-- > 0;)
        heap_sift_down(d, k, i);
    for (size_t i = k; i < c->size; i++) {
        if (cand_before(&d[i], &d[0])) {
            cand_swap(&d[i], &d[0]);
            heap_sift_down(d, k, 0);
        }
    }
    sort_range(d, k);
}

void quarry_candidates_softmax(struct quarry_candidates *c)
{
    if (c->size == 0)
        return;
    cand_sort(c);
    const float max_l = c->data[0].logit;
    if (max_l == -INFINITY) {
        for (size_t i = 0; i < c->size; i++)
            c->data[i].p = 0.0f;
        return;
    }
    double sum = 0.0;
    for (size_t i = 0; i < c->size; i++) {
        float p = expf(c->data[i].logit - max_l);
        c->data[i].p = p;
        sum += p;
    }
    for (size_t i = 0; i < c->size; i++)
        c->data[i].p = (float)(c->data[i].p / sum);
}

void quarry_candidates_top_k(struct quarry_candidates *c, int32_t k)
{
    if (k <= 0)
        return;
    size_t kk = (size_t)k < c->size ? (size_t)k : c->size;
    cand_select_top(c, kk);
    c->size = kk;
    c->sorted = true;
}

/* Unsorted probabilities (p = softmax(logit)), candidates left in place. */
static void softmax_in_place(struct quarry_candidates *c)
{
    float max_l = -INFINITY;
    for (size_t i = 0; i < c->size; i++)
        if (c->data[i].logit > max_l)
            max_l = c->data[i].logit;
    if (max_l == -INFINITY) {
        for (size_t i = 0; i < c->size; i++)
            c->data[i].p = 0.0f;
        return;
    }
    double sum = 0.0;
    for (size_t i = 0; i < c->size; i++) {
        c->data[i].p = expf(c->data[i].logit - max_l);
        sum += c->data[i].p;
    }
    for (size_t i = 0; i < c->size; i++)
        c->data[i].p = (float)(c->data[i].p / sum);
}

void quarry_candidates_top_p(struct quarry_candidates *c, float p, size_t min_keep)
{
    if (p >= 1.0f || c->size == 0)
        return;
    if (!c->sorted && c->size > 1024) {
        /* Usually a few hundred candidates hold the mass p: sort only the
         * best 256 (as llama.cpp does) and fall back to a full sort if they
         * are not enough. */
        softmax_in_place(c);
        const size_t k = 256;
        cand_select_top(c, k);
        float cum = 0.0f;
        for (size_t i = 0; i < k; i++) {
            cum += c->data[i].p;
            if (cum >= p && i + 1 >= min_keep) {
                c->size = i + 1;
                c->sorted = true;
                return;
            }
        }
    }
    quarry_candidates_softmax(c);
    float cum = 0.0f;
    for (size_t i = 0; i < c->size; i++) {
        cum += c->data[i].p;
        if (cum >= p && i + 1 >= min_keep) {
            c->size = i + 1;
            return;
        }
    }
}

void quarry_candidates_min_p(struct quarry_candidates *c, float p, size_t min_keep)
{
    if (p <= 0.0f || c->size == 0)
        return;
    if (!c->sorted) {
        /* p_i >= p * p_max  <=>  logit_i >= logit_max + log(p) */
        float max_l = -INFINITY;
        for (size_t i = 0; i < c->size; i++)
            if (c->data[i].logit > max_l)
                max_l = c->data[i].logit;
        const float min_l = max_l + logf(p);
        size_t kept = 0;
        for (size_t i = 0; i < c->size; i++)
            if (c->data[i].logit >= min_l)
                kept++;
        if (kept > 0 && kept >= min_keep) {
            size_t j = 0;
            for (size_t i = 0; i < c->size; i++)
                if (c->data[i].logit >= min_l)
                    c->data[j++] = c->data[i];
            c->size = j;
            return;
        }
    }
    cand_sort(c);
    const float min_l = c->data[0].logit + logf(p);
    size_t i = 1; /* the first always stays */
    for (; i < c->size; i++)
        if (c->data[i].logit < min_l && i >= min_keep)
            break;
    c->size = i;
}

void quarry_candidates_temperature(struct quarry_candidates *c, float temperature)
{
    if (c->size == 0)
        return;
    if (temperature <= 0.0f) {
        size_t best = 0;
        for (size_t i = 1; i < c->size; i++)
            if (cand_before(&c->data[i], &c->data[best]))
                best = i;
        for (size_t i = 0; i < c->size; i++)
            if (i != best)
                c->data[i].logit = -INFINITY;
        /* still in descending order if it was: best was first */
        return;
    }
    for (size_t i = 0; i < c->size; i++)
        c->data[i].logit /= temperature;
}

void quarry_candidates_penalties(struct quarry_candidates *c, const int32_t *counts,
                                 float repeat, float frequency, float presence)
{
    if (!counts || (repeat == 1.0f && frequency == 0.0f && presence == 0.0f))
        return;
    for (size_t i = 0; i < c->size; i++) {
        const int32_t n = counts[c->data[i].id];
        if (n <= 0)
            continue;
        float l = c->data[i].logit;
        /* dividing a negative logit would make the token more likely */
        l = l <= 0.0f ? l * repeat : l / repeat;
        l -= (float)n * frequency + presence;
        c->data[i].logit = l;
    }
    c->sorted = false;
}

/* ---- the sampler ---------------------------------------------------------- */

struct quarry_sampler {
    struct quarry_sampler_params params;
    int32_t n_vocab;
    struct rng rng;
    struct quarry_candidate *cand;   /* [n_vocab] work array */
    struct quarry_candidate *scratch;/* [n_vocab] for sorting */
    int32_t *counts;                 /* [n_vocab] occurrences in the window */
    int32_t *window;                 /* ring of the last penalty_last_n tokens */
    size_t window_len, window_head;  /* entries used, index of the oldest */
    struct quarry_logit_bias *bias;
    size_t n_bias;
};

int quarry_sampler_new(const struct quarry_sampler_params *p, int32_t n_vocab,
                       quarry_sampler **out, quarry_error *err)
{
    *out = NULL;
    int rc = quarry_sampler_params_check(p, err);
    if (rc)
        return rc;
    if (n_vocab <= 0)
        return quarry_errorf(err, QUARRY_EINVAL, "sampler: n_vocab must be > 0 (got %d)",
                             (int)n_vocab);
    quarry_sampler *s = calloc(1, sizeof *s);
    if (!s)
        return quarry_errorf(err, QUARRY_ENOMEM, "sampler: out of memory");
    s->params = *p;
    s->n_vocab = n_vocab;
    s->cand = malloc((size_t)n_vocab * sizeof *s->cand);
    s->scratch = malloc((size_t)n_vocab * sizeof *s->scratch);
    s->counts = calloc((size_t)n_vocab, sizeof *s->counts);
    if (p->penalty_last_n > 0)
        s->window = malloc((size_t)p->penalty_last_n * sizeof *s->window);
    if (!s->cand || !s->scratch || !s->counts || (p->penalty_last_n > 0 && !s->window)) {
        quarry_sampler_free(s);
        return quarry_errorf(err, QUARRY_ENOMEM, "sampler: out of memory (n_vocab %d)",
                             (int)n_vocab);
    }
    rng_seed(&s->rng, p->seed);
    *out = s;
    return 0;
}

void quarry_sampler_free(quarry_sampler *s)
{
    if (!s)
        return;
    free(s->cand);
    free(s->scratch);
    free(s->counts);
    free(s->window);
    free(s->bias);
    free(s);
}

int quarry_sampler_set_logit_bias(quarry_sampler *s, const struct quarry_logit_bias *bias,
                                  size_t n, quarry_error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (bias[i].token < 0 || bias[i].token >= s->n_vocab)
            return quarry_errorf(err, QUARRY_EINVAL,
                                 "sampler: logit bias for token %d, outside the vocabulary "
                                 "(0..%d)",
                                 (int)bias[i].token, (int)s->n_vocab - 1);
        if (isnan(bias[i].bias) || bias[i].bias == INFINITY)
            return quarry_errorf(err, QUARRY_EINVAL,
                                 "sampler: logit bias for token %d must be finite or -inf",
                                 (int)bias[i].token);
    }
    struct quarry_logit_bias *copy = NULL;
    if (n > 0) {
        copy = malloc(n * sizeof *copy);
        if (!copy)
            return quarry_errorf(err, QUARRY_ENOMEM, "sampler: out of memory");
        memcpy(copy, bias, n * sizeof *copy);
    }
    free(s->bias);
    s->bias = copy;
    s->n_bias = n;
    return 0;
}

void quarry_sampler_accept(quarry_sampler *s, int32_t token)
{
    const size_t cap = (size_t)s->params.penalty_last_n;
    if (cap == 0 || token < 0 || token >= s->n_vocab)
        return;
    if (s->window_len == cap) {
        s->counts[s->window[s->window_head]]--;
        s->window[s->window_head] = token;
        s->window_head = (s->window_head + 1) % cap;
    } else {
        s->window[(s->window_head + s->window_len) % cap] = token;
        s->window_len++;
    }
    s->counts[token]++;
}

void quarry_sampler_reset(quarry_sampler *s)
{
    memset(s->counts, 0, (size_t)s->n_vocab * sizeof *s->counts);
    s->window_len = 0;
    s->window_head = 0;
    rng_seed(&s->rng, s->params.seed);
}

/* Draws one candidate with probability softmax(logit). Returns its index or
 * -1 when every logit is -inf. */
static ptrdiff_t draw(struct quarry_candidates *c, struct rng *r)
{
    float max_l = -INFINITY;
    for (size_t i = 0; i < c->size; i++)
        if (c->data[i].logit > max_l)
            max_l = c->data[i].logit;
    if (max_l == -INFINITY)
        return -1;
    double sum = 0.0;
    for (size_t i = 0; i < c->size; i++) {
        float p = expf(c->data[i].logit - max_l);
        c->data[i].p = p;
        sum += p;
    }
    const double target = rng_uniform(r) * sum;
    double run = 0.0;
    ptrdiff_t last = -1;
    for (size_t i = 0; i < c->size; i++) {
        if (c->data[i].p <= 0.0f)
            continue;
        run += c->data[i].p;
        last = (ptrdiff_t)i;
        if (run > target)
            return last;
    }
    return last; /* rounding left target just above the total */
}

int quarry_sampler_sample(quarry_sampler *s, const float *logits, int32_t *token,
                          quarry_error *err)
{
    const struct quarry_sampler_params *p = &s->params;
    struct quarry_candidates c = {s->cand, (size_t)s->n_vocab, false, s->scratch};
    for (int32_t i = 0; i < s->n_vocab; i++) {
        if (isnan(logits[i]))
            return quarry_errorf(err, QUARRY_EINVAL, "sampler: logit of token %d is NaN",
                                 (int)i);
        s->cand[i].id = i;
        s->cand[i].logit = logits[i];
        s->cand[i].p = 0.0f;
    }
    /* candidates are still indexed by token id here */
    for (size_t i = 0; i < s->n_bias; i++)
        s->cand[s->bias[i].token].logit += s->bias[i].bias;
    if (s->window_len > 0)
        quarry_candidates_penalties(&c, s->counts, p->repeat_penalty, p->frequency_penalty,
                                    p->presence_penalty);

    if (p->temperature <= 0.0f) {
        /* greedy: the filters below always keep the best candidate */
        size_t best = 0;
        for (size_t i = 1; i < c.size; i++)
            if (cand_before(&c.data[i], &c.data[best]))
                best = i;
        if (c.data[best].logit == -INFINITY)
            return quarry_errorf(err, QUARRY_EINVAL,
                                 "sampler: no token left to sample (all logits are -inf)");
        *token = c.data[best].id;
        return 0;
    }
    quarry_candidates_top_k(&c, p->top_k);
    quarry_candidates_top_p(&c, p->top_p, p->min_keep);
    quarry_candidates_min_p(&c, p->min_p, p->min_keep);
    quarry_candidates_temperature(&c, p->temperature);
    ptrdiff_t i = draw(&c, &s->rng);
    if (i < 0)
        return quarry_errorf(err, QUARRY_EINVAL,
                             "sampler: no token left to sample (all logits are -inf)");
    *token = c.data[i].id;
    return 0;
}

/* ---- stop strings --------------------------------------------------------- */

struct quarry_stop_matcher {
    char **stops;
    size_t *stop_len;
    size_t n_stops;
    char *held;          /* text not yet released */
    size_t held_len, held_cap;
    char *out;           /* what the last call released */
    size_t out_cap;
    bool stopped;
    int which;
};

int quarry_stop_new(const char *const *stops, size_t n, quarry_stop_matcher **out,
                    quarry_error *err)
{
    *out = NULL;
    for (size_t i = 0; i < n; i++)
        if (!stops[i] || !stops[i][0])
            return quarry_errorf(err, QUARRY_EINVAL, "stop strings: string %zu is empty", i);
    quarry_stop_matcher *m = calloc(1, sizeof *m);
    if (!m)
        return quarry_errorf(err, QUARRY_ENOMEM, "stop strings: out of memory");
    m->which = -1;
    if (n > 0) {
        m->stops = calloc(n, sizeof *m->stops);
        m->stop_len = calloc(n, sizeof *m->stop_len);
        if (!m->stops || !m->stop_len)
            goto nomem;
        m->n_stops = n;
        for (size_t i = 0; i < n; i++) {
            m->stop_len[i] = strlen(stops[i]);
            m->stops[i] = malloc(m->stop_len[i] + 1);
            if (!m->stops[i])
                goto nomem;
            memcpy(m->stops[i], stops[i], m->stop_len[i] + 1);
        }
    }
    *out = m;
    return 0;
nomem:
    quarry_stop_free(m);
    return quarry_errorf(err, QUARRY_ENOMEM, "stop strings: out of memory");
}

void quarry_stop_free(quarry_stop_matcher *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_stops; i++)
        free(m->stops[i]);
    free(m->stops);
    free(m->stop_len);
    free(m->held);
    free(m->out);
    free(m);
}

static int grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need) {
        if (c > SIZE_MAX / 2)
            return QUARRY_ENOMEM;
        c *= 2;
    }
    char *b = realloc(*buf, c);
    if (!b)
        return QUARRY_ENOMEM;
    *buf = b;
    *cap = c;
    return 0;
}

/* Length of the tail of s[0..n) that is an unfinished UTF-8 sequence. */
static size_t utf8_incomplete_tail(const char *s, size_t n)
{
    for (size_t back = 1; back <= 4 && back <= n; back++) {
        const unsigned char b = (unsigned char)s[n - back];
        if ((b & 0xC0) == 0x80)
            continue; /* continuation byte: keep looking for the lead */
        size_t need = b >= 0xF0 && b < 0xF8 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
        return back < need ? back : 0;
    }
    return 0;
}

/* Copies text[0..len) to m->out and publishes it. */
static int release(quarry_stop_matcher *m, const char *text, size_t len, const char **emit,
                   size_t *emit_len)
{
    if (grow(&m->out, &m->out_cap, len + 1))
        return QUARRY_ENOMEM;
    memcpy(m->out, text, len);
    m->out[len] = 0;
    *emit = m->out;
    *emit_len = len;
    return 0;
}

int quarry_stop_feed(quarry_stop_matcher *m, const char *piece, size_t len, const char **emit,
                     size_t *emit_len)
{
    *emit = "";
    *emit_len = 0;
    if (m->stopped)
        return 1;
    if (grow(&m->held, &m->held_cap, m->held_len + len + 1))
        return QUARRY_ENOMEM;
    memcpy(m->held + m->held_len, piece, len);
    m->held_len += len;

    /* The held text before this piece had no complete stop string, so the
     * earliest match (if any) ends inside the new piece. */
    size_t first = SIZE_MAX;
    for (size_t i = 0; i < m->n_stops; i++) {
        const char *hit = memmem(m->held, m->held_len, m->stops[i], m->stop_len[i]);
        if (hit && (size_t)(hit - m->held) < first) {
            first = (size_t)(hit - m->held);
            m->which = (int)i;
        }
    }
    if (first != SIZE_MAX) {
        m->stopped = true;
        int rc = release(m, m->held, first, emit, emit_len);
        m->held_len = 0;
        return rc ? rc : 1;
    }

    /* Hold the longest tail that is a proper prefix of some stop string. */
    size_t hold = 0;
    for (size_t i = 0; i < m->n_stops; i++) {
        size_t k = m->stop_len[i] - 1;
        if (k > m->held_len)
            k = m->held_len;
        for (; k > hold; k--)
            if (memcmp(m->held + m->held_len - k, m->stops[i], k) == 0)
                break;
        if (k > hold)
            hold = k;
    }
    size_t cut = m->held_len - hold;
    cut -= utf8_incomplete_tail(m->held, cut);
    int rc = release(m, m->held, cut, emit, emit_len);
    if (rc)
        return rc;
    memmove(m->held, m->held + cut, m->held_len - cut);
    m->held_len -= cut;
    return 0;
}

void quarry_stop_flush(quarry_stop_matcher *m, const char **emit, size_t *emit_len)
{
    *emit = "";
    *emit_len = 0;
    if (m->stopped || m->held_len == 0)
        return;
    /* held is released in place: the buffer is not touched until the next call */
    *emit = m->held;
    *emit_len = m->held_len;
    m->held_len = 0;
}

int quarry_stop_which(const quarry_stop_matcher *m)
{
    return m->stopped ? m->which : -1;
}

void quarry_stop_reset(quarry_stop_matcher *m)
{
    m->held_len = 0;
    m->stopped = false;
    m->which = -1;
}
