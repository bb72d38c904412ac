/*
 * ratelimit.c - token buckets and per-tenant admission (see ratelimit.h).
 */
#include "engine/server/ratelimit.h"

#include <math.h>
#include <stdlib.h>

void srv_bucket_init(struct srv_bucket *b, uint32_t per_minute, double now)
{
    b->capacity = per_minute;
    b->level = per_minute;
    b->rate = per_minute / 60.0;
    b->t_last = now;
}

void srv_bucket_refill(struct srv_bucket *b, double now)
{
    if (now <= b->t_last)
        return; /* a clock read before the last one adds nothing */
    b->level += (now - b->t_last) * b->rate;
    if (b->level > b->capacity)
        b->level = b->capacity;
    b->t_last = now;
}

double srv_bucket_wait(struct srv_bucket *b, double need, double now)
{
    if (b->capacity <= 0)
        return 0;
    srv_bucket_refill(b, now);
    if (b->level >= need)
        return 0;
    if (need > b->capacity)
        need = b->capacity; /* it will never hold more: wait until it is full */
    return (need - b->level) / b->rate;
}

void srv_bucket_take(struct srv_bucket *b, double n, double now)
{
    if (b->capacity <= 0)
        return;
    srv_bucket_refill(b, now);
    b->level -= n;
}

const char *srv_limit_name(enum srv_limit l)
{
    switch (l) {
    case SRV_LIMIT_REQUESTS: return "requests";
    case SRV_LIMIT_TOKENS: return "tokens";
    case SRV_LIMIT_CONCURRENCY: return "concurrency";
    case SRV_LIMIT_NONE: break;
    }
    return "none";
}

struct tenant_state {
    struct srv_bucket requests, tokens;
    uint32_t max_concurrent;
    uint32_t active;
};

struct srv_limiter {
    pthread_mutex_t mu;
    struct tenant_state *t;
    size_t n;
};

int srv_limiter_new(const struct srv_tenant_limits *limits, size_t n_tenants, double now,
                    srv_limiter **out)
{
    *out = NULL;
    srv_limiter *l = calloc(1, sizeof *l);
    if (!l)
        return -1;
    l->t = calloc(n_tenants ? n_tenants : 1, sizeof *l->t);
    if (!l->t) {
        free(l);
        return -1;
    }
    l->n = n_tenants;
    for (size_t i = 0; i < n_tenants; i++) {
        srv_bucket_init(&l->t[i].requests, limits[i].requests_per_minute, now);
        srv_bucket_init(&l->t[i].tokens, limits[i].tokens_per_minute, now);
        l->t[i].max_concurrent = limits[i].max_concurrent;
    }
    pthread_mutex_init(&l->mu, NULL);
    *out = l;
    return 0;
}

void srv_limiter_free(srv_limiter *l)
{
    if (!l)
        return;
    pthread_mutex_destroy(&l->mu);
    free(l->t);
    free(l);
}

static unsigned whole_seconds(double s)
{
    if (!(s < 86400.0))
        return 86400;
    const double c = ceil(s);
    return c < 1 ? 1 : (unsigned)c;
}

enum srv_limit srv_limiter_admit(srv_limiter *l, size_t tenant, int32_t prompt_tokens,
                                 double now, unsigned *retry_after)
{
    *retry_after = 0;
    if (!l || tenant >= l->n)
        return SRV_LIMIT_NONE;
    pthread_mutex_lock(&l->mu);
    struct tenant_state *t = &l->t[tenant];
    enum srv_limit verdict = SRV_LIMIT_NONE;
    double wait = 0;
    if (t->max_concurrent && t->active >= t->max_concurrent) {
        verdict = SRV_LIMIT_CONCURRENCY;
        wait = 1; /* no way to know when one ends */
    } else if ((wait = srv_bucket_wait(&t->requests, 1, now)) > 0) {
        verdict = SRV_LIMIT_REQUESTS;
    } else if (t->tokens.capacity > 0) {
        srv_bucket_refill(&t->tokens, now);
        if (t->tokens.level <= 0) {
            verdict = SRV_LIMIT_TOKENS;
            /* until the debt is paid and a little more: the bucket must be positive */
            wait = (-t->tokens.level) / t->tokens.rate + 1e-3;
        }
    }
    if (verdict == SRV_LIMIT_NONE) {
        srv_bucket_take(&t->requests, 1, now);
        srv_bucket_take(&t->tokens, prompt_tokens > 0 ? prompt_tokens : 0, now);
        t->active++;
    } else {
        *retry_after = whole_seconds(wait);
    }
    pthread_mutex_unlock(&l->mu);
    return verdict;
}

void srv_limiter_release(srv_limiter *l, size_t tenant, int32_t completion_tokens, double now)
{
    if (!l || tenant >= l->n)
        return;
    pthread_mutex_lock(&l->mu);
    struct tenant_state *t = &l->t[tenant];
    srv_bucket_take(&t->tokens, completion_tokens > 0 ? completion_tokens : 0, now);
    if (t->active > 0)
        t->active--;
    pthread_mutex_unlock(&l->mu);
}
